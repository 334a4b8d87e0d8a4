"""The classical baseline: per-channel statistical features + scikit-learn ExtraTrees.

This is what a HAR practitioner tries first, so every results table carries it: a method on a
frozen LLM that cannot beat hand-made window statistics and a forest has no case. Features are
computed fully vectorised in numpy (no per-window Python loop), in chunks to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.preprocessing import StandardScaler

PERCENTILES = (10, 25, 50, 75, 90)
# Activity content sits below ~10 Hz (gait ~1-3 Hz, running and tremor up to ~10 Hz). Bands
# above the Nyquist frequency of a low-rate dataset are kept (energy 0) so that the feature list
# depends only on the channel names, never on the data.
BAND_EDGES_HZ = (0.0, 1.0, 3.0, 5.0, 10.0, np.inf)
_STATS = (
    "mean",
    "std",
    "min",
    "max",
    "median",
    "p10",
    "p25",
    "p75",
    "p90",
    "range",
    "rms",
    "skewness",
    "kurtosis",
    "zero_crossing_rate",
    "mean_abs_diff",
    "dominant_freq_hz",
    "spectral_entropy",
)
_BANDS = tuple(
    f"band_{lo:g}_{'nyq' if np.isinf(hi) else f'{hi:g}'}hz_energy_fraction"
    for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])
)
PER_CHANNEL_FEATURES = _STATS + _BANDS
_CHUNK = 2048  # windows per chunk: ~2048 x 128 x 8 float64 = 17 MB per intermediate


def _default_channel_names(num_channels: int) -> tuple[str, ...]:
    # Lazy: the data package imports tensorflow_datasets, which callers passing names never need.
    from harjax.data.signal import CANONICAL_CHANNELS

    if num_channels not in (3, 6):
        raise ValueError(
            f"classical: signals have {num_channels} channels; without channel_names only the "
            "canonical 3 (acc) or 6 (acc + gyro) channels are understood — pass channel_names"
        )
    return CANONICAL_CHANNELS[:num_channels]


def _magnitude_groups(channel_names: Sequence[str]) -> list[tuple[str, list[int]]]:
    """(name, channel indices) of each sensor whose x, y and z axes are all present."""
    groups = []
    for sensor in ("acc", "gyro"):
        axes = [f"{sensor}_{axis}" for axis in "xyz"]
        if all(axis in channel_names for axis in axes):
            groups.append((f"{sensor}_mag", [list(channel_names).index(axis) for axis in axes]))
    return groups


def feature_names(channel_names: Sequence[str]) -> list[str]:
    """Names of the columns `extract_features` returns, `<channel>/<feature>`, in order.

    Channels first (in the given order), then the magnitude of each sensor with all three axes
    (`acc_mag`, `gyro_mag`): magnitudes are orientation-free, which matters for a watch or a
    phone worn at a different angle by each subject.
    """
    series = list(channel_names) + [name for name, _ in _magnitude_groups(channel_names)]
    return [f"{name}/{feature}" for name in series for feature in PER_CHANNEL_FEATURES]


def _series_features(x: np.ndarray, sample_rate: float) -> np.ndarray:
    """Features of (N, S, T) float64 series -> (N, S, len(PER_CHANNEL_FEATURES)).

    Time is the last (contiguous) axis: reductions along it run ~3x faster than along a middle
    axis of the (N, T, C) layout.
    """
    length = x.shape[-1]
    ordered = np.sort(x, axis=-1)
    # Linear-interpolated percentiles from the one sort (numpy's default "linear" method).
    position = np.asarray(PERCENTILES) / 100.0 * (length - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = position - low
    percentiles = ordered[..., low] * (1 - weight) + ordered[..., high] * weight  # (N, S, P)
    p10, p25, median, p75, p90 = np.moveaxis(percentiles, -1, 0)

    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    squared = centred * centred  # products, not `**`: float powers are ~20x slower in numpy
    variance = squared.mean(axis=-1)
    std = np.sqrt(variance)
    # Constant windows (a sensor at rest, clipped data) have no shape: 0, not NaN, so the forest
    # sees a number. The threshold is relative to the signal's scale to stay unit-free.
    flat = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    safe_variance = np.where(flat, 1.0, variance)
    skewness = np.where(flat, 0.0, (squared * centred).mean(axis=-1) / safe_variance**1.5)
    kurtosis = np.where(flat, 0.0, (squared * squared).mean(axis=-1) / safe_variance**2 - 3.0)

    positive = centred >= 0
    crossings = (positive[..., 1:] != positive[..., :-1]).mean(axis=-1)
    crossings = np.where(flat, 0.0, crossings)
    mean_abs_diff = np.abs(np.diff(x, axis=-1)).mean(axis=-1)

    spectrum = np.fft.rfft(centred, axis=-1)[..., 1:]  # DC dropped: it is 0 after centring
    power = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
    frequencies = np.fft.rfftfreq(length, d=1.0 / sample_rate)[1:]
    total = power.sum(axis=-1)
    silent = total <= 0
    safe_total = np.where(silent, 1.0, total)
    dominant = np.where(silent, 0.0, frequencies[np.argmax(power, axis=-1)])
    share = power / safe_total[..., None]
    entropy = -(share * np.log(np.where(share > 0, share, 1.0))).sum(axis=-1)
    entropy = entropy / np.log(max(len(frequencies), 2))  # normalised to [0, 1]
    # Bands are contiguous runs of bins: (lo, hi] in Hz -> a slice of the sorted frequencies.
    edges = np.searchsorted(frequencies, BAND_EDGES_HZ, side="right")
    bands = [power[..., a:b].sum(axis=-1) / safe_total for a, b in zip(edges[:-1], edges[1:])]

    columns = [
        mean,
        std,
        ordered[..., 0],
        ordered[..., -1],
        median,
        p10,
        p25,
        p75,
        p90,
        ordered[..., -1] - ordered[..., 0],
        np.sqrt(variance + mean * mean),  # RMS^2 = variance + mean^2
        skewness,
        kurtosis,
        crossings,
        mean_abs_diff,
        dominant,
        entropy,
        *bands,
    ]
    return np.stack(columns, axis=-1)


def extract_features(
    signals: Any,
    channel_names: Sequence[str] | None = None,
    sample_rate: float = 50.0,
) -> np.ndarray:
    """Per-channel window statistics of (N, T, C) signals -> (N, F) float32, F = len(feature_names).

    Args:
      signals: windows in the data contract's layout (N windows, T samples, C channels).
      channel_names: names of the C channels; None means the canonical order of the data
        contract (`acc_x, acc_y, acc_z[, gyro_x, gyro_y, gyro_z]`). Sensors with all of x, y, z
        also get magnitude features.
      sample_rate: Hz, for the dominant frequency and the band energies.
    """
    signals = np.asarray(signals)
    if signals.ndim != 3:
        raise ValueError(f"extract_features: expected signals (N, T, C), found {signals.shape}")
    num_windows, length, num_channels = signals.shape
    if length < 2:
        raise ValueError(f"extract_features: expected windows of >= 2 samples, found T={length}")
    if sample_rate <= 0:
        raise ValueError(f"extract_features: expected sample_rate > 0 Hz, found {sample_rate}")
    if channel_names is None:
        channel_names = _default_channel_names(num_channels)
    channel_names = list(channel_names)
    if len(channel_names) != num_channels or len(set(channel_names)) != num_channels:
        raise ValueError(
            f"extract_features: expected {num_channels} distinct channel names for signals "
            f"{signals.shape}, found {channel_names}"
        )
    groups = _magnitude_groups(channel_names)
    num_series = num_channels + len(groups)
    out = np.empty((num_windows, num_series * len(PER_CHANNEL_FEATURES)), np.float32)
    for start in range(0, num_windows, _CHUNK):
        chunk = signals[start : start + _CHUNK].astype(np.float64).transpose(0, 2, 1)
        if not np.isfinite(chunk).all():
            window = start + int(np.flatnonzero(~np.isfinite(chunk).all(axis=(1, 2)))[0])
            raise ValueError(f"extract_features: non-finite sample in window {window}")
        magnitudes = [np.sqrt((chunk[:, index] ** 2).sum(axis=1)) for _, index in groups]
        series = np.concatenate([chunk, np.stack(magnitudes, 1)], 1) if groups else chunk
        series = np.ascontiguousarray(series)  # (n, S, T): time contiguous
        features = _series_features(series, sample_rate)  # (n, S, K), channel-major like names
        out[start : start + len(chunk)] = features.reshape(len(chunk), -1)
    return out


class ClassicalBaseline:
    """Standardised window features -> `ExtraTreesClassifier`; deterministic for a given seed.

    `num_parameters()` is the total number of tree nodes. The sweep reports it in the
    `trainable_params` column for this variant: each node holds a learned split (feature,
    threshold) or a learned leaf distribution — the closest analogue of a trained weight, and it
    grows with the training set, unlike a network's fixed parameter count.
    """

    compute_dtype = {"name": "float64", "reason": "classical baseline (numpy)"}  # the record's

    def __init__(
        self,
        num_trees: int = 300,
        seed: int = 0,
        *,
        channel_names: Sequence[str] | None = None,
        sample_rate: float = 50.0,
        n_jobs: int | None = -1,
    ):
        if num_trees < 1:
            raise ValueError(f"ClassicalBaseline: expected num_trees >= 1, found {num_trees}")
        self.num_trees = num_trees
        self.seed = seed
        self.channel_names = None if channel_names is None else list(channel_names)
        self.sample_rate = sample_rate
        self.n_jobs = n_jobs
        self._scaler: StandardScaler | None = None
        self._forest: ExtraTreesClassifier | None = None

    def _features(self, signals: Any) -> np.ndarray:
        return extract_features(signals, self.channel_names, self.sample_rate)

    def fit(self, signals: Any, labels: Any) -> ClassicalBaseline:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(signals):
            raise ValueError(
                f"ClassicalBaseline.fit: expected labels (N,) for {len(signals)} windows, "
                f"found shape {labels.shape}"
            )
        features = self._features(signals)
        self._scaler = StandardScaler().fit(features)
        # n_jobs changes only the speed: sklearn draws every tree's seed from random_state first.
        self._forest = ExtraTreesClassifier(
            n_estimators=self.num_trees, random_state=self.seed, n_jobs=self.n_jobs
        ).fit(self._scaler.transform(features), labels)
        return self

    def _check_fitted(self, where: str) -> ExtraTreesClassifier:
        if self._forest is None or self._scaler is None:
            raise RuntimeError(f"ClassicalBaseline.{where}: call fit(signals, labels) first")
        return self._forest

    def predict_proba(self, signals: Any) -> np.ndarray:
        """(N, num classes seen in fit) probabilities, columns in `classes_` order."""
        forest = self._check_fitted("predict_proba")
        return forest.predict_proba(self._scaler.transform(self._features(signals)))

    def predict(self, signals: Any) -> np.ndarray:
        """(N,) labels, in the same label space as `fit`'s labels."""
        forest = self._check_fitted("predict")
        return forest.predict(self._scaler.transform(self._features(signals)))

    @property
    def classes_(self) -> np.ndarray:
        return self._check_fitted("classes_").classes_

    def num_parameters(self) -> int:
        """Total tree nodes over the forest (split and leaf nodes)."""
        forest = self._check_fitted("num_parameters")
        return int(sum(tree.tree_.node_count for tree in forest.estimators_))
