"""UCI HAPT (Reyes-Ortiz et al. 2016): the raw recordings UCI-HAR's windows were cut from.

Same 30 subjects and phone on the waist as UCI-HAR (`uci_har.py`), 50 Hz, but the release keeps
the continuous signals of its 61 experiments (about 1.1 million samples per sensor) and labels
them by segment. The `RawData/` layout:

    RawData/acc_expNN_userUU.txt    accelerometer, 3 columns x, y, z in g (gravity included)
    RawData/gyro_expNN_userUU.txt   gyroscope, 3 columns in rad/s, sample for sample with acc
    RawData/labels.txt              `experiment user activity start end`, 1-based, inclusive
    activity_labels.txt             1-6 UCI-HAR's activities, 7-12 postural transitions

Each labelled segment becomes one `Recording`, so windows are cut inside a segment only: never
across two segments and never into unlabelled samples (both are counted in the build report).
`uci_hapt` keeps UCI-HAR's six activities and its label map, so the common label space and
transfer read it as UCI-HAR; `uci_hapt_transitions` adds the six postural transitions (segments
of 1.5-10 s: at 128/64 most give one or two windows, those under one window none; the report
lists them as too short). The official split is UCI-HAR's: its 9 test subjects.

Units: accelerometer g x STANDARD_GRAVITY -> m/s^2; gyroscope rad/s as recorded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from harjax.data.archives import ArchiveMembers, fetch_archive, read_number_table
from harjax.data.builder import HARBuilder, Recording, Report
from harjax.data.datasets import uci_har as common
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, STANDARD_GRAVITY

log = logging.getLogger(__name__)

ACTIVITIES = common.CLASS_NAMES  # ids 1-6
TRANSITIONS = (
    "STAND_TO_SIT",
    "SIT_TO_STAND",
    "SIT_TO_LIE",
    "LIE_TO_SIT",
    "STAND_TO_LIE",
    "LIE_TO_STAND",
)  # ids 7-12
ALL_CLASSES = ACTIVITIES + TRANSITIONS
SAMPLE_RATE = 50.0
# UCI-HAR's official test subjects (the release's subject_id_test.txt); the other 21 train.
OFFICIAL_TEST_SUBJECTS = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})
_RAW_FILE = re.compile(r"^(acc|gyro)_exp(\d+)_user(\d+)\.txt$")

TRANSITIONS_LABEL_MAP = {**common.LABEL_MAP, **{name: None for name in TRANSITIONS}}


def read_columns(
    members: ArchiveMembers, name: str, width: int, report: Report | None = None
) -> np.ndarray:
    """(n, width) float64 of one of the release's text files (`archives.read_number_table`:
    errors name file and line; `nan` counted in `report.missing_values` and left to the
    core's gap rule, as in every reader; `inf` an error)."""
    return read_number_table(
        members, name, width, expected=f"{width} numbers per line", report=report
    )


def raw_files(members: ArchiveMembers) -> tuple[str, dict[int, dict[str, str]], dict[int, int]]:
    """(labels.txt member, experiment -> {"acc"/"gyro": member}, experiment -> user).

    The raw files are found by name anywhere in the archive (any top folder); labels.txt is the
    one beside them. Both sensors of an experiment, one folder, one user per experiment.
    """
    files: dict[int, dict[str, str]] = {}
    users: dict[int, int] = {}
    for name in members.names():
        match = _RAW_FILE.match(PurePosixPath(name).name)
        if not match:
            continue
        sensor, experiment, user = match[1], int(match[2]), int(match[3])
        if users.setdefault(experiment, user) != user:
            raise DataError(
                f"{members.describe(name)}: experiment {experiment} also has files of user "
                f"{users[experiment]}; expected one user per experiment"
            )
        if sensor in files.setdefault(experiment, {}):
            raise DataError(
                f"{members.describe(name)}: a second {sensor} file of experiment {experiment} "
                f"(also {members.describe(files[experiment][sensor])})"
            )
        files[experiment][sensor] = name
    if not files:
        raise DataError(
            f"{members.path}: no raw recordings (acc_expNN_userUU.txt, gyro_expNN_userUU.txt); "
            "expected the UCI HAPT release's RawData/ folder"
        )
    folders = {str(PurePosixPath(n).parent) for sensors in files.values() for n in sensors.values()}
    if len(folders) != 1:
        raise DataError(f"{members.path}: raw recordings in several folders {sorted(folders)}")
    folder = folders.pop()
    labels_name = f"{folder}/labels.txt" if folder != "." else "labels.txt"
    if labels_name not in members.names():
        raise DataError(f"{members.describe(labels_name)}: missing (the segment labels)")
    for experiment, sensors in sorted(files.items()):
        for sensor, other in (("acc", "gyro"), ("gyro", "acc")):
            if sensor not in sensors:
                expected = PurePosixPath(sensors[other]).with_name(
                    f"{sensor}_exp{experiment:02d}_user{users[experiment]:02d}.txt"
                )
                raise DataError(
                    f"{members.describe(str(expected))}: missing (experiment {experiment} has "
                    f"{members.describe(sensors[other])})"
                )
    return labels_name, files, users


