"""The data core: recordings, resampling, gap filling, windowing, and the tfds builder base.

A dataset builder only turns its raw archive into `Recording`s (one continuous recording of one
activity, canonical channel order and units, native rate). Everything else — gap filling,
anti-aliased resampling to the configured rate, windowing that never crosses a recording or a
gap, label/subject indexing, counting what was dropped — happens here, once, in `HARBuilder`.

Files are written as `array_record` and read back with `as_data_source()`: no TensorFlow.
"""

from __future__ import annotations

import abc
import dataclasses
import fractions
import hashlib
import inspect
import json
import logging
import math
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal
import tensorflow_datasets as tfds
from etils import epath

from harjax.data import labels as labels_lib

log = logging.getLogger(__name__)

CANONICAL_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
ACC_CHANNELS = CANONICAL_CHANNELS[:3]
STANDARD_GRAVITY = 9.80665  # g -> m/s^2
DEG_TO_RAD = math.pi / 180

# Gaps (NaN runs, or missing timestamps) up to this long are linearly interpolated; longer gaps
# split the recording. A quarter of a second is well below one step cycle (~0.5 s), so
# interpolation cannot invent or erase a movement pattern, yet it bridges dropped packets.
DEFAULT_MAX_GAP_S = 0.25

# The one tfds split of a dataset without an official split ("all" is reserved by tfds).
NO_OFFICIAL_SPLIT = "full"


class DataError(ValueError):
    """Any bad input. The message names what was expected, what was found, and the file/line."""


@dataclasses.dataclass
class Recording:
    """One continuous recording of ONE activity at its native rate, canonical channels/units."""

    signal: np.ndarray  # (n, C) float, columns in canonical order (C = 3 or 6)
    sample_rate: float  # Hz of `signal`
    label: str  # the dataset's own activity name (must be in the builder's CLASS_NAMES)
    subject: str  # the dataset's subject id as a string ("1", "a", ...)
    recording_id: str  # stable id, unique within a dataset, e.g. "sub_3/wlk_7"
    source: str  # file (and line range) it came from, for error messages
    device: str = ""  # e.g. "nexus4_1" / "watch"
    position: str = ""  # e.g. "waist", "chest"
    split: str = ""  # official split name (only for datasets that have one, e.g. UCI-HAR)


@dataclasses.dataclass
class GapReport:
    """What `fill_gaps` did to one signal."""

    samples_interpolated: int = 0
    gaps_interpolated: int = 0
    gaps_split: int = 0  # gaps too long to interpolate: the signal was cut there
    samples_dropped: int = 0  # NaN samples in long gaps or at the edges (nothing to interpolate)


@dataclasses.dataclass
class Report:
    """Counts of everything a builder did, so that nothing is dropped without being reported."""

    recordings: int = 0
    segments: int = 0
    windows: int = 0
    windows_per_class: dict[str, int] = dataclasses.field(default_factory=dict)
    samples_interpolated: int = 0
    gaps_interpolated: int = 0
    segments_split: int = 0
    samples_dropped_in_gaps: int = 0
    recordings_too_short: list[str] = dataclasses.field(default_factory=list)
    recordings_excluded: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_dropped: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def drop_rows(self, reason: str, source: str, count: int = 1) -> None:
        """Counts raw rows a builder skipped (e.g. `null` labels), by reason and file."""
        per_file = self.rows_dropped.setdefault(reason, {})
        per_file[source] = per_file.get(source, 0) + int(count)

    def exclude(self, reason: str) -> None:
        """Counts a whole recording left out on purpose (e.g. not in the configured subset)."""
        self.recordings_excluded[reason] = self.recordings_excluded.get(reason, 0) + 1

    def add_gaps(self, gaps: GapReport) -> None:
        self.samples_interpolated += gaps.samples_interpolated
        self.gaps_interpolated += gaps.gaps_interpolated
        self.segments_split += gaps.gaps_split
        self.samples_dropped_in_gaps += gaps.samples_dropped

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        dropped = {reason: sum(files.values()) for reason, files in self.rows_dropped.items()}
        return (
            f"{self.recordings} recordings -> {self.segments} segments -> {self.windows} windows "
            f"{self.windows_per_class}; interpolated {self.samples_interpolated} samples in "
            f"{self.gaps_interpolated} gaps; {self.segments_split} long gaps split; "
            f"{len(self.recordings_too_short)} recordings too short; "
            f"excluded {self.recordings_excluded}; rows dropped {dropped}"
        )


