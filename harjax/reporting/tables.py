"""Result rows: the CSV (atomic, typed), grouping, mean ± std, and Markdown tables.

A row is one run: a flat dict of identity columns (given by the sweep: `variant`, `shots`,
`seed`, `source`, ...) and scores. Nothing here knows which sweep wrote it: callers name the
columns that identify a group and the column that replicates it (the seed). `shots` is an int
k or `all` (the whole training split); `all` always sorts after every k.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harjax.data.sampling import ALL  # k = all, spelled once

Row = Mapping[str, Any]


def shots_key(shots: int | str) -> float:
    """Sort key for k: numbers ascending, `all` last."""
    return math.inf if shots == ALL else float(shots)


# ----------------------------------------------------------------------------------------- CSV


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest string that parses back to the same float
    return str(value)


def _parse(text: str, kind: type | None, where: str) -> Any:
    if text == "":
        return None
    if kind is not None:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{where}: expected {kind.__name__}, found {text!r}") from None
    # Untyped columns: the narrowest type that reads the text back exactly.
    if text in ("True", "False"):
        return text == "True"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def columns_of(rows: Sequence[Row], first: Sequence[str] = ()) -> list[str]:
    """`first`, then every other key in first-seen order (stable across rewrites)."""
    columns = list(first)
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def write_csv(rows: Iterable[Row], path: str | os.PathLike, columns: Sequence[str] = ()) -> None:
    """Writes every row atomically (temp file + rename): a kill mid-write leaves the old file.

    Columns: `columns` first, then extra keys in first-seen order; missing values are empty
    cells and read back as None. The file gets the usual permissions (0666 minus the umask),
    like every other output, not the 0600 of a temp file.
    """
    rows, path = list(rows), Path(path)
    header = columns_of(rows, columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_format(row.get(column)) for column in header])
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_csv(
    path: str | os.PathLike,
    *,
    required: Sequence[str] = (),
    types: Mapping[str, type] | None = None,
) -> list[dict[str, Any]]:
    """Rows with types restored (`types` per column, else the narrowest that round-trips)."""
    path, types = Path(path), dict(types or {})
    with open(path, newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header row")
        missing = [column for column in required if column not in header]
        if missing:
            raise ValueError(f"{path}: header lacks {missing}; found {header}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}:{line}: expected {len(header)} cells for {header}, found {len(cells)}"
                )
            rows.append(
                {
                    column: _parse(text, types.get(column), f"{path}:{line}, column {column!r}")
                    for column, text in zip(header, cells)
                }
            )
    return rows


# ---------------------------------------------------------------------------------- aggregation


def group_rows(
    rows: Sequence[Row], keys: Sequence[str], replicate: str = "seed"
) -> dict[tuple, list[Row]]:
    """{values of `keys`: runs} in first-seen order; the same run twice is an error.

    A run is identified by `keys` + `replicate`: a resumed sweep that appended a finished run
    again would otherwise be counted as another seed.
    """
    groups: dict[tuple, list[Row]] = {}
    seen: dict[tuple, int] = {}
    for index, row in enumerate(rows):
        missing = [key for key in (*keys, replicate) if key not in row]
        if missing:
            raise ValueError(f"results row {index}: missing columns {missing}; found {sorted(row)}")
        identity = tuple(row[key] for key in (*keys, replicate))
        if identity in seen:
            raise ValueError(
                f"results rows {seen[identity]} and {index}: the same run "
                f"{dict(zip((*keys, replicate), identity))} appears twice"
            )
        seen[identity] = index
        groups.setdefault(tuple(row[key] for key in keys), []).append(row)
    return groups


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; NaN for one value: no spread can be estimated from one run)."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return float(values.mean()), std


def format_mean_std(values: Sequence[float], digits: int = 3) -> str:
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def ordered(values: Iterable[Any], order: Sequence[Any] = ()) -> list[Any]:
    """`order` first (those present), then any other value in first-seen order, none dropped."""
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[Any]], align: str) -> str:
    """`align`: one character per column, 'l' (text) or 'r' (numbers)."""
    if len(align) != len(header):
        raise ValueError(f"markdown_table: {len(header)} columns but align {align!r}")
    rule = ["---" if a == "l" else "---:" for a in align]
    text = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    text += ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]
    return "\n".join(text) + "\n"


def completeness(done: int, planned: int) -> str:
    """The line a partial table carries until every planned run has finished."""
    if done >= planned:
        return f"All {planned} runs complete."
    return (
        f"**{done} of {planned} runs complete** — this table is partial; rerun the same command "
        "to finish it."
    )


_COMPLETE = re.compile(r"All (\d+) runs complete\.|\*\*(\d+) of (\d+) runs complete\*\*")


def read_completeness(path: str | os.PathLike) -> tuple[int, int]:
    """(finished, planned) runs of a report whose first lines carry `completeness`'s line.

    Raises ValueError naming the file when no such line is in its first 5 lines.
    """
    head = Path(path).read_text().split("\n", 5)[:5]
    for line in head:
        found = _COMPLETE.search(line)
        if found and found.group(1):
            return int(found.group(1)), int(found.group(1))
        if found:
            return int(found.group(2)), int(found.group(3))
    raise ValueError(f"{path}: no 'All N runs complete' / 'N of M runs complete' line at the top")