def read_segments(members: ArchiveMembers, name: str) -> np.ndarray:
    """labels.txt as (n, 6) int64: experiment, user, activity, start, end (1-based, inclusive),
    line number; checked for ids, order of start/end and overlaps within an experiment."""
    rows = read_columns(members, name, 5)
    where = members.describe(name)
    lines = [n for n, line in enumerate(members.read_text(name).splitlines(), 1) if line.split()]
    not_integer = np.flatnonzero((rows != np.round(rows)).any(axis=1) | (rows < 1).any(axis=1))
    if len(not_integer):
        row = not_integer[0]
        raise DataError(
            f"{where}:{lines[row]}: expected 5 positive integers (experiment user activity start "
            f"end), found {rows[row].tolist()}"
        )
    rows = rows.astype(np.int64)
    for row, (activity, start, end) in enumerate(rows[:, 2:].tolist()):
        if not 1 <= activity <= len(ALL_CLASSES):
            raise DataError(
                f"{where}:{lines[row]}: unknown activity id {activity}; expected "
                f"1..{len(ALL_CLASSES)} (activity_labels.txt)"
            )
        if end < start:
            raise DataError(
                f"{where}:{lines[row]}: segment ends ({end}) before it starts ({start})"
            )
    segments = np.concatenate([rows, np.array(lines, dtype=np.int64)[:, None]], axis=1)
    for experiment in np.unique(segments[:, 0]):
        mine = segments[segments[:, 0] == experiment]
        mine = mine[np.argsort(mine[:, 3], kind="stable")]
        overlap = np.flatnonzero(mine[1:, 3] <= mine[:-1, 4])
        if len(overlap):
            first, second = mine[overlap[0]], mine[overlap[0] + 1]
            raise DataError(
                f"{where}:{second[5]}: segment {second[3]}-{second[4]} of experiment {experiment} "
                f"overlaps line {first[5]} ({first[3]}-{first[4]}); expected disjoint segments"
            )
    return segments


