"""PAMAP2 Physical Activity Monitoring (Reiss & Stricker, 2012) as a tfds builder.

9 subjects with 3 Colibri IMUs (dominant wrist "hand", chest, dominant ankle) at 100 Hz.
`PAMAP2_Dataset.zip` holds `PAMAP2_Dataset/Protocol/subject10N.dat` (and `Optional/` for the
optional activities of subjects 101, 105, 106, 108, 109): space-separated text, 54 columns:
timestamp (s), activityID, heart rate (bpm, ~9 Hz, NaN elsewhere), then 17 columns per IMU
(hand, chest, ankle): temperature, acc +-16 g (m/s^2) x3, acc +-6 g x3, gyro (rad/s) x3,
magnetometer (uT) x3, orientation x4 ("invalid in this data collection").

Used: the +-16 g accelerometer (the +-6 g one saturates in fast movements, as the readme says)
and the gyroscope, already in m/s^2 (gravity included) and rad/s: no conversion. Each IMU is
its own recording (`position` = hand / chest / ankle; select with HARConfig(positions=...)).
Heart rate, temperature, magnetometer and orientation are not used.

Quirks handled, all counted in the report: activityID 0 ("other, transient activities") rows
are dropped; NaN samples (wireless packet loss) are interpolated up to `max_gap_s` and split
the recording beyond; missing timestamps (a step longer than one sample) become NaN gaps
treated the same way; a step backwards or a jump beyond `max_gap_s` splits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, no_data
from harjax.data.builder import HARBuilder, Recording, natural_key
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, split_on_label_change

log = logging.getLogger(__name__)

ARCHIVE_NAME = "PAMAP2_Dataset.zip"
UCI_ARCHIVE_NAME = "pamap2+physical+activity+monitoring.zip"  # the repository's zip around it
SAMPLE_RATE = 100.0
NUM_COLUMNS = 54
TRANSIENT = 0
# activityID -> name (the readme's names, lower case, spaces as underscores).
ACTIVITIES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "nordic_walking",
    9: "watching_tv",
    10: "computer_work",
    11: "car_driving",
    12: "ascending_stairs",
    13: "descending_stairs",
    16: "vacuum_cleaning",
    17: "ironing",
    18: "folding_laundry",
    19: "house_cleaning",
    20: "playing_soccer",
    24: "rope_jumping",
}
CLASS_NAMES = tuple(ACTIVITIES.values())
# First column (0-based) of each IMU's 17; acc +-16 g at +1..+3, gyro at +7..+9.
IMU_COLUMNS = {"hand": 3, "chest": 20, "ankle": 37}
POSITIONS = tuple(IMU_COLUMNS)

LABEL_MAP = labels.register_label_map(
    "pamap2",
    {
        "lying": "lie",
        "sitting": "sit",
        "standing": "stand",
        "walking": "walk",
        "running": "run",
        "cycling": "bike",
        "nordic_walking": None,  # walking with poles: arm motion unlike walking
        "watching_tv": None,
        "computer_work": None,
        "car_driving": None,
        "ascending_stairs": "upstairs",
        "descending_stairs": "downstairs",
        "vacuum_cleaning": None,
        "ironing": None,
        "folding_laundry": None,
        "house_cleaning": None,
        "playing_soccer": None,
        "rope_jumping": "jump",
    },
)

_DAT = re.compile(r"(?:^|/)(Protocol|Optional)/subject(\d+)\.dat$")


class Pamap2(HARBuilder):
    """PAMAP2: 9 subjects, 18 activities, 3 IMUs (hand, chest, ankle), acc + gyro at 100 Hz."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    ARCHIVE_NAME = ARCHIVE_NAME
    URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00231/" + ARCHIVE_NAME
    ACCEPTED = (ARCHIVE_NAME, UCI_ARCHIVE_NAME, "PAMAP2_Dataset")
    LABEL_MAP = LABEL_MAP
    LOOKED_FOR = "PAMAP2_Dataset/{Protocol,Optional}/subject<id>.dat rows with an activity id"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {ARCHIVE_NAME} (or the repository's {UCI_ARCHIVE_NAME} around it) from "
        "https://archive.ics.uci.edu/dataset/231/pamap2+physical+activity+monitoring and put it "
        "(or the extracted `PAMAP2_Dataset` folder) into manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive, nested=(ARCHIVE_NAME,)) as members:
            files = [(m, name) for name in members.names() if (m := _DAT.search(name))]
            if not any(m.group(1) == "Protocol" for m, _ in files):
                raise DataError(
                    f"{archive}: expected 'PAMAP2_Dataset/Protocol/subject<id>.dat' files, "
                    f"found none among {members.names()[:10]}"
                )
            for match, name in sorted(files, key=lambda item: natural_key(item[1])):
                folder, subject = match.groups()
                table, lines = _read_dat(members.read_text(name), members.describe(name))
                yield from self._file(table, lines, folder, subject, members.describe(name))

    def _file(self, table: np.ndarray, lines: list[int], folder: str, subject: str, where: str):
        """Recordings of one .dat file: one per activity run, IMU and gap-free stretch."""
        # NaN samples (dropped packets) stay NaN for the base's gap filling; counted by line.
        used = [first + offset for first in IMU_COLUMNS.values() for offset in (1, 2, 3, 7, 8, 9)]
        missing = np.flatnonzero(np.isnan(table[:, used]).any(axis=1))
        self.report.count_missing(where, np.asarray(lines)[missing])
        for run, (start, stop, activity) in enumerate(split_on_label_change(table[:, 1])):
            if activity == TRANSIENT:
                self.report.drop_rows("activityID 0 (transient)", where, stop - start)
                continue
            label = ACTIVITIES[int(activity)]
            pieces = _regular_pieces(table[start:stop], self.builder_config.max_gap_s)
            self.report.segments_split += len(pieces) - 1
            for position, first in IMU_COLUMNS.items():
                for index, (begin, end, rows) in enumerate(pieces):
                    columns = [*range(first + 1, first + 4), *range(first + 7, first + 10)]
                    recording_id = f"{folder}/subject{subject}/{run:03d}_{label}/{position}"
                    if len(pieces) > 1:
                        recording_id += f"/part{index}"
                    first_line, last_line = lines[start + begin], lines[start + end - 1]
                    yield Recording(
                        signal=rows[:, columns],
                        sample_rate=SAMPLE_RATE,
                        label=label,
                        subject=subject,
                        recording_id=recording_id,
                        source=f"{where}:{first_line}-{last_line} ({position} IMU)",
                        device="colibri_imu",
                        position=position,
                    )


def _read_dat(text: str, where: str) -> tuple[np.ndarray, list[int]]:
    """The (rows, 54) table of a .dat file and each row's line number; errors name the line."""
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise no_data(where, f"{NUM_COLUMNS} space-separated columns per line")
    table = None
    try:
        table = np.loadtxt(lines, dtype=np.float64, ndmin=2)
    except ValueError:
        pass
    if table is None or table.shape[1] != NUM_COLUMNS:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if fields and len(fields) != NUM_COLUMNS:
                raise DataError(
                    f"{where}:{number}: expected {NUM_COLUMNS} space-separated columns, "
                    f"found {len(fields)}"
                )
            try:
                [float(field) for field in fields]
            except ValueError as error:
                raise DataError(f"{where}:{number}: {error}") from error
        raise DataError(f"{where}: could not parse as {NUM_COLUMNS} numeric columns")
    rows = [number for number, line in enumerate(lines, 1) if line.strip()]
    ids = table[:, 1]
    known = np.isin(ids, [TRANSIENT, *ACTIVITIES])
    if not known.all():
        bad = int(np.flatnonzero(~known)[0])
        raise DataError(
            f"{where}:{rows[bad]}: unknown activityID {ids[bad]}; expected 0 or one of "
            f"{sorted(ACTIVITIES)}"
        )
    if not np.isfinite(table[:, 0]).all():
        bad = int(np.flatnonzero(~np.isfinite(table[:, 0]))[0])
        raise DataError(f"{where}:{rows[bad]}: timestamp is {table[bad, 0]}")
    return table, rows


def _regular_pieces(rows: np.ndarray, max_gap_s: float) -> list[tuple[int, int, np.ndarray]]:
    """(first row, stop row, rows on the uniform 100 Hz grid) of one activity run.

    Missing timestamps up to `max_gap_s` become NaN rows (gap-filled by the base, counted);
    a longer jump or a step backwards splits the run.
    """
    times = rows[:, 0]
    steps = np.round(np.diff(times) * SAMPLE_RATE).astype(np.int64)
    cuts = np.flatnonzero((steps <= 0) | (steps > max_gap_s * SAMPLE_RATE + 1)) + 1
    bounds = [0, *cuts.tolist(), len(rows)]
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        piece = rows[start:stop]
        index = np.concatenate([[0], np.cumsum(steps[start : stop - 1])])
        if index[-1] + 1 != len(piece):
            regular = np.full((index[-1] + 1, rows.shape[1]), np.nan)
            regular[index] = piece
            piece = regular
        pieces.append((start, stop, piece))
    return pieces
