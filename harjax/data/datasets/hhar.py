"""HHAR (Heterogeneity Human Activity Recognition, Stisen et al. SenSys 2015) as a tfds builder.

9 users (a..i), 8 phones in a pouch on the waist and 4 watches on the arms, 6 activities plus
`null`. `Activity recognition exp/{Phones,Watch}_{accelerometer,gyroscope}.csv`, columns
`Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt`; each device ran at its own
fastest rate (about 50 Hz samsungold .. 200 Hz nexus4/lgwatch), with jittered timestamps.

Per (user, device): rows sorted by `Creation_Time` (the sensor's own timestamp; its unit is
inferred from its span against `Arrival_Time` in ms, so ns/us/ms clocks all work), cut into
runs of constant `gt`; `null` runs are dropped and counted. Each accelerometer run is aligned
with the gyroscope rows of the same device, label and time span (`align_streams`, overlap
only, gaps > max_gap_s split) onto a uniform grid at the device's own nominal rate; the base
then resamples anti-aliased to the configured rate. Windows never cross a run or a gap.

Units: Android's, already canonical: accelerometer m/s^2 with gravity, gyroscope rad/s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from harjax.data import labels
from harjax.data.archives import ArchiveMembers
from harjax.data.builder import HARBuilder, Recording
from harjax.data.errors import DataError
from harjax.data.signal import (
    CANONICAL_CHANNELS,
    align_streams,
    nominal_rate,
    split_on_label_change,
)

log = logging.getLogger(__name__)

ROOT = "Activity recognition exp"
HEADER = ("Index", "Arrival_Time", "Creation_Time", "x", "y", "z", "User", "Model", "Device", "gt")
CLASS_NAMES = ("bike", "sit", "stand", "walk", "stairsup", "stairsdown")
NULL = "null"
KINDS = {"Phones": "waist", "Watch": "wrist"}  # file prefix -> position (phones in a waist pouch)
_TEXT = pa.dictionary(pa.int32(), pa.string())
_COLUMN_TYPES = {
    "Index": pa.int64(),
    "Arrival_Time": pa.int64(),
    "Creation_Time": pa.int64(),
    "x": pa.float64(),
    "y": pa.float64(),
    "z": pa.float64(),
    "User": _TEXT,
    "Model": _TEXT,
    "Device": _TEXT,
    "gt": _TEXT,
}
# Creation_Time ticks per Arrival_Time millisecond -> ticks per second.
_CLOCKS = {1e6: 1e9, 1e3: 1e6, 1.0: 1e3}

LABEL_MAP = labels.register_label_map(
    "hhar",
    {
        "bike": "bike",
        "sit": "sit",
        "stand": "stand",
        "walk": "walk",
        "stairsup": "upstairs",
        "stairsdown": "downstairs",
    },
)


class _Stream:
    """One CSV file, parsed: numpy columns plus the member name for messages."""

    def __init__(self, members: ArchiveMembers, name: str):
        self.where = members.describe(name)
        with members._read_errors(name), members.open(name) as f:
            try:
                table = pacsv.read_csv(
                    f, convert_options=pacsv.ConvertOptions(column_types=_COLUMN_TYPES)
                )
            except pa.ArrowInvalid as error:
                raise self._locate(members, name, error) from error
        if tuple(table.column_names) != HEADER:
            raise DataError(
                f"{self.where}:1: expected header {','.join(HEADER)}, "
                f"found {','.join(table.column_names)}"
            )
        table = table.unify_dictionaries()
        for column in ("Arrival_Time", "Creation_Time"):
            if table[column].null_count:
                row = int(np.flatnonzero(table[column].is_null().to_numpy(False))[0])
                raise DataError(f"{self.where}:{row + 2}: empty {column}")
        self.arrival = table["Arrival_Time"].to_numpy()
        self.creation = table["Creation_Time"].to_numpy()
        self.xyz = np.stack([table[c].to_numpy(zero_copy_only=False) for c in "xyz"], axis=1)
        inf = np.flatnonzero(np.isinf(self.xyz).any(axis=1))
        if len(inf):
            raise DataError(f"{self.where}:{inf[0] + 2}: inf in x/y/z ({self.xyz[inf[0]]})")
        self.user, self.users = _codes(table, "User", self.where)
        self.device, self.devices = _codes(table, "Device", self.where)
        self.gt, self.labels = _codes(table, "gt", self.where)
        for code, label in enumerate(self.labels):
            if label != NULL and label not in CLASS_NAMES:
                row = int(np.flatnonzero(self.gt == code)[0])
                raise DataError(
                    f"{self.where}:{row + 2}: unknown activity {label!r}; expected one of "
                    f"{CLASS_NAMES} or {NULL!r}"
                )

    def _locate(self, members: ArchiveMembers, name: str, error: Exception) -> DataError:
        """Finds the offending line of a file pyarrow refused (only on this error path)."""
        with members.open(name) as f:
            for number, raw in enumerate(f, start=1):
                fields = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
                if len(fields) != len(HEADER):
                    return DataError(
                        f"{self.where}:{number}: expected {len(HEADER)} columns, "
                        f"found {len(fields)}"
                    )
                if number > 1:
                    try:
                        [int(v) for v in fields[:3]] + [float(v) for v in fields[3:6]]
                    except ValueError as bad:
                        return DataError(f"{self.where}:{number}: {bad}")
        return DataError(f"{self.where}: unreadable CSV ({error})")

    def groups(self) -> dict[tuple[str, str], np.ndarray]:
        """(user, device) -> row indices sorted by Creation_Time."""
        order = np.lexsort((self.creation, self.device, self.user))
        keys = self.user[order].astype(np.int64) * len(self.devices) + self.device[order]
        bounds = np.flatnonzero(np.diff(keys)) + 1
        return {
            (self.users[self.user[rows[0]]], self.devices[self.device[rows[0]]]): rows
            for rows in np.split(order, bounds)
            if len(rows)
        }

    def lines(self, rows: np.ndarray) -> str:
        return f"lines {rows.min() + 2}-{rows.max() + 2}"


def _codes(table: pa.Table, name: str, where: str) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes and names of a text column (unified dictionaries across chunks)."""
    column = table[name]
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(False))[0])
        raise DataError(f"{where}:{row + 2}: empty {name}")
    if column.num_chunks == 0:
        return np.zeros(0, np.int32), []
    codes = np.concatenate([chunk.indices.to_numpy() for chunk in column.chunks])
    return codes, column.chunks[0].dictionary.to_pylist()