class UciHapt(HARBuilder):
    """UCI HAPT raw recordings: waist smartphone, 30 subjects, UCI-HAR's 6 activities."""

    CLASS_NAMES = ACTIVITIES
    CHANNELS = CANONICAL_CHANNELS
    SPLITS = ("train", "test")
    LABEL_MAP = common.LABEL_MAP  # UCI-HAR's: the same activities, the same common labels
    ARCHIVE_NAME = "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip"
    # The UCI repository's download (it holds the release's files). No checksum is published:
    # the first download's sha256 is recorded and checked after (archives.download).
    URL = (
        "https://archive.ics.uci.edu/static/public/341/"
        "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip"
    )
    SHA256 = None
    ACCEPTED = (ARCHIVE_NAME, "HAPT Data Set.zip", "HAPT Data Set", "RawData")
    LOOKED_FOR = "RawData/acc_expNN_userUU.txt, gyro_expNN_userUU.txt and labels.txt"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download https://archive.ics.uci.edu/dataset/341 and put the zip (or 'HAPT Data "
        "Set.zip', or the extracted 'HAPT Data Set' folder, or the release's RawData/ folder) "
        "into manual_dir."
    )

    def _archive(self, dl_manager) -> Path:
        """The archive `fetch_archive` finds; for the release's `RawData/` folder given alone,
        the folder above it, so that `activity_labels.txt` beside it is read too (the content
        address stays the digest of `RawData/`, the files the windows come from)."""
        del dl_manager
        archive = fetch_archive(self, self.ACCEPTED)
        return archive.parent if archive.is_dir() and archive.name == "RawData" else archive

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive, nested=("HAPT Data Set.zip",)) as members:
            labels_name, files, users = raw_files(members)
            activity_names = [
                n for n in members.names() if PurePosixPath(n).name == "activity_labels.txt"
            ]
            if len(activity_names) == 1:
                common.check_activity_labels(members, activity_names[0], ALL_CLASSES)
            else:
                log.warning(
                    "%s: %d activity_labels.txt files; reading the ids as the release's 1-12 %s",
                    archive,
                    len(activity_names),
                    list(ALL_CLASSES),
                )
            segments = read_segments(members, labels_name)
            where = members.describe(labels_name)
            absent = sorted(set(segments[:, 0].tolist()) - set(files))
            if absent:  # a partial copy: counted and named, like a partial archive elsewhere
                for _ in absent:
                    self.report.exclude("experiment in labels.txt without raw files")
                log.warning("%s: experiments %s have labels but no raw files", where, absent)
            for experiment in sorted(files):
                mine = segments[segments[:, 0] == experiment]
                if len(mine) == 0:
                    self.report.exclude("experiment without labelled segments")
                    log.warning("experiment %d has no segment in %s", experiment, where)
                    continue
                mine = mine[np.argsort(mine[:, 3], kind="stable")]
                yield from self._segments(
                    members, where, files[experiment], experiment, users[experiment], mine
                )

    def _segments(
        self,
        members: ArchiveMembers,
        labels_where: str,
        files: dict[str, str],
        experiment: int,
        user: int,
        segments: np.ndarray,
    ) -> Iterator[Recording]:
        """The recordings of one experiment's labelled segments (its rows of labels.txt)."""
        acc_where, gyro_where = members.describe(files["acc"]), members.describe(files["gyro"])
        acc = read_columns(members, files["acc"], 3, self.report) * STANDARD_GRAVITY
        gyro = read_columns(members, files["gyro"], 3, self.report)
        if len(acc) != len(gyro):
            raise DataError(
                f"{gyro_where}: {len(gyro)} samples, but {acc_where} has {len(acc)}; expected "
                "one gyroscope sample per accelerometer sample"
            )
        signal = np.concatenate([acc, gyro], axis=1)
        labelled = 0
        for _, segment_user, activity, start, end, line in segments.tolist():
            if segment_user != user:
                raise DataError(
                    f"{labels_where}:{line}: user {segment_user} for experiment {experiment}, "
                    f"but its files are {acc_where} (user {user})"
                )
            if end > len(signal):
                raise DataError(
                    f"{labels_where}:{line}: segment {start}-{end} ends past the end of "
                    f"{acc_where} ({len(signal)} samples)"
                )
            labelled += end - start + 1
            label = ALL_CLASSES[activity - 1]
            if label not in self.CLASS_NAMES:
                self.report.drop_rows(
                    "postural-transition samples (uci_hapt_transitions keeps them)",
                    acc_where,
                    end - start + 1,
                )
                continue
            yield Recording(
                signal=signal[start - 1 : end],
                sample_rate=SAMPLE_RATE,
                label=label,
                subject=str(user),
                recording_id=f"exp{experiment:02d}/{start:06d}",
                source=f"{acc_where} (+ gyro) samples {start}-{end}, {labels_where}:{line}",
                device=common.DEVICE,
                position=common.POSITION,
                split="test" if user in OFFICIAL_TEST_SUBJECTS else "train",
            )
        self.report.drop_rows("unlabelled samples", acc_where, len(signal) - labelled)


class UciHaptTransitions(UciHapt):
    """UCI HAPT with its 12 classes: UCI-HAR's 6 activities and 6 postural transitions."""

    CLASS_NAMES = ALL_CLASSES
    LABEL_MAP = TRANSITIONS_LABEL_MAP  # transitions have no common label (-1 in transfer)
