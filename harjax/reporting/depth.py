"""The depth axis's report: per k and depth, each backbone's test macro-F1 and pretrained − control.

A depth-axis sweep (`config.sweep.num_layers`) runs one sweep per depth in WORKDIR/layers<N>/,
each choosing its settings on validation (`protocol.select` per (variant, k) within the depth);
the rows here are its kept rows, each with its `num_layers` (`sweeps.fewshot.depth_rows`).
A backbone's score at a depth is the mean test macro-F1 over its pairs (split seed, seed) with
a t interval; `pretrained` is compared with each control at the same k and depth on the same
pairs, and a difference is claimed only when its interval excludes zero. Depth-free variants
(`none`, `classical`: no backbone) can be drawn as reference levels from another sweep on the
same splits and seeds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harjax import variants as variant_table
from harjax.reporting import plots, stats, tables

REFERENCE = variant_table.REFERENCE
# random, shuffled: the controls that redraw the backbone, run per depth
CONTROLS = variant_table.BACKBONE_CONTROLS
PAIR_ON = variant_table.PAIR_ON
METRIC = "macro_f1"

Key = tuple[Any, int, str]  # (k, depth, variant or control)


def _levels(rows: Sequence[tables.Row], within: Sequence[str]) -> dict[tuple, stats.Interval]:
    paired = [{**row, "pair": tuple(row[c] for c in PAIR_ON)} for row in rows]
    groups = tables.group_rows(paired, within, replicate="pair")
    return {
        key: stats.confidence_interval([float(row[METRIC]) for row in group])
        for key, group in groups.items()
    }


def scores(rows: Sequence[tables.Row]) -> dict[Key, stats.Interval]:
    """{(k, depth, variant): mean test macro-F1 over the pairs and its 95 % t interval}."""
    return _levels(rows, ("shots", "num_layers", "variant"))


def references(rows: Sequence[tables.Row]) -> dict[tuple, stats.Interval]:
    """{(k, variant): the level of each depth-free variant} from its (kept) rows."""
    return _levels(rows, ("shots", "variant")) if rows else {}


def differences(
    rows: Sequence[tables.Row], reference_rows: Sequence[tables.Row] = ()
) -> dict[Key, stats.Interval]:
    """{(k, depth, rival): pretrained − rival on test macro-F1, paired on (split, seed)}, for
    each control the rows hold and each depth-free variant of `reference_rows` (no backbone:
    the same runs pair with `pretrained` at every depth run at their k; a sweep may run k = all
    at fewer depths than k = 10). n = 0 where one side did not run."""
    depths_of: dict[Any, set] = {}
    for row in rows:
        depths_of.setdefault(row["shots"], set()).add(row["num_layers"])
    free = [
        {**row, "num_layers": depth}
        for row in reference_rows
        for depth in depths_of.get(row["shots"], ())
    ]
    found = {}
    present = {row["variant"] for row in rows}
    rivals = [c for c in CONTROLS if c in present]
    rivals += tables.ordered(row["variant"] for row in reference_rows)
    for rival in rivals:
        paired = stats.paired_differences(
            [*rows, *free],
            metric=METRIC,
            compare="variant",
            a=REFERENCE,
            b=rival,
            within=("shots", "num_layers"),
            pair_on=PAIR_ON,
        )
        for (shots, depth), result in paired.items():
            found[(shots, depth, rival)] = stats.confidence_interval(result.differences)
    return found


def verdict(interval: stats.Interval) -> str:
    return {
        1: f"{REFERENCE} better",
        -1: f"{REFERENCE} worse",
        0: "no detectable difference",
        None: "not run" if interval.n == 0 else "cannot tell (fewer than 2 pairs)",
    }[stats.direction(interval)]


def _interval(interval: stats.Interval | None, sign: str = "") -> str:
    """'0.815 [0.794, 0.836]' (a level) or '+0.115 [+0.094, +0.136]' (sign '+': a difference)."""
    if interval is None or interval.n == 0:
        return "—"
    if interval.n < 2:
        return f"{interval.mean:{sign}.3f}" + ("" if sign else " (n=1)")
    return f"{interval.mean:{sign}.3f} [{interval.low:{sign}.3f}, {interval.high:{sign}.3f}]"


def _pairs(rows: Sequence[tables.Row], shots: Any, depth: int) -> int:
    """The most pairs any backbone has at (k, depth): the full count once all runs finished."""
    found: dict[str, set] = {}
    for row in rows:
        if row["shots"] == shots and row["num_layers"] == depth:
            found.setdefault(row["variant"], set()).add(tuple(row[c] for c in PAIR_ON))
    return max((len(pairs) for pairs in found.values()), default=0)


def markdown(
    rows: Sequence[tables.Row],
    reference_rows: Sequence[tables.Row] = (),
) -> str:
    """Each backbone's test macro-F1 per (k, depth) with 95 % intervals, the depth-free
    reference levels if given, then pretrained − each control per (k, depth) with verdicts."""
    means, paired = scores(rows), differences(rows, reference_rows)
    reference_levels = references(reference_rows)
    variants = tables.ordered((row["variant"] for row in rows), (REFERENCE, *CONTROLS))
    shots_values = sorted({row["shots"] for row in rows}, key=tables.shots_key)
    depths = sorted({int(row["num_layers"]) for row in rows})
    lines = []
    for shots in shots_values:
        for depth in depths:
            if not any((shots, depth, v) in means for v in variants):
                continue
            cells = [_interval(means.get((shots, depth, v))) for v in variants]
            lines.append([shots, depth, _pairs(rows, shots, depth), *cells])
    text = [
        "Test macro-F1, mean over pairs (split seed, seed) with its 95 % t interval; each "
        "variant's setting chosen per (k, depth) on validation.",
        "",
        tables.markdown_table(
            ["k", "layers", "pairs", *variants], lines, "lrr" + "r" * len(variants)
        ),
    ]
    if reference_levels:
        lines = [
            [shots, name, interval.n, _interval(interval)]
            for (shots, name), interval in sorted(
                reference_levels.items(),
                key=lambda item: (tables.shots_key(item[0][0]), item[0][1]),
            )
        ]
        text += [
            "Depth-free references (no backbone, so the same at every depth), on the same "
            "splits and seeds:",
            "",
            tables.markdown_table(["k", "variant", "pairs", "test macro-F1"], lines, "llrr"),
        ]
    lines = []
    for shots in shots_values:
        for depth in depths:
            for control in tables.ordered(
                rival for k, d, rival in paired if (k, d) == (shots, depth)
            ):
                interval = paired.get((shots, depth, control))
                if interval is None:
                    continue
                lines.append(
                    [shots, depth, control, _interval(interval, "+"), interval.n, verdict(interval)]
                )
    if lines:
        text += [
            f"{REFERENCE} − control (or depth-free reference), test macro-F1 paired on (split "
            "seed, seed), 95 % t interval; a difference is claimed only when the interval "
            "excludes zero.",
            "",
            tables.markdown_table(
                ["k", "layers", "control", f"{REFERENCE} − control", "pairs", "verdict"],
                lines,
                "lrlrrl",
            ),
        ]
    return "\n".join(text)


def write(
    workdir: str | os.PathLike,
    rows: Sequence[tables.Row],
    reference_rows: Sequence[tables.Row] = (),
    header_lines: Sequence[str] = (),
) -> None:
    """WORKDIR/depth.md and depth.png from kept rows with `num_layers`; `reference_rows`, kept
    rows of depth-free variants (`none`, `classical`) on the same splits and seeds, become
    levels and paired rivals."""
    workdir = Path(workdir)
    text = ["# Depth", "", *header_lines, markdown(rows, reference_rows)]
    (workdir / "depth.md").write_text("\n".join(text))
    plots.plot_depth(scores(rows), workdir / "depth.png", references(reference_rows))
