"""The depth axis's report: per k and depth, each backbone's test macro-F1 and pretrained − control.

A depth-axis sweep (`config.sweep.num_layers`) runs one sweep per depth in WORKDIR/layers<N>/,
each choosing its settings on validation (`protocol.select` per (variant, k) within the depth);
the rows here are its kept rows, each with its `num_layers` (`sweeps.fewshot.depth_rows`).
A backbone's score at a depth is the mean test macro-F1 over its pairs (split seed, seed) with
a t interval; `pretrained` is compared with each control at the same k and depth on the same
pairs, and a difference is claimed only when its interval excludes zero. Intervals follow the
design (`stats.design_interval`: seeds of one validation draw averaged per draw first); one k's
comparisons (every depth and rival) are one Holm family, and each carries its minimum
detectable difference. Depth-free variants (`none`, `classical`: no backbone) can be drawn as
reference levels from another sweep on the same splits and seeds. A (k, depth) whose sweep has
not finished is marked partial wherever it appears.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Sequence
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
        key: stats.design_interval(
            [float(row[METRIC]) for row in group],
            stats.clusters_of([row["pair"] for row in group], PAIR_ON, stats.NESTED_IN),
        )
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
            found[(shots, depth, rival)] = stats.paired_interval(result, PAIR_ON)
    return found


def corrected(paired: dict[Key, stats.Interval]) -> dict[Key, stats.Corrected]:
    """Each comparison's Holm correction and MDD, one family per k (its depths x rivals)."""
    found = {}
    for shots in dict.fromkeys(k for k, _, _ in paired):
        keys = [key for key in paired if key[0] == shots]
        found.update(zip(keys, stats.correct_family([paired[key] for key in keys])))
    return found


def verdict(interval: stats.Interval, sign: int | None | str = "uncorrected") -> str:
    """The verdict word of `interval` (uncorrected), or of a given sign (after Holm)."""
    return {
        1: f"{REFERENCE} better",
        -1: f"{REFERENCE} worse",
        0: "no detectable difference",
        None: "not run" if interval.n == 0 else "cannot tell (fewer than 2 pairs)",
    }[stats.direction(interval) if sign == "uncorrected" else sign]


def _interval(interval: stats.Interval | None, sign: str = "") -> str:
    """'0.815 [0.794, 0.836]' (a level) or '+0.115 [+0.094, +0.136]' (sign '+': a difference)."""
    if interval is None or interval.n == 0:
        return "—"
    if interval.n < 2:
        return f"{interval.mean:{sign}.3f}" + ("" if sign else " (n=1)")
    return f"{interval.mean:{sign}.3f} [{interval.low:{sign}.3f}, {interval.high:{sign}.3f}]"


def _k(shots: Any, depth: int | None, partial: Collection[tuple]) -> str:
    """The k column: 'all (partial)' where that (k, depth)'s sweep has not finished."""
    return f"{shots} (partial)" if (shots, depth) in partial else str(shots)


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
    partial: Collection[tuple] = (),
) -> str:
    """Each backbone's test macro-F1 per (k, depth) with 95 % intervals, the depth-free
    reference levels if given, then pretrained − each control per (k, depth) with verdicts
    (uncorrected and after Holm over the k's comparisons) and minimum detectable differences.
    `partial`: the (k, depth)s whose sweep has not finished, marked so in every table."""
    means, paired = scores(rows), differences(rows, reference_rows)
    holm = corrected(paired)
    reference_levels = references(reference_rows)
    variants = tables.ordered((row["variant"] for row in rows), (REFERENCE, *CONTROLS))
    shots_values = sorted({row["shots"] for row in rows}, key=tables.shots_key)
    depths = sorted({int(row["num_layers"]) for row in rows})
    lines = []
    for shots in shots_values:
        for depth in depths:
            if not any((shots, depth, v) in means for v in variants):
                continue
            most = _pairs(rows, shots, depth)
            cells = []
            for v in variants:
                interval = means.get((shots, depth, v))
                runs = None if interval is None else (interval.runs or interval.n)
                fewer = interval is not None and 0 < runs < most
                cells.append(_interval(interval) + (f" ({runs} pairs)" if fewer else ""))
            lines.append([_k(shots, depth, partial), depth, most, *cells])
    every = [*means.values(), *paired.values()]
    text = [
        "Test macro-F1, mean over pairs (split seed, seed) with its 95 % t interval (a cell "
        "with fewer pairs than its row says how many); each variant's setting chosen per (k, "
        "depth) on validation. "
        + stats.design_note(
            every, family="the comparisons of one k (every depth and rival: one family)"
        ),
        "",
        tables.markdown_table(
            ["k", "layers", "pairs", *variants], lines, "lrr" + "r" * len(variants)
        ),
    ]
    if reference_levels:
        lines = [
            [shots, name, interval.runs or interval.n, _interval(interval)]
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
                fixed = holm[(shots, depth, control)]
                lines.append(
                    [
                        _k(shots, depth, partial),
                        depth,
                        control,
                        _interval(interval, "+"),
                        interval.units,
                        verdict(interval),
                        stats.format_p(fixed.p_holm),
                        verdict(interval, fixed.corrected),
                        "—" if math.isnan(fixed.mdd) else f"{fixed.mdd:.3f}",
                    ]
                )
    if lines:
        text += [
            f"{REFERENCE} − control (or depth-free reference), test macro-F1 paired on (split "
            "seed, seed); a difference is claimed only when the interval excludes zero. The "
            "verdict is given uncorrected and after Holm over the comparisons of its k; MDD: "
            "the smallest difference detectable with 80 % power.",
            "",
            tables.markdown_table(
                [
                    "k",
                    "layers",
                    "control",
                    f"{REFERENCE} − control",
                    "n",
                    "verdict (uncorrected)",
                    "Holm p",
                    "after Holm",
                    "MDD (80 %)",
                ],
                lines,
                "lrlrrlrlr",
            ),
        ]
    return "\n".join(text)


def write(
    workdir: str | os.PathLike,
    rows: Sequence[tables.Row],
    reference_rows: Sequence[tables.Row] = (),
    header_lines: Sequence[str] = (),
    partial: Collection[tuple] = (),
) -> None:
    """WORKDIR/depth.md and depth.png from kept rows with `num_layers`; `reference_rows`, kept
    rows of depth-free variants (`none`, `classical`) on the same splits and seeds, become
    levels and paired rivals; `partial` (k, depth)s are marked partial in the tables and the
    figure."""
    workdir = Path(workdir)
    text = ["# Depth", "", *header_lines, markdown(rows, reference_rows, partial)]
    (workdir / "depth.md").write_text("\n".join(text))
    plots.plot_depth(
        scores(rows),
        workdir / "depth.png",
        references(reference_rows),
        partial={shots for shots, _ in partial},
    )
