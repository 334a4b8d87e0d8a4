"""Windows of an opened dataset (`harjax.data.source`) as batches: grain training streams,
padded evaluation batches, in-memory arrays for small sets.

`train_batches` streams shuffled, sharded, resumable batches through grain, augmented when
asked (`harjax.data.augment`: training batches only, on the raw windows before normalisation);
`eval_batches` yields fixed-shape padded batches; `load_arrays` reads a small set into memory
at once. Neither of the last two ever augments.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np

from harjax.data.augment import AugmentConfig, augment_stream, check_channels
from harjax.data.errors import DataError
from harjax.data.normalization import Stats
from harjax.data.source import HARDataset, targets


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


def _read_batch(ds, indices, stats, label_key, augment=None) -> dict[str, np.ndarray]:
    """`augment`: None, or (AugmentConfig, seed, stream positions of `indices`)."""
    signal = ds.read_signals(indices)
    if augment is not None:
        config, seed, positions = augment
        channel_std = None if stats is None else stats.std
        signal = augment_stream(
            signal, positions, ds.channel_names, config, seed=seed, channel_std=channel_std
        )
    if stats is not None:
        signal = stats.apply(signal)
    return {"signal": signal, "label": targets(ds, indices, label_key)}


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
    augment: AugmentConfig | None = None,
) -> BatchIterator:
    """Shuffled (reseeded each epoch), sharded, resumable batches of `{"signal", "label"}`.

    `batch_size` is GLOBAL; each process (shard_index/shard_count default to jax's process
    index/count) reads only its `batch_size // shard_count` windows of every batch. With
    `num_epochs=None` the stream is endless. Index sets smaller than a batch (k-shot) are
    repeated to fill it, see `_ShuffledStream`. `augment` (enabled transforms) augments each
    window with draws seeded by (`seed`, its stream position): reproducible on resume and the
    same for every run with this seed and these windows.
    """
    if augment is not None and not augment.enabled:
        augment = None
    if augment is not None:
        check_channels(augment, ds.channel_names, source=ds.name)
    index, count = _shard(shard_index, shard_count)
    if batch_size % count:
        raise DataError(f"batch_size={batch_size} is not divisible by {count} processes")
    local = batch_size // count
    targets(ds, np.asarray(indices, dtype=np.int64), label_key)  # fail now, not in a thread
    order = _ShuffledStream(indices, seed=seed, min_size=batch_size)
    if num_epochs is None:
        total, num_batches = None, sys.maxsize // (2 * batch_size)
    else:  # a last partial global batch (drop_remainder=False) is single-process only
        total = order.epoch_size * num_epochs
        num_batches = total // batch_size if drop_remainder else -(-total // batch_size)

    def read(batch: int) -> dict[str, np.ndarray]:
        start = batch * batch_size + index * local
        stop = start + local if total is None else min(start + local, total)
        positions = np.arange(start, stop)
        draws = None if augment is None else (augment, seed, positions)
        return _read_batch(ds, order(positions), stats, label_key, draws)

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
    targets(ds, indices, label_key)
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
