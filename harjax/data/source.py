"""A prepared dataset opened as one random-access source of windows.

`load_dataset` prepares the tfds builder if needed (`registry.get_builder` turns the name into
a builder) and opens every split with `as_data_source()` (array_record, no TensorFlow) as one
`HARDataset`, whose small per-window arrays (labels, subjects, ...) are read once and whose
signals are decoded into RAM when they fit. Batching them is `harjax.data.pipeline`'s job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from harjax.data.builder import HARBuilder, HARConfig
from harjax.data.errors import DataError
from harjax.data.registry import get_builder
from harjax.data.signal import ACC_CHANNELS, CANONICAL_CHANNELS, channel_columns

log = logging.getLogger(__name__)

CHANNEL_CHOICES = ("all", "acc", "acc_gyro")
_INDEX_FILE = "harjax_index.npz"  # per-window arrays, cached beside the array_record files
_READ_CHUNK = 2048
MEMORY_BUDGET_BYTES = 2 << 30  # decoded windows kept in RAM up to this size


class IndexedWindows:
    """What a served dataset shares: class/channel counts and index -> (part, index in part).

    Subclasses define `_part_offsets()`: the start of each part (a split, or a dataset of a
    concatenation) and, last, the total number of windows.
    """

    name: str
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        offsets = self._part_offsets()
        if len(indices) and (indices.min() < 0 or indices.max() >= offsets[-1]):
            raise IndexError(f"{self.name}: index out of range [0, {offsets[-1]})")
        part = np.searchsorted(offsets, indices, side="right") - 1
        return part, indices - offsets[part]


@dataclasses.dataclass
class HARDataset(IndexedWindows):
    """All splits of one prepared dataset as one random-access source (index = window)."""

    name: str
    builder: HARBuilder
    sources: list[Any]  # one tfds ArrayRecordDataSource per split, in `split_names` order
    split_names: tuple[str, ...]
    official_split: tuple[str, ...] | None  # e.g. ("train", "test") for UCI-HAR, else None
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    channel_index: np.ndarray  # columns of the stored signal that are served
    labels: np.ndarray  # (N,) int64, index into class_names
    common_labels: np.ndarray  # (N,) int64, index into COMMON_LABELS, -1 = none
    subjects: np.ndarray  # (N,) int64, index into subject_names
    subject_names: tuple[str, ...]
    recordings: np.ndarray  # (N,) int64
    splits: np.ndarray  # (N,) int64, index into split_names
    report: dict[str, Any]
    # All decoded windows (N, T, stored channels) when they fit the memory budget, else None.
    signals: np.ndarray | None = None

    @property
    def window_length(self) -> int:
        return self.builder.builder_config.window_length

    def __len__(self) -> int:
        return len(self.labels)

    def _part_offsets(self) -> np.ndarray:
        return np.cumsum([0] + [len(s) for s in self.sources])

    def __getitem__(self, index: int) -> dict[str, Any]:
        split, local = self._locate(np.asarray([index]))
        example = dict(self.sources[int(split[0])][int(local[0])])
        example["signal"] = example["signal"][:, self.channel_index]
        return example

    def read_signals(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(indices), window_length, channels) float32, read in batches per split."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.signals is not None:
            if len(indices) and (indices.min() < 0 or indices.max() >= len(self.signals)):
                raise IndexError(f"{self.name}: index out of range [0, {len(self.signals)})")
            return self.signals[indices][..., self.channel_index]
        out = np.empty((len(indices), self.window_length, self.num_channels), np.float32)
        split, local = self._locate(indices)
        for s in np.unique(split):
            where = np.flatnonzero(split == s)
            records = self.sources[int(s)].__getitems__(local[where].tolist())
            out[where] = np.stack([r["signal"] for r in records])[..., self.channel_index]
        return out


def load_dataset(
    name_or_spec: str,
    *,
    sample_rate: float,
    window_length: int,
    window_stride: int,
    max_gap_s: float,
    channels: str,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    in_memory: bool | None = None,
) -> HARDataset:
    """Prepares (first time only) and opens a dataset.

    The data parameters have no defaults: they come from `config.data` (configs/default.py),
    usually through `harjax.data.bundle.load_data(config)`.
    channels: "all" (whatever the dataset has), "acc" (accelerometer only, e.g. to pool with
    WISDM), or "acc_gyro" (require all six channels; an error for accelerometer-only data).
    in_memory: decode every window once into RAM (None = when it fits MEMORY_BUDGET_BYTES).
    Decoding a tfds record costs ~0.25 ms of Python per window on a small CPU, too slow to
    feed an accelerator 10x over; larger datasets stream from the data source instead.
    """
    if channels not in CHANNEL_CHOICES:
        raise DataError(f"channels={channels!r}; expected one of {CHANNEL_CHOICES}")
    config = HARConfig(
        sample_rate=sample_rate,
        window_length=window_length,
        window_stride=window_stride,
        max_gap_s=max_gap_s,
    )
    builder = get_builder(name_or_spec, data_dir=data_dir, config=config, manual_dir=manual_dir)
    stored = tuple(builder.CHANNELS)
    served = {"all": stored, "acc": ACC_CHANNELS, "acc_gyro": CANONICAL_CHANNELS}[channels]
    channel_index = channel_columns(
        stored,
        served,
        source=f"{name_or_spec} (channels={channels!r}; accelerometer-only data: 'acc' or 'all')",
    )
    # Content-addressed and published once: safe beside other processes (builder.prepare).
    builder.prepare()
    metadata = builder.info.metadata or {}
    split_names = tuple(builder.info.splits.keys())
    official = metadata.get("official_split")
    sources_by_name = builder.as_data_source()
    sources = [sources_by_name[name] for name in split_names]
    num_windows = sum(len(source) for source in sources)
    nbytes = num_windows * config.window_length * len(stored) * 4
    if in_memory is None:
        in_memory = nbytes <= MEMORY_BUDGET_BYTES
    if in_memory:
        arrays = _read_everything(sources)
    else:
        arrays = _index_arrays(builder, sources)
    return HARDataset(
        name=name_or_spec,
        builder=builder,
        sources=sources,
        split_names=split_names,
        official_split=tuple(official) if official else None,
        class_names=tuple(builder.info.features["label"].names),
        channel_names=tuple(served),
        channel_index=channel_index,
        subject_names=tuple(metadata.get("subject_names", ())),
        report=dict(metadata.get("report", {})),
        **arrays,
    )


def _index_arrays(builder: HARBuilder, sources: list[Any]) -> dict[str, np.ndarray]:
    """labels/common_labels/subjects/recordings/splits of every window, cached in an .npz."""
    path = os.path.join(builder.data_dir, _INDEX_FILE)
    sizes = np.asarray([len(s) for s in sources])
    if os.path.exists(path):
        with np.load(path) as cached:
            if np.array_equal(cached["sizes"], sizes):
                return {k: cached[k] for k in cached.files if k != "sizes"}
    result = _read_windows(sources, signals=False, desc="reading window index")
    tmp = None
    try:  # a temporary file of this process's own: readers beside it see all or nothing
        fd, tmp = tempfile.mkstemp(dir=builder.data_dir, prefix=f".{_INDEX_FILE}.")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, sizes=sizes, **result)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as error:  # a read-only data_dir only costs the re-read next time
        log.warning("could not cache the window index at %s: %s", path, error)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return result


def _read_everything(sources: list[Any]) -> dict[str, np.ndarray]:
    """One sequential pass that decodes every window: the index arrays plus `signals`."""
    return _read_windows(sources, signals=True, desc="decoding windows")


def _read_windows(sources: list[Any], *, signals: bool, desc: str) -> dict[str, np.ndarray]:
    """labels/common_labels/subjects/recordings/splits (and `signals`) of every window, read
    sequentially in chunks; `splits` is the index of the source a window came from."""
    keys = ("label", "common_label", "subject", "recording")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (*keys, "split")}
    stacked: list[np.ndarray] = []
    total = sum(len(s) for s in sources)
    with tqdm(total=total, desc=desc, disable=total < 20000) as bar:
        for s, source in enumerate(sources):
            for start in range(0, len(source), _READ_CHUNK):
                records = source.__getitems__(range(start, min(start + _READ_CHUNK, len(source))))
                for key in keys:
                    columns[key].append(np.asarray([r[key] for r in records], np.int64))
                if signals:
                    stacked.append(np.stack([r["signal"] for r in records]))
                columns["split"].append(np.full(len(records), s, np.int64))
                bar.update(len(records))
    arrays = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in columns.items()}
    result = {
        "labels": arrays["label"],
        "common_labels": arrays["common_label"],
        "subjects": arrays["subject"],
        "recordings": arrays["recording"],
        "splits": arrays["split"],
    }
    if signals:
        result["signals"] = np.concatenate(stacked).astype(np.float32, copy=False)
    return result


def targets(ds: HARDataset, indices: np.ndarray, label_key: str) -> np.ndarray:
    """(len(indices),) int32 class indices of `label_key` ('label' or 'common_label')."""
    if label_key == "label":
        return ds.labels[indices].astype(np.int32)
    if label_key == "common_label":
        targets = ds.common_labels[indices]
        if (targets < 0).any():
            raise DataError(
                f"{ds.name}: {int((targets < 0).sum())} of the requested windows have no common "
                "label (-1); drop them first (the transfer command, launch/transfer.py "
                "--leave-one-dataset-out, does)"
            )
        return targets.astype(np.int32)
    raise DataError(f"label_key={label_key!r}; expected 'label' or 'common_label'")


def describe(ds: HARDataset) -> str:
    """One line per fact a results file should carry about the data."""
    return json.dumps(
        {
            "dataset": ds.name,
            "config": ds.builder.builder_config.name,
            "windows": len(ds),
            "classes": list(ds.class_names),
            "channels": list(ds.channel_names),
            "subjects": len(ds.subject_names),
        }
    )
