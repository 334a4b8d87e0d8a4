"""The tfds builder base: what a dataset builder yields, and everything done to it once.

A dataset builder only turns its raw archive into `Recording`s (one continuous recording of one
activity, canonical channel order and units, native rate). Everything else — gap filling,
anti-aliased resampling to the configured rate, windowing that never crosses a recording or a
gap, label/subject indexing, counting what was dropped — happens here, once, in `HARBuilder`.

Files are written as `array_record` and read back with `as_data_source()`: no TensorFlow.

Prepared data is shared by every process on the machine (`$HARJAX_DATA_DIR`), so it is
content-addressed and published once (`HARBuilder.prepare`): windows of a manual archive live
under `<dataset>/<config>/raw-<sha256 of the archive>/<version>`, so two archives of one
dataset never share or delete each other's windows; one process prepares a target while the
others wait on its lock file (`<version>.lock`, an `fcntl.flock` the kernel drops with the
process); tfds writes into `incomplete.*` and renames when complete, so a process killed
mid-preparation leaves only that folder, which the next preparer of the target removes.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import fcntl
import inspect
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from harjax.data import labels as labels_lib
from harjax.data.archives import fetch_archive, manual_archive_digest, raw_data_content
from harjax.data.errors import DataError
from harjax.data.signal import (
    ACC_CHANNELS,
    CANONICAL_CHANNELS,
    GapReport,
    check_channels,
    fill_gaps,
    num_windows,
    resample,
    windows,
)

log = logging.getLogger(__name__)

# Line numbers of rows with missing values kept per file in the report (the count is exact).
MISSING_LINES_LISTED = 20
# The one tfds split of a dataset without an official split ("all" is reserved by tfds).
NO_OFFICIAL_SPLIT = "full"


def natural_key(name: str) -> tuple:
    """Sort key that orders "2" before "10" (subject and recording ids)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


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


def recording_pieces(
    pieces: list[np.ndarray], recording_id: str, **fields: Any
) -> Iterator[Recording]:
    """One `Recording` per piece of a recording cut at long gaps; ids get `/part{i}` when cut."""
    for index, piece in enumerate(pieces):
        part_id = recording_id if len(pieces) == 1 else f"{recording_id}/part{index}"
        yield Recording(signal=piece, recording_id=part_id, **fields)


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
    rows_repaired: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    # stream (e.g. "a/nexus4_1") -> sensor -> rate in Hz the builder inferred from the file.
    sample_rates: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    classes_without_windows: list[str] = dataclasses.field(default_factory=list)
    # file -> {"rows": rows with a missing sensor value, "lines": the first of them}
    missing_values: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def count_missing(self, source: str, lines) -> None:
        """Counts rows with a missing sensor value (an empty cell, `nan`, `?`) by file, with
        their line numbers (the first `MISSING_LINES_LISTED`): docs/datasets/README.md."""
        lines = [int(line) for line in np.asarray(lines).ravel()]
        if not lines:
            return
        entry = self.missing_values.setdefault(source, {"rows": 0, "lines": []})
        entry["rows"] += len(lines)
        entry["lines"] += lines[: max(MISSING_LINES_LISTED - len(entry["lines"]), 0)]

    def drop_rows(self, reason: str, source: str, count: int = 1) -> None:
        """Counts raw rows a builder skipped (e.g. `null` labels), by reason and file."""
        per_file = self.rows_dropped.setdefault(reason, {})
        per_file[source] = per_file.get(source, 0) + int(count)

    def repair_rows(self, reason: str, source: str, count: int = 1) -> None:
        """Counts raw rows a builder kept after fixing them (e.g. re-sorted), by reason and file."""
        per_file = self.rows_repaired.setdefault(reason, {})
        per_file[source] = per_file.get(source, 0) + int(count)

    def rate_summary(self) -> dict[str, str]:
        """Inferred rates per device and sensor over its streams: "199.0 Hz" or "98.1-100.2 Hz"."""
        per_device: dict[str, list[float]] = {}
        for stream, rates in self.sample_rates.items():
            device = stream.rsplit("/", 1)[-1]
            for sensor, rate in rates.items():
                per_device.setdefault(f"{device} {sensor}", []).append(rate)
        summary = {}
        for key, rates in sorted(per_device.items()):
            low, high = min(rates), max(rates)
            summary[key] = f"{low:.1f} Hz" if low == high else f"{low:.1f}-{high:.1f} Hz"
        return summary

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
        text = (
            f"{self.recordings} recordings -> {self.segments} segments -> {self.windows} windows "
            f"{self.windows_per_class}; interpolated {self.samples_interpolated} samples in "
            f"{self.gaps_interpolated} gaps; dropped {self.samples_dropped_in_gaps} samples in "
            f"long or edge gaps ({self.segments_split} long gaps split); "
            f"{len(self.recordings_too_short)} recordings too short; "
            f"excluded {self.recordings_excluded}; rows dropped {dropped}"
        )
        if self.rows_repaired:
            repaired = {reason: sum(f.values()) for reason, f in self.rows_repaired.items()}
            text += f"; rows repaired {repaired}"
        if self.sample_rates:
            text += f"; inferred rates {self.rate_summary()}"
        if self.classes_without_windows:
            text += f"; classes without windows {self.classes_without_windows}"
        if self.missing_values:
            rows = sum(entry["rows"] for entry in self.missing_values.values())
            first, entry = next(iter(self.missing_values.items()))
            text += (
                f"; {rows} rows with missing values in {len(self.missing_values)} files "
                f"(first {first}:{entry['lines'][0]})"
            )
        return text


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-")


