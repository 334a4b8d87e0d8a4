"""The linear probe's reports: per-layer intervals over seeds, paired differences, best layers.

`harjax.sweeps.probe` writes one row per (variant, layer, seed); everything here is computed
from those rows alone, so probe.md and probe.png can be rebuilt from probe.csv. A layer's score
is the mean test macro-F1 over seeds with a t interval (`stats.design_interval`: the probe's
seeds share its one validation split, so the interval is over seeds and conditional on that
split); the pretrained backbone is compared with each control at the same layer on the same
seed (`stats.paired_differences`, paired on `seed`), and a difference is claimed only when its
interval excludes zero: uncorrected, and after Holm's correction over the whole difference
table (one family), with the minimum detectable difference at 80 % power beside it. Each
variant's best layer is chosen per seed on validation macro-F1.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

from harjax.reporting import plots, stats, tables
from harjax.run import code_version
from harjax.variants import REFERENCE

PROJECTION_ONLY = "projection-only"
METRIC = "test_macro_f1"
LEVEL = 0.95


def best_layers(rows: Sequence[tables.Row]) -> dict[tuple[str, int], tables.Row]:
    """{(variant, seed): its row with the highest validation macro-F1} (ties: the earlier
    layer). Rows without a `seed` count as seed 0."""
    best: dict[tuple[str, int], tables.Row] = {}
    for row in rows:
        key = (row["variant"], int(row.get("seed", 0)))
        current = best.get(key)
        if current is None or row["val_macro_f1"] > current["val_macro_f1"]:
            best[key] = row
    return best


def layer_intervals(rows: Sequence[tables.Row]) -> dict[tuple[str, int | None], stats.Interval]:
    """{(variant, layer): mean test macro-F1 over seeds and its t interval} (NaN bounds with
    one seed). projection-only's layer is None."""
    groups = tables.group_rows(rows, ["variant", "layer"], replicate="seed")
    return {key: _over_seeds([float(r[METRIC]) for r in group]) for key, group in groups.items()}


def _over_seeds(values: Sequence[float]) -> stats.Interval:
    # Every seed of a probe shares its one validation split: one cluster, n counts seeds.
    interval = stats.design_interval(values, [0] * len(values), level=LEVEL)
    return dataclasses.replace(interval, unit="seed")


def paired_by_layer(
    rows: Sequence[tables.Row], control: str
) -> dict[int, tuple[stats.Paired, stats.Interval]]:
    """{layer: (pretrained - control per seed, the interval of its mean)}, paired on seed."""
    found = stats.paired_differences(
        [row for row in rows if row["layer"] is not None],
        metric=METRIC,
        compare="variant",
        a=REFERENCE,
        b=control,
        within=("layer",),
        pair_on=("seed",),
    )
    return {
        group[0]: (paired, _over_seeds(paired.differences))
        for group, paired in sorted(found.items())
    }


def _seeds(count: int) -> str:
    return "1 seed" if count == 1 else f"{count} seeds"


def _mean_ci(interval: stats.Interval) -> str:
    if interval.n == 0:
        return "—"
    if interval.n < 2 or math.isnan(interval.low):
        return f"{interval.mean:.3f}"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _difference(interval: stats.Interval) -> str:
    if interval.n == 0:
        return "—"
    mean = f"{round(interval.mean, 3) + 0.0:+.3f}"
    if interval.n < 2:
        return mean
    return f"{mean} [{round(interval.low, 3) + 0.0:.3f}, {round(interval.high, 3) + 0.0:.3f}]"


def _verdict(interval: stats.Interval, sign: int | None | str = "uncorrected") -> str:
    """'no detectable difference' unless the interval excludes zero; 'cannot tell' with n < 2.
    With a `sign` (the Holm-corrected one) that sign's word."""
    sign = stats.direction(interval) if sign == "uncorrected" else sign
    return {
        1: f"{REFERENCE} higher",
        -1: f"{REFERENCE} lower",
        0: "no detectable difference",
        None: "cannot tell (one seed)",
    }[sign]


