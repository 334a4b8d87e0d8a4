"""The UCI HAPT reader on real recordings (tests/data/real/uci_hapt: experiments 9, 17 and 18 of
the release; the whole release too when ../shared/data is there) and on broken copies of them.

What only the real files show is checked here: the official split's subjects, windows per class
and split, units (gravity at rest), and that UCI-HAR's own windows are spans of these recordings
with the same label (the two UCI-HAR readers agree on what the data is).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harjax.data.archives import ArchiveMembers
from harjax.data.datasets import uci_hapt
from harjax.data.datasets.uci_hapt import UciHapt, UciHaptTransitions
from harjax.data.datasets.uci_har import read_split
from harjax.data.errors import DataError
from harjax.data.signal import STANDARD_GRAVITY
from tests.data.defaults import build_real, split_windows

REAL = Path(__file__).parents[1] / "real"
EXCERPT = REAL / "uci_hapt" / "HAPT Data Set.zip"
SHARED = Path(__file__).parents[4] / "shared" / "data"
FULL = SHARED / "uci_hapt" / "HAPT Data Set.zip"
REDUCED = SHARED / "uci_har_reduced" / "UCI HAR Dataset.zip"
STILL = ["SITTING", "STANDING", "LAYING"]
_build = build_real


def _members(archive: Path = EXCERPT) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as source:
        return {name: source.read(name) for name in source.namelist() if not name.endswith("/")}


def _write(folder: Path, members: dict[str, bytes], name: str = "HAPT Data Set.zip") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as out:
        for member, data in members.items():
            out.writestr(member, data)
    return folder


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory):
    return _build(UciHapt, tmp_path_factory.mktemp("hapt_tfds"), EXCERPT.parent)


def test_excerpt_official_split_windows_subjects_and_units(excerpt):
    train, train_labels, train_subjects = split_windows(excerpt, "train")
    test, test_labels, test_subjects = split_windows(excerpt, "test")
    # Counted by hand from labels.txt: floor((segment length - 128) / 64) + 1 per segment.
    assert Counter(train_labels) == {
        "WALKING": 30,
        "STANDING": 29,
        "LAYING": 27,
        "WALKING_UPSTAIRS": 25,
        "WALKING_DOWNSTAIRS": 25,
        "SITTING": 22,
    }
    assert Counter(test_labels) == {
        "LAYING": 54,
        "SITTING": 53,
        "WALKING": 52,
        "STANDING": 49,
        "WALKING_UPSTAIRS": 49,
        "WALKING_DOWNSTAIRS": 42,
    }
    assert set(train_subjects) == {"5"} and set(test_subjects) == {"9"}  # 9: an official test
    assert excerpt.info.metadata["config"]["sample_rate"] == 50.0
    assert excerpt.info.features["label"].names == list(uci_hapt.ACTIVITIES)
    for signals, labels in ((train, train_labels), (test, test_labels)):
        still = np.isin(labels, STILL)
        magnitude = np.linalg.norm(signals[still, :, :3], axis=-1).mean(axis=1)
        np.testing.assert_allclose(magnitude, 9.8, atol=0.5)  # g converted to m/s^2
        assert np.abs(signals[still, :, 3:]).mean() < 0.1  # rad/s, still
        walking = np.isin(labels, ["WALKING"])
        assert np.linalg.norm(signals[walking, :, :3], axis=-1).std(axis=1).min() > 1.0
    report = excerpt.report
    # Transitions and unlabelled samples are counted, never silently dropped.
    dropped = {reason: sum(files.values()) for reason, files in report.rows_dropped.items()}
    assert dropped["unlabelled samples"] == 12011
    assert dropped["postural-transition samples (uci_hapt_transitions keeps them)"] == 3173
    assert report.recordings == 45 and report.recordings_too_short == []


def test_transitions_option_keeps_twelve_classes_and_counts_short_segments(tmp_path):
    builder = _build(UciHaptTransitions, tmp_path, EXCERPT.parent)
    _, labels, _ = split_windows(builder, "train")
    _, test_labels, _ = split_windows(builder, "test")
    assert builder.info.features["label"].names == list(uci_hapt.ALL_CLASSES)
    counts = Counter(labels + test_labels)
    assert sum(counts[name] for name in uci_hapt.TRANSITIONS) == 480 - 457
    # Transitions shorter than one window (2.56 s) give none: listed, not lost.
    assert builder.report.recordings_too_short == [
        "exp09/002200",
        "exp17/001213",
        "exp17/002157",
        "exp18/002455",
    ]
    assert builder.report.classes_without_windows == ["SIT_TO_STAND"]
    assert "unlabelled samples" in builder.report.rows_dropped
    assert list(builder.report.rows_dropped) == ["unlabelled samples"]


def test_windows_never_cross_a_segment(excerpt):
    """Each recording is exactly one labelled segment of the raw files."""
    with ArchiveMembers(EXCERPT) as members:
        labels_name, files, users = uci_hapt.raw_files(members)
        segments = uci_hapt.read_segments(members, labels_name)
        recordings = list(UciHapt._recordings(excerpt, EXCERPT))
        for recording in recordings:
            experiment, start = recording.recording_id.split("/")
            experiment, start = int(experiment[3:]), int(start)
            (row,) = segments[(segments[:, 0] == experiment) & (segments[:, 3] == start)]
            assert len(recording.signal) == row[4] - row[3] + 1
            assert recording.label == uci_hapt.ALL_CLASSES[row[2] - 1]
            assert recording.subject == str(users[experiment])
        assert sorted(files) == [9, 17, 18]


@pytest.mark.parametrize("form", ["top_folder", "extracted", "release_folder", "uci_download"])
def test_packings_give_the_same_windows(excerpt, tmp_path, form, caplog):
    members = _members()
    if form == "top_folder":
        manual = _write(tmp_path / "in", {f"HAPT Data Set/{k}": v for k, v in members.items()})
    elif form in ("extracted", "release_folder"):
        root = tmp_path / "in" / ("HAPT Data Set" if form == "extracted" else "")
        for name, data in members.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        manual = tmp_path / "in"
    else:
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as out:
            for name, data in members.items():
                out.writestr(name, data)
        download = {"HAPT Data Set.zip": inner.getvalue()}
        manual = _write(tmp_path / "in", download, UciHapt.ARCHIVE_NAME)
    builder = _build(UciHapt, tmp_path / "tfds", manual)
    assert "activity_labels.txt files" not in caplog.text  # found and checked in every form
    assert builder.raw_key  # content-addressed like every manual archive
    for split in ("train", "test"):
        ours, expected = split_windows(builder, split), split_windows(excerpt, split)
        np.testing.assert_array_equal(ours[0], expected[0])
        assert ours[1:] == expected[1:]


def _broken(tmp_path: Path, change) -> Path:
    members = _members()
    change(members)
    return _write(tmp_path / "broken", members)


def _labels(members: dict[str, bytes]) -> list[str]:
    return members["RawData/labels.txt"].decode().splitlines(keepends=True)


def _set_labels(members: dict[str, bytes], lines: list[str]) -> None:
    members["RawData/labels.txt"] = "".join(lines).encode()


def _edit_label_line(number: int, line: str):
    def change(members):
        lines = _labels(members)
        lines[number - 1] = line
        _set_labels(members, lines)

    return change


def _replace(name: str, data: bytes):
    def change(members):
        members[name] = data

    return change


def _drop(name: str):
    return lambda members: members.pop(name)


def _line_in(name: str, number: int, line: bytes):
    def change(members):
        lines = members[name].splitlines(keepends=True)
        lines[number - 1] = line
        members[name] = b"".join(lines)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop("RawData/gyro_exp17_user09.txt"), "gyro_exp17_user09.txt: missing"),
        (_drop("RawData/labels.txt"), "RawData/labels.txt: missing"),
        (_edit_label_line(63, "18 9 2 14134 99999\n"), "labels.txt:63: segment 14134-99999 ends"),
        (_edit_label_line(3, "9 5 4 1300 2199\n"), "labels.txt:3: segment 1300-2199 of experiment"),
        (_edit_label_line(2, "9 5 walk 1222 1386\n"), "labels.txt:2: not a number"),
        (_edit_label_line(2, "9 5 13 1222 1386\n"), "labels.txt:2: unknown activity id 13"),
        (_edit_label_line(2, "9 5 7 1386 1222\n"), "labels.txt:2: segment ends (1222) before"),
        (_edit_label_line(2, "9 5 7 1222\n"), "labels.txt:2: expected 5 values, found 4"),
        (_edit_label_line(2, "9 6 7 1222 1386\n"), "labels.txt:2: user 6 for experiment 9"),
        (_line_in("RawData/acc_exp17_user09.txt", 5, b"0.1 abc 0.9\n"), "acc_exp17_user09.txt:5"),
        (_line_in("RawData/gyro_exp17_user09.txt", 7, b"0.1 0.2\n"), "gyro_exp17_user09.txt:7"),
        (_line_in("RawData/gyro_exp17_user09.txt", 9, b"0.1 inf 0\n"), "user09.txt:9: inf value"),
        (_replace("RawData/acc_exp18_user09.txt", b""), "acc_exp18_user09.txt: empty file"),
        (_replace("RawData/acc_exp18_user09.txt", b"\n\n"), "acc_exp18_user09.txt: empty file"),
        (_replace("RawData/labels.txt", b""), "labels.txt: empty file"),
        (
            _replace("RawData/gyro_exp09_user05.txt", b"0 0 0\n" * 10),
            "gyro_exp09_user05.txt: 10 samples, but",
        ),
        (
            _replace("activity_labels.txt", b"1 WALKING\n"),
            "activity_labels.txt: expected 12 activities",
        ),
        (_replace("activity_labels.txt", b"1 WALKING\n2 RUNNING\n"), "activity_labels.txt:2"),
        (_replace("activity_labels.txt", b" \n"), "activity_labels.txt: empty file"),
    ],
)
def test_malformed_input_is_one_clear_error_naming_file_and_line(tmp_path, change, message):
    manual = _broken(tmp_path, change)
    with pytest.raises(DataError, match=re.escape(message)):
        _build(UciHapt, tmp_path / "tfds", manual)


def test_a_missing_sample_is_filled_by_the_core_and_counted(tmp_path):
    """`nan` in a raw file is a missing sample: the core's gap rule fills it (counted)."""
    # Line 300 of experiment 9 lies in its first segment (136-1221).
    change = _line_in("RawData/acc_exp09_user05.txt", 300, b"nan nan nan\n")
    builder = _build(UciHapt, tmp_path / "tfds", _broken(tmp_path, change))
    assert (builder.report.samples_interpolated, builder.report.gaps_interpolated) == (1, 1)
    (where,) = builder.report.missing_values
    assert where.endswith("acc_exp09_user05.txt")
    assert builder.report.missing_values[where] == {"rows": 1, "lines": [300]}


