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

Also home of `ArchiveMembers` and `fetch_archive`, shared by the HHAR and MotionSense builders.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from harjax.data import labels
from harjax.data.core import (
    CANONICAL_CHANNELS,
    STANDARD_GRAVITY,
    DataError,
    HARBuilder,
    Recording,
    sha256_of,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Archive access shared by the benchmark builders (a candidate for harjax.data.core)


class ArchiveMembers:
    """Read-only view of a dataset's files: a folder, a zip, or zips nested in a zip.

    Names are POSIX paths relative to the archive root (for a folder: its parent, so that the
    folder's name is kept as in a zip of it). macOS junk (`__MACOSX/`, `._*`, `.DS_Store`) is
    not listed. Members named in `nested` (e.g. the UCI repository's
    `UCI HAR Dataset.zip` inside its download) are extracted to a temporary file once and
    their members listed as `<inner.zip>/<name>`. Use as a context manager.
    """

    def __init__(self, path: Path, *, nested: tuple[str, ...] = ()):
        self.path = Path(path)
        self._zips: dict[str, zipfile.ZipFile] = {}  # prefix ("" or "inner.zip/") -> open zip
        self._tmp = tempfile.TemporaryDirectory(prefix="harjax-archive-")
        if self.path.is_dir():
            # Names keep the folder's own name, as a zip of that folder would.
            self._dir_names = [
                p.relative_to(self.path.parent).as_posix()
                for p in self.path.rglob("*")
                if p.is_file()
            ]
        elif self.path.is_file():
            self._dir_names = []
            outer = self._open_zip(self.path, str(self.path))
            self._zips[""] = outer
            for name in outer.namelist():
                if Path(name).name in nested and not _is_junk(name):
                    target = Path(self._tmp.name) / f"{len(self._zips)}.zip"
                    with self._read_errors(name), outer.open(name) as src, open(target, "wb") as f:
                        shutil.copyfileobj(src, f)
                    self._zips[name + "/"] = self._open_zip(target, self.describe(name))
        else:
            raise DataError(f"{self.path}: expected a dataset archive (zip) or folder; not found")

    @staticmethod
    def _open_zip(path: Path, label: str) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(f"{label}: not a readable zip archive ({error})") from error

    def __enter__(self) -> ArchiveMembers:
        return self

    def __exit__(self, *exc) -> None:
        for zf in self._zips.values():
            zf.close()
        self._tmp.cleanup()

    def names(self) -> list[str]:
        found = list(self._dir_names)
        for prefix, zf in self._zips.items():
            found += [prefix + n for n in zf.namelist() if not n.endswith("/")]
        return sorted(n for n in found if not _is_junk(n))

    def describe(self, name: str) -> str:
        """`archive!member` for error messages."""
        return str(self.path.parent / name) if self.path.is_dir() else f"{self.path}!{name}"

    def locate(self, relative: str) -> str:
        """The member whose path ends with `relative` (any root folder above it); DataError if
        none or several."""
        hits = [n for n in self.names() if n == relative or n.endswith("/" + relative)]
        if len(hits) != 1:
            found = "none" if not hits else f"{len(hits)}: {hits[:4]}"
            raise DataError(
                f"{self.path}: expected exactly one file '.../{relative}', found {found}"
            )
        return hits[0]

    def open(self, name: str) -> BinaryIO:
        if self.path.is_dir():
            return open(self.path.parent / name, "rb")
        prefix = max((p for p in self._zips if name.startswith(p)), key=len)
        try:
            return self._zips[prefix].open(name[len(prefix) :])
        except KeyError as error:
            raise DataError(f"{self.describe(name)}: missing from the archive") from error

    def read_text(self, name: str) -> str:
        with self._read_errors(name), self.open(name) as f:
            data = f.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{self.describe(name)}: not UTF-8 text ({error})") from error

    def _read_errors(self, name: str):
        return _ReraiseAsDataError(self.describe(name))


class _ReraiseAsDataError:
    """Turns a corrupt member (bad CRC, truncated deflate stream) into a DataError naming it."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(
            kind, (zipfile.BadZipFile, zlib.error, EOFError, OSError)
        ):
            raise DataError(f"{self.where}: corrupt archive member ({error})") from error
        return False


def _is_junk(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return (
        name.startswith("__MACOSX/")
        or "/__MACOSX/" in name
        or base.startswith("._")
        or (base == ".DS_Store")
    )


def fetch_archive(builder: HARBuilder, accepted: tuple[str, ...]) -> Path:
    """The raw archive: the first of `accepted` (file or folder names) in manual_dir, else the
    download of `builder.URL` into `<data_dir>/downloads/ARCHIVE_NAME`.

    With `builder.SHA256` the download must match it. Without one (no published checksum), the
    first download's sha256 is recorded beside it (`<archive>.sha256`) and logged, and every
    later use is checked against that record (trust on first use).
    """
    manual = builder.manual_dir
    for name in accepted:
        if manual is not None and (manual / name).exists():
            return manual / name
    where = manual if manual is not None else "<manual_dir>"
    instructions = (
        f"{builder.name}: expected one of {list(accepted)} in {where}/ (pass manual_dir). "
        f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )
    if not builder.URL:
        raise DataError(instructions)
    dest = Path(builder.data_dir_root) / "downloads" / builder.ARCHIVE_NAME
    record = dest.with_name(dest.name + ".sha256")
    expected = builder.SHA256 or (record.read_text().strip() if record.exists() else None)
    if dest.exists() and expected and sha256_of(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
            with urllib.request.urlopen(builder.URL, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
    except OSError as error:
        raise DataError(f"could not download {builder.URL} ({error}). {instructions}") from error
    found = sha256_of(Path(tmp.name))
    if expected and found != expected:
        os.unlink(tmp.name)
        raise DataError(f"{builder.URL}: sha256 {found}, expected {expected} ({record})")
    os.replace(tmp.name, dest)
    if not builder.SHA256 and not record.exists():
        record.write_text(found + "\n")
        log.warning(
            "%s: recorded sha256 %s of the first download in %s", builder.URL, found, record
        )
    return dest


# ---------------------------------------------------------------------------------------------
# UCI-HAR

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
    text = members.read_text(name)
    if not text.strip():
        return np.zeros((0,) if width is None else (0, width))
    try:
        matrix = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
        if width is None or matrix.shape[1] == width:
            bad_rows = np.flatnonzero(np.isinf(matrix).any(axis=1))
            if len(bad_rows) == 0:
                return matrix[:, 0] if width is None else matrix
    except ValueError:
        pass
    # Slow path, only to say exactly which line is wrong.
    expected = 1 if width is None else width
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if len(parts) != expected:
            raise DataError(
                f"{members.describe(name)}:{number}: expected {expected} values, found {len(parts)}"
            )
        try:
            values = np.array(parts, dtype=np.float64)
        except ValueError as error:
            raise DataError(f"{members.describe(name)}:{number}: {error}") from error
        if np.isinf(values).any():
            raise DataError(
                f"{members.describe(name)}:{number}: inf value (column "
                f"{int(np.flatnonzero(np.isinf(values))[0]) + 1})"
            )
    raise DataError(f"{members.describe(name)}: could not parse (no line found at fault)")


def _read_ids(members: ArchiveMembers, name: str) -> np.ndarray:
    values = _read_matrix(members, name, None)
    bad = np.flatnonzero((values != np.round(values)) | (values < 1))
    if len(bad):
        raise DataError(
            f"{members.describe(name)}:{bad[0] + 1}: expected a positive integer id, "
            f"found {values[bad[0]]}"
        )
    return values.astype(np.int64)


def _check_activity_labels(members: ArchiveMembers) -> None:
    name = members.locate("activity_labels.txt")
    lines = [line for line in members.read_text(name).splitlines() if line.strip()]
    expected = [f"{i} {label}" for i, label in enumerate(CLASS_NAMES, start=1)]
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


def read_split(members: ArchiveMembers, split: str) -> Iterator[Recording]:
    """Rebuilt recordings of one official split (`train` or `test`)."""
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
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download https://archive.ics.uci.edu/dataset/240 (human+activity+recognition+using+"
        "smartphones.zip) and put it, or the 'UCI HAR Dataset.zip' inside it, or the extracted "
        "'UCI HAR Dataset' folder, into manual_dir."
    )

    def _archive(self, dl_manager) -> Path:
        del dl_manager
        return fetch_archive(self, self.ACCEPTED)

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        with ArchiveMembers(archive, nested=("UCI HAR Dataset.zip",)) as members:
            _check_activity_labels(members)
            rows = recordings = 0
            for split in self.SPLITS:
                for recording in read_split(members, split):
                    rows += 1 + (len(recording.signal) - WINDOW) // STEP
                    recordings += 1
                    yield recording
        self.info.metadata["uci_har_chaining"] = {"windows": rows, "recordings": recordings}
        log.info("uci_har: %d official windows chained into %d recordings", rows, recordings)