# ---------------------------------------------------------------------------------------------
# Signal helpers
# ---------------------------------------------------------------------------------------------


def _as_2d(signal: np.ndarray, source: str) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 2:
        raise DataError(
            f"{source}: expected a (samples, channels) signal, found shape {signal.shape}"
        )
    return signal


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


def nominal_rate(timestamps: np.ndarray, *, source: str = "") -> float:
    """Sampling rate (Hz) from the median timestamp difference (robust to jitter and gaps)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) < 2:
        raise DataError(f"{source}: need >= 2 timestamps to infer a rate, found {len(timestamps)}")
    step = float(np.median(np.diff(timestamps)))
    if not step > 0:
        raise DataError(f"{source}: median timestamp step is {step} s; expected > 0")
    return 1.0 / step


def _check_timestamps(timestamps: np.ndarray, source: str) -> np.ndarray:
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
    return timestamps


def split_at_gaps(timestamps: np.ndarray, max_gap_s: float) -> list[tuple[int, int]]:
    """Index ranges [start, stop) of runs whose consecutive timestamps are <= max_gap_s apart."""
    cuts = np.flatnonzero(np.diff(timestamps) > max_gap_s) + 1
    bounds = [0, *cuts.tolist(), len(timestamps)]
    return [(start, stop) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]


def resample_irregular(
    timestamps: np.ndarray,
    signal: np.ndarray,
    to_hz: float,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    *,
    source: str = "",
    report: Report | None = None,
) -> list[np.ndarray]:
    """Linearly interpolates irregular samples onto a uniform `to_hz` grid.

    A gap between consecutive timestamps longer than `max_gap_s` splits the output (each piece
    is its own segment; the count goes to `report.segments_split`). Linear interpolation does not
    anti-alias: pass the stream's own nominal rate (`nominal_rate`) as `to_hz` and let the
    builder base resample to the configured rate with `resample`.
    """
    timestamps = _check_timestamps(timestamps, source)
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
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    source: str = "",
    report: Report | None = None,
) -> list[np.ndarray]:
    """Aligns separate accelerometer and gyroscope streams into (n, 6) on one uniform timeline.

    Only the time both streams cover is kept; a gap longer than `max_gap_s` in EITHER stream
    splits the output. Each stream is linearly interpolated onto the common grid at `to_hz`
    (use the streams' nominal rate; the builder base resamples anti-aliased afterwards).
    """
    t_acc = _check_timestamps(t_acc, f"{source} (accelerometer)")
    t_gyro = _check_timestamps(t_gyro, f"{source} (gyroscope)")
    acc, gyro = _as_2d(acc, source), _as_2d(gyro, source)
    if acc.shape != (len(t_acc), 3) or gyro.shape != (len(t_gyro), 3):
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
    if np.isinf(signal).any():
        row, col = np.argwhere(np.isinf(signal))[0]
        raise DataError(f"{source}: inf in channel {_channel_name(col, signal)} at sample {row}")
    all_nan = np.isnan(signal).all(axis=0)
    if len(signal) and all_nan.any():
        names = [_channel_name(c, signal) for c in np.flatnonzero(all_nan)]
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
        segment = signal[start:stop].copy()
        positions = np.arange(stop - start)
        for c in range(segment.shape[1]):
            nan = np.isnan(segment[:, c])
            if nan.any():
                segment[nan, c] = np.interp(positions[nan], positions[~nan], segment[~nan, c])
        segments.append(segment)
    return segments, report


def _channel_name(index: int, signal: np.ndarray) -> str:
    if signal.shape[1] in (3, 6):
        return CANONICAL_CHANNELS[int(index)]
    return f"#{int(index)}"


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


def natural_key(name: str) -> tuple:
    """Sort key that orders "2" before "10" (subject and recording ids)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_archive(url: str, sha256: str, dest: Path, *, timeout_s: float = 60.0) -> Path:
    """Downloads `url` to `dest` (atomically) and checks its sha256; reuses a verified file."""
    dest = Path(dest)
    if dest.exists() and sha256_of(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            shutil.copyfileobj(response, tmp)
    found = sha256_of(Path(tmp.name))
    if found != sha256:
        os.unlink(tmp.name)
        raise DataError(f"{url}: sha256 {found} does not match the expected {sha256}")
    os.replace(tmp.name, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# The tfds builder base
# ---------------------------------------------------------------------------------------------


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")


@dataclasses.dataclass(eq=False)
class HARConfig(tfds.core.BuilderConfig):
    """Rate, window and subset of a prepared dataset; the name (a data_dir folder) encodes them.

    `devices` / `positions` select a subset (empty = all); excluded recordings are counted.
    """

    name: str = ""
    sample_rate: float = 50.0
    window_length: int = 128
    window_stride: int = 64
    max_gap_s: float = DEFAULT_MAX_GAP_S
    devices: tuple[str, ...] = ()
    positions: tuple[str, ...] = ()

    def __post_init__(self):
        if self.sample_rate <= 0 or self.window_length <= 0 or self.window_stride <= 0:
            raise DataError(
                f"HARConfig: sample_rate/window_length/window_stride must be > 0, found "
                f"{self.sample_rate}/{self.window_length}/{self.window_stride}"
            )
        if self.max_gap_s < 0:
            raise DataError(f"HARConfig: max_gap_s must be >= 0, found {self.max_gap_s}")
        self.devices, self.positions = tuple(self.devices), tuple(self.positions)
        if not self.name:
            name = (
                f"r{self.sample_rate:g}_w{self.window_length}_s{self.window_stride}"
                f"_g{round(self.max_gap_s * 1000)}ms"
            ).replace(".", "p")
            if self.devices:
                name += "_dev-" + "-".join(_slug(d) for d in sorted(self.devices))
            if self.positions:
                name += "_pos-" + "-".join(_slug(p) for p in sorted(self.positions))
            self.name = name


class HARBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of every HAR builder: subclasses write `_recordings` (and set the class attributes).

    Class attributes a subclass sets:
      CLASS_NAMES: the dataset's own activity names (the `label` ClassLabel, in this order).
      CHANNELS: CANONICAL_CHANNELS or ACC_CHANNELS (accelerometer-only datasets).
      SPLITS: official splits (Recording.split selects one); (NO_OFFICIAL_SPLIT,) when none.
      ARCHIVE_NAME, URL, SHA256: the official archive; read from manual_dir/ARCHIVE_NAME if
        present, else downloaded and checked. MANUAL_DOWNLOAD_INSTRUCTIONS says where to get it.
      LABEL_MAP: own label -> common label (None = no equivalent); defaults to the map
        registered in labels.DATASET_LABEL_MAP under the builder's name.
    Every example is one window; see `_info` for the features.
    """

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS: list[HARConfig] = []  # configs are built from arguments, see HARConfig
    CLASS_NAMES: tuple[str, ...] = ()
    CHANNELS: tuple[str, ...] = CANONICAL_CHANNELS
    SPLITS: tuple[str, ...] = (NO_OFFICIAL_SPLIT,)
    ARCHIVE_NAME: str | None = None
    URL: str | None = None
    SHA256: str | None = None
    LABEL_MAP: Mapping[str, str | None] | None = None
    MANUAL_DOWNLOAD_INSTRUCTIONS = "See the builder's docstring."

    def __init__(
        self,
        *,
        config: HARConfig | None = None,
        data_dir: str | os.PathLike | None = None,
        manual_dir: str | os.PathLike | None = None,
        file_format: str = "array_record",
        **kwargs,
    ):
        self.manual_dir = Path(manual_dir) if manual_dir is not None else None
        self.report = Report()
        super().__init__(
            config=config if config is not None else HARConfig(),
            data_dir=None if data_dir is None else os.fspath(data_dir),
            file_format=file_format,
            **kwargs,
        )
        if self.CHANNELS not in (CANONICAL_CHANNELS, ACC_CHANNELS):
            raise DataError(f"{type(self).__name__}.CHANNELS={self.CHANNELS}: expected canonical")
        if not self.CLASS_NAMES:
            raise DataError(f"{type(self).__name__}.CLASS_NAMES is empty")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # tfds's own lookup imports `importlib_resources`, which tfds does not declare.
        return epath.Path(inspect.getfile(cls))

    # --- what a dataset builder writes ------------------------------------------------------

    @abc.abstractmethod
    def _recordings(self, archive: Path) -> Iterator[Recording]:
        """Yields every recording of the dataset from the archive (file or directory)."""

    def _archive(self, dl_manager) -> Path:
        """The raw data: manual_dir/ARCHIVE_NAME if it exists, else the checked download."""
        del dl_manager
        name = self.ARCHIVE_NAME
        if name is None:
            raise DataError(f"{type(self).__name__}: no ARCHIVE_NAME and no _archive override")
        if self.manual_dir is not None and (self.manual_dir / name).exists():
            return self.manual_dir / name
        where = self.manual_dir if self.manual_dir is not None else "<manual_dir>"
        if self.URL and self.SHA256:
            dest = Path(self.data_dir_root) / "downloads" / name
            try:
                return download_archive(self.URL, self.SHA256, dest)
            except OSError as error:
                raise DataError(
                    f"{self.name}: could not download {self.URL} ({error}); put {name!r} into "
                    f"{where}/ and pass manual_dir. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
                ) from error
        raise DataError(
            f"{self.name}: expected {where}/{name}; {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )

    # --- tfds plumbing ----------------------------------------------------------------------

    def label_map(self) -> Mapping[str, str | None]:
        mapping = self.LABEL_MAP
        if mapping is None:
            mapping = labels_lib.DATASET_LABEL_MAP.get(self.name)
        if mapping is None:
            raise DataError(
                f"{type(self).__name__}: no label map; set LABEL_MAP or register one under "
                f"{self.name!r} in harjax.data.labels"
            )
        missing = [name for name in self.CLASS_NAMES if name not in mapping]
        if missing:
            raise DataError(f"{self.name}: label map has no entry for {missing}")
        return mapping

    def _info(self) -> tfds.core.DatasetInfo:
        length, channels = self.builder_config.window_length, len(self.CHANNELS)
        features = tfds.features.FeaturesDict(
            {
                "signal": tfds.features.Tensor(shape=(length, channels), dtype=np.float32),
                "label": tfds.features.ClassLabel(names=list(self.CLASS_NAMES)),
                "common_label": np.int64,
                "subject": np.int64,
                "recording": np.int64,
                "device": tfds.features.Text(),
                "position": tfds.features.Text(),
            }
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.__doc__ or "").strip().split("\n")[0],
            features=features,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        segments = self._prepare(self._archive(dl_manager))
        return {split: self._generate_examples(segments, split) for split in self.SPLITS}

    def _prepare(self, archive: Path) -> list[tuple[Recording, list[np.ndarray]]]:
        """Gap-fills, resamples and checks every recording; fills `self.report` and metadata."""
        config: HARConfig = self.builder_config
        report = self.report = Report()
        mapping = self.label_map()
        prepared: list[tuple[Recording, list[np.ndarray]]] = []
        seen: dict[str, str] = {}
        for recording in self._recordings(archive):
            report.recordings += 1
            self._check(recording, seen)
            if config.devices and recording.device not in config.devices:
                report.exclude(f"device not in {config.devices}")
                continue
            if config.positions and recording.position not in config.positions:
                report.exclude(f"position not in {config.positions}")
                continue
            max_gap = int(round(config.max_gap_s * recording.sample_rate))
            pieces, gaps = fill_gaps(
                recording.signal, max_gap_samples=max_gap, source=recording.source
            )
            report.add_gaps(gaps)
            pieces = [
                resample(p, recording.sample_rate, config.sample_rate).astype(np.float32)
                for p in pieces
            ]
            counts = [
                _num_windows(len(p), config.window_length, config.window_stride) for p in pieces
            ]
            if sum(counts) == 0:
                report.recordings_too_short.append(recording.recording_id)
                continue
            report.segments += sum(c > 0 for c in counts)
            report.windows += sum(counts)
            report.windows_per_class[recording.label] = report.windows_per_class.get(
                recording.label, 0
            ) + sum(counts)
            prepared.append((recording, [p for p, c in zip(pieces, counts) if c > 0]))
        if not prepared:
            raise DataError(f"{self.name}: no windows from {archive} ({report.summary()})")
        empty = [name for name in self.CLASS_NAMES if name not in report.windows_per_class]
        if empty:
            raise DataError(
                f"{self.name}: classes {empty} have no windows in {archive} "
                f"(too short: {report.recordings_too_short[:10]}; {report.summary()})"
            )
        subjects = sorted({r.subject for r, _ in prepared}, key=natural_key)
        recording_ids = sorted({r.recording_id for r, _ in prepared}, key=natural_key)
        self._subject_index = {name: i for i, name in enumerate(subjects)}
        self._recording_index = {name: i for i, name in enumerate(recording_ids)}
        self._common = {name: labels_lib.common_label_index(mapping, name) for name in mapping}
        self.info.metadata.update(
            {
                "subject_names": subjects,
                "recording_ids": recording_ids,
                "channels": list(self.CHANNELS),
                "config": {
                    "sample_rate": config.sample_rate,
                    "window_length": config.window_length,
                    "window_stride": config.window_stride,
                    "max_gap_s": config.max_gap_s,
                    "devices": list(config.devices),
                    "positions": list(config.positions),
                },
                "official_split": (
                    None if self.SPLITS == (NO_OFFICIAL_SPLIT,) else list(self.SPLITS)
                ),
                "report": json.loads(json.dumps(report.to_dict())),
            }
        )
        log.info("%s/%s: %s", self.name, config.name, report.summary())
        return prepared

    def _check(self, recording: Recording, seen: dict[str, str]) -> None:
        where = recording.source
        if recording.label not in self.CLASS_NAMES:
            raise DataError(
                f"{where}: unknown activity {recording.label!r}; expected one of {self.CLASS_NAMES}"
            )
        signal = np.asarray(recording.signal)
        if signal.ndim != 2 or signal.shape[1] != len(self.CHANNELS):
            raise DataError(
                f"{where}: expected signal (n, {len(self.CHANNELS)}) for channels "
                f"{self.CHANNELS}, found shape {signal.shape}"
            )
        if not recording.sample_rate > 0:
            raise DataError(f"{where}: sample_rate must be > 0, found {recording.sample_rate}")
        if recording.recording_id in seen:
            raise DataError(
                f"{where}: recording_id {recording.recording_id!r} already used by "
                f"{seen[recording.recording_id]}"
            )
        seen[recording.recording_id] = where
        split = recording.split or self.SPLITS[0]
        if split not in self.SPLITS or (not recording.split and len(self.SPLITS) > 1):
            raise DataError(f"{where}: split {recording.split!r}; expected one of {self.SPLITS}")

    def _generate_examples(self, prepared, split: str):
        config: HARConfig = self.builder_config
        for recording, pieces in prepared:
            if (recording.split or self.SPLITS[0]) != split:
                continue
            rec = self._recording_index[recording.recording_id]
            base = {
                "label": recording.label,
                "common_label": self._common[recording.label],
                "subject": self._subject_index[recording.subject],
                "recording": rec,
                "device": recording.device,
                "position": recording.position,
            }
            for p, piece in enumerate(pieces):
                chunk = windows(
                    piece, window_length=config.window_length, window_stride=config.window_stride
                )
                for w, window in enumerate(chunk):
                    yield f"{rec}_{p}_{w}", {**base, "signal": window}


def _num_windows(length: int, window_length: int, window_stride: int) -> int:
    return 0 if length < window_length else 1 + (length - window_length) // window_stride
