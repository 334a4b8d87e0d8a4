"""Subject-disjoint splits: seeded train/val/test, official splits, leave-one-subject-out;
case splits for sets without subjects (UEA) and recording splits for one-person excerpts.

Windows of one subject never straddle train and test: overlapping windows of the same person
would let a model score by recognising the person, not the activity. Every split carries its
subject lists (`to_dict`) so they are written down with the results. Fractions and seeds have
no defaults here: they come from `config.data` (configs/default.py). Leave-one-dataset-out is
the transfer protocol, `harjax.sweeps.folds.plan_folds`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from harjax.data.errors import DataError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Split:
    """Window indices per part, and the subject names in each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_subjects: tuple[str, ...]
    val_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    seed: int | None = None
    kind: str = "subject"  # "subject", "official", "recording", "loso"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seed": self.seed,
            "train_subjects": list(self.train_subjects),
            "val_subjects": list(self.val_subjects),
            "test_subjects": list(self.test_subjects),
            "num_windows": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        }


def _names(subject_ids: Sequence[int], subject_names: Sequence[str]) -> tuple[str, ...]:
    return tuple(
        subject_names[i] if i < len(subject_names) else str(i) for i in sorted(subject_ids)
    )


def _select(subjects: np.ndarray, chosen: Sequence[int], pool: np.ndarray) -> np.ndarray:
    return pool[np.isin(subjects[pool], np.asarray(list(chosen), dtype=np.int64))]


def subject_split(
    subjects: np.ndarray,
    subject_names: Sequence[str] = (),
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    indices: np.ndarray | None = None,
) -> Split:
    """Shuffles the subjects (seeded) and cuts them into train/val/test by fraction.

    Each non-zero fraction gets at least one subject; train must keep at least one.
    """
    subjects = np.asarray(subjects, dtype=np.int64)
    pool = np.arange(len(subjects)) if indices is None else np.asarray(indices, dtype=np.int64)
    unique = np.unique(subjects[pool])
    order = np.random.default_rng(seed).permutation(unique)
    num_test = max(1, round(test_fraction * len(unique))) if test_fraction > 0 else 0
    num_val = max(1, round(val_fraction * len(unique))) if val_fraction > 0 else 0
    if num_test + num_val >= len(unique):
        raise DataError(
            f"subject_split: {len(unique)} subjects cannot give {num_val} validation + "
            f"{num_test} test subjects (val_fraction={val_fraction}, "
            f"test_fraction={test_fraction}) and keep one for training"
        )
    test, val, train = (
        order[:num_test],
        order[num_test : num_test + num_val],
        order[num_test + num_val :],
    )
    return Split(
        train=_select(subjects, train, pool),
        val=_select(subjects, val, pool),
        test=_select(subjects, test, pool),
        train_subjects=_names(train, subject_names),
        val_subjects=_names(val, subject_names),
        test_subjects=_names(test, subject_names),
        seed=seed,
    )


def official_split(ds, *, val_fraction: float, seed: int) -> Split:
    """The dataset's own train/test split; validation subjects are carved from train."""
    if ds.official_split is None or "train" not in ds.official_split:
        raise DataError(f"{ds.name}: no official train/test split (has {ds.split_names})")
    part = {name: i for i, name in enumerate(ds.split_names)}
    train_pool = np.flatnonzero(ds.splits == part["train"])
    test = np.flatnonzero(np.isin(ds.splits, [part[n] for n in ds.official_split if n != "train"]))
    inner = subject_split(
        ds.subjects,
        ds.subject_names,
        val_fraction=val_fraction,
        test_fraction=0.0,
        seed=seed,
        indices=train_pool,
    )
    return Split(
        train=inner.train,
        val=inner.val,
        test=test,
        train_subjects=inner.train_subjects,
        val_subjects=inner.val_subjects,
        test_subjects=_names(np.unique(ds.subjects[test]), ds.subject_names),
        seed=seed,
        kind="official",
    )


def case_split(ds, *, val_fraction: float, seed: int) -> Split:
    """The official train/test split of a set of cases (UEA: no subject ids); validation is
    round(val_fraction * n) training cases of each class, seeded, always leaving one to train
    on, so that a class with a handful of cases keeps them for training."""
    part = {name: i for i, name in enumerate(ds.split_names)}
    train_pool = np.flatnonzero(ds.splits == part["train"])
    test = np.flatnonzero(ds.splits != part["train"])
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(ds.labels[train_pool]):
        members = train_pool[ds.labels[train_pool] == label]
        count = min(int(round(val_fraction * len(members))), len(members) - 1)
        val.append(rng.permutation(members)[:count])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train = np.setdiff1d(train_pool, val)
    names = lambda indices: _names(np.unique(ds.subjects[indices]), ds.subject_names)
    return Split(
        train=train,
        val=val,
        test=test,
        train_subjects=names(train),
        val_subjects=names(val),
        test_subjects=names(test),
        seed=seed,
        kind="official",
    )


def recording_split(ds, *, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Like `subject_split` with recordings in place of subjects: for an archive of fewer
    subjects than parts (an excerpt of one person). Windows of one recording stay in one part,
    so no two parts share a sample, but the same people are in every part."""
    split = subject_split(
        ds.recordings, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    names = lambda indices: _names(np.unique(ds.subjects[indices]), ds.subject_names)
    return dataclasses.replace(
        split,
        train_subjects=names(split.train),
        val_subjects=names(split.val),
        test_subjects=names(split.test),
        kind="recording",
    )


def dataset_split(
    ds, *, val_fraction: float, test_fraction: float, seed: int, official: bool
) -> Split:
    """With `official`, the dataset's own split where it has one; else `subject_split`.

    A set of cases (its builder's OFFICIAL_SPLIT_ONLY, e.g. UEA) always gets `case_split`. An
    archive with fewer subjects than the split has parts gets `recording_split`, with a warning.
    """
    if getattr(getattr(ds, "builder", None), "OFFICIAL_SPLIT_ONLY", False):
        return case_split(ds, val_fraction=val_fraction, seed=seed)
    if official and ds.official_split is not None:
        return official_split(ds, val_fraction=val_fraction, seed=seed)
    parts = 1 + (val_fraction > 0) + (test_fraction > 0)
    subjects = len(np.unique(ds.subjects))
    if subjects < parts:
        log.warning(
            "%s: %d subject(s), fewer than the %d parts of a subject-disjoint split; splitting "
            "by recording instead (no window is in two parts, but the same people are)",
            ds.name,
            subjects,
            parts,
        )
        return recording_split(
            ds, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )
    return subject_split(
        ds.subjects,
        ds.subject_names,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )


def leave_one_subject_out(
    subjects: np.ndarray, subject_names: Sequence[str] = ()
) -> Iterator[Split]:
    """One fold per subject: that subject is the test set, everyone else trains (no val)."""
    subjects = np.asarray(subjects, dtype=np.int64)
    unique = np.unique(subjects)
    if len(unique) < 2:
        raise DataError(f"leave_one_subject_out: needs >= 2 subjects, found {len(unique)}")
    everything = np.arange(len(subjects))
    for held_out in unique:
        rest = unique[unique != held_out]
        yield Split(
            train=_select(subjects, rest, everything),
            val=np.zeros(0, np.int64),
            test=np.flatnonzero(subjects == held_out),
            train_subjects=_names(rest, subject_names),
            val_subjects=(),
            test_subjects=_names([held_out], subject_names),
            kind="loso",
        )