def test_experiments_without_files_are_counted_not_fatal(tmp_path, caplog):
    """A partial copy (labels.txt of the whole release, files of some experiments) builds."""

    def change(members):
        _set_labels(members, _labels(members) + ["40 20 1 100 900\n"])

    builder = _build(UciHapt, tmp_path / "tfds", _broken(tmp_path, change))
    assert builder.report.recordings_excluded == {"experiment in labels.txt without raw files": 1}
    assert "[40] have labels but no raw files" in caplog.text


def test_no_raw_files_names_what_was_looked_for(tmp_path):
    manual = _write(tmp_path / "in", {"activity_labels.txt": _members()["activity_labels.txt"]})
    with pytest.raises(DataError, match="no raw recordings"):
        _build(UciHapt, tmp_path / "tfds", manual)


def experiment_signals(archive: Path) -> dict[int, tuple[str, np.ndarray, np.ndarray]]:
    """experiment -> (subject, accelerometer in m/s^2 (n, 3), per-sample activity id, 0 = none)."""
    out = {}
    with ArchiveMembers(archive) as members:
        labels_name, files, users = uci_hapt.raw_files(members)
        segments = uci_hapt.read_segments(members, labels_name)
        for experiment, sensors in files.items():
            acc = uci_hapt.read_columns(members, sensors["acc"], 3) * STANDARD_GRAVITY
            activity = np.zeros(len(acc), dtype=np.int64)
            for _, _, label, start, end, _ in segments[segments[:, 0] == experiment]:
                activity[start - 1 : end] = label
            out[experiment] = (str(users[experiment]), acc, activity)
    return out


