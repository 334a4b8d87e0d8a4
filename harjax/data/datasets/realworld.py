"""RealWorld (HAR) 2016 (Sztyler & Stuckenschmidt, PerCom 2016) as a tfds builder.

15 subjects ("probands"), 8 activities, 7 on-body positions; a Samsung Galaxy S4 phone at six
positions and an LG G Watch R on the forearm, each logging accelerometer and gyroscope at
~50 Hz with its own clock. Layout of `realworld2016_dataset.zip`:

    proband<N>/data/acc_<activity>_csv.zip   -> acc_<activity>_<position>.csv (+ readMe)
    proband<N>/data/gyr_<activity>_csv.zip   -> Gyroscope_<activity>_<position>.csv
    (mag_, lig_, mic_, gps_ zips, *_sqlite.zip, images/ ... are not used)

Each CSV has the header `id,attr_time,attr_x,attr_y,attr_z`, `attr_time` in ms since the epoch.
Quirks handled: activities recorded in several sessions (probands 4, 7, 14 climbing) come as
zips inside the sensor zip (`acc_climbingup_2_csv.zip` -> `acc_climbingup_2_<pos>.csv`; the first
session's CSVs carry no number, and gyr's first inner zip has no `_1`); some single-session CSVs
are named `<activity>_2` (e.g. proband 4 walking); some positions were never recorded (proband 2
climbingup forearm, proband 6 jumping thigh: counted in the report, not an error).

Units: Android's accelerometer (m/s^2, gravity included) and gyroscope (rad/s) as recorded, so
no conversion. The two streams are aligned by timestamp over the time both cover
(`align_streams`) at their nominal rate; the base resamples to the configured rate.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, decode_text, no_data
from harjax.data.builder import HARBuilder, Recording, natural_key, recording_pieces
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, align_streams, nominal_rate

log = logging.getLogger(__name__)

ARCHIVE_NAME = "realworld2016_dataset.zip"
CLASS_NAMES = (
    "climbingdown",
    "climbingup",
    "jumping",
    "lying",
    "running",
    "sitting",
    "standing",
    "walking",
)
POSITIONS = ("chest", "forearm", "head", "shin", "thigh", "upperarm", "waist")
# Prefix of the per-activity zip -> prefix of the CSVs inside it.
SENSORS = {"acc": "acc", "gyr": "Gyroscope"}
CSV_HEADER = ["id", "attr_time", "attr_x", "attr_y", "attr_z"]

LABEL_MAP = labels.register_label_map(
    "realworld",
    {
        "climbingdown": "downstairs",
        "climbingup": "upstairs",
        "jumping": "jump",
        "lying": "lie",
        "running": "run",
        "sitting": "sit",
        "standing": "stand",
        "walking": "walk",
    },
)

_SENSOR_ZIP = re.compile(r"(?:^|/)proband(\d+)/data/(acc|gyr)_([A-Za-z]+)_csv\.zip$")
_CSV = re.compile(r"^(acc|Gyroscope)_([A-Za-z]+)(?:_(\d+))?_([A-Za-z]+)\.csv$")


def _device(position: str) -> str:
    return "watch" if position == "forearm" else "phone"


class RealWorld(HARBuilder):
    """RealWorld 2016: 15 subjects, 8 activities, 7 body positions, acc + gyro at ~50 Hz."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    ARCHIVE_NAME = ARCHIVE_NAME
    URL = "http://wifo5-14.informatik.uni-mannheim.de/sensor/dataset/realworld2016/" + ARCHIVE_NAME
    ACCEPTED = (ARCHIVE_NAME, "realworld2016_dataset")
    LABEL_MAP = LABEL_MAP
    LOOKED_FOR = (
        "proband<N>/data/{acc,gyr}_<activity>_csv.zip holding overlapping accelerometer and "
        "gyroscope CSVs of one position"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {ARCHIVE_NAME} from "
        "https://www.uni-mannheim.de/dws/research/projects/activity-recognition/dataset/"
        f"dataset-realworld/ and put it (or its extracted folder `realworld2016_dataset`) into "
        "manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive) as members:
            groups: dict[tuple[str, str], dict[str, str]] = {}
            for name in members.names():
                match = _SENSOR_ZIP.search(name)
                if match:
                    subject, sensor, activity = match.groups()
                    groups.setdefault((subject, activity), {})[sensor] = name
            if not groups:
                raise DataError(
                    f"{archive}: expected members 'proband<N>/data/acc_<activity>_csv.zip' "
                    f"(and gyr_...), found none among {len(members.names())} files"
                )
            for (subject, activity), zips in sorted(
                groups.items(), key=lambda item: natural_key("/".join(item[0]))
            ):
                for sensor in SENSORS:
                    if sensor not in zips:
                        other = next(iter(zips.values()))
                        missing = re.sub(
                            r"/(acc|gyr)_([A-Za-z]+_csv\.zip)$", rf"/{sensor}_\2", other
                        )
                        raise DataError(
                            f"{members.describe(missing)}: missing; expected beside "
                            f"{members.describe(other)} (acc and gyr are read together)"
                        )
                if activity not in CLASS_NAMES:
                    raise DataError(
                        f"{members.describe(zips['acc'])}: unknown activity {activity!r}; "
                        f"expected one of {CLASS_NAMES}"
                    )
                yield from self._activity(members, subject, activity, zips)

    def _activity(
        self, members: ArchiveMembers, subject: str, activity: str, zips: dict[str, str]
    ) -> Iterator[Recording]:
        """All positions (and sessions) of one subject's activity."""
        files = {
            sensor: _csv_files(members, zips[sensor], SENSORS[sensor], activity)
            for sensor in SENSORS
        }
        absent = []
        for position in POSITIONS:
            acc = files["acc"].get(position, {})
            gyr = files["gyr"].get(position, {})
            if not acc and not gyr:
                # Known holes of the release (e.g. proband 2 climbingup forearm): counted.
                self.report.exclude("position not in the archive")
                absent.append(position)
                continue
            for session, acc_file, gyr_file in _pair_sessions(acc, gyr, members, zips):
                yield from self._position(subject, activity, position, session, acc_file, gyr_file)
        if absent:
            log.warning("realworld: proband%s %s has no files of %s", subject, activity, absent)

    def _position(self, subject, activity, position, session, acc_file, gyr_file):
        t_acc, acc = self._read_csv(*acc_file)
        t_gyr, gyr = self._read_csv(*gyr_file)
        source = f"{acc_file[1]} + {gyr_file[1]}"
        if len(t_acc) < 2 or len(t_gyr) < 2:
            self.report.exclude("fewer than 2 samples in acc or gyro file")
            log.warning("realworld: %s has fewer than 2 samples in a stream", source)
            return
        acc_rate = nominal_rate(t_acc, source=acc_file[1])
        gyr_rate = nominal_rate(t_gyr, source=gyr_file[1])
        stream = f"proband{subject}/{activity}" + (f"/session{session}" if session else "")
        self.report.sample_rates[f"{stream}/{position}"] = {
            "accelerometer": round(acc_rate, 2),
            "gyroscope": round(gyr_rate, 2),
        }
        rate = round(max(acc_rate, gyr_rate), 2)
        pieces = align_streams(
            t_acc,
            acc,
            t_gyr,
            gyr,
            to_hz=rate,
            max_gap_s=self.builder_config.max_gap_s,
            source=source,
            report=self.report,
        )
        if not pieces:
            self.report.exclude("acc and gyro files do not overlap in time")
            log.warning("realworld: %s: acc and gyro do not overlap in time", source)
        base = f"proband{subject}/{activity}/{position}"
        if session is not None:
            base += f"/session{session}"
        yield from recording_pieces(
            pieces,
            base,
            sample_rate=rate,
            label=activity,
            subject=subject,
            source=source,
            device=_device(position),
            position=position,
        )

    def _read_csv(self, data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps in s, (n, 3) values) of one CSV. Rows with a missing value are counted
        (`report.missing_values`) and left out: the timestamp-based alignment interpolates
        over the hole up to `max_gap_s` and splits beyond (docs/datasets/README.md)."""
        lines = decode_text(data, where).splitlines()
        expected = f"the header {','.join(CSV_HEADER)} and data rows"
        if not any(line.strip() for line in lines):
            raise no_data(where, expected)
        header = [field.strip() for field in lines[0].split(",")]
        if header != CSV_HEADER:
            raise DataError(f"{where}:1: expected header {','.join(CSV_HEADER)}, found {header}")
        if not any(line.strip() for line in lines[1:]):
            raise no_data(where, expected, header=lines[0])
        table = _parse_table(lines[1:], len(CSV_HEADER), where, first_line=2)
        times, values = table[:, 1] / 1000.0, table[:, 2:5]
        if np.isnan(values).all(axis=0).any():
            raise DataError(f"{where}: a channel is all NaN ({len(values)} rows)")
        bad = np.flatnonzero(np.isinf(table).any(axis=1))
        if len(bad):
            raise DataError(f"{where}:{bad[0] + 2}: inf value in {lines[bad[0] + 1]!r}")
        if np.isnan(times).any():
            row = int(np.flatnonzero(np.isnan(times))[0])
            raise DataError(f"{where}:{row + 2}: empty attr_time; expected ms since the epoch")
        keep = ~np.isnan(values).any(axis=1)
        self.report.count_missing(where, np.flatnonzero(~keep) + 2)
        times, values = times[keep], values[keep]
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        unique = np.concatenate([[True], np.diff(times) > 0])
        if not unique.all():
            self.report.drop_rows("repeated timestamp", where, int((~unique).sum()))
        return times[unique], values[unique]


def _parse_table(lines: list[str], columns: int, where: str, *, first_line: int) -> np.ndarray:
    """Comma-separated numbers, `columns` per line; errors name the file and line."""
    if not lines:
        return np.zeros((0, columns))
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape[1] == columns:
            return table
    except ValueError:
        pass
    rows = []  # the slow path: empty cells are missing values (NaN), anything else an error
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != columns:
            raise DataError(
                f"{where}:{first_line + offset}: expected {columns} comma-separated columns, "
                f"found {len(fields)}: {line!r}"
            )
        try:
            rows.append([float(field) if field.strip() else np.nan for field in fields])
        except ValueError as error:
            raise DataError(f"{where}:{first_line + offset}: {error}: {line!r}") from error
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def _csv_files(
    members: ArchiveMembers, zip_name: str, prefix: str, activity: str
) -> dict[str, dict[int | None, tuple[bytes, str]]]:
    """position -> session number (None = unnumbered) -> (CSV bytes, where) of a sensor zip,
    descending into the zips that hold the sessions of multi-session activities."""
    found: dict[str, dict[int | None, tuple[bytes, str]]] = {}

    def visit(data: bytes, where: str) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            entries = [(n, archive.read(n)) for n in archive.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            raise DataError(f"{where}: not a readable zip archive ({error})") from error
        for name, payload in entries:
            base = name.rsplit("/", 1)[-1]
            inner_where = f"{where}!{name}"
            if base.endswith(".zip"):
                visit(payload, inner_where)
                continue
            if not base.endswith(".csv"):
                continue  # readMe and similar notes
            match = _CSV.match(base)
            if not match or match.group(1) != prefix:
                raise DataError(
                    f"{inner_where}: expected a CSV named {prefix}_<activity>[_<n>]_<position>.csv"
                )
            _, csv_activity, number, position = match.groups()
            if csv_activity != activity:
                raise DataError(
                    f"{inner_where}: activity {csv_activity!r} in a zip of {activity!r}; "
                    f"expected one of {CLASS_NAMES} matching the zip"
                )
            if position not in POSITIONS:
                raise DataError(
                    f"{inner_where}: unknown position {position!r}; expected {POSITIONS}"
                )
            session = int(number) if number else None
            slot = found.setdefault(position, {})
            if session in slot:
                raise DataError(f"{inner_where}: duplicate of {slot[session][1]}")
            slot[session] = (payload, inner_where)

    try:
        with members.open(zip_name) as f:
            outer = f.read()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise DataError(
            f"{members.describe(zip_name)}: corrupt archive member ({error})"
        ) from error
    visit(outer, members.describe(zip_name))
    return found


def _pair_sessions(acc, gyr, members: ArchiveMembers, zips: dict[str, str]):
    """(session, acc file, gyro file) pairs of one position.

    One file per sensor pairs directly, whatever its number (the `<activity>_2` anomaly);
    several sessions pair by number, an unnumbered CSV being session 1.
    """
    if len(acc) == 1 and len(gyr) == 1:
        yield None, next(iter(acc.values())), next(iter(gyr.values()))
        return
    by_session = {
        sensor: {1 if number is None else number: file for number, file in files.items()}
        for sensor, files in (("acc", acc), ("gyr", gyr))
    }
    for session in sorted(set(by_session["acc"]) | set(by_session["gyr"])):
        for sensor, other in (("acc", "gyr"), ("gyr", "acc")):
            if session not in by_session[sensor]:
                partner = by_session[other][session][1]
                raise DataError(
                    f"{members.describe(zips[sensor])}: no {SENSORS[sensor]} CSV for session "
                    f"{session} to pair with {partner}"
                )
        yield session, by_session["acc"][session], by_session["gyr"][session]
