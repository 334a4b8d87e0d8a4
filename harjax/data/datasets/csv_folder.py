"""Bring your own data: a folder of CSV files, one per recording (`--dataset csv:/path`).

Format (docs/data.md): header `timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject`,
timestamp in seconds, acceleration in m/s^2, angular rate in rad/s. Without the three gyro
columns the dataset is accelerometer-only (all files must agree). Empty or `nan` cells are gaps.
Files are found by a case-insensitive `.csv` extension. Timestamps that give a rate outside
1-2000 Hz (milliseconds, say) are an error, see `signal.check_timestamps`.

The sampling rate is the given one or 1 / median timestamp step per file; files whose steps
vary by more than 1 % are interpolated onto a uniform grid (`resample_irregular`). A change of
label (or subject) inside a file starts a new recording. Class names are the sorted labels.

Prepared data is cached under a config name that hashes the folder's file names, sizes and
modification times, so editing the folder re-prepares it automatically.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.builder import HARBuilder, HARConfig, Recording
from harjax.data.errors import DataError
from harjax.data.signal import (
    ACC_CHANNELS,
    CANONICAL_CHANNELS,
    check_channels,
    check_timestamps,
    nominal_rate,
    resample_irregular,
    split_on_label_change,
)

REQUIRED_COLUMNS = ("timestamp", *ACC_CHANNELS, "label", "subject")
GYRO_COLUMNS = CANONICAL_CHANNELS[3:]
REGULAR_JITTER = 0.01  # steps within 1 % of the median count as a uniform grid


@dataclasses.dataclass
class CsvTable:
    """One parsed file: numeric columns as float arrays, label/subject as strings."""

    path: Path
    timestamps: np.ndarray
    signal: np.ndarray  # (n, 3 or 6), NaN where a cell was empty
    labels: np.ndarray  # (n,) str
    subjects: np.ndarray  # (n,) str


def read_csv(path: Path, *, labelled: bool = True) -> CsvTable:
    """Parses and checks one file; every error names the file and, where it applies, the line.

    `labelled=False` (a recording to classify) makes the `label` and `subject` columns optional.
    """
    required = REQUIRED_COLUMNS if labelled else REQUIRED_COLUMNS[:4]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(f"{path}: empty file; expected a header line {','.join(required)}")
    header = [name.strip() for name in rows[0]]
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(f"{path}:1: missing column(s) {missing}; header is {header}")
    gyro = [name for name in GYRO_COLUMNS if name in header]
    if gyro and len(gyro) != 3:
        raise DataError(f"{path}:1: gyro columns must be all or none of {GYRO_COLUMNS}: {gyro}")
    allowed = (*REQUIRED_COLUMNS, *GYRO_COLUMNS)
    unknown = [name for name in header if name not in allowed]
    if unknown:
        raise DataError(
            f"{path}:1: unknown column(s) {unknown}; allowed are {allowed} (gyro optional)"
        )
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: header only, no data rows")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} fields, expected {len(header)}")
    columns = {name: [row[i].strip() for row in body] for i, name in enumerate(header)}
    numeric = ["timestamp", *ACC_CHANNELS, *(GYRO_COLUMNS if gyro else ())]
    values = {name: _floats(path, name, columns[name]) for name in numeric}
    timestamps = values["timestamp"]
    if np.isnan(timestamps).any():
        line = int(np.flatnonzero(np.isnan(timestamps))[0]) + 2
        raise DataError(f"{path}:{line}: empty timestamp")
    steps = np.diff(timestamps)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1  # data row; file line = row + 2
        raise DataError(
            f"{path}:{row + 2}: timestamps must increase strictly, found "
            f"{float(timestamps[row])} after {float(timestamps[row - 1])}"
        )
    signal = np.stack([values[name] for name in numeric[1:]], axis=1)
    for name in ("label", "subject"):
        if name not in columns:  # only when not labelled
            columns[name] = [""] * len(body)
        elif labelled:
            empty = [i for i, value in enumerate(columns[name]) if not value]
            if empty:
                raise DataError(f"{path}:{empty[0] + 2}: empty {name}")
    return CsvTable(
        path, timestamps, signal, np.array(columns["label"]), np.array(columns["subject"])
    )


def _floats(path: Path, column: str, cells: list[str]) -> np.ndarray:
    cells = [cell if cell else "nan" for cell in cells]
    try:
        values = np.asarray(cells, dtype=np.float64)
    except ValueError:
        for number, cell in enumerate(cells, start=2):
            try:
                float(cell)
            except ValueError:
                raise DataError(
                    f"{path}:{number}: column {column!r} holds {cell!r}; expected a number"
                ) from None
        raise
    if np.isinf(values).any():
        line = int(np.flatnonzero(np.isinf(values))[0]) + 2
        raise DataError(f"{path}:{line}: column {column!r} holds inf")
    return values


def folder_fingerprint(folder: Path, files: list[Path], sample_rate: float | None) -> str:
    """Hash of file names, sizes and mtimes (and a given rate): changes when the folder does."""
    digest = hashlib.sha256(repr(sample_rate).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class CsvFolder(HARBuilder, skip_registration=True):
    """A user's folder of CSV recordings (see the module docstring for the format)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        config: HARConfig,
        data_dir: str | os.PathLike | None = None,
        sample_rate: float | None = None,
        **kwargs,
    ):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: not a directory; expected a folder of CSV files")
        # Case-insensitive: exports from Windows tools often write `*.CSV`.
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() == ".csv")
        if not self.files:
            raise DataError(f"{self.folder}: empty folder; expected one or more *.csv files")
        self.given_rate = sample_rate
        self._tables: dict[Path, CsvTable] | None = None
        fingerprint = folder_fingerprint(self.folder, self.files, sample_rate)
        class_names, channels = self._scan(data_dir, fingerprint)
        self.CLASS_NAMES = class_names
        self.CHANNELS = channels
        self.LABEL_MAP = labels.identity_map(class_names)
        config = dataclasses.replace(config, name=f"{fingerprint}_{config.name}")
        super().__init__(config=config, data_dir=data_dir, **kwargs)

    def _scan(self, data_dir, fingerprint: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Class names and channels, from a sidecar written on the first scan of this content."""
        sidecar = None
        if data_dir is not None:
            sidecar = Path(data_dir) / "csv_folder" / f"{fingerprint}.json"
            if sidecar.exists():
                found = json.loads(sidecar.read_text())
                return tuple(found["class_names"]), tuple(found["channels"])
        self._tables = {path: read_csv(path) for path in self.files}
        widths = {path: table.signal.shape[1] for path, table in self._tables.items()}
        if len(set(widths.values())) > 1:
            acc_only = sorted(p.name for p, w in widths.items() if w == 3)
            raise DataError(
                f"{self.folder}: files disagree on gyro columns; accelerometer-only: {acc_only}"
            )
        channels = CANONICAL_CHANNELS if next(iter(widths.values())) == 6 else ACC_CHANNELS
        class_names = tuple(sorted({str(x) for t in self._tables.values() for x in t.labels}))
        if sidecar is not None:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            tmp = sidecar.with_suffix(".tmp")
            tmp.write_text(json.dumps({"class_names": class_names, "channels": channels}))
            os.replace(tmp, sidecar)
        return class_names, channels

    def _archive(self, dl_manager) -> Path:
        del dl_manager
        return self.folder

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        max_gap_s = self.builder_config.max_gap_s
        for path in self.files:
            table = self._tables[path] if self._tables is not None else read_csv(path)
            check_channels(table.signal, self.CHANNELS, source=f"{path} (like the other files)")
            rate = self.given_rate or nominal_rate(table.timestamps, source=str(path))
            check_timestamps(table.timestamps, source=str(path), sample_rate=rate)
            keys = np.char.add(np.char.add(table.labels.astype(str), "\0"), table.subjects)
            for run, (start, stop, _) in enumerate(split_on_label_change(keys)):
                yield from self._run_recordings(table, start, stop, run, rate, max_gap_s)

    def _run_recordings(
        self, table: CsvTable, start: int, stop: int, run: int, rate: float, max_gap_s: float
    ) -> Iterator[Recording]:
        path = table.path
        source = f"{path}:{start + 2}-{stop + 1}"
        timestamps, signal = table.timestamps[start:stop], table.signal[start:stop]
        common = {
            "label": str(table.labels[start]),
            "subject": str(table.subjects[start]),
            "source": source,
        }
        if len(timestamps) < 2:
            self.report.drop_rows("run shorter than 2 rows", str(path), len(timestamps))
            return
        steps = np.diff(timestamps)
        if np.abs(steps * rate - 1).max() <= REGULAR_JITTER:
            yield Recording(
                signal=signal, sample_rate=rate, recording_id=f"{path.stem}/{run}", **common
            )
            return
        # Irregular: NaN rows cannot be interpolated over time, so they become timestamp gaps.
        valid = ~np.isnan(signal).any(axis=1)
        if (~valid).any():
            self.report.drop_rows("NaN in irregularly sampled file", str(path), int((~valid).sum()))
        pieces = resample_irregular(
            timestamps[valid], signal[valid], rate, max_gap_s, source=source, report=self.report
        )
        for index, piece in enumerate(pieces):
            yield Recording(
                signal=piece,
                sample_rate=rate,
                recording_id=f"{path.stem}/{run}/{index}",
                **common,
            )