def reduced_windows(archive: Path, split: str, subjects: set[str] | None):
    """UCI-HAR's windows as its reader sees them: (subject, label, accelerometer (128, 3))."""
    with ArchiveMembers(archive, nested=("UCI HAR Dataset.zip",)) as members:
        for recording in read_split(members, split):
            if subjects is not None and recording.subject not in subjects:
                continue
            for start in range(0, len(recording.signal) - 127, 64):
                yield recording.subject, recording.label, recording.signal[start : start + 128, :3]


def find_in_raw(windows, experiments) -> list[tuple[float, bool, bool]]:
    """For each UCI-HAR window, the closest span (RMS) of the same subject's raw recordings and
    whether most of that span is labelled with the window's activity, and whether all of it is
    (the span lies inside one segment of that activity)."""
    found = []
    by_subject: dict[str, list] = {}
    for subject, label, signal in windows:
        by_subject.setdefault(subject, []).append((label, signal))
    for subject, items in by_subject.items():
        stacked = np.stack([signal for _, signal in items])  # (n, 128, 3)
        best = np.full(len(items), np.inf)
        best_label = np.zeros(len(items), dtype=np.int64)
        inside = np.zeros(len(items), dtype=bool)
        for own_subject, acc, activity in experiments.values():
            if own_subject != subject:
                continue
            distance = np.zeros((len(acc) - 127, len(items)))
            for axis in range(3):
                spans = np.lib.stride_tricks.sliding_window_view(acc[:, axis], 128)
                target = stacked[:, :, axis]
                distance += (spans**2).sum(1)[:, None] - 2 * spans @ target.T
                distance += (target**2).sum(1)[None]
            position = distance.argmin(axis=0)
            value = distance[position, np.arange(len(items))]
            for index in np.flatnonzero(value < best):
                span = activity[position[index] : position[index] + 128]
                best[index] = value[index]
                best_label[index] = np.bincount(span, minlength=13).argmax()
                inside[index] = (span == span[0]).all()
        for (label, _), value, activity_id, whole in zip(items, best, best_label, inside):
            rms = float(np.sqrt(max(value, 0.0) / (128 * 3)))
            same = activity_id > 0 and uci_hapt.ALL_CLASSES[activity_id - 1] == label
            found.append((rms, same, bool(same and whole)))
    return found


