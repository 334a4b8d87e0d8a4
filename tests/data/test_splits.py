"""Subject-disjoint splits, leave-one-subject-out, and train-only normalisation."""

import types

import numpy as np
import pytest

from harjax.data import splits
from harjax.data.errors import DataError
from harjax.data.normalization import Stats, compute_stats

SUBJECTS = np.repeat(np.arange(10), 20)
NAMES = tuple(f"p{i}" for i in range(10))


def test_subject_split_is_disjoint_complete_and_seeded():
    split = splits.subject_split(SUBJECTS, NAMES, val_fraction=0.2, test_fraction=0.2, seed=3)
    parts = [split.train, split.val, split.test]
    assert sum(len(p) for p in parts) == len(SUBJECTS)
    assert len(np.unique(np.concatenate(parts))) == len(SUBJECTS)
    subject_sets = [set(SUBJECTS[p]) for p in parts]
    assert not (subject_sets[0] & subject_sets[1] or subject_sets[0] & subject_sets[2])
    assert not subject_sets[1] & subject_sets[2]
    assert len(split.test_subjects) == 2 and set(split.test_subjects) <= set(NAMES)
    again = splits.subject_split(SUBJECTS, NAMES, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert again.to_dict() == split.to_dict()
    other = splits.subject_split(SUBJECTS, NAMES, val_fraction=0.2, test_fraction=0.2, seed=4)
    assert other.test_subjects != split.test_subjects or other.val_subjects != split.val_subjects


def test_too_few_subjects_is_a_clear_error():
    with pytest.raises(DataError, match="2 subjects cannot give 1 validation"):
        splits.subject_split(np.array([0, 0, 1, 1]), val_fraction=0.2, test_fraction=0.2, seed=0)


def test_official_split_carves_val_from_train():
    ds = types.SimpleNamespace(
        name="uci_har",
        official_split=("train", "test"),
        split_names=("train", "test"),
        splits=(SUBJECTS >= 7).astype(np.int64),
        subjects=SUBJECTS,
        subject_names=NAMES,
    )
    split = splits.dataset_split(ds, val_fraction=0.15, test_fraction=0.15, seed=0, official=True)
    assert split.kind == "official"
    assert set(SUBJECTS[split.test]) == {7, 8, 9}
    assert set(SUBJECTS[split.val]) and set(SUBJECTS[split.val]) <= set(range(7))
    assert not set(SUBJECTS[split.val]) & set(SUBJECTS[split.train])


def test_leave_one_subject_out():
    folds = list(splits.leave_one_subject_out(SUBJECTS, NAMES))
    assert len(folds) == 10
    assert [f.test_subjects for f in folds] == [(n,) for n in NAMES]
    assert all(
        len(f.train) == 180 and NAMES[i] not in f.train_subjects for i, f in enumerate(folds)
    )


def test_normalisation_uses_train_only(tmp_path):
    rng = np.random.default_rng(0)
    signals = rng.normal(0, 1, (40, 16, 3)).astype(np.float32)
    signals[20:] += 100.0  # the "test" windows are far off
    train = np.arange(20)
    stats = compute_stats(signals, train)
    np.testing.assert_allclose(stats.mean, signals[train].mean((0, 1)), atol=1e-5)
    np.testing.assert_allclose(stats.std, signals[train].std((0, 1)), rtol=1e-4)
    assert np.all(np.abs(stats.mean) < 1)  # the test windows did not leak in
    stats.save(tmp_path / "stats.json")
    loaded = Stats.load(tmp_path / "stats.json")
    np.testing.assert_array_equal(loaded.apply(signals), stats.apply(signals))
    with pytest.raises(DataError, match=r"normalisation statistics: expected .* 3\) signal.*16, 6"):
        stats.apply(np.zeros((1, 16, 6)))


def test_one_subject_archive_is_split_by_recording_with_a_warning(caplog):
    recordings = np.repeat(np.arange(10), 4)
    ds = types.SimpleNamespace(
        name="excerpt",
        subjects=np.zeros(40, np.int64),
        subject_names=("a",),
        recordings=recordings,
        official_split=None,
    )
    split = splits.dataset_split(ds, val_fraction=0.2, test_fraction=0.2, seed=0, official=False)
    assert "1 subject(s), fewer than the 3 parts" in caplog.text
    assert split.kind == "recording"
    parts = [set(recordings[p]) for p in (split.train, split.val, split.test)]
    assert [len(p) for p in parts] == [6, 2, 2]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert split.train_subjects == split.test_subjects == ("a",)
