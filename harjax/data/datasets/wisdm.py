"""WISDM Activity Prediction v1.1 (Kwapisz, Weiss & Moore, 2010) as a tfds builder.

36 users, an Android phone in the front trouser pocket, 6 activities, accelerometer only at
20 Hz. `WISDM_ar_latest.tar.gz` holds `WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt`, one record per
line: `user,activity,timestamp,x,y,z;` with the timestamp in ns (phone uptime) and x/y/z as
Android reports them: m/s^2 with gravity included (the about file's "10 = 1g" is Android's
9.81 rounded), so no conversion.

Accelerometer only: `CHANNELS = ACC_CHANNELS`, every window is (window_length, 3). Nothing is
zero-filled; a model that needs 6 channels must mask the gyroscope explicitly.

Malformed lines, handled and counted (metadata `wisdm_repairs`, report `rows_dropped`):
- a line without its final `;`, several `;`-separated records on one line, a trailing comma
  before `;` (e.g. user 21): repaired, the records are kept;
- two records glued without `;` and the first one missing its z value (user 11): split at the
  second record's activity name, the incomplete one is dropped;
- a record with an empty field, or with timestamp 0 (a logging bug): dropped.
A record with too many fields that cannot be split, a non-number, or an unknown activity is a
DataError naming the line.

Recordings are runs of consecutive records of one (user, activity). Timestamps are used to
place samples on a uniform 20 Hz grid (`resample_irregular`); a step backwards or a gap longer
than `max_gap_s` splits the run. A run whose timestamps do not look like 20 Hz (median step
outside 25-100 ms) is taken as uniform 20 Hz in file order, and counted.
"""

from __future__ import annotations

import logging
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, decode_text, no_data
from harjax.data.builder import HARBuilder, Recording, recording_pieces
from harjax.data.errors import DataError
from harjax.data.signal import ACC_CHANNELS, resample_irregular

log = logging.getLogger(__name__)

ARCHIVE_NAME = "WISDM_ar_latest.tar.gz"
RAW_NAME = "WISDM_ar_v1.1_raw.txt"
SAMPLE_RATE = 20.0
CLASS_NAMES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")
DEVICE, POSITION = "android_phone", "front_pocket"

LABEL_MAP = labels.register_label_map(
    "wisdm",
    {
        "Walking": "walk",
        "Jogging": "run",
        "Upstairs": "upstairs",
        "Downstairs": "downstairs",
        "Sitting": "sit",
        "Standing": "stand",
    },
)