def markdown(rows: Sequence[tables.Row], header_lines: Sequence[str] = ()) -> str:
    """probe.md: per-layer means with intervals, paired differences, best layers per seed."""
    level = f"{LEVEL * 100:g} %"
    seeds = sorted({int(row["seed"]) for row in rows})
    variants = tables.ordered(r["variant"] for r in rows if r["layer"] is not None)
    layers = sorted({r["layer"] for r in rows if r["layer"] is not None})
    means = layer_intervals(rows)
    text = ["# Linear probe on frozen features", "", *header_lines, ""]

    text += [
        f"## Test macro-F1 per layer (mean over {_seeds(len(seeds))}, {level} t interval)",
        "",
    ]
    lines = [
        [
            layer,
            *(
                _mean_ci(means.get((v, layer), stats.Interval(0, 0, 0, 0, "t", LEVEL)))
                for v in variants
            ),
        ]
        for layer in layers
    ]
    text.append(
        tables.markdown_table(["layer", *variants], lines, "r" + "r" * len(variants)).rstrip("\n")
    )
    if (PROJECTION_ONLY, None) in means:
        floor = means[(PROJECTION_ONLY, None)]
        text.append(
            f"\nFloor, {PROJECTION_ONLY} (the projection's tokens pooled, no backbone): "
            f"{_mean_ci(floor)}."
        )

    controls = [v for v in variants if v != REFERENCE]
    if REFERENCE in variants and controls:
        text += [
            "",
            f"## Paired difference {REFERENCE} − control per layer (paired on seed, {level} "
            "t interval)",
            "",
            "A difference is claimed only when its interval excludes zero.",
            "",
        ]
        found = {control: paired_by_layer(rows, control) for control in controls}
        cells = [
            (layer, control, *found[control][layer])
            for layer in layers
            for control in controls
            if layer in found[control]
        ]
        family = stats.correct_family([interval for *_, interval in cells])
        text[-2:-1] = [
            "A difference is claimed only when its interval excludes zero. "
            + stats.design_note([i for *_, i in cells])
        ]
        lines = []
        for (layer, control, paired, interval), fixed in zip(cells, family):
            lines.append(
                [
                    layer,
                    control,
                    _difference(interval),
                    interval.units,
                    paired.unpaired,
                    _verdict(interval),
                    stats.format_p(fixed.p_holm),
                    _verdict(interval, fixed.corrected),
                    "—" if math.isnan(fixed.mdd) else f"{fixed.mdd:.3f}",
                ]
            )
        header = [
            "layer",
            "control",
            f"{REFERENCE} − control [{level} CI]",
            "n",
            "unpaired",
            "verdict (uncorrected)",
            "Holm p",
            "after Holm",
            "MDD (80 %)",
        ]
        text.append(tables.markdown_table(header, lines, "rlrrrlrlr").rstrip("\n"))

    text += [
        "",
        "## Best layer per variant and seed (chosen on validation macro-F1)",
        "",
    ]
    best = best_layers(rows)
    lines = []
    for variant in [*variants, PROJECTION_ONLY]:
        for seed in seeds:
            row = best.get((variant, seed))
            if row is None:
                continue
            layer = "—" if row["layer"] is None else row["layer"]
            lines.append(
                [
                    variant,
                    seed,
                    layer,
                    f"{row['C']:g}",
                    f"{row['val_macro_f1']:.3f}",
                    f"{row['test_macro_f1']:.3f}",
                ]
            )
    header = ["variant", "seed", "best layer", "C", "val macro-F1", "test macro-F1"]
    text.append(tables.markdown_table(header, lines, "lrrrrr").rstrip("\n"))
    text.append("")
    for variant in [*variants, PROJECTION_ONLY]:
        scores = [best[(variant, s)][METRIC] for s in seeds if (variant, s) in best]
        if scores:
            interval = _over_seeds(scores)
            text.append(
                f"- {variant}: test macro-F1 at its validation-chosen layer, mean over seeds "
                f"{_mean_ci(interval)}."
            )
    text.append("\nEvery (variant, layer, seed) row, with its C and accuracy: probe.csv.")
    return "\n".join(text) + "\n"


def plot(rows: Sequence[tables.Row], path: str | os.PathLike, title: str) -> None:
    """Mean test macro-F1 vs layer per variant with its interval band over seeds;
    projection-only's mean a dashed horizontal line."""
    means = layer_intervals(rows)
    names = tables.ordered(r["variant"] for r in rows if r["layer"] is not None)
    lines, bands = {}, {}
    for name in names:
        found = sorted((layer, ci) for (v, layer), ci in means.items() if v == name)
        lines[name] = [(layer, ci.mean) for layer, ci in found]
        bands[name] = [(layer, ci.low, ci.high) for layer, ci in found if ci.n > 1]
    seeds = len({row["seed"] for row in rows})
    plots.plot_lines(
        lines,
        path,
        xlabel="backbone layer (0-based)",
        ylabel=f"test macro-F1, mean of {seeds} seeds (C chosen on validation)",
        title=title,
        levels={name: ci.mean for (name, layer), ci in means.items() if layer is None},
        bands=bands,
    )


TITLE = "# Linear probe on frozen features"
REBUILT = "Tables rebuilt from probe.csv"


def rebuild(workdir: str | os.PathLike) -> str:
    """Rewrites WORKDIR/probe.md from WORKDIR/probe.csv, keeping the header the probe wrote (its
    data, backbone, machine and code): how a committed page follows the reporting code without
    probing again. Returns the new text."""
    workdir = Path(workdir)
    old = (workdir / "probe.md").read_text().splitlines()
    if not old or old[0] != TITLE:
        raise ValueError(f"{workdir / 'probe.md'}: expected a page starting {TITLE!r}")
    end = next((i for i, line in enumerate(old) if line.startswith("## ")), len(old))
    header = [line for line in old[2:end] if not line.startswith(REBUILT)]
    while header and not header[-1]:
        header.pop()
    header.append(f"{REBUILT} by code {code_version.describe(code_version.code_version())}.")
    text = markdown(tables.read_csv(workdir / "probe.csv"), header)
    (workdir / "probe.md").write_text(text)
    return text
