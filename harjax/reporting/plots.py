"""Plots of result rows, one style: bare Agg `Figure`s (no pyplot state, safe in any thread).

`plot_shots` draws macro-F1 against k for any sweep (lines by a series column, optional panels
by another); `plot_differences` the paired difference from a reference variant with its CI;
`plot_convergence`, `plot_confusion` and `plot_trainable_params` are the few-shot
sweep's and the run's other figures; `plot_lines` any other study's y-against-x lines, with
optional interval bands (the probe's macro-F1 per layer over seeds); `plot_summary` the
cross-dataset summary and `plot_depth` the depth axis.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harjax.reporting.stats import comparisons
from harjax.reporting.tables import ALL, Row, group_rows, mean_std, ordered, shots_key


def _figure(width: float = 6.4, height: float = 4.2):
    # A bare Figure on the Agg canvas: no pyplot global state, no display, safe in any thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def _colours(variants: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {variant: palette(index % 10) for index, variant in enumerate(variants)}


def _shot_positions(shots: Sequence[Any]) -> tuple[dict[Any, float], bool]:
    """x of each k (sorted) and whether the axis is categorical (k = 0 present) or log."""
    numeric = [k for k in shots if k != ALL]
    if 0 in numeric:
        return {k: float(i) for i, k in enumerate(shots)}, True
    return {**{k: float(k) for k in numeric}, ALL: 2.0 * numeric[-1] if numeric else 2.0}, False


def _shots_axis(axes, position: Mapping[Any, float], categorical: bool) -> None:
    if not categorical:
        axes.set_xscale("log")
        axes.minorticks_off()
    axes.set_xticks(list(position.values()), [str(k) for k in position])
    axes.set_xlabel("shots per class (k" + ("; 0 = zero-shot)" if categorical else ")"))


def plot_shots(
    rows: Sequence[Row],
    path: str | os.PathLike,
    *,
    series: str = "variant",
    series_order: Sequence[Any] = (),
    panels: Sequence[str] = (),
    panel_title=None,
    title: str = "Test macro-F1 (mean ± std over seeds)",
    replicate: str = "seed",
) -> None:
    """Macro-F1 vs k, one line per `series` value: mean over seeds, shaded ± sample std.

    With only positive k the x axis is logarithmic (1, 5, 10, 50 spread evenly) and `all` sits
    one step right of the largest k (2x it); when k = 0 (zero-shot) is present the axis is
    categorical. `panels` (columns, e.g. source and target) gives one panel per value.
    `replicate` is the column that tells the runs of one point apart (`tables.group_rows`).
    """
    groups = group_rows(rows, [*panels, series, "shots"], replicate=replicate)
    panel_values = list(dict.fromkeys(key[: len(panels)] for key in groups))
    shots = sorted({key[-1] for key in groups}, key=shots_key)
    position, categorical = _shot_positions(shots)
    names = ordered((key[len(panels)] for key in groups), series_order)
    colours = _colours(names)
    columns = min(3, len(panel_values))
    rows_needed = math.ceil(len(panel_values) / columns)
    figure = _figure(
        6.4 if columns == 1 else 4.6 * columns, 4.2 if rows_needed == 1 else 3.6 * rows_needed
    )
    axes_grid = figure.subplots(rows_needed, columns, squeeze=False)
    for axes, panel in zip(axes_grid.flat, panel_values):
        for name in names:
            ks = [k for k in shots if (*panel, name, k) in groups]
            if not ks:
                continue
            stats = [mean_std([run["macro_f1"] for run in groups[(*panel, name, k)]]) for k in ks]
            x = np.array([position[k] for k in ks])
            mean = np.array([m for m, _ in stats])
            std = np.nan_to_num(np.array([s for _, s in stats]))  # one seed: no band
            axes.plot(
                x,
                mean,
                marker="o",
                color=colours[name],
                label=f"{series} {name}" if panels else name,
            )
            axes.fill_between(x, mean - std, mean + std, color=colours[name], alpha=0.2, lw=0)
        _shots_axis(axes, position, categorical)
        axes.set_ylabel("test macro-F1")
        axes.set_title(
            panel_title(*panel) if panel_title else title, fontsize=9 if panels else None
        )
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8 if panels else None)
    for axes in list(axes_grid.flat)[len(panel_values) :]:
        axes.set_visible(False)
    _save(figure, path)


def _mean_curve(curves: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over seeds on the shared step grid (union of steps, interpolated).

    The grid spans only the steps every seed covers, so no seed is extrapolated.
    """
    first = max(float(c["steps"][0]) for c in curves)
    last = min(float(c["steps"][-1]) for c in curves)
    grid = np.unique(np.concatenate([np.asarray(c["steps"], np.float64) for c in curves]))
    grid = grid[(grid >= first) & (grid <= last)]
    values = np.stack([np.interp(grid, c["steps"], c["val_macro_f1"]) for c in curves])
    return grid, values.mean(axis=0), values.std(axis=0)


