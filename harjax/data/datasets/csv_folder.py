"""Bring your own data: a folder of CSV files, one per recording (`--dataset csv:/path`).

Format (docs/data.md): header `timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject`,
timestamp in seconds, acceleration in m/s^2, angular rate in rad/s. Without the three gyro
columns the dataset is accelerometer-only (all files must agree). Empty or `nan` cells are gaps.
Files are found by a case-insensitive `.csv` extension. Timestamps that give a rate outside
1-2000 Hz (milliseconds, say) are an error, see `signal.check_timestamps`.

The sampling rate is the given one or 1 / median timestamp step per file; files whose steps
vary by more than 1 % are interpolated onto a uniform grid (`resample_irregular`). A change of
label (or subject) inside a file starts a new recording. Class names are the sorted labels.

Files are read as they stream (`read_csv`): a line over `MAX_LINE_BYTES`, a field over
`MAX_FIELD_CHARS`, a NUL byte (a binary file) or bytes that are not UTF-8 stop the read with
one error naming the file, the line and what was expected; memory follows the rows kept.
A file that starts with a UTF-16 byte-order mark is read as UTF-16.

Prepared data is cached under a config name that hashes the files' names and bytes (and a given
rate): any edit re-prepares the folder, even one that keeps sizes and modification times. The
per-file digests are cached against each file's identity (`harjax.digests`), so an unchanged
folder is not re-read on every run; the same digest goes into every run's fingerprint.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import UTF16_BOMS, no_data
from harjax.data.builder import HARBuilder, HARConfig, Recording, Report
from harjax.data.errors import DataError
from harjax.data.signal import (
    ACC_CHANNELS,
    CANONICAL_CHANNELS,
    check_channels,
    check_timestamps,
    nominal_rate,
    resample_irregular,
    split_at_gaps,
    split_on_label_change,
)
from harjax.digests import DigestCache, tree_digest

REQUIRED_COLUMNS = ("timestamp", *ACC_CHANNELS, "label", "subject")
GYRO_COLUMNS = CANONICAL_CHANNELS[3:]
REGULAR_JITTER = 0.01  # steps within 1 % of the median count as a uniform grid


# Sane limits for this format (a row is a timestamp, up to six numbers, a label, a subject:
# about 100 bytes). Anything beyond them is not such a CSV (a binary file, a file with no line
# breaks), and reading it is stopped at the first line instead of after gigabytes.
MAX_LINE_BYTES = 1 << 16
MAX_FIELD_CHARS = 256
_CHUNK_ROWS = 1 << 15  # rows parsed into arrays at a time: memory follows the data kept


@dataclasses.dataclass
class CsvTable:
    """One parsed file: numeric columns as float arrays, label/subject as strings."""

    path: Path
    timestamps: np.ndarray
    signal: np.ndarray  # (n, 3 or 6), NaN where a cell was empty
    labels: np.ndarray  # (n,) str
    subjects: np.ndarray  # (n,) str


def _text_lines(path: Path, handle) -> Iterator[str]:
    """The file's lines as text, checked one at a time (length, NUL bytes, UTF-8)."""
    number = 0
    if handle.peek(2)[:2] in UTF16_BOMS:
        handle = _Utf16Lines(path, handle)
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if b"\0" in raw:
            column = raw.index(b"\0") + 1
            raise DataError(
                f"{path}:{number}: NUL byte at column {column}: a binary file, not CSV text; "
                "expected UTF-8 text lines"
            )
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(
                f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes; expected CSV rows of "
                "a timestamp, numbers, a label and a subject (is this a CSV file?)"
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            column = len(raw[: error.start].decode("utf-8", "replace")) + 1
            raise DataError(
                f"{path}:{number}: byte 0x{raw[error.start]:02x} at column {column} is not "
                "UTF-8; expected UTF-8 (or ASCII) text, re-save the file as UTF-8"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


class _Utf16Lines:
    """A UTF-16 file (it starts with a byte-order mark) served as UTF-8 lines, so that one
    line reader, with its checks, serves both encodings."""

    def __init__(self, path: Path, handle):
        self.path = path
        self.text = io.TextIOWrapper(handle, encoding="utf-16", newline="")

    def readline(self, limit: int) -> bytes:
        try:
            return self.text.readline(limit).encode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{self.path}: UTF-16 text (byte-order mark) that does not decode ({error})"
            ) from None


def read_csv(path: Path, *, labelled: bool = True) -> CsvTable:
    """Parses and checks one file as it streams; every error names the file and the line.

    Lines are read one at a time with a length limit and turned into arrays every
    `_CHUNK_ROWS` rows, so memory follows the rows kept, not the file's size, and a binary
    file, another encoding or a runaway line stops at its first bad line.
    `labelled=False` (a recording to classify) makes the `label` and `subject` columns optional.
    """
    required = REQUIRED_COLUMNS if labelled else REQUIRED_COLUMNS[:4]
    path = Path(path)
    with open(path, "rb") as handle:
        reader = csv.reader(_text_lines(path, handle))
        try:
            header = []
            while not any(header):  # leading blank lines: an all-blank file is empty
                header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise no_data(str(path), f"a header line {','.join(required)} and rows") from None
        except csv.Error as error:
            raise DataError(f"{path}:1: not a CSV header ({error})") from None
        numeric = _check_header(path, header, required)
        chunks: list[dict[str, np.ndarray]] = []
        rows: list[list[str]] = []
        first_line = 2
        try:
            for row in reader:
                _check_row(path, reader.line_num, row, len(header))
                rows.append(row)
                if len(rows) == _CHUNK_ROWS:
                    chunks.append(_parse_rows(path, first_line, rows, header, numeric, labelled))
                    first_line, rows = reader.line_num + 1, []
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None
        if rows:
            chunks.append(_parse_rows(path, first_line, rows, header, numeric, labelled))
    if not chunks:
        raise no_data(str(path), "rows after the header", header=",".join(header))
    columns = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    timestamps = columns["timestamp"]
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
    signal = np.stack([columns[name] for name in numeric[1:]], axis=1)
    return CsvTable(path, timestamps, signal, columns["label"], columns["subject"])


def _check_header(path: Path, header: list[str], required) -> list[str]:
    """The numeric columns, after checking the header's names."""
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
    return ["timestamp", *ACC_CHANNELS, *(GYRO_COLUMNS if gyro else ())]


def _check_row(path: Path, line: int, row: list[str], width: int) -> None:
    if len(row) != width:
        raise DataError(f"{path}:{line}: {len(row)} fields, expected {width}")
    for index, cell in enumerate(row):
        if len(cell) > MAX_FIELD_CHARS:
            raise DataError(
                f"{path}:{line}: field {index + 1} is {len(cell)} characters long; expected "
                f"at most {MAX_FIELD_CHARS} (a number, a label or a subject id)"
            )


def _parse_rows(
    path: Path, first_line: int, rows: list[list[str]], header, numeric, labelled: bool
) -> dict[str, np.ndarray]:
    """One chunk of rows (the first on line `first_line`) -> float and string arrays."""
    out = {}
    for index, name in enumerate(header):
        cells = [row[index].strip() for row in rows]
        if name in numeric:
            out[name] = _floats(path, name, cells, first_line)
        elif name in ("label", "subject"):
            if labelled and not all(cells):
                empty = next(i for i, value in enumerate(cells) if not value)
                raise DataError(f"{path}:{first_line + empty}: empty {name}")
            out[name] = np.array(cells)
    for name in ("label", "subject"):  # optional when not labelled
        out.setdefault(name, np.full(len(rows), ""))
    return out


def _floats(path: Path, column: str, cells: list[str], first_line: int = 2) -> np.ndarray:
    cells = [cell if cell else "nan" for cell in cells]
    try:
        values = np.asarray(cells, dtype=np.float64)
    except ValueError:
        for number, cell in enumerate(cells, start=first_line):
            try:
                float(cell)
            except ValueError:
                raise DataError(
                    f"{path}:{number}: column {column!r} holds {cell!r}; expected a number"
                ) from None
        raise
    if np.isinf(values).any():
        line = int(np.flatnonzero(np.isinf(values))[0]) + first_line
        raise DataError(f"{path}:{line}: column {column!r} holds inf")
    return values


def content_digest(folder: Path, files: list[Path], data_dir: str | os.PathLike | None) -> str:
    """sha256 of the files' names and bytes; per-file digests are cached under `data_dir`
    against each file's identity (`harjax.digests`), so an unchanged folder is not re-read."""
    cache_path = None if data_dir is None else Path(data_dir) / "csv_folder" / "digests.json"
    return tree_digest(files, folder, DigestCache(cache_path))


def table_recordings(
    table: CsvTable,
    channels: tuple[str, ...],
    *,
    sample_rate: float | None,
    max_gap_s: float,
    report: Report,
) -> Iterator[tuple[float, Recording]]:
    """One parsed file as `Recording`s, each with the time (s) of its first sample.

    A change of label or subject starts a new recording. Files on a uniform grid (steps within
    `REGULAR_JITTER` of 1 / rate) keep their NaN rows for the builder's gap filling; irregular
    ones are interpolated onto a uniform grid at their own rate, cut at gaps longer than
    `max_gap_s`. Training (`CsvFolder`) and `harjax.predict` both read files through here.
    """
    path = table.path
    check_channels(table.signal, channels, source=str(path))
    # Empty or `nan` cells are missing values: counted by line, then gaps (gap policy).
    report.count_missing(str(path), np.flatnonzero(np.isnan(table.signal).any(axis=1)) + 2)
    rate = sample_rate or nominal_rate(table.timestamps, source=str(path))
    check_timestamps(table.timestamps, source=str(path), sample_rate=rate)
    keys = np.char.add(np.char.add(table.labels.astype(str), "\0"), table.subjects.astype(str))
    for run, (start, stop, _) in enumerate(split_on_label_change(keys)):
        yield from _run_recordings(table, start, stop, run, rate, max_gap_s, report)


def _run_recordings(
    table: CsvTable, start: int, stop: int, run: int, rate: float, max_gap_s: float, report
) -> Iterator[tuple[float, Recording]]:
    path = table.path
    source = f"{path}:{start + 2}-{stop + 1}"
    timestamps, signal = table.timestamps[start:stop], table.signal[start:stop]
    common = {
        "label": str(table.labels[start]),
        "subject": str(table.subjects[start]),
        "source": source,
    }
    if len(timestamps) < 2:
        report.drop_rows("run shorter than 2 rows", str(path), len(timestamps))
        return
    steps = np.diff(timestamps)
    if np.abs(steps * rate - 1).max() <= REGULAR_JITTER:
        recording_id = f"{path.stem}/{run}"
        yield (
            float(timestamps[0]),
            Recording(signal=signal, sample_rate=rate, recording_id=recording_id, **common),
        )
        return
    # Irregular: NaN rows cannot be interpolated over time, so they become timestamp gaps.
    valid = ~np.isnan(signal).any(axis=1)
    if (~valid).any():
        report.drop_rows("NaN in irregularly sampled file", str(path), int((~valid).sum()))
    times = timestamps[valid]
    if len(times) < 2:
        return
    pieces = resample_irregular(times, signal[valid], rate, max_gap_s, source=source, report=report)
    starts = [float(times[first]) for first, _ in split_at_gaps(times, max_gap_s)]
    for index, (first, piece) in enumerate(zip(starts, pieces, strict=True)):
        recording_id = f"{path.stem}/{run}/{index}"
        yield first, Recording(signal=piece, sample_rate=rate, recording_id=recording_id, **common)


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
        for path in self.files:  # a binary or non-UTF-8 file fails before it is hashed
            with open(path, "rb") as handle:
                next(_text_lines(path, handle), None)
        # What runs fingerprint (`run.fingerprint.raw_data_content`): the files' bytes.
        self.content_digest = content_digest(self.folder, self.files, data_dir)
        key = hashlib.sha256(f"{self.content_digest}\0{sample_rate!r}".encode()).hexdigest()[:16]
        class_names, channels = self._scan(data_dir, key)
        self.CLASS_NAMES = class_names
        self.CHANNELS = channels
        self.LABEL_MAP = labels.identity_map(class_names)
        config = dataclasses.replace(config, name=f"{key}_{config.name}")
        super().__init__(config=config, data_dir=data_dir, **kwargs)

    def _scan(self, data_dir, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Class names and channels, from a sidecar written on the first scan of this content."""
        sidecar = None
        if data_dir is not None:
            sidecar = Path(data_dir) / "csv_folder" / f"{key}.json"
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
            # A temporary file of this process's own: two processes scanning the same folder
            # at once both publish the same content, neither loses its rename.
            fd, tmp = tempfile.mkstemp(dir=sidecar.parent, prefix=f".{sidecar.name}.")
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"class_names": class_names, "channels": channels}))
            os.replace(tmp, sidecar)
        return class_names, channels

    def _archive(self, dl_manager) -> Path:
        del dl_manager
        return self.folder

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        for path in self.files:
            # A table parsed by the first scan is used once and let go (memory follows files).
            table = self._tables.pop(path) if self._tables else read_csv(path)
            for _, recording in table_recordings(
                table,
                self.CHANNELS,
                sample_rate=self.given_rate,
                max_gap_s=self.builder_config.max_gap_s,
                report=self.report,
            ):
                yield recording