@dataclasses.dataclass(eq=False, kw_only=True)
class HARConfig(tfds.core.BuilderConfig):
    """Rate, window and subset of a prepared dataset; the name (a data_dir folder) encodes them.

    Rate, window and gap limit have no defaults here: they come from `config.data`
    (configs/default.py), the one place defaults live. `devices` / `positions` select a subset
    (empty = all); excluded recordings are counted.
    """

    name: str = ""
    sample_rate: float
    window_length: int
    window_stride: int
    max_gap_s: float
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
      ARCHIVE_NAME, URL, SHA256: the official archive, found or downloaded by `_archive`
        (`archives.fetch_archive`). MANUAL_DOWNLOAD_INSTRUCTIONS says where to get it.
      ACCEPTED: the names (files or extracted folders) `_archive` takes from manual_dir.
      LABEL_MAP: own label -> common label (None = no equivalent); defaults to the map
        registered in labels.DATASET_LABEL_MAP under the builder's name.
      LOOKED_FOR: the files/rows the builder reads (named when none gave a window).
    A partial archive (some users, devices or activities) builds: classes without windows are
    a warning and are listed in the report, while the label feature keeps every class, so a
    model trained on a part reads the full release with the same label ids.
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
    ACCEPTED: tuple[str, ...] = ()
    MANUAL_DOWNLOAD_INSTRUCTIONS = "See the builder's docstring."
    # What `_recordings` reads, for the error when an archive holds no usable recording.
    LOOKED_FOR = ""
    # True where the examples are cases, not a subject's recordings (UEA): no subject-disjoint
    # split exists, so `splits.dataset_split` always uses the official one.
    OFFICIAL_SPLIT_ONLY = False

    def __init__(
        self,
        *,
        config: HARConfig,
        data_dir: str | os.PathLike | None = None,
        manual_dir: str | os.PathLike | None = None,
        file_format: str = "array_record",
        **kwargs,
    ):
        self.manual_dir = Path(manual_dir) if manual_dir is not None else None
        self.report = Report()
        # The content address of a manual archive's windows (`_build_data_dir`). Builders that
        # name their config by content already (csv:, uea:) set `content_digest` first.
        self.raw_key = None
        if getattr(self, "content_digest", None) is None and self.manual_dir is not None:
            digest = manual_archive_digest(self.manual_dir, self.ACCEPTED, data_dir)
            if digest is not None:
                self.content_digest = digest
                self.raw_key = f"raw-{digest[:16]}"
        super().__init__(
            config=config,
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

    def _build_data_dir(self, given_data_dir: str | None) -> tuple[str, str]:
        """tfds's `<root>/<name>/<config>/<version>`, with the archive's digest above the
        version for a manual archive: another archive of the dataset is another folder."""
        root, dataset_dir = super()._build_data_dir(given_data_dir)
        if self.raw_key:
            path = Path(dataset_dir)
            dataset_dir = os.fspath(path.parent / self.raw_key / path.name)
        return root, dataset_dir

    def prepare(self) -> None:
        """Prepares the windows unless they are published; safe to call from many processes.

        The first process takes the target's lock and prepares; others block on it and, once
        it is released, find the windows published and read them (their `info` is re-read).
        Leftovers of a killed preparer (`incomplete.*`) are removed under the lock.
        """
        if self._published():
            return
        with _exclusive(Path(f"{self.data_dir}.lock"), what=f"{self.name} in {self.data_dir}"):
            if self._published():  # by the process we waited for
                self.info.read_from_directory(self.data_dir)
                return
            log.info("preparing %s into %s", self.name, self.data_dir)
            target = Path(self.data_dir)
            for stale in target.parent.glob(f"incomplete.*_{target.name}"):
                log.warning("%s: removing %s, left by an unfinished preparation", self.name, stale)
                shutil.rmtree(stale, ignore_errors=True)
            self.download_and_prepare()

    def _published(self) -> bool:
        # tfds's own check, without its warning about a folder that does not exist yet.
        return (Path(self.data_dir) / "dataset_info.json").exists() and self.is_prepared()

    # --- what a dataset builder writes ------------------------------------------------------

    @abc.abstractmethod
    def _recordings(self, archive: Path) -> Iterator[Recording]:
        """Yields every recording of the dataset from the archive (file or directory)."""

    def _archive(self, dl_manager) -> Path:
        """The raw data: the first of `ACCEPTED` in manual_dir, else the download of `URL`.

        Builders whose data comes from elsewhere (a folder, a split download) override it.
        """
        del dl_manager
        return fetch_archive(self, self.ACCEPTED)

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
                num_windows(
                    len(p), window_length=config.window_length, window_stride=config.window_stride
                )
                for p in pieces
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
            looked_for = f" (looked for {self.LOOKED_FOR})" if self.LOOKED_FOR else ""
            raise DataError(
                f"{self.name}: no usable recording in {archive}{looked_for}; expected at least "
                f"one window of {config.window_length} samples of a class in {self.CLASS_NAMES} "
                f"({report.summary()})"
            )
        empty = [name for name in self.CLASS_NAMES if name not in report.windows_per_class]
        if empty:
            report.classes_without_windows = empty
            log.warning(
                "%s: classes %s have no windows in %s (a partial archive?); building the others. "
                "The label ids stay those of all %d classes %s (too short: %s)",
                self.name,
                empty,
                archive,
                len(self.CLASS_NAMES),
                list(self.CLASS_NAMES),
                report.recordings_too_short[:10],
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
                # What the windows were prepared from (a manual archive's or csv: folder's
                # sha256; None for verified downloads): `source.load_dataset` re-prepares
                # when the user's files no longer match it.
                "raw_content": raw_data_content(self),
            }
        )
        if self.raw_key and raw_data_content(self) != manual_archive_digest(
            self.manual_dir, self.ACCEPTED, self.data_dir_root
        ):
            raise DataError(
                f"{self.name}: {archive} changed while it was being prepared (its sha256 is no "
                f"longer {self.content_digest[:12]}...); run again once it is complete"
            )
        log.warning("prepared %s/%s: %s", self.name, config.name, report.summary())
        return prepared

    def _check(self, recording: Recording, seen: dict[str, str]) -> None:
        where = recording.source
        if recording.label not in self.CLASS_NAMES:
            raise DataError(
                f"{where}: unknown activity {recording.label!r}; expected one of {self.CLASS_NAMES}"
            )
        check_channels(recording.signal, self.CHANNELS, source=where)
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


@contextlib.contextmanager
def _exclusive(path: Path, *, what: str) -> Iterator[None]:
    """An exclusive `fcntl.flock` on `path` for the block; says so when it has to wait.

    The lock belongs to the open file, so the kernel drops it when its process dies (kill -9
    included): no stale lock is ever left. The file itself stays (it is empty and reused).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another process preparing %s (lock %s)", what, path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
