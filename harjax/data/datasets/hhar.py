"""HHAR (Heterogeneity Human Activity Recognition, Stisen et al. SenSys 2015) as a tfds builder.

9 users (a..i), 8 phones in a pouch on the waist and 4 watches on the arms, 6 activities plus
`null`. `Activity recognition exp/{Phones,Watch}_{accelerometer,gyroscope}.csv`, columns
`Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt`; each device ran at its own
fastest rate (about 50 Hz samsungold .. 200 Hz nexus4/lgwatch), with jittered timestamps.

Per (user, device): rows sorted by `Creation_Time`, the sensor's own event time. Its unit is
not documented and differs between devices (phones: ns since the epoch; watches: ns since
boot, at us resolution), so it is inferred from the median POSITIVE step against the nominal
rate the release documents for the device's model (`NOMINAL_RATE_HZ`): of ns, us and ms, the
unit that puts the median step nearest that rate. `Arrival_Time` (when the phone received the
sample) is never used for timing: watches deliver in batches, so it jumps by tens of seconds.
The real files hold rows out of `Creation_Time` order (a late batch written after newer rows:
the watch excerpt has 132 backward steps in 10,000 rows): they are re-sorted and counted in
`report.rows_repaired`. A row repeating the previous row's `Creation_Time` is dropped (counted).
The rate inferred for each stream is recorded in `report.sample_rates`.

Sorted rows are cut into runs of constant `gt`; `null` runs are dropped and counted. Each
accelerometer run is aligned with the gyroscope rows of the same device, label and time span
(`align_streams`, overlap only, gaps > max_gap_s split) onto a uniform grid at the device's
measured rate; the base then resamples anti-aliased to the configured rate. Windows never
cross a run or a gap.

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
from harjax.data.archives import ArchiveMembers, no_data
from harjax.data.builder import HARBuilder, Recording
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, align_streams, split_on_label_change

log = logging.getLogger(__name__)

ROOT = "Activity recognition exp"
HEADER = ("Index", "Arrival_Time", "Creation_Time", "x", "y", "z", "User", "Model", "Device", "gt")
CLASS_NAMES = ("bike", "sit", "stand", "walk", "stairsup", "stairsdown")
NULL = "null"
# Report reasons (counts per file in `report.rows_repaired` / `report.rows_dropped`).
RESORTED = "Creation_Time earlier than the previous row (re-sorted)"
REPEATED = "repeated Creation_Time"
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
# The rate each model sampled at, as the release documents it (Stisen et al. 2015, Table 1;
# every device ran at its fastest setting), keyed by the `Model` column.
NOMINAL_RATE_HZ = {
    "nexus4": 200.0,
    "s3": 150.0,
    "s3mini": 100.0,
    "samsungold": 50.0,
    "gear": 100.0,
    "lgwatch": 200.0,
}
# Creation_Time units a device may use, as ticks per second.
CLOCK_UNITS = {"ns": 1e9, "us": 1e6, "ms": 1e3}
# A measured rate this far from the model's nominal one (either way) is not that device's clock.
MAX_RATE_FACTOR = 3.0
# A model the release does not document: its rate must fall in this range.
UNDOCUMENTED_RATE_HZ = (10.0, 500.0)

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
        with members._read_errors(name), members.open_utf8(name) as f:
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
        if table.num_rows == 0:
            raise no_data(self.where, "sensor rows", header=",".join(HEADER))
        table = table.unify_dictionaries()
        for column in ("Arrival_Time", "Creation_Time"):
            if table[column].null_count:
                row = int(np.flatnonzero(table[column].is_null().to_numpy(False))[0])
                raise DataError(f"{self.where}:{row + 2}: empty {column}")
        self.arrival = table["Arrival_Time"].to_numpy()
        self.creation = table["Creation_Time"].to_numpy()
        self.xyz = np.stack([table[c].to_numpy(zero_copy_only=False) for c in "xyz"], axis=1)
        self.missing = np.isnan(self.xyz).any(axis=1)  # empty or `nan` cells
        inf = np.flatnonzero(np.isinf(self.xyz).any(axis=1))
        if len(inf):
            raise DataError(f"{self.where}:{inf[0] + 2}: inf in x/y/z ({self.xyz[inf[0]]})")
        self.user, self.users = _codes(table, "User", self.where)
        self.device, self.devices = _codes(table, "Device", self.where)
        self.model, self.models = _codes(table, "Model", self.where)
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
        with members.open_utf8(name) as f:
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
        """(user, device) -> row indices sorted by Creation_Time (stable: file order on ties)."""
        order = np.lexsort((self.creation, self.device, self.user))
        keys = self.user[order].astype(np.int64) * len(self.devices) + self.device[order]
        bounds = np.flatnonzero(np.diff(keys)) + 1
        return {
            (self.users[self.user[rows[0]]], self.devices[self.device[rows[0]]]): rows
            for rows in np.split(order, bounds)
            if len(rows)
        }

    def model_of(self, rows: np.ndarray) -> str:
        return self.models[self.model[rows[0]]]

    def backward_steps(self, rows: np.ndarray) -> int:
        """Rows whose Creation_Time is earlier than the row before them in the file."""
        in_file_order = self.creation[np.sort(rows)]
        return int(np.sum(np.diff(in_file_order) < 0))

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


def infer_clock(creation: np.ndarray, model: str, where: str) -> tuple[str, float, float]:
    """(unit, ticks per second, rate in Hz) of sorted Creation_Time ticks of one stream.

    The median positive step is one sampling period; read in ns, us or ms it gives three
    rates 1000x apart, and the one nearest the model's documented rate names the unit. Zero
    steps (duplicates) and the gaps of a paused sensor do not move the median.
    """
    steps = np.diff(creation)
    positive = steps[steps > 0]
    if len(positive) == 0:
        raise DataError(
            f"{where}: need two distinct Creation_Time values to infer the clock, found "
            f"{len(np.unique(creation))}"
        )
    median_step = float(np.median(positive))
    rates = {unit: ticks / median_step for unit, ticks in CLOCK_UNITS.items()}
    nominal = NOMINAL_RATE_HZ.get(model)
    if nominal is not None:
        unit = min(rates, key=lambda u: abs(np.log(rates[u] / nominal)))
        plausible = nominal / MAX_RATE_FACTOR <= rates[unit] <= nominal * MAX_RATE_FACTOR
        expected = f"within {MAX_RATE_FACTOR:g}x of model {model}'s documented {nominal:g} Hz"
    else:
        low, high = UNDOCUMENTED_RATE_HZ
        unit = min(rates, key=lambda u: abs(np.log(rates[u] / np.sqrt(low * high))))
        plausible = low <= rates[unit] <= high
        expected = f"in {low:g}-{high:g} Hz (model {model!r} has no documented rate)"
    if not plausible:
        found = ", ".join(f"{rate:.4g} Hz as {u}" for u, rate in rates.items())
        raise DataError(
            f"{where}: median positive Creation_Time step {median_step:.0f} ticks gives "
            f"{found}; expected a rate {expected}"
        )
    return unit, CLOCK_UNITS[unit], rates[unit]


class Hhar(HARBuilder):
    """HHAR: 8 phones (waist) + 4 watches (wrist), 9 users, 6 activities, per-device rates."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    LABEL_MAP = LABEL_MAP
    ARCHIVE_NAME = "heterogeneity+activity+recognition.zip"
    URL = "https://archive.ics.uci.edu/static/public/344/heterogeneity+activity+recognition.zip"
    SHA256 = None  # none published; the first download's sha256 is recorded (fetch_archive)
    ACCEPTED = (ARCHIVE_NAME, "Activity recognition exp.zip", ROOT)
    LOOKED_FOR = (
        f"rows with gt in {CLASS_NAMES} in {{Phones,Watch}}_{{accelerometer,gyroscope}}.csv "
        "with both sensors of one user and device"
    )
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
            report.count_missing(stream.where, np.flatnonzero(stream.missing) + 2)
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
            model = acc.model_of(acc_rows)
            for stream, rows in ((acc, acc_rows), (gyro, gyro_rows)):
                backward = stream.backward_steps(rows)
                if backward:
                    report.repair_rows(RESORTED, stream.where, backward)
            acc_rows = self._dedupe(acc, acc_rows)
            gyro_rows = self._dedupe(gyro, gyro_rows)
            for stream, rows, sensor in ((acc, acc_rows, "acc"), (gyro, gyro_rows, "gyro")):
                empty = np.isnan(stream.xyz[rows]).all(axis=0)
                if len(rows) and empty.any():  # a broken file, not a gap
                    names = [f"{sensor}_{axis}" for axis in np.array(list("xyz"))[empty]]
                    raise DataError(
                        f"{where}, {stream.lines(rows)} of {stream.where}: channel(s) {names} "
                        f"are all NaN ({len(rows)} samples)"
                    )
            # Rows with a missing value (counted above) are left out: the alignment on the
            # timestamps bridges the hole up to max_gap_s and splits beyond.
            acc_rows = acc_rows[~acc.missing[acc_rows]]
            gyro_rows = gyro_rows[~gyro.missing[gyro_rows]]
            if min(len(acc_rows), len(gyro_rows)) < 2:  # no step, no clock: nothing to align
                report.drop_rows(
                    "fewer than 2 timestamps for this user/device", acc.where, len(acc_rows)
                )
                report.drop_rows(
                    "fewer than 2 timestamps for this user/device", gyro.where, len(gyro_rows)
                )
                continue
            acc_unit, ticks, acc_rate = infer_clock(
                acc.creation[acc_rows], model, f"{where} (accelerometer)"
            )
            gyro_unit, _, gyro_rate = infer_clock(
                gyro.creation[gyro_rows], model, f"{where} (gyroscope)"
            )
            if acc_unit != gyro_unit:
                raise DataError(
                    f"{where}: accelerometer Creation_Time reads as {acc_unit}, gyroscope as "
                    f"{gyro_unit}; expected one clock per device"
                )
            report.sample_rates[f"{user}/{device}"] = {
                "accelerometer": round(acc_rate, 2),
                "gyroscope": round(gyro_rate, 2),
            }
            origin = int(min(acc.creation[acc_rows[0]], gyro.creation[gyro_rows[0]]))
            t_acc = _seconds(acc, acc_rows, origin, ticks)
            t_gyro = _seconds(gyro, gyro_rows, origin, ticks)
            rate = float(round(max(acc_rate, gyro_rate)))
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
            self.report.drop_rows(REPEATED, stream.where, int(repeated.sum()))
        return rows[~repeated]
