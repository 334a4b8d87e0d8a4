"""A set of the UEA multivariate time-series archive (`--dataset uea:NAME`) as a tfds builder.

UEA cases are whole series of one class, not continuous recordings: each case becomes ONE
example, brought to the model's input length (`window_length`) by anti-aliased polyphase
resampling. The split is the archive's own: `NAME_TRAIN.ts` -> `train`, `NAME_TEST.ts` ->
`test`; the archive removed subject ids, so each case stands for its own subject and
validation is drawn from TRAIN, stratified by class and seeded (`splits.case_split`). Class
names are the header's `@classLabel` list, in its order.

The case's sampling rate is the one the file's comment header states (Epilepsy: "The sampling
frequency was 16 Hz"), else the configured `sample_rate`; it is recorded with the rate the
resampled example stands for (`rate * window_length / series length`) in the build report.
Resampling is by length, not by rate: the model always sees `window_length` samples.

Channels: 3 dimensions are an accelerometer (x, y, z: the `acc` channel path, as WISDM); 6
are taken as accelerometer then gyroscope only when the header says so ("gyro"). Values are
the archive's as published (UWaveGestureLibrary and Handwriting z-normalised per series,
Epilepsy apparently in g), so they are NOT in m/s^2; the train-only normalisation of the
pipeline makes that harmless within a set, not across sets (no common-label transfer).

Files are read from manual_dir (`NAME_TRAIN.ts` and `NAME_TEST.ts` in it, in `manual_dir/NAME/`,
or `NAME.zip` holding them; manual_dir may also be that zip), else downloaded from the
archive's site with a checksum recorded at the first download. Prepared data is cached under
a name with a hash of both files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.signal

from harjax.data import labels
from harjax.data.archives import ArchiveMembers, decode_text, download
from harjax.data.builder import HARBuilder, HARConfig, Recording
from harjax.data.errors import DataError
from harjax.data.signal import ACC_CHANNELS, CANONICAL_CHANNELS, fill_gaps
from harjax.data.ts_format import TsFile, parse_ts

PREFIX = "uea:"
SPLIT_FILES = {"train": "TRAIN", "test": "TEST"}  # tfds split -> file suffix
URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Resampling a case to the window draws a line through its samples: it needs two.
MIN_SERIES_LENGTH = 2


def problem_name(spec: str) -> str:
    """`uea:NAME` -> NAME, checked (it becomes a file name)."""
    name = spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec
    if not _NAME.match(name):
        raise DataError(
            f"dataset spec {spec!r}: expected '{PREFIX}NAME' with NAME a UEA set such as "
            "UWaveGestureLibrary (letters, digits, '_' or '-')"
        )
    return name


def read_files(source: Path, name: str) -> dict[str, tuple[str, str]]:
    """split -> (text, where) of `NAME_TRAIN.ts` / `NAME_TEST.ts` in a folder or a zip."""
    found = {}
    if source.is_dir():
        for split, suffix in SPLIT_FILES.items():
            path = source / f"{name}_{suffix}.ts"
            if not path.is_file():
                raise DataError(f"{path}: not found; expected {name}_TRAIN.ts and {name}_TEST.ts")
            found[split] = (_decode(path.read_bytes(), str(path)), str(path))
        return found
    with ArchiveMembers(source) as members:
        for split, suffix in SPLIT_FILES.items():
            member = members.locate(f"{name}_{suffix}.ts")
            where = members.describe(member)
            with members._read_errors(member), members.open(member) as f:
                found[split] = (_decode(f.read(), where), where)
    return found


def _decode(data: bytes, where: str) -> str:
    # UTF-16 by its byte-order mark, else UTF-8. Comment headers are free text, not always
    # valid UTF-8 (Handwriting's already holds a replacement character); the numbers are
    # ASCII, so replacing a bad byte changes nothing read.
    return decode_text(data, where, errors="replace")


def to_length(case: np.ndarray, length: int) -> np.ndarray:
    """(dimensions, n) -> (length, dimensions): anti-aliased polyphase resampling by n -> length
    (`padtype="line"`, so an offset such as gravity does not ring at the ends)."""
    n = case.shape[1]
    if n == length:
        return case.T.copy()
    divisor = math.gcd(length, n)
    out = scipy.signal.resample_poly(case, length // divisor, n // divisor, axis=1, padtype="line")
    return out[:, :length].T


class UeaArchive(HARBuilder, skip_registration=True):
    """One UEA archive set (`uea:NAME`): cases resampled to the window, official TRAIN/TEST."""

    SPLITS = tuple(SPLIT_FILES)
    OFFICIAL_SPLIT_ONLY = True

    def __init__(
        self,
        problem: str,
        *,
        config: HARConfig,
        data_dir: str | os.PathLike | None = None,
        manual_dir: str | os.PathLike | None = None,
        **kwargs,
    ):
        self.problem = problem_name(problem)
        self.URL = URL.format(name=self.problem)
        self.ARCHIVE_NAME = f"uea_{self.problem}.zip"
        self.LOOKED_FOR = f"cases of {self.problem}_TRAIN.ts and {self.problem}_TEST.ts"
        self.MANUAL_DOWNLOAD_INSTRUCTIONS = (
            f"Download {self.URL} (or the Multivariate_ts archive) and put {self.problem}_TRAIN.ts "
            f"and {self.problem}_TEST.ts, their folder {self.problem}/, or {self.problem}.zip "
            "into manual_dir."
        )
        manual = Path(manual_dir).expanduser() if manual_dir is not None else None
        self.ts_source = self._find(manual, data_dir)
        texts = read_files(self.ts_source, self.problem)
        self.files = {split: parse_ts(text, where) for split, (text, where) in texts.items()}
        train, test = self.files["train"], self.files["test"]
        if test.class_names != train.class_names or test.dimensions != train.dimensions:
            raise DataError(
                f"{test.where}: @classLabel {test.class_names} and {test.dimensions} dimensions; "
                f"expected those of {train.where}: {train.class_names}, {train.dimensions}"
            )
        self.CLASS_NAMES = train.class_names
        self.CHANNELS = self._channels(train)
        self.LABEL_MAP = labels.identity_map(self.CLASS_NAMES)
        digest = hashlib.sha256()
        for split in SPLIT_FILES:
            digest.update(texts[split][0].encode())
        # The files' content: names the prepared data and goes into run fingerprints
        # (`run.fingerprint.raw_data_content`), whichever form (folder, zip) held them.
        self.content_digest = digest.hexdigest()
        name = f"{self.problem}_{self.content_digest[:12]}_{config.name}"
        super().__init__(
            config=dataclasses.replace(config, name=name),
            data_dir=data_dir,
            manual_dir=manual_dir,
            **kwargs,
        )

    def _find(self, manual: Path | None, data_dir) -> Path:
        """The folder or zip holding the two files: manual_dir, else a (recorded) download."""
        train_file = f"{self.problem}_TRAIN.ts"
        if manual is not None:
            if manual.is_file() and manual.suffix.lower() == ".zip":
                return manual
            for candidate in (manual, manual / self.problem):
                if (candidate / train_file).is_file():
                    return candidate
            for candidate in (manual, manual / self.problem):  # the TEST file alone: name TRAIN
                if (candidate / f"{self.problem}_TEST.ts").is_file():
                    return candidate
            if (manual / f"{self.problem}.zip").is_file():
                return manual / f"{self.problem}.zip"
        where = manual if manual is not None else "<manual_dir>"
        instructions = (
            f"uea:{self.problem}: expected {train_file} and {self.problem}_TEST.ts in {where}/ "
            f"or {where}/{self.problem}/, or {self.problem}.zip in {where}/. "
            f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
        if manual is not None:  # the user's files only: never the download instead
            found = "does not exist" if not manual.exists() else "holds none of them"
            raise DataError(f"{instructions} (manual_dir {found}; nothing is downloaded)")
        if data_dir is None:
            raise DataError(instructions)
        dest = Path(data_dir) / "downloads" / self.ARCHIVE_NAME
        try:
            return download(self.URL, dest, sha256=None, instructions=instructions)
        except zipfile.BadZipFile as error:
            raise DataError(f"{dest}: not a zip ({error}). {instructions}") from error

    def _channels(self, ts: TsFile) -> tuple[str, ...]:
        if ts.dimensions == 3:
            return ACC_CHANNELS
        if ts.dimensions == 6 and "gyro" in ts.comment.lower():
            return CANONICAL_CHANNELS
        raise DataError(
            f"{ts.where}: {ts.dimensions} dimensions; expected 3 (an accelerometer's x, y, z) or "
            "6 (accelerometer then gyroscope, with the header saying so)"
        )

    def _archive(self, dl_manager) -> Path:
        del dl_manager
        return self.ts_source

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        del archive  # parsed in __init__: the header decides the class names and channels
        config: HARConfig = self.builder_config
        length = config.window_length
        for split, ts in self.files.items():
            stated = ts.stated_rate()
            rate = stated if stated is not None else config.sample_rate
            lengths = sorted({case.shape[1] for case in ts.cases})
            served = rate * length / float(np.median([c.shape[1] for c in ts.cases]))
            self.report.sample_rates[f"{self.problem}/{split}"] = {
                "cases": round(rate, 3),
                "served": round(served, 3),
            }
            self.info.metadata.setdefault("uea", {})[split] = {
                "file": ts.where,
                "cases": len(ts.cases),
                "series_lengths": lengths if len(lengths) <= 10 else [lengths[0], lengths[-1]],
                "rate_hz": rate,
                "rate_from": "header comment" if stated is not None else "config.data.sample_rate",
            }
            for index, (case, label, line) in enumerate(
                zip(ts.cases, ts.labels, ts.lines, strict=True)
            ):
                case = self._complete(case, rate, ts.where, line, f"case {index} of {split}")
                yield Recording(
                    signal=to_length(case, length),
                    # Already at the window's length: the base must not resample again.
                    sample_rate=config.sample_rate,
                    label=ts.class_names[label],
                    subject=f"{split}{index:05d}",
                    recording_id=f"{split}/{index:05d}",
                    source=f"{ts.where}:{line}",
                    split=split,
                )

    def _complete(self, case: np.ndarray, rate: float, file: str, line: int, name: str):
        """The case with its missing values (`?`, NaN) filled by the gap policy, counted; a
        case split by a longer hole, or shorter than two samples, is an error naming it."""
        where = f"{file}:{line} ({name})"
        if np.isnan(case).any():
            self.report.count_missing(file, [line])
            max_gap = int(round(self.builder_config.max_gap_s * rate))
            pieces, gaps = fill_gaps(case.T, max_gap_samples=max_gap, source=where)
            self.report.add_gaps(gaps)
            if len(pieces) != 1:
                raise DataError(
                    f"{where}: missing values over more than max_gap_s = "
                    f"{self.builder_config.max_gap_s:g} s ({max_gap} samples at {rate:g} Hz) "
                    "inside the series; expected a complete series or shorter gaps"
                )
            case = pieces[0].T
        if case.shape[1] < MIN_SERIES_LENGTH:
            raise DataError(
                f"{where}: series of length {case.shape[1]}; expected at least "
                f"{MIN_SERIES_LENGTH} samples to resample to the window of "
                f"{self.builder_config.window_length}"
            )
        return case
