"""The `.ts` file format of the UEA/UCR time-series classification archive, read into arrays.

A `.ts` file is `#` comment lines (the set's description), `@tag value` header lines ending
with `@data`, then one case per line: its dimensions separated by `:`, each a comma-separated
series, and last the class label, e.g. `0.35,0.4,...:-0.91,-0.92,...:0.32,0.71,...:EPILEPSY`.

The maintained parsers (aeon's / sktime's `load_from_tsfile`) come with numba, pandas and
their own scikit-learn pins, too heavy a dependency for ~100 lines of parsing; this reader
covers what a classification set of the archive uses (`@timeStamps false`, `@classLabel
true`, complete series) and refuses anything else with one error naming the file and line:
no `@data`, a case whose dimensions differ in length (or from `@seriesLength`), a dimension
count other than `@dimensions`, a label not in `@classLabel`, an infinite value. A missing
value (`?`, or NaN) is kept as NaN: the reader fills it under the gap policy and counts it.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from harjax.data.archives import no_data
from harjax.data.errors import DataError

# "The sampling frequency was 16 Hz", "sampled at 100Hz": a rate stated in the comment header.
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*hz\b", re.IGNORECASE)


@dataclasses.dataclass
class TsFile:
    """One parsed `.ts` file: cases (dimensions x length each), their labels, the header."""

    where: str  # file (or archive!member) for messages
    problem: str  # @problemName, or "" when absent
    class_names: tuple[str, ...]  # @classLabel, in the header's order
    cases: list[np.ndarray]  # each (dimensions, length) float64
    labels: np.ndarray  # (num_cases,) int64, index into class_names
    lines: list[int]  # the file line of each case
    comment: str  # the `#` lines joined, without the `#`
    header: dict[str, str]  # @tag (lower case) -> value as written

    @property
    def dimensions(self) -> int:
        return self.cases[0].shape[0]

    def stated_rate(self) -> float | None:
        """The sampling rate (Hz) the comment header states, or None when it states none.

        A sentence about sampling wins; otherwise a rate is taken only when the header
        mentions exactly one (a set that quotes several rates is ambiguous).
        """
        sentences = re.split(r"(?<=[.;])\s+", self.comment)
        for sentence in sentences:
            if re.search(r"sampl|frequency", sentence, re.IGNORECASE) and _RATE.search(sentence):
                return float(_RATE.search(sentence).group(1))
        found = {float(value) for value in _RATE.findall(self.comment)}
        return found.pop() if len(found) == 1 else None


def _flag(header: dict[str, str], tag: str, where: str, line: int) -> bool | None:
    value = header.get(tag)
    if value is None:
        return None
    word = value.split()[0].lower() if value.split() else ""
    if word not in ("true", "false"):
        raise DataError(f"{where}:{line}: @{tag} {value!r}; expected true or false")
    return word == "true"


def parse_ts(text: str, where: str) -> TsFile:
    """Parses a classification `.ts` file; every malformed input is a DataError at file:line."""
    lines = text.lstrip("\ufeff").splitlines()  # a byte-order mark is not part of line 1
    if not any(line.strip() for line in lines):
        raise no_data(where, "'#' comments, @tag header lines, @data, then one case per line")
    header: dict[str, str] = {}
    header_line: dict[str, int] = {}
    comment: list[str] = []
    data_start = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment.append(line.lstrip("#%").strip())
            continue
        if not line.startswith("@"):
            raise DataError(
                f"{where}:{number}: {line[:40]!r} before @data; expected '#' comments and "
                "@tag header lines, then @data"
            )
        tag, *value = line[1:].split(maxsplit=1)
        tag, value = tag.lower(), value[0] if value else ""
        if tag == "data":
            data_start = number
            break
        header[tag], header_line[tag] = value.strip(), number
    if data_start is None:
        raise DataError(f"{where}: no @data line; expected the header to end with @data")
    if _flag(header, "timestamps", where, header_line.get("timestamps", 0)):
        raise DataError(
            f"{where}:{header_line['timestamps']}: @timeStamps true is not supported; "
            "expected the archive's equally spaced series (@timeStamps false)"
        )
    if "classlabel" not in header:
        raise DataError(f"{where}:{data_start}: no @classLabel before @data; expected a class list")
    label_line = header_line["classlabel"]
    has_labels, *class_names = header["classlabel"].split()
    if has_labels.lower() != "true" or not class_names:
        raise DataError(
            f"{where}:{label_line}: @classLabel {header['classlabel']!r}; expected "
            "'true' followed by the class names (a classification set)"
        )
    if len(set(class_names)) != len(class_names):
        raise DataError(f"{where}:{label_line}: @classLabel repeats a class: {class_names}")
    label_index = {name: i for i, name in enumerate(class_names)}
    dimensions = _int_tag(header, header_line, "dimensions", where)
    equal_length = _flag(header, "equallength", where, header_line.get("equallength", 0))
    series_length = _int_tag(header, header_line, "serieslength", where) if equal_length else None

    cases, labels, case_lines = [], [], []
    for number in range(data_start + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if not line or line.startswith("#"):
            continue
        *fields, label = line.split(":")
        where_line = f"{where}:{number}"
        label = label.strip()
        if label not in label_index:
            raise DataError(
                f"{where_line}: class label {label!r} is not in @classLabel {class_names} "
                f"(line {label_line})"
            )
        if not fields:
            raise DataError(f"{where_line}: expected dimensions separated by ':' then a label")
        if dimensions is not None and len(fields) != dimensions:
            raise DataError(
                f"{where_line}: {len(fields)} dimensions; expected @dimensions {dimensions}"
            )
        series = [_values(field, where_line, d) for d, field in enumerate(fields)]
        lengths = [len(s) for s in series]
        if len(set(lengths)) != 1:
            raise DataError(
                f"{where_line}: ragged case, dimension lengths {lengths}; expected one length"
            )
        if series_length is not None and lengths[0] != series_length:
            raise DataError(
                f"{where_line}: series of length {lengths[0]}; expected @seriesLength "
                f"{series_length} (@equalLength true)"
            )
        if cases and len(series) != cases[0].shape[0]:
            raise DataError(
                f"{where_line}: {len(series)} dimensions; the first case (line "
                f"{case_lines[0]}) has {cases[0].shape[0]}"
            )
        cases.append(np.stack(series))
        labels.append(label_index[label])
        case_lines.append(number)
    if not cases:
        raise no_data(f"{where}:{data_start}", "one case per line after @data", header="@data")
    return TsFile(
        where=where,
        problem=header.get("problemname", ""),
        class_names=tuple(class_names),
        cases=cases,
        labels=np.asarray(labels, np.int64),
        lines=case_lines,
        comment=" ".join(comment),
        header=header,
    )


def _int_tag(header: dict[str, str], line: dict[str, int], tag: str, where: str) -> int | None:
    if tag not in header:
        return None
    try:
        value = int(header[tag])
    except ValueError:
        raise DataError(
            f"{where}:{line[tag]}: @{tag} {header[tag]!r}; expected a whole number"
        ) from None
    if value < 1:
        raise DataError(f"{where}:{line[tag]}: @{tag} {value}; expected >= 1")
    return value


def _values(field: str, where: str, dimension: int) -> np.ndarray:
    """One dimension's comma-separated numbers; `?` (the format's missing value) and NaN
    become NaN, for the reader's gap policy; inf and anything else not a number are errors."""
    tokens = [token.strip() for token in field.split(",")]
    tokens = ["nan" if token == "?" else token for token in tokens]
    try:
        values = np.asarray(tokens, dtype=np.float64)
    except ValueError:
        for position, token in enumerate(tokens, start=1):
            try:
                float(token)
            except ValueError:
                raise DataError(
                    f"{where}: dimension {dimension + 1}, value {position}: {token!r} is not a "
                    "number; expected numbers (or '?' for a missing value)"
                ) from None
        raise
    bad = np.flatnonzero(np.isinf(values))
    if len(bad):
        raise DataError(
            f"{where}: dimension {dimension + 1}, value {bad[0] + 1} is infinite; expected "
            "finite numbers (or '?' for a missing value)"
        )
    return values