def test_uci_har_windows_are_spans_of_the_raw_recordings_with_their_label():
    """The reduced UCI-HAR fixture's test subject 9 (77 windows) in the HAPT excerpt (subject 9's
    both experiments): every window is a span of subject 9's recordings (UCI-HAR's windows are
    noise-filtered, 4 digits: RMS below 0.1 g, median below 0.03 g) labelled with its activity."""
    windows = list(reduced_windows(REAL / "uci_har" / "UCI HAR Dataset.zip", "test", {"9"}))
    assert len(windows) == 77
    found = find_in_raw(windows, experiment_signals(EXCERPT))
    rms = np.array([value for value, _, _ in found])
    assert rms.max() < 0.1 * STANDARD_GRAVITY
    assert np.median(rms) < 0.03 * STANDARD_GRAVITY
    assert all(same for _, same, _ in found)


@pytest.mark.skipif(not FULL.exists(), reason="the full UCI HAPT release is absent")
def test_full_release_official_split(tmp_path):
    builder = _build(UciHapt, tmp_path, FULL.parent)
    _, train_labels, train_subjects = split_windows(builder, "train")
    _, test_labels, test_subjects = split_windows(builder, "test")
    # UCI-HAR's own windows: 7352 / 2947 (see docs/datasets/uci_hapt.md for the difference).
    assert (len(train_labels), len(test_labels)) == (7415, 2996)
    assert {int(s) for s in test_subjects} == uci_hapt.OFFICIAL_TEST_SUBJECTS
    assert {int(s) for s in train_subjects} == set(range(1, 31)) - uci_hapt.OFFICIAL_TEST_SUBJECTS
    assert Counter(train_labels + test_labels) == {
        "WALKING": 1722,
        "WALKING_UPSTAIRS": 1544,
        "WALKING_DOWNSTAIRS": 1407,
        "SITTING": 1801,
        "STANDING": 1979,
        "LAYING": 1958,
    }
    dropped = {reason: sum(files.values()) for reason, files in builder.report.rows_dropped.items()}
    assert dropped == {
        "postural-transition samples (uci_hapt_transitions keeps them)": 67208,
        "unlabelled samples": 307158,
    }
    assert builder.report.recordings == 856


@pytest.mark.skipif(
    not (FULL.exists() and REDUCED.exists()), reason="../shared/data's UCI releases are absent"
)
def test_full_release_holds_every_reduced_uci_har_window():
    """All 3350 windows of the reduced UCI-HAR copy in the raw recordings of their subject:
    all within 0.1 g RMS; most of the matched span labelled with the window's own activity for
    all but a handful (measured: 1 of 3350, a LAYING window nearest a lie-to-stand span)."""
    experiments = experiment_signals(FULL)
    windows = [w for split in ("train", "test") for w in reduced_windows(REDUCED, split, None)]
    assert len(windows) == 3350
    found = find_in_raw(windows, experiments)
    rms = np.array([value for value, _, _ in found])
    assert rms.max() < 0.1 * STANDARD_GRAVITY
    assert sum(not same for _, same, _ in found) <= 3
    # UCI-HAR's own windowing reaches past its segments for some windows (harjax's never).
    assert 100 < sum(not inside for _, _, inside in found) < 400


def test_shared_release_is_copied_untouched():
    """The committed excerpt is the release's own bytes (tests/data/real/cut.py)."""
    if not FULL.exists():
        pytest.skip("the full UCI HAPT release (../shared/data) is absent")
    full, excerpt = _members(FULL), _members()
    for name, data in excerpt.items():
        if name != "RawData/labels.txt":
            assert full[name] == data, name
    kept = [line for line in _labels(full) if int(line.split()[0]) in (9, 17, 18)]
    assert _labels(excerpt) == kept