def plot_convergence(
    curves: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    variant_order: Sequence[str] = (),
) -> None:
    """Validation macro-F1 vs training step: one panel per k, one colour per variant.

    Each line is the mean over seeds (shaded: population std over seeds at each step).
    `curves`: dicts {variant, shots, seed, steps: [...], val_macro_f1: [...]}; empty curves
    (variants that do not train by steps, e.g. classical) are skipped and named in the title.
    """
    grouped: dict[tuple[Any, str], list[Mapping[str, Any]]] = {}
    skipped = set()
    for index, curve in enumerate(curves):
        for key in ("variant", "shots", "steps", "val_macro_f1"):
            if key not in curve:
                raise ValueError(f"plot_convergence: curve {index} lacks {key!r}")
        if len(curve["steps"]) != len(curve["val_macro_f1"]):
            raise ValueError(
                f"plot_convergence: curve {index} ({curve['variant']}, k={curve['shots']}) has "
                f"{len(curve['steps'])} steps but {len(curve['val_macro_f1'])} values"
            )
        if len(curve["steps"]) == 0:
            skipped.add(curve["variant"])
            continue
        grouped.setdefault((curve["shots"], curve["variant"]), []).append(curve)
    if not grouped:
        raise ValueError("plot_convergence: no curve has any point to plot")
    shots = sorted({k for k, _ in grouped}, key=shots_key)
    variants = ordered((v for _, v in grouped), variant_order)
    colours = _colours(variants)
    columns = min(len(shots), 3)
    rows_needed = math.ceil(len(shots) / columns)
    figure = _figure(4.2 * columns, 3.4 * rows_needed)
    panels = figure.subplots(rows_needed, columns, squeeze=False, sharey=True)
    for panel, k in zip(panels.flat, shots):
        for variant in variants:
            if (k, variant) not in grouped:
                continue
            steps, mean, std = _mean_curve(grouped[(k, variant)])
            panel.plot(steps, mean, color=colours[variant], label=variant)
            panel.fill_between(steps, mean - std, mean + std, color=colours[variant], alpha=0.2)
        panel.set_title(f"k={k}")
        panel.set_xlabel("training step")
        panel.grid(True, alpha=0.3)
    for panel in panels.flat[len(shots) :]:
        panel.set_visible(False)
    for panel in panels[:, 0]:
        panel.set_ylabel("validation macro-F1")
    panels.flat[0].legend()
    title = "Convergence (mean over seeds)"
    if skipped:
        title += f"; no step curve: {', '.join(sorted(skipped))}"
    figure.suptitle(title)
    _save(figure, path)


