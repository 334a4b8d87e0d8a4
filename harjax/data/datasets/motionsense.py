"""MotionSense (Malekzadeh et al. 2018/2019) as a tfds builder.

24 subjects, an iPhone 6s in the trousers' front pocket, 6 activities in 15 trials, CoreMotion's
device-motion stream at 50 Hz: `A_DeviceMotion_data/<act>_<trial>/sub_<N>.csv` with a pandas
index column and `attitude.{roll,pitch,yaw}`, `gravity.{x,y,z}`, `rotationRate.{x,y,z}`,
`userAcceleration.{x,y,z}`. One file is one recording.

Units and sign: CoreMotion splits the accelerometer into `gravity + userAcceleration`, in g,
with iOS's sign (a phone lying face up reads z = -1 g). Android, and hence UCI-HAR, HHAR and
the canonical layout, report the specific force (face up: z = +9.81 m/s^2). So
    acc = -(gravity + userAcceleration) * STANDARD_GRAVITY   (gravity kept, m/s^2)
and gyro = rotationRate (rad/s; right-handed on both platforms, no sign change).
Attitude is not used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, no_data
from harjax.data.builder import HARBuilder, Recording, natural_key
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, STANDARD_GRAVITY

ROOT = "A_DeviceMotion_data"
COLUMNS = (
    "attitude.roll",
    "attitude.pitch",
    "attitude.yaw",
    "gravity.x",
    "gravity.y",
    "gravity.z",
    "rotationRate.x",
    "rotationRate.y",
    "rotationRate.z",
    "userAcceleration.x",
    "userAcceleration.y",
    "userAcceleration.z",
)
CLASS_NAMES = ("dws", "ups", "wlk", "jog", "std", "sit")
# The release's trials per activity (numbers 1-9 long, 11-16 short); informative, not enforced.
TRIALS = {
    "dws": (1, 2, 11),
    "ups": (3, 4, 12),
    "wlk": (7, 8, 15),
    "jog": (9, 16),
    "std": (6, 14),
    "sit": (5, 13),
}
SAMPLE_RATE = 50.0
DEVICE, POSITION = "iphone6s", "front_pocket"
IOS_TO_CANONICAL_ACC = -STANDARD_GRAVITY  # g, iOS sign -> m/s^2, specific-force sign
_MEMBER = re.compile(rf"(?:^|/){ROOT}/(?P<folder>[^/]+)/(?P<file>[^/]+)$")
_TRIAL = re.compile(r"(?P<act>[a-z]+)_(?P<trial>\d+)")
_SUBJECT = re.compile(r"sub_(?P<subject>\d+)\.csv")

LABEL_MAP = labels.register_label_map(
    "motion_sense",
    {
        "dws": "downstairs",
        "ups": "upstairs",
        "wlk": "walk",
        "jog": "run",
        "std": "stand",
        "sit": "sit",
    },
)


def read_trial_file(members: ArchiveMembers, name: str) -> np.ndarray:
    """(n, 6) canonical signal of one `sub_N.csv`; errors name the file and line."""
    where = members.describe(name)
    types = {c: pa.float64() for c in COLUMNS}
    with members._read_errors(name), members.open_utf8(name) as f:
        try:
            table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(column_types=types))
        except pa.ArrowInvalid as error:
            raise _locate(members, name, error) from error
    if tuple(table.column_names) != ("", *COLUMNS):
        raise DataError(
            f"{where}:1: expected header ',{','.join(COLUMNS)}', "
            f"found {','.join(table.column_names)!r}"
        )
    if table.num_rows == 0:
        raise no_data(where, "device-motion rows at 50 Hz", header=",".join(("", *COLUMNS)))
    values = {c: table[c].to_numpy(zero_copy_only=False) for c in COLUMNS}
    acc = np.stack([values[f"gravity.{a}"] + values[f"userAcceleration.{a}"] for a in "xyz"], 1)
    gyro = np.stack([values[f"rotationRate.{a}"] for a in "xyz"], 1)
    signal = np.concatenate([acc * IOS_TO_CANONICAL_ACC, gyro], axis=1)
    inf = np.argwhere(np.isinf(signal))
    if len(inf):
        row, channel = inf[0]
        raise DataError(f"{where}:{row + 2}: inf in {CANONICAL_CHANNELS[channel]}")
    return signal


def _locate(members: ArchiveMembers, name: str, error: Exception) -> DataError:
    """The offending line of a CSV pyarrow refused (only on this error path)."""
    where = members.describe(name)
    with members.open_utf8(name) as f:
        for number, raw in enumerate(f, start=1):
            fields = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
            if len(fields) != len(COLUMNS) + 1:
                return DataError(
                    f"{where}:{number}: expected {len(COLUMNS) + 1} columns, found {len(fields)}"
                )
            if number > 1:
                try:
                    [float(v) for v in fields]
                except ValueError as bad:
                    return DataError(f"{where}:{number}: {bad}")
    return DataError(f"{where}: unreadable CSV ({error})")


def trial_files(members: ArchiveMembers) -> list[tuple[str, int, str, str]]:
    """(activity, trial, subject, member) of every trial file; checks names and completeness."""
    found = []
    for name in members.names():
        match = _MEMBER.search(name)
        if match is None:
            continue
        trial, subject = _TRIAL.fullmatch(match["folder"]), _SUBJECT.fullmatch(match["file"])
        if trial is None or subject is None:
            raise DataError(f"{members.describe(name)}: expected {ROOT}/<act>_<trial>/sub_<N>.csv")
        if trial["act"] not in CLASS_NAMES:
            raise DataError(
                f"{members.describe(name)}: unknown activity {trial['act']!r} (folder "
                f"{match['folder']}); expected one of {CLASS_NAMES}"
            )
        found.append((trial["act"], int(trial["trial"]), subject["subject"], name))
    if not found:
        raise DataError(
            f"{members.path}: expected {ROOT}/<act>_<trial>/sub_<N>.csv files, found none"
        )
    # The release is complete (every subject in every trial): a gap means a lost file.
    subjects = {s for _, _, s, _ in found}
    by_folder: dict[tuple[str, int], dict[str, str]] = {}
    for act, trial, subject, name in found:
        by_folder.setdefault((act, trial), {})[subject] = name
    for (act, trial), files in sorted(by_folder.items()):
        missing = sorted(subjects - set(files), key=natural_key)
        if missing:
            folder = members.describe(next(iter(files.values()))).rsplit("/", 1)[0]
            raise DataError(
                f"{folder}/sub_{missing[0]}.csv: missing (subjects {missing} have no file in "
                f"{act}_{trial}, but other trials have them)"
            )
    return sorted(found, key=lambda f: (f[0], f[1], natural_key(f[2])))


class MotionSense(HARBuilder):
    """MotionSense: iPhone 6s in the front pocket, 24 subjects, 6 activities, 50 Hz."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    LABEL_MAP = LABEL_MAP
    ARCHIVE_NAME = "A_DeviceMotion_data.zip"
    URL = "https://github.com/mmalekzadeh/motion-sense/raw/master/data/A_DeviceMotion_data.zip"
    SHA256 = None  # none published; the first download's sha256 is recorded (fetch_archive)
    ACCEPTED = (ARCHIVE_NAME, ROOT)
    LOOKED_FOR = f"{ROOT}/<activity>_<trial>/sub_<N>.csv recordings"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download data/A_DeviceMotion_data.zip from https://github.com/mmalekzadeh/motion-sense "
        "and put it, or the extracted 'A_DeviceMotion_data' folder, into manual_dir."
    )

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive) as members:
            for act, trial, subject, name in trial_files(members):
                signal = read_trial_file(members, name)
                # Empty or `nan` cells stay NaN: the base interpolates or splits (gap policy).
                missing = np.flatnonzero(np.isnan(signal).any(axis=1))
                self.report.count_missing(members.describe(name), missing + 2)
                yield Recording(
                    signal=signal,
                    sample_rate=SAMPLE_RATE,
                    label=act,
                    subject=subject,
                    recording_id=f"{act}_{trial}/sub_{subject}",
                    source=members.describe(name),
                    device=DEVICE,
                    position=POSITION,
                )