def _seconds(stream: _Stream, rows: np.ndarray, origin: int, ticks_per_s: float) -> np.ndarray:
    return (stream.creation[rows] - origin).astype(np.float64) / ticks_per_s


def clock_rate(stream: _Stream, rows: np.ndarray, where: str) -> float:
    """Creation_Time ticks per second, from its span against Arrival_Time (ms since epoch)."""
    arrival_span = float(stream.arrival[rows].max() - stream.arrival[rows].min())
    creation_span = float(stream.creation[rows].max() - stream.creation[rows].min())
    if arrival_span <= 0 or creation_span <= 0:
        return 1e9  # too few rows to tell; Android's SensorEvent.timestamp is in ns
    ratio = creation_span / arrival_span
    nearest = min(_CLOCKS, key=lambda ticks: abs(np.log10(ratio / ticks)))
    if abs(np.log10(ratio / nearest)) > 0.5:
        raise DataError(
            f"{where}: Creation_Time spans {creation_span:.0f} ticks while Arrival_Time spans "
            f"{arrival_span:.0f} ms; expected a ns, us or ms clock"
        )
    return _CLOCKS[nearest]


class Hhar(HARBuilder):
    """HHAR: 8 phones (waist) + 4 watches (wrist), 9 users, 6 activities, per-device rates."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    LABEL_MAP = LABEL_MAP
    ARCHIVE_NAME = "heterogeneity+activity+recognition.zip"
    URL = "https://archive.ics.uci.edu/static/public/344/heterogeneity+activity+recognition.zip"
    SHA256 = None  # none published; the first download's sha256 is recorded (fetch_archive)
    ACCEPTED = (ARCHIVE_NAME, "Activity recognition exp.zip", ROOT)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download https://archive.ics.uci.edu/dataset/344 (heterogeneity+activity+"
        "recognition.zip) and put it, or the 'Activity recognition exp.zip' inside it, or the "
        "extracted 'Activity recognition exp' folder, into manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive, nested=("Activity recognition exp.zip",)) as members:
            for kind, position in KINDS.items():
                acc = _Stream(members, members.locate(f"{kind}_accelerometer.csv"))
                gyro = _Stream(members, members.locate(f"{kind}_gyroscope.csv"))
                yield from self._pair(acc, gyro, position)

    def _pair(self, acc: _Stream, gyro: _Stream, position: str) -> Iterator[Recording]:
        report = self.report
        gyro_groups = gyro.groups()
        for stream in (acc, gyro):
            nulls = (
                int(np.sum(stream.gt == stream.labels.index(NULL))) if NULL in stream.labels else 0
            )
            if nulls:
                report.drop_rows("gt is null", stream.where, nulls)
        for (user, device), acc_rows in acc.groups().items():
            gyro_rows = gyro_groups.pop((user, device), None)
            if gyro_rows is None:
                report.drop_rows("no gyroscope rows for this user/device", acc.where, len(acc_rows))
                continue
            where = f"{acc.where} + {gyro.where} (user {user}, device {device})"
            acc_rows = self._dedupe(acc, acc_rows)
            gyro_rows = self._dedupe(gyro, gyro_rows)
            ticks = clock_rate(acc, acc_rows, where)
            if clock_rate(gyro, gyro_rows, where) != ticks:
                raise DataError(f"{where}: accelerometer and gyroscope clocks differ in unit")
            origin = int(min(acc.creation[acc_rows[0]], gyro.creation[gyro_rows[0]]))
            t_acc = _seconds(acc, acc_rows, origin, ticks)
            t_gyro = _seconds(gyro, gyro_rows, origin, ticks)
            rate = float(
                round(max(nominal_rate(t_acc, source=where), nominal_rate(t_gyro, source=where)))
            )
            gyro_codes = gyro.gt[gyro_rows]  # compared as codes: the files' dictionaries differ
            gyro_code = {name: code for code, name in enumerate(gyro.labels)}
            used_gyro = np.zeros(len(gyro_rows), dtype=bool)
            for run, (start, stop, code) in enumerate(split_on_label_change(acc.gt[acc_rows])):
                label = acc.labels[code]
                if label == NULL:
                    continue
                first = np.searchsorted(t_gyro, t_acc[start], side="left")
                last = np.searchsorted(t_gyro, t_acc[stop - 1], side="right")
                wanted = gyro_code.get(label, -1)
                picked = first + np.flatnonzero(gyro_codes[first:last] == wanted)
                if len(picked) < 2 or stop - start < 2:
                    report.drop_rows(
                        "accelerometer run without gyroscope overlap", acc.where, stop - start
                    )
                    continue
                used_gyro[picked] = True
                source = f"{where}, {acc.lines(acc_rows[start:stop])} of the accelerometer file"
                pieces = align_streams(
                    t_acc[start:stop],
                    acc.xyz[acc_rows[start:stop]],
                    t_gyro[picked],
                    gyro.xyz[gyro_rows[picked]],
                    to_hz=rate,
                    max_gap_s=self.builder_config.max_gap_s,
                    source=source,
                    report=report,
                )
                for p, signal in enumerate(pieces):
                    yield Recording(
                        signal=signal,
                        sample_rate=rate,
                        label=label,
                        subject=user,
                        recording_id=f"{user}/{device}/{run:04d}_{p}",
                        source=source,
                        device=device,
                        position=position,
                    )
            unused = int(np.sum(~used_gyro & (gyro_codes != gyro_code.get(NULL, -1))))
            if unused:
                report.drop_rows(
                    "gyroscope rows outside an accelerometer run of the same gt", gyro.where, unused
                )
        for rows in gyro_groups.values():
            report.drop_rows("no accelerometer rows for this user/device", gyro.where, len(rows))

    def _dedupe(self, stream: _Stream, rows: np.ndarray) -> np.ndarray:
        """Drops rows repeating the previous row's Creation_Time (counted): time must increase."""
        repeated = np.concatenate([[False], np.diff(stream.creation[rows]) == 0])
        if repeated.any():
            self.report.drop_rows("repeated Creation_Time", stream.where, int(repeated.sum()))
        return rows[~repeated]
