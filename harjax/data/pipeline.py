"""From a dataset name to device batches: prepare once, random access, grain batching.

`load_dataset` prepares the tfds builder if needed and opens every split with
`as_data_source()` (array_record, no TensorFlow) as one random-access dataset whose small
per-window arrays (labels, subjects, ...) are read once. `train_batches` streams shuffled,
sharded, resumable batches through grain; `eval_batches` yields fixed-shape padded batches.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np
from tqdm import tqdm

from harjax.data.builder import HARBuilder, HARConfig
from harjax.data.errors import DataError
from harjax.data.normalization import Stats
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
    if not builder.is_prepared():
        log.info("preparing %s into %s", name_or_spec, builder.data_dir)
        builder.download_and_prepare()
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
    try:
        tmp = path + ".tmp.npz"
        np.savez(tmp, sizes=sizes, **result)
        os.replace(tmp, path)
    except OSError as error:  # a read-only data_dir only costs the re-read next time
        log.warning("could not cache the window index at %s: %s", path, error)
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


def _targets(ds: HARDataset, indices: np.ndarray, label_key: str) -> np.ndarray:
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


def _shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
    index = jax.process_index() if shard_index is None else shard_index
    count = jax.process_count() if shard_count is None else shard_count
    if not 0 <= index < count:
        raise DataError(f"shard_index={index} outside [0, shard_count={count})")
    return index, count


class _ShuffledStream:
    """Maps a GLOBAL stream position to a dataset index: epoch e is a permutation seeded by
    (seed, e), and epochs follow each other without a gap.

    Global batch b is stream[b * B : (b + 1) * B]; process i of P reads its slice
    [i * B/P, (i + 1) * B/P) of it. The global batch is therefore the same rows in the same
    order whatever the number of processes, so multi-host training reproduces a single-process
    run exactly (dropout masks included). Index sets smaller than the global batch are tiled
    (each window repeated) until one epoch fills at least one batch.
    """

    def __init__(self, indices, *, seed: int, min_size: int):
        pool = np.sort(np.asarray(indices, dtype=np.int64))
        if len(pool) == 0:
            raise DataError("train_batches: no indices")
        self.pool = np.tile(pool, math.ceil(min_size / len(pool)))
        self.seed = seed
        self.epoch_size = len(self.pool)

    @functools.lru_cache(maxsize=4)  # noqa: B019  (a handful of epochs per iterator lifetime)
    def epoch(self, epoch: int) -> np.ndarray:
        return self.pool[np.random.default_rng([self.seed, epoch]).permutation(len(self.pool))]

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        epochs, within = np.divmod(positions, self.epoch_size)
        out = np.empty(len(positions), np.int64)
        for e in np.unique(epochs):
            out[epochs == e] = self.epoch(int(e))[within[epochs == e]]
        return out


class BatchIterator:
    """grain iterator of numpy batches, placed on devices when a sharding is given.

    `get_state()` / `set_state()` delegate to grain, so a checkpoint can store the position.
    """

    def __init__(self, iterator: grain.DatasetIterator, sharding=None):
        self._iterator, self._sharding = iterator, sharding

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> dict[str, Any]:
        batch = next(self._iterator)
        if self._sharding is None:
            return batch
        return {
            k: jax.make_array_from_process_local_data(self._sharding, v) for k, v in batch.items()
        }

    def get_state(self) -> dict[str, Any]:
        return self._iterator.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self._iterator.set_state(state)


def _read_batch(ds, indices, stats, label_key) -> dict[str, np.ndarray]:
    signal = ds.read_signals(indices)
    if stats is not None:
        signal = stats.apply(signal)
    return {"signal": signal, "label": _targets(ds, indices, label_key)}


def train_batches(
    ds: HARDataset,
    indices: Sequence[int] | np.ndarray,
    *,
    batch_size: int,
    seed: int,
    stats: Stats | None,
    label_key: str = "label",
    sharding=None,
    num_epochs: int | None = None,
    drop_remainder: bool = True,
    shard_index: int | None = None,
    shard_count: int | None = None,
    num_threads: int = 4,
) -> BatchIterator:
    """Shuffled (reseeded each epoch), sharded, resumable batches of `{"signal", "label"}`.

    `batch_size` is GLOBAL; each process (shard_index/shard_count default to jax's process
    index/count) reads only its `batch_size // shard_count` windows of every batch. With
    `num_epochs=None` the stream is endless. Index sets smaller than a batch (k-shot) are
    repeated to fill it, see `_ShuffledStream`.
    """
    index, count = _shard(shard_index, shard_count)
    if batch_size % count:
        raise DataError(f"batch_size={batch_size} is not divisible by {count} processes")
    local = batch_size // count
    _targets(ds, np.asarray(indices, dtype=np.int64), label_key)  # fail now, not in a thread
    order = _ShuffledStream(indices, seed=seed, min_size=batch_size)
    if num_epochs is None:
        total, num_batches = None, sys.maxsize // (2 * batch_size)
    else:  # a last partial global batch (drop_remainder=False) is single-process only
        total = order.epoch_size * num_epochs
        num_batches = total // batch_size if drop_remainder else -(-total // batch_size)

    def read(batch: int) -> dict[str, np.ndarray]:
        start = batch * batch_size + index * local
        stop = start + local if total is None else min(start + local, total)
        return _read_batch(ds, order(np.arange(start, stop)), stats, label_key)

    dataset = grain.MapDataset.range(num_batches).map(read)
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
    return BatchIterator(iter(dataset.to_iter_dataset(options)), sharding)


def eval_batches(
    ds: HARDataset,
    indices: Sequence[int] | np.ndarray,
    *,
    batch_size: int,
    stats: Stats | None,
    label_key: str = "label",
    sharding=None,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every window once, in order, in fixed-shape batches with a `mask` (0 = padding).

    The last batch is padded (with copies of the first window, masked out) so the eval step
    compiles once; each process yields its slice of every global batch.
    """
    index, count = _shard(shard_index, shard_count)
    if batch_size % count:
        raise DataError(f"batch_size={batch_size} is not divisible by {count} processes")
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return
    _targets(ds, indices, label_key)
    local = batch_size // count
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size][index * local : (index + 1) * local]
        mask = np.zeros(local, np.float32)
        mask[: len(chunk)] = 1.0
        padded = np.concatenate([chunk, np.full(local - len(chunk), indices[0], np.int64)])
        batch = {**_read_batch(ds, padded, stats, label_key), "mask": mask}
        if sharding is not None:
            batch = {
                k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()
            }
        yield batch


def load_arrays(
    ds: HARDataset,
    indices: Sequence[int] | np.ndarray,
    stats: Stats | None = None,
    label_key: str = "label",
) -> tuple[np.ndarray, np.ndarray]:
    """(signals (N, T, C) float32, labels (N,) int32) in memory: small sets, classical baselines."""
    indices = np.asarray(indices, dtype=np.int64)
    batch = _read_batch(ds, indices, stats, label_key)
    return batch["signal"], batch["label"]


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