class Wisdm(HARBuilder):
    """WISDM v1.1: 36 users, 6 activities, phone accelerometer only (3 channels) at 20 Hz."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = ACC_CHANNELS
    ARCHIVE_NAME = ARCHIVE_NAME
    URL = "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/" + ARCHIVE_NAME
    ACCEPTED = (ARCHIVE_NAME, "WISDM_ar_v1.1", RAW_NAME)
    LABEL_MAP = LABEL_MAP
    LOOKED_FOR = f"labelled rows of {RAW_NAME}"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {ARCHIVE_NAME} from https://www.cis.fordham.edu/wisdm/dataset.php and put it "
        f"(or the extracted `WISDM_ar_v1.1` folder, or {RAW_NAME} itself) into manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        text, where = _raw_text(archive)
        if not text.strip():
            raise no_data(where, "records user,activity,timestamp,x,y,z;")
        records, repairs = self._parse(text, where)
        self.info.metadata["wisdm_repairs"] = dict(repairs)
        if repairs:
            log.info("wisdm: repaired malformed lines in %s: %s", where, dict(repairs))
        if not records:
            raise DataError(f"{where}: no valid records")
        users = np.array([r[0] for r in records])
        activities = np.array([r[1] for r in records])
        change = np.flatnonzero((users[1:] != users[:-1]) | (activities[1:] != activities[:-1]))
        bounds = [0, *(change + 1).tolist(), len(records)]
        run_index: Counter = Counter()
        for start, stop in zip(bounds[:-1], bounds[1:]):
            user, activity = records[start][0], records[start][1]
            run = run_index[user]
            run_index[user] += 1
            lines = (records[start][4], records[stop - 1][4])
            yield from self._run(records[start:stop], user, activity, run, where, lines)

    def _run(self, rows, user, activity, run, where, lines) -> Iterator[Recording]:
        """Recordings of one run of records (one user, one activity, consecutive lines)."""
        times = np.array([r[2] for r in rows], dtype=np.float64) * 1e-9
        xyz = np.array([r[3] for r in rows], dtype=np.float64)
        missing = np.isnan(xyz)
        if missing.all(axis=0).any():
            names = [ACC_CHANNELS[c] for c in np.flatnonzero(missing.all(axis=0))]
            raise DataError(
                f"{where}:{lines[0]}-{lines[1]}: {names} missing in all {len(rows)} records of "
                f"user {user}'s {activity} run: a broken file, not a gap"
            )
        # Records with a missing value (counted in `_record`) are left out: the 20 Hz grid
        # bridges their hole up to max_gap_s and splits beyond (docs/datasets/README.md).
        keep = ~missing.any(axis=1)
        rows, times, xyz = [r for r, k in zip(rows, keep) if k], times[keep], xyz[keep]
        steps = np.diff(times)
        if len(steps) and not 0.025 <= float(np.median(steps)) <= 0.1:
            log.warning("wisdm: %s:%s-%s: timestamps unusable, uniform 20 Hz", where, *lines)
            self.info.metadata.setdefault("wisdm_uniform_runs", []).append(
                f"{where}:{lines[0]}-{lines[1]}"
            )
            times = np.arange(len(rows)) / SAMPLE_RATE
            steps = np.diff(times)
        backwards = np.flatnonzero(steps <= 0) + 1
        self.report.segments_split += len(backwards)
        pieces = []
        for start, stop in zip([0, *backwards.tolist()], [*backwards.tolist(), len(rows)]):
            if stop - start < 2:
                self.report.drop_rows("run shorter than 2 samples", where, stop - start)
                continue
            pieces += resample_irregular(
                times[start:stop],
                xyz[start:stop],
                SAMPLE_RATE,
                self.builder_config.max_gap_s,
                source=f"{where}:{lines[0]}-{lines[1]}",
                report=self.report,
            )
        base = f"user{user}/{run:03d}_{activity}"
        yield from recording_pieces(
            pieces,
            base,
            sample_rate=SAMPLE_RATE,
            label=activity,
            subject=user,
            source=f"{where}:{lines[0]}-{lines[1]}",
            device=DEVICE,
            position=POSITION,
        )

    def _parse(self, text: str, where: str):
        """Valid records (user, activity, timestamp ns, (x, y, z), line) and repair counts."""
        records = []
        repairs: Counter = Counter()
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if not line.endswith(";"):
                repairs["line without final ';'"] += 1
            chunks = [chunk for chunk in line.split(";") if chunk.strip()]
            if len(chunks) > 1:
                repairs["several records on one line"] += len(chunks) - 1
            for chunk in chunks:
                for fields in _split_glued([f.strip() for f in chunk.split(",")], repairs):
                    record = self._record(fields, number, where, repairs)
                    if record is not None:
                        records.append(record)
        return records, repairs

    def _record(self, fields, number, where, repairs):
        if len(fields) == 7 and fields[6] == "":
            repairs["trailing comma"] += 1
            fields = fields[:6]
        if len(fields) < 6:
            self.report.drop_rows("record with missing fields", where)
            return None
        if len(fields) > 6:
            raise DataError(
                f"{where}:{number}: expected 6 fields user,activity,timestamp,x,y,z; found "
                f"{len(fields)}: {','.join(fields)!r}"
            )
        user, activity, timestamp, *xyz = fields
        if "" in (user, activity, timestamp):
            self.report.drop_rows("record with an empty field", where)
            return None
        if activity not in CLASS_NAMES:
            raise DataError(
                f"{where}:{number}: unknown activity {activity!r}; expected one of {CLASS_NAMES}"
            )
        try:
            timestamp_ns = int(timestamp)
            values = tuple(float(v) if v else np.nan for v in xyz)
            int(user)
        except ValueError as error:
            raise DataError(f"{where}:{number}: {error} in {','.join(fields)!r}") from error
        if np.isinf(values).any():
            raise DataError(f"{where}:{number}: infinite value in {','.join(fields)!r}")
        if timestamp_ns == 0:
            self.report.drop_rows("timestamp 0", where)
            return None
        if np.isnan(values).any():  # a missing value (empty or `nan`): see `_run`
            self.report.count_missing(where, [number])
        return (user, activity, timestamp_ns, values, number)


def _split_glued(fields: list[str], repairs: Counter) -> list[list[str]]:
    """Splits records written without `;` between them, at each activity name after the first."""
    starts = [i - 1 for i, field in enumerate(fields) if i >= 1 and field in CLASS_NAMES]
    if len(fields) <= 7 or len(starts) < 2 or starts[0] != 0:
        return [fields]
    repairs["records glued without ';'"] += len(starts) - 1
    return [fields[a:b] for a, b in zip(starts, [*starts[1:], len(fields)])]


def _raw_text(archive: Path) -> tuple[str, str]:
    """The raw file's text and a name for it: from the tar.gz, a folder, or the file itself."""
    archive = Path(archive)
    if archive.is_dir():
        with ArchiveMembers(archive) as members:
            name = members.locate(RAW_NAME)
            return members.read_text(name), members.describe(name)
    if archive.name == RAW_NAME:
        return decode_text(archive.read_bytes(), str(archive)), str(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            hits = [n for n in names if n == RAW_NAME or n.endswith("/" + RAW_NAME)]
            if len(hits) != 1:
                raise DataError(
                    f"{archive}: expected exactly one '.../{RAW_NAME}', found {hits or 'none'} "
                    f"among {names[:10]}"
                )
            data = tar.extractfile(hits[0]).read()
    except (tarfile.TarError, zlib.error, EOFError, OSError) as error:
        raise DataError(f"{archive}: not a readable tar.gz archive ({error})") from error
    where = f"{archive}!{hits[0]}"
    return decode_text(data, where), where
