"""Signal processing on numpy arrays: timestamps, resampling, gap filling, windowing, channels.

Everything here is a pure function of arrays (no files, no tfds), shared by the builder base,
the dataset builders and `harjax.predict`, so training and inference treat a signal the same.
Signals are (samples, channels) in the canonical channel order and units (m/s^2, rad/s).
"""

from __future__ import annotations

import dataclasses
import fractions
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.signal

from harjax.data.errors import DataError

if TYPE_CHECKING:
    from harjax.data.builder import Report

CANONICAL_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
ACC_CHANNELS = CANONICAL_CHANNELS[:3]
STANDARD_GRAVITY = 9.80665  # g -> m/s^2

# Wearable IMUs sample between a few Hz and a few kHz. A rate inferred from timestamps outside
# this range almost always means the timestamps are not in seconds (milliseconds at 50 Hz read as
# 0.05 Hz would be "upsampled" 1000x into thousands of invented windows).
PLAUSIBLE_RATE_HZ = (1.0, 2000.0)
# Against a known rate, a median timestamp step more than this factor away from the sampling
# period is a unit error, not jitter: real clocks jitter by a fraction of a period, while a unit
# mix-up is off by 1000x. Checked only with enough steps that the median is not one long gap.
MAX_STEP_MISMATCH = 10.0
MIN_STEPS_FOR_MISMATCH = 10


@dataclasses.dataclass
class GapReport:
    """What `fill_gaps` did to one signal."""

    samples_interpolated: int = 0
    gaps_interpolated: int = 0
    gaps_split: int = 0  # gaps too long to interpolate: the signal was cut there
    samples_dropped: int = 0  # NaN samples in long gaps or at the edges (nothing to interpolate)
    # Where each returned piece starts in the input (samples): predict's window start times.
    segment_starts: list[int] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------------- channels


def check_channels(signal: np.ndarray, channels: Sequence[str], *, source: str) -> np.ndarray:
    """`signal` as a float array of shape (..., len(channels)), else a DataError naming `source`.

    The one check that a signal carries the channels the caller expects (a builder's CHANNELS,
    normalisation statistics, a trained model's inputs).
    """
    signal = np.asarray(signal)
    if signal.ndim < 2 or signal.shape[-1] != len(channels):
        raise DataError(
            f"{source}: expected a (samples, {len(channels)}) signal with channels "
            f"{tuple(channels)}, found shape {signal.shape}"
        )
    return signal


def channel_columns(available: Sequence[str], wanted: Sequence[str], *, source: str) -> np.ndarray:
    """Column indices of `wanted` among `available` channel names; DataError listing the missing."""
    missing = [name for name in wanted if name not in available]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; expected channels {tuple(wanted)}, "
            f"found {tuple(available)}"
        )
    return np.asarray([list(available).index(name) for name in wanted], dtype=np.int64)


def _channel_name(index: int, num_channels: int) -> str:
    if num_channels in (3, 6):
        return CANONICAL_CHANNELS[int(index)]
    return f"#{int(index)}"


def _as_2d(signal: np.ndarray, source: str) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 2:
        raise DataError(
            f"{source}: expected a (samples, channels) signal, found shape {signal.shape}"
        )
    return signal


# -------------------------------------------------------------------------------- timestamps


def _check_plausible_rate(rate: float, source: str) -> None:
    low, high = PLAUSIBLE_RATE_HZ
    if not low <= rate <= high:
        raise DataError(
            f"{source}: timestamps give a sampling rate of {rate:.6g} Hz, outside the plausible "
            f"{low:g}-{high:g} Hz; timestamps must be in seconds"
        )


def nominal_rate(timestamps: np.ndarray, *, source: str) -> float:
    """Sampling rate (Hz) from the median timestamp difference (robust to jitter and gaps).

    A rate outside PLAUSIBLE_RATE_HZ is a DataError: the timestamps are not in seconds.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) < 2:
        raise DataError(f"{source}: need >= 2 timestamps to infer a rate, found {len(timestamps)}")
    step = float(np.median(np.diff(timestamps)))
    if not step > 0:
        raise DataError(f"{source}: median timestamp step is {step} s; expected > 0")
    rate = 1.0 / step
    _check_plausible_rate(rate, source)
    return rate


def check_timestamps(
    timestamps: np.ndarray, *, source: str, sample_rate: float | None = None
) -> np.ndarray:
    """Timestamps in seconds as a float array: 1-D, finite, strictly increasing.

    With `sample_rate`, the median step must also be within MAX_STEP_MISMATCH of its period
    (from MIN_STEPS_FOR_MISMATCH steps on), which catches milliseconds read as seconds.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.ndim != 1:
        raise DataError(f"{source}: timestamps must be 1-D, found shape {timestamps.shape}")
    if not np.isfinite(timestamps).all():
        bad = int(np.flatnonzero(~np.isfinite(timestamps))[0])
        raise DataError(f"{source}: timestamp at row {bad} is {timestamps[bad]}")
    steps = np.diff(timestamps)
    if (steps <= 0).any():
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise DataError(
            f"{source}: timestamps must increase strictly; row {bad} has "
            f"{timestamps[bad]!r} after {timestamps[bad - 1]!r}"
        )
    if sample_rate is not None and len(steps) >= MIN_STEPS_FOR_MISMATCH:
        ratio = float(np.median(steps)) * sample_rate
        if not 1 / MAX_STEP_MISMATCH <= ratio <= MAX_STEP_MISMATCH:
            raise DataError(
                f"{source}: median timestamp step {float(np.median(steps)):.6g} is {ratio:.3g} "
                f"sampling periods at {sample_rate:g} Hz (expected within "
                f"{MAX_STEP_MISMATCH:g}x of one); timestamps must be in seconds"
            )
    return timestamps