def plot_confusion(
    confusion: Any, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """Heat map of a confusion matrix (rows true, columns predicted) with the counts written in.

    Colour is the row-normalised rate (recall per true class), so a rare class's errors are as
    visible as a frequent one's; the numbers are the raw counts.
    """
    counts = np.asarray(confusion)
    num_classes = len(class_names)
    if counts.shape != (num_classes, num_classes):
        raise ValueError(
            f"plot_confusion: expected a ({num_classes}, {num_classes}) matrix for classes "
            f"{list(class_names)}, found shape {counts.shape}"
        )
    totals = counts.sum(axis=1, keepdims=True)
    rates = counts / np.where(totals > 0, totals, 1)
    size = max(4.0, 0.55 * num_classes + 2.0)
    figure = _figure(size + 1.0, size)
    axes = figure.add_subplot()
    image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(num_classes):
        for j in range(num_classes):
            axes.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    axes.set_xticks(range(num_classes), class_names, rotation=45, ha="right")
    axes.set_yticks(range(num_classes), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title or "Confusion matrix")
    figure.colorbar(image, ax=axes, label="fraction of true class")
    _save(figure, path)


def plot_trainable_params(
    rows: Sequence[Row], path: str | os.PathLike, variant_order: Sequence[str] = ()
) -> None:
    """Bar chart (log y) of trainable parameters per variant: mean over its runs.

    A variant whose count varies between runs (classical: tree nodes grow with k) gets a
    min–max whisker, so the bar never hides that range.
    """
    variants = ordered((row["variant"] for row in rows), variant_order)
    if not variants:
        raise ValueError("plot_trainable_params: no rows")
    counts = {
        v: [float(r["trainable_params"]) for r in rows if r["variant"] == v] for v in variants
    }
    means = np.array([np.mean(counts[v]) for v in variants])
    lower = means - np.array([min(counts[v]) for v in variants])
    upper = np.array([max(counts[v]) for v in variants]) - means
    colours = _colours(variants)
    figure = _figure()
    axes = figure.add_subplot()
    x = np.arange(len(variants))
    axes.bar(x, means, color=[colours[v] for v in variants])
    varies = (lower + upper) > 0
    if varies.any():
        spread = [lower[varies], upper[varies]]
        axes.errorbar(x[varies], means[varies], yerr=spread, fmt="none", ecolor="k", capsize=4)
    for position, mean in zip(x, means):
        axes.annotate(
            f"{mean:,.0f}",
            (position, mean),
            xytext=(12, 2),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=8,
        )
    axes.set_yscale("log")
    axes.set_xticks(x, variants)
    axes.set_ylabel("trainable parameters (classical: tree nodes)")
    axes.set_title("Trainable parameters per variant")
    axes.grid(True, axis="y", alpha=0.3)
    _save(figure, path)


def plot_differences(
    rows: Sequence[Row],
    path: str | os.PathLike,
    *,
    metric: str = "macro_f1",
    compare: str = "variant",
    reference: Any,
    others: Sequence[Any],
    pair_on: Sequence[str] = ("split_seed", "seed"),
    level: float = 0.95,
    method: str = "t",
    title: str | None = None,
) -> None:
    """Paired difference other - reference vs k, one colour per other variant, CI error bars.

    Points are `stats.comparisons`' uncorrected intervals at each k (seeds nested in validation
    draws averaged per draw first; no bar with a single unit); the dashed line is zero, no
    difference. Variants sit slightly apart at each k so their bars do not overlap.
    """
    found = comparisons(
        rows,
        metric=metric,
        compare=compare,
        reference=reference,
        others=others,
        within=("shots",),
        pair_on=pair_on,
        level=level,
        method=method,
    )
    position, categorical = _shot_positions(sorted({c.group[0] for c in found}, key=shots_key))
    colours = _colours(list(others))
    figure = _figure()
    axes = figure.subplots()
    for index, other in enumerate(others):
        points = [(c.group[0], c.interval) for c in found if c.other == other and c.interval.n > 0]
        if not points:
            continue
        offset = (index - (len(others) - 1) / 2) * 0.06  # in axis steps (log or categorical)
        x = np.array(
            [position[k] + offset if categorical else position[k] * 2**offset for k, _ in points]
        )
        mean = np.array([ci.mean for _, ci in points])
        below = np.nan_to_num(np.array([ci.mean - ci.low for _, ci in points]))
        above = np.nan_to_num(np.array([ci.high - ci.mean for _, ci in points]))
        axes.errorbar(
            x, mean, yerr=[below, above], marker="o", capsize=3, color=colours[other], label=other
        )
    axes.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    _shots_axis(axes, position, categorical)
    axes.set_ylabel(f"{metric} − {reference} (paired)")
    level_text = f"{level * 100:g} %"
    axes.set_title(title or f"Paired difference from {reference}, {level_text} CI ({method})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    _save(figure, path)


def plot_lines(
    lines: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    levels: Mapping[str, float] | None = None,
    bands: Mapping[str, Sequence[tuple[float, float, float]]] | None = None,
) -> None:
    """y against x, one colour per named line (integer x ticks at the points, at most 16 of
    them); each of `levels` a dashed grey horizontal line, e.g. a floor the lines have to
    clear; `bands[name]` (x, low, high) points shade an interval around that line."""
    colours = _colours(list(lines))
    figure = _figure()
    axes = figure.add_subplot()
    for name, points in lines.items():
        axes.plot(*zip(*points), marker="o", markersize=3, color=colours[name], label=name)
        band = (bands or {}).get(name, ())
        if band:
            x, low, high = zip(*band)
            axes.fill_between(x, low, high, color=colours[name], alpha=0.2, linewidth=0)
    for name, level in (levels or {}).items():
        axes.axhline(level, color="grey", linestyle="--", label=name)
    ticks = sorted({x for points in lines.values() for x, _ in points})
    axes.set_xticks(ticks if len(ticks) <= 16 else ticks[:: math.ceil(len(ticks) / 16)])
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    _save(figure, path)


def plot_summary(comparisons: Sequence[Any], path: str | os.PathLike) -> None:
    """The cross-dataset summary (`reporting.summary.Comparison`s): one panel per dataset,
    pretrained − rival on test macro-F1 against k, 95 % interval bars, zero dashed."""
    datasets = list(dict.fromkeys(c.dataset for c in comparisons))
    roles = list(dict.fromkeys(c.role for c in comparisons))
    colours = _colours(roles)
    figure = _figure(width=4.2 * max(1, len(datasets)), height=3.8)
    panels = np.atleast_1d(figure.subplots(1, max(1, len(datasets)), sharey=True))
    for axes, dataset in zip(panels, datasets):
        mine = [c for c in comparisons if c.dataset == dataset]
        position, categorical = _shot_positions(sorted({c.shots for c in mine}, key=shots_key))
        for index, role in enumerate(roles):
            points = [c for c in mine if c.role == role and c.interval.n > 0]
            if not points:
                continue
            offset = (index - (len(roles) - 1) / 2) * 0.08
            x = np.array(
                [
                    position[c.shots] + offset if categorical else position[c.shots] * 2**offset
                    for c in points
                ]
            )
            mean = np.array([c.interval.mean for c in points])
            below = np.nan_to_num(np.array([c.interval.mean - c.interval.low for c in points]))
            above = np.nan_to_num(np.array([c.interval.high - c.interval.mean for c in points]))
            axes.errorbar(
                x, mean, yerr=[below, above], marker="o", capsize=3, color=colours[role], label=role
            )
        axes.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        _shots_axis(axes, position, categorical)
        axes.set_title(dataset)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("pretrained − rival, test macro-F1")
    panels[0].legend()
    _save(figure, path)


def plot_depth(
    scores: Mapping[tuple, Any],
    path: str | os.PathLike,
    reference_levels: Mapping[tuple, Any] | None = None,
    partial: Collection[Any] = (),
) -> None:
    """The depth axis (`reporting.depth`): one panel per k, test macro-F1 against layers kept
    (log axis) for each backbone, `scores[(k, depth, variant)]` an `Interval` drawn as a point
    with its bar; each `reference_levels[(k, name)]` a dashed line with its interval shaded.
    A k in `partial` (its sweep not finished) is titled so."""
    reference_levels = reference_levels or {}
    variants = list(dict.fromkeys(variant for _, _, variant in scores))
    colours = _colours(list(dict.fromkeys([*variants, *(n for _, n in reference_levels)])))
    shots_values = sorted({k for k, _, _ in scores}, key=shots_key)
    figure = _figure(width=4.6 * max(1, len(shots_values)), height=3.8)
    panels = np.atleast_1d(figure.subplots(1, max(1, len(shots_values)), sharey=True))
    # Every panel spans every depth of the figure, so a k run at fewer depths reads alike.
    every_depth = [d for _, d, _ in scores]
    for axes, shots in zip(panels, shots_values):
        depths = sorted({d for k, d, _ in scores if k == shots})
        for index, variant in enumerate(variants):
            points = [
                (d, scores[(shots, d, variant)]) for d in depths if (shots, d, variant) in scores
            ]
            if not points:
                continue
            offset = 2 ** ((index - (len(variants) - 1) / 2) * 0.06)  # side by side at a depth
            x = np.array([d * offset for d, _ in points], dtype=float)
            mean = np.array([i.mean for _, i in points])
            below = np.nan_to_num(np.array([i.mean - i.low for _, i in points]))
            above = np.nan_to_num(np.array([i.high - i.mean for _, i in points]))
            axes.errorbar(
                x,
                mean,
                yerr=[below, above],
                marker="o",
                capsize=3,
                color=colours[variant],
                label=variant,
            )
        for (k, name), interval in reference_levels.items():
            if k != shots or interval.n == 0:
                continue
            axes.axhline(interval.mean, color=colours[name], linestyle="--", label=name)
            if interval.n > 1:
                axes.axhspan(interval.low, interval.high, color=colours[name], alpha=0.12)
        axes.set_xscale("log")
        axes.set_xlim(min(every_depth) / 1.4, max(every_depth) * 1.4)
        axes.minorticks_off()
        axes.set_xticks(depths, [str(d) for d in depths])
        axes.set_xlabel("layers kept")
        axes.set_title(f"k = {shots}" + (" (partial)" if shots in partial else ""))
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("test macro-F1 (95 % interval)")
    panels[0].legend(fontsize=8)
    _save(figure, path)
