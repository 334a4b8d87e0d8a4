"""UCI-HAR (Human Activity Recognition Using Smartphones, Reyes-Ortiz et al.) as a tfds builder.

30 subjects, a Samsung Galaxy S II on the waist, 6 activities, 50 Hz accelerometer + gyroscope.
The release ships only windows: each row of `Inertial Signals/<signal>_<axis>_<split>.txt` is
128 samples (2.56 s) and consecutive rows of one activity segment overlap by 50 % (64 samples).

Recordings are rebuilt from the windows: row i+1 continues row i when the subject and activity
are equal and its first 64 samples are bit-identical to the last 64 of row i (the text files
print the same value the same way). At the defaults (50 Hz, 128/64) the rebuilt recordings give
back exactly the official windows; other rates/windows work from the same recordings. A row
that continues nothing starts a new recording (counted in metadata `uci_har_chaining`).

Units: `total_acc` (gravity included, in g) x STANDARD_GRAVITY -> m/s^2; `body_gyro` is rad/s
already. `body_acc` (gravity removed by the authors' 0.3 Hz filter) is not used, so that every
dataset keeps gravity. Official split: train (21 subjects) / test (9 subjects) -> tfds splits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, no_data, read_number_table
from harjax.data.builder import HARBuilder, Recording, Report
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, STANDARD_GRAVITY

log = logging.getLogger(__name__)


ROOT = "UCI HAR Dataset"
CLASS_NAMES = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
SAMPLE_RATE = 50.0
WINDOW, STEP = 128, 64  # the release's windows: 2.56 s, 50 % overlap
# Signal files in canonical channel order, with the factor to canonical units.
SIGNAL_FILES = (
    ("total_acc_x", STANDARD_GRAVITY),
    ("total_acc_y", STANDARD_GRAVITY),
    ("total_acc_z", STANDARD_GRAVITY),
    ("body_gyro_x", 1.0),
    ("body_gyro_y", 1.0),
    ("body_gyro_z", 1.0),
)
DEVICE, POSITION = "galaxy_s2", "waist"

LABEL_MAP = labels.register_label_map(
    "uci_har",
    {
        "WALKING": "walk",
        "WALKING_UPSTAIRS": "upstairs",
        "WALKING_DOWNSTAIRS": "downstairs",
        "SITTING": "sit",
        "STANDING": "stand",
        "LAYING": "lie",
    },
)


def _read_matrix(members: ArchiveMembers, name: str, width: int | None) -> np.ndarray:
    """Whitespace-separated numbers, `width` per line (None: one per line); errors name the line."""
    per_line = "one number" if width is None else f"{width} numbers"
    matrix = read_number_table(
        members, name, width or 1, expected=f"{per_line} per line, one line per window"
    )
    return matrix[:, 0] if width is None else matrix


def _read_ids(members: ArchiveMembers, name: str) -> np.ndarray:
    values = _read_matrix(members, name, None)
    bad = np.flatnonzero((values != np.round(values)) | (values < 1))
    if len(bad):
        raise DataError(
            f"{members.describe(name)}:{bad[0] + 1}: expected a positive integer id, "
            f"found {values[bad[0]]}"
        )
    return values.astype(np.int64)


def check_activity_labels(
    members: ArchiveMembers, name: str, class_names: tuple[str, ...] = CLASS_NAMES
) -> None:
    """`activity_labels.txt` is the release's "1 WALKING" ... list of `class_names` (UCI-HAR's
    six; UCI HAPT's twelve): an id read elsewhere then means the activity we name it."""
    lines = [line for line in members.read_text(name).splitlines() if line.strip()]
    expected = [f"{i} {label}" for i, label in enumerate(class_names, start=1)]
    if not lines:
        raise no_data(members.describe(name), f"the {len(expected)} lines 'id ACTIVITY'")
    for number, (line, want) in enumerate(zip(lines, expected, strict=False), start=1):
        if line.split() != want.split():
            raise DataError(f"{members.describe(name)}:{number}: expected {want!r}, found {line!r}")
    if len(lines) != len(expected):
        raise DataError(
            f"{members.describe(name)}: expected {len(expected)} activities, found {len(lines)}"
        )