def split_at_gaps(timestamps: np.ndarray, max_gap_s: float) -> list[tuple[int, int]]:
    """Index ranges [start, stop) of runs whose consecutive timestamps are <= max_gap_s apart."""
    cuts = np.flatnonzero(np.diff(timestamps) > max_gap_s) + 1
    bounds = [0, *cuts.tolist(), len(timestamps)]
    return [(start, stop) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]


# -------------------------------------------------------------------------------- resampling


def resample(signal: np.ndarray, from_hz: float, to_hz: float) -> np.ndarray:
    """Anti-aliased polyphase resampling along axis 0.

    The rate ratio is approximated by a fraction with denominator <= 1000 (relative rate error
    below 1e-6 for any real rate). `padtype="line"` extends the signal linearly at the edges so
    that gravity's constant offset does not ring at the start and end of each recording.
    """
    if from_hz <= 0 or to_hz <= 0:
        raise DataError(f"resample: rates must be positive, found {from_hz} -> {to_hz} Hz")
    signal = np.asarray(signal, dtype=np.float64)
    if math.isclose(from_hz, to_hz, rel_tol=1e-9):
        return signal.copy()
    ratio = fractions.Fraction(to_hz / from_hz).limit_denominator(1000)
    if len(signal) == 0:
        return signal.copy()
    return scipy.signal.resample_poly(
        signal, ratio.numerator, ratio.denominator, axis=0, padtype="line"
    )


def resample_irregular(
    timestamps: np.ndarray,
    signal: np.ndarray,
    to_hz: float,
    max_gap_s: float,
    *,
    source: str,
    report: Report | None = None,
) -> list[np.ndarray]:
    """Linearly interpolates irregular samples onto a uniform `to_hz` grid.

    A gap between consecutive timestamps longer than `max_gap_s` splits the output (each piece
    is its own segment; the count goes to `report.segments_split`). Linear interpolation does not
    anti-alias: pass the stream's own nominal rate (`nominal_rate`) as `to_hz` and let the
    builder base resample to the configured rate with `resample`.
    """
    timestamps = check_timestamps(timestamps, source=source, sample_rate=to_hz)
    signal = _as_2d(signal, source)
    if len(signal) != len(timestamps):
        raise DataError(
            f"{source}: {len(timestamps)} timestamps but {len(signal)} signal rows; expected equal"
        )
    pieces = split_at_gaps(timestamps, max_gap_s)
    if report is not None:
        report.segments_split += max(len(pieces) - 1, 0)
    out = []
    for start, stop in pieces:
        t = timestamps[start:stop]
        count = int(math.floor((t[-1] - t[0]) * to_hz + 1e-9)) + 1
        grid = t[0] + np.arange(count) / to_hz
        out.append(
            np.stack([np.interp(grid, t, signal[start:stop, c]) for c in range(signal.shape[1])], 1)
        )
    return out


