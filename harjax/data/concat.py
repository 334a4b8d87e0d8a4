"""Several prepared datasets served as one, for training on more than one source at once.

Cross-dataset transfer (`harjax.sweeps.transfer`) pre-trains on the concatenation of its
source datasets; `concat_datasets` joins them so that labels, subjects, recordings and splits
of different datasets never collide, and the batching in `pipeline` reads the result like any
opened dataset (`source.HARDataset`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from harjax.data.errors import DataError
from harjax.data.source import HARDataset, IndexedWindows


@dataclasses.dataclass
class ConcatDataset(IndexedWindows):
    """Several datasets served as one (index = position in the concatenation), for training on
    more than one source at once (cross-dataset transfer).

    Per-window arrays are concatenated with offsets so nothing collides: own labels index
    `class_names` = "<dataset>/<label>" for every part, subjects index `subject_names` =
    "<dataset>/<subject>", recordings are renumbered per part, `splits` index `split_names` =
    "<dataset>/<split>". `common_labels` keep their meaning (COMMON_LABELS is shared). Each part
    keeps its own split protocol: split each part first, then shift its indices by `offsets`.
    """

    name: str
    parts: tuple[HARDataset, ...]
    offsets: np.ndarray  # (len(parts) + 1,) start of each part; offsets[-1] == len(self)
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    labels: np.ndarray
    common_labels: np.ndarray
    subjects: np.ndarray
    subject_names: tuple[str, ...]
    recordings: np.ndarray
    splits: np.ndarray
    split_names: tuple[str, ...]
    report: dict[str, Any]
    official_split: tuple[str, ...] | None = None  # parts are split one by one, never jointly

    @property
    def window_length(self) -> int:
        return self.parts[0].window_length

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _part_offsets(self) -> np.ndarray:
        return self.offsets

    def __getitem__(self, index: int) -> dict[str, Any]:
        part, local = self._locate(np.asarray([index]))
        return self.parts[int(part[0])][int(local[0])]

    def read_signals(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(indices), window_length, channels) float32, read part by part."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.window_length, self.num_channels), np.float32)
        part, local = self._locate(indices)
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            out[where] = self.parts[int(p)].read_signals(local[where])
        return out


def concat_datasets(datasets: Sequence[HARDataset]) -> ConcatDataset:
    """Joins datasets that serve the same channels and window length (see `ConcatDataset`).

    Accelerometer-only data (WISDM) joins 6-channel data only when all are loaded with
    channels="acc"; a mismatch is an error naming every dataset's channels.
    """
    datasets = tuple(datasets)
    if not datasets:
        raise DataError("concat_datasets: no datasets given")
    names = [ds.name for ds in datasets]
    if len(set(names)) != len(names):
        raise DataError(f"concat_datasets: a dataset is listed twice: {names}")
    channels = {ds.name: tuple(ds.channel_names) for ds in datasets}
    if len(set(channels.values())) > 1:
        raise DataError(
            f"concat_datasets: datasets serve different channels {channels}; "
            "load them all with channels='acc'"
        )
    lengths = {ds.name: ds.window_length for ds in datasets}
    if len(set(lengths.values())) > 1:
        raise DataError(f"concat_datasets: different window lengths {lengths}")
    sizes = [len(ds) for ds in datasets]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def shifted(arrays: list[np.ndarray], counts: list[int]) -> np.ndarray:
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return np.concatenate([a.astype(np.int64) + s for a, s in zip(arrays, starts)])

    prefixed = lambda ds, names_: tuple(f"{ds.name}/{n}" for n in names_)
    subject_names = [
        prefixed(
            ds, ds.subject_names or [str(i) for i in range(int(ds.subjects.max(initial=-1)) + 1)]
        )
        for ds in datasets
    ]
    return ConcatDataset(
        name="+".join(names),
        parts=datasets,
        offsets=offsets,
        class_names=sum((prefixed(ds, ds.class_names) for ds in datasets), ()),
        channel_names=tuple(datasets[0].channel_names),
        labels=shifted([ds.labels for ds in datasets], [ds.num_classes for ds in datasets]),
        common_labels=np.concatenate([ds.common_labels.astype(np.int64) for ds in datasets]),
        subjects=shifted([ds.subjects for ds in datasets], [len(n) for n in subject_names]),
        subject_names=sum(subject_names, ()),
        recordings=shifted(
            [ds.recordings for ds in datasets],
            [int(ds.recordings.max(initial=-1)) + 1 for ds in datasets],
        ),
        splits=shifted([ds.splits for ds in datasets], [len(ds.split_names) for ds in datasets]),
        split_names=sum((prefixed(ds, ds.split_names) for ds in datasets), ()),
        report={ds.name: ds.report for ds in datasets},
    )