def chain_windows(subjects: np.ndarray, activities: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Booleans (n,): row i continues row i-1 (same subject/activity, 64 identical samples).

    NaN equals NaN here, so a missing sample (filled later by the core) does not break a chain.
    """
    if len(signal) == 0:
        return np.zeros(0, dtype=bool)
    head, tail = signal[1:, :STEP], signal[:-1, WINDOW - STEP :]
    same = (head == tail) | (np.isnan(head) & np.isnan(tail))
    follows = (
        (subjects[1:] == subjects[:-1])
        & (activities[1:] == activities[:-1])
        & same.all(axis=(1, 2))
    )
    return np.concatenate([[False], follows])


def read_split(
    members: ArchiveMembers, split: str, report: Report | None = None
) -> Iterator[Recording]:
    """Rebuilt recordings of one official split (`train` or `test`); rows holding a `nan`
    are counted in `report.missing_values` and left to the base's gap filling."""
    y_name = members.locate(f"{split}/y_{split}.txt")
    subject_name = members.locate(f"{split}/subject_{split}.txt")
    activities, subjects = _read_ids(members, y_name), _read_ids(members, subject_name)
    if len(subjects) != len(activities):
        raise DataError(
            f"{members.describe(subject_name)}: {len(subjects)} rows, but "
            f"{members.describe(y_name)} has {len(activities)}; expected one per window"
        )
    if len(activities) == 0:
        raise DataError(f"{members.describe(y_name)}: empty; expected the {split} split's windows")
    unknown = np.flatnonzero(activities > len(CLASS_NAMES))
    if len(unknown):
        raise DataError(
            f"{members.describe(y_name)}:{unknown[0] + 1}: unknown activity id "
            f"{activities[unknown[0]]}; expected 1..{len(CLASS_NAMES)} (activity_labels.txt)"
        )
    columns, names = [], []
    for signal_name, factor in SIGNAL_FILES:
        name = members.locate(f"{split}/Inertial Signals/{signal_name}_{split}.txt")
        matrix = _read_matrix(members, name, WINDOW)
        if len(matrix) != len(activities):
            raise DataError(
                f"{members.describe(name)}: {len(matrix)} rows, but {members.describe(y_name)} "
                f"has {len(activities)}; expected one window per label"
            )
        if report is not None:
            report.count_missing(
                members.describe(name), np.flatnonzero(np.isnan(matrix).any(axis=1)) + 1
            )
        columns.append(matrix * factor)
        names.append(name)
    signal = np.stack(columns, axis=-1)  # (rows, 128, 6)
    follows = chain_windows(subjects, activities, signal)
    starts = np.flatnonzero(~follows).tolist() + [len(follows)]
    where = members.describe(names[0]).replace(SIGNAL_FILES[0][0], "*")
    for index, (start, stop) in enumerate(zip(starts[:-1], starts[1:])):
        pieces = [signal[start]] + [signal[row, WINDOW - STEP :] for row in range(start + 1, stop)]
        label = CLASS_NAMES[activities[start] - 1]
        yield Recording(
            signal=np.concatenate(pieces, axis=0),
            sample_rate=SAMPLE_RATE,
            label=label,
            subject=str(subjects[start]),
            recording_id=f"{split}/{index:04d}",
            source=f"{where} lines {start + 1}-{stop}",
            device=DEVICE,
            position=POSITION,
            split=split,
        )


class UciHar(HARBuilder):
    """UCI-HAR: waist smartphone, 30 subjects, 6 activities, official train/test split."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    SPLITS = ("train", "test")
    LABEL_MAP = LABEL_MAP
    ARCHIVE_NAME = "human+activity+recognition+using+smartphones.zip"
    # The UCI repository's download (it holds `UCI HAR Dataset.zip`). The checksum is the one
    # published alongside this URL by a public project that pins it (see docs/datasets/uci_har.md).
    URL = "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
    SHA256 = "c00b803081a5c797cd5e4b83700a9810b38d53d9d84e01917e090e1fdbc81031"
    ACCEPTED = (ARCHIVE_NAME, "UCI HAR Dataset.zip", ROOT)
    LOOKED_FOR = (
        "train/ and test/ windows (Inertial Signals/*_{train,test}.txt, y_*.txt, subject_*.txt) "
        "under 'UCI HAR Dataset/'"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download https://archive.ics.uci.edu/dataset/240 (human+activity+recognition+using+"
        "smartphones.zip) and put it, or the 'UCI HAR Dataset.zip' inside it, or the extracted "
        "'UCI HAR Dataset' folder, into manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive, nested=("UCI HAR Dataset.zip",)) as members:
            check_activity_labels(members, members.locate("activity_labels.txt"))
            rows = recordings = 0
            for split in self.SPLITS:
                for recording in read_split(members, split, self.report):
                    rows += 1 + (len(recording.signal) - WINDOW) // STEP
                    recordings += 1
                    yield recording
        self.info.metadata["uci_har_chaining"] = {"windows": rows, "recordings": recordings}
        log.info("uci_har: %d official windows chained into %d recordings", rows, recordings)