def align_streams(
    t_acc: np.ndarray,
    acc: np.ndarray,
    t_gyro: np.ndarray,
    gyro: np.ndarray,
    *,
    to_hz: float,
    max_gap_s: float,
    source: str,
    report: Report | None = None,
) -> list[np.ndarray]:
    """Aligns separate accelerometer and gyroscope streams into (n, 6) on one uniform timeline.

    Only the time both streams cover is kept; a gap longer than `max_gap_s` in EITHER stream
    splits the output. Each stream is linearly interpolated onto the common grid at `to_hz`
    (use the streams' nominal rate; the builder base resamples anti-aliased afterwards).
    """
    t_acc = check_timestamps(t_acc, source=f"{source} (accelerometer)", sample_rate=to_hz)
    t_gyro = check_timestamps(t_gyro, source=f"{source} (gyroscope)", sample_rate=to_hz)
    acc = check_channels(_as_2d(acc, source), ACC_CHANNELS, source=f"{source} (accelerometer)")
    gyro = check_channels(
        _as_2d(gyro, source), CANONICAL_CHANNELS[3:], source=f"{source} (gyroscope)"
    )
    if len(acc) != len(t_acc) or len(gyro) != len(t_gyro):
        raise DataError(
            f"{source}: expected acc ({len(t_acc)}, 3) and gyro ({len(t_gyro)}, 3), "
            f"found {acc.shape} and {gyro.shape}"
        )
    # Covered intervals of each stream (runs without long gaps), intersected pairwise.
    covered = []
    for a_start, a_stop in split_at_gaps(t_acc, max_gap_s):
        for g_start, g_stop in split_at_gaps(t_gyro, max_gap_s):
            begin = max(t_acc[a_start], t_gyro[g_start])
            end = min(t_acc[a_stop - 1], t_gyro[g_stop - 1])
            if end > begin:
                covered.append((begin, end))
    covered.sort()
    if report is not None:
        report.segments_split += max(len(covered) - 1, 0)
    out = []
    for begin, end in covered:
        count = int(math.floor((end - begin) * to_hz + 1e-9)) + 1
        grid = begin + np.arange(count) / to_hz
        columns = [np.interp(grid, t_acc, acc[:, c]) for c in range(3)]
        columns += [np.interp(grid, t_gyro, gyro[:, c]) for c in range(3)]
        out.append(np.stack(columns, 1))
    return out


# ------------------------------------------------------------------------------- gaps, windows


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True in a 1-D boolean mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def fill_gaps(
    signal: np.ndarray, *, max_gap_samples: int, source: str
) -> tuple[list[np.ndarray], GapReport]:
    """Linearly interpolates NaN runs of <= max_gap_samples rows; longer runs split the signal.

    A row counts as missing if any channel is NaN. Runs at the very start or end cannot be
    interpolated and are trimmed (counted as dropped). An all-NaN channel or any inf is a
    DataError: it means a broken file, not a gap.
    """
    signal = _as_2d(signal, source)
    width = signal.shape[1]
    if np.isinf(signal).any():
        row, col = np.argwhere(np.isinf(signal))[0]
        raise DataError(f"{source}: inf in channel {_channel_name(col, width)} at sample {row}")
    all_nan = np.isnan(signal).all(axis=0)
    if len(signal) and all_nan.any():
        names = [_channel_name(c, width) for c in np.flatnonzero(all_nan)]
        raise DataError(f"{source}: channel(s) {names} are all NaN ({len(signal)} samples)")
    report = GapReport()
    missing = np.isnan(signal).any(axis=1)
    cuts: list[tuple[int, int]] = []
    for start, stop in _runs(missing):
        if start == 0 or stop == len(signal) or stop - start > max_gap_samples:
            cuts.append((start, stop))
            report.samples_dropped += stop - start
            report.gaps_split += int(start > 0 and stop < len(signal))
        else:
            report.gaps_interpolated += 1
            report.samples_interpolated += stop - start
    bounds = [0]
    for start, stop in cuts:
        bounds += [start, stop]
    bounds.append(len(signal))
    segments = []
    for start, stop in zip(bounds[::2], bounds[1::2]):
        if stop <= start:
            continue
        report.segment_starts.append(start)
        segment = signal[start:stop].copy()
        positions = np.arange(stop - start)
        for c in range(segment.shape[1]):
            nan = np.isnan(segment[:, c])
            if nan.any():
                segment[nan, c] = np.interp(positions[nan], positions[~nan], segment[~nan, c])
        segments.append(segment)
    return segments, report


def num_windows(length: int, *, window_length: int, window_stride: int) -> int:
    """How many windows `windows` cuts from `length` samples."""
    return 0 if length < window_length else 1 + (length - window_length) // window_stride


def windows(signal: np.ndarray, *, window_length: int, window_stride: int) -> np.ndarray:
    """(num_windows, window_length, C) windows of ONE continuous segment (never crosses it).

    num_windows = 1 + (n - window_length) // window_stride, or 0 when n < window_length; the
    tail after the last full window is not used.
    """
    if window_length <= 0 or window_stride <= 0:
        raise DataError(f"window_length/stride must be > 0, found {window_length}/{window_stride}")
    signal = np.asarray(signal)
    if len(signal) < window_length:
        return np.zeros((0, window_length, signal.shape[1]), signal.dtype)
    view = np.lib.stride_tricks.sliding_window_view(signal, window_length, axis=0)
    return np.ascontiguousarray(view[::window_stride].transpose(0, 2, 1))


def split_on_label_change(labels: np.ndarray) -> list[tuple[int, int, Any]]:
    """Runs of constant label as (start, stop, label), stop exclusive, in order."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = [0, *change.tolist(), len(labels)]
    return [(s, e, labels[s].item()) for s, e in zip(bounds[:-1], bounds[1:])]
