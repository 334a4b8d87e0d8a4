"""Per-channel normalisation statistics, computed on the training windows only.

A well-known public HAR codebase computes mean/std over the whole dataset before splitting, so
the test subjects' signals shape the inputs the model is trained on: a small but real leak that
flatters cross-subject results. Here the statistics see the training indices and nothing else,
and are saved as JSON beside the results so evaluation reuses exactly the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from harjax.data.errors import DataError
from harjax.data.signal import check_channels

MIN_STD = 1e-6  # a constant channel (e.g. a disconnected gyro) is centred, not blown up


@dataclasses.dataclass(frozen=True)
class Stats:
    """mean and std per channel (C,), with the channel names they belong to."""

    mean: np.ndarray
    std: np.ndarray
    channels: tuple[str, ...]
    num_windows: int = 0

    def apply(self, signal: np.ndarray) -> np.ndarray:
        """(..., C) -> normalised float32; the signal must carry the statistics' channels."""
        signal = check_channels(signal, self.channels, source="normalisation statistics")
        return ((signal - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "channels": list(self.channels),
            "num_windows": self.num_windows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        return cls(
            mean=np.asarray(data["mean"], np.float32),
            std=np.asarray(data["std"], np.float32),
            channels=tuple(data["channels"]),
            num_windows=int(data.get("num_windows", 0)),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Stats:
        return cls.from_dict(json.loads(Path(path).read_text()))


def compute_stats(dataset, train_indices: np.ndarray, *, chunk: int = 1024) -> Stats:
    """Mean/std per channel over the windows at `train_indices` (a HARDataset or an array).

    Overlapping windows count shared samples more than once; with a fixed stride that weights
    recordings by length exactly as training does, so it is the right average for the model.
    """
    train_indices = np.asarray(train_indices, dtype=np.int64)
    if len(train_indices) == 0:
        raise DataError("compute_stats: no training indices")
    total = total_sq = None
    count = 0
    for start in range(0, len(train_indices), chunk):
        batch = _signals(dataset, train_indices[start : start + chunk]).astype(np.float64)
        flat = batch.reshape(-1, batch.shape[-1])
        total = flat.sum(0) if total is None else total + flat.sum(0)
        total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
        count += len(flat)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    channels = tuple(getattr(dataset, "channel_names", ()))
    return Stats(
        mean=mean.astype(np.float32),
        std=np.maximum(std, MIN_STD).astype(np.float32),
        channels=channels or tuple(f"#{i}" for i in range(len(mean))),
        num_windows=len(train_indices),
    )


def _signals(dataset, indices: np.ndarray) -> np.ndarray:
    if isinstance(dataset, np.ndarray):
        return dataset[indices]
    return dataset.read_signals(indices)
