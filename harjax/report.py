"""Sweep results: the CSV, the Markdown summary, the plain-language verdict and the plots.

A row is one run (`variant`, `shots`, `seed` plus its scores). `shots` is an int k or the string
`all` (the full training split); `all` always sorts after every k. Seeds are summarised as
mean ± sample std (ddof=1): the spread a reader should expect from rerunning with a new seed.
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

from harjax.evaluate import steps_to_fraction

REQUIRED_COLUMNS = (
    "variant",
    "shots",
    "seed",
    "accuracy",
    "macro_f1",
    "trainable_params",
    "train_seconds",
)
# Steps to 95 % of the run's final validation macro-F1; empty for runs without steps (classical).
STEPS_COLUMN = "steps_to_95"
_COLUMN_TYPES = {
    "variant": str,
    "seed": int,
    "accuracy": float,
    "macro_f1": float,
    "trainable_params": int,
    "train_seconds": float,
    STEPS_COLUMN: int,
}
# The method first, then its ablations, then the baselines it has to beat.
DEFAULT_VARIANT_ORDER = ("pretrained", "random", "none", "scratch", "classical")
ALL = "all"

Row = Mapping[str, Any]


# ----------------------------------------------------------------------------------------- CSV


def _shots_key(shots: int | str) -> float:
    return math.inf if shots == ALL else float(shots)


def _check_row(row: Row, where: str) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; found {sorted(row)}")
    shots = row["shots"]
    if not (shots == ALL or (isinstance(shots, int) and not isinstance(shots, bool) and shots > 0)):
        raise ValueError(f"{where}: expected shots a positive int or {ALL!r}, found {shots!r}")


def _columns(rows: Sequence[Row], existing: Sequence[str] = ()) -> list[str]:
    """Required columns, then steps_to_95, then the rest in first-seen order (stable)."""
    columns = list(existing) or [*REQUIRED_COLUMNS, STEPS_COLUMN]
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest string that parses back to the same float
    return str(value)


def _parse(column: str, text: str, where: str) -> Any:
    if text == "":
        return None
    if column == "shots":
        if text == ALL:
            return ALL
        if re.fullmatch(r"\d+", text):
            return int(text)
        raise ValueError(f"{where}: expected shots a positive int or {ALL!r}, found {text!r}")
    kind = _COLUMN_TYPES.get(column)
    if kind is not None:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{where}: expected {kind.__name__}, found {text!r}") from None
    # Extra columns: the narrowest type that reads the text back exactly.
    if text in ("True", "False"):
        return text == "True"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def write_results_csv(rows: Iterable[Row], path: str | os.PathLike) -> None:
    """Writes all rows atomically (temp file + rename): a kill mid-write leaves the old file.

    Columns: REQUIRED_COLUMNS, `steps_to_95`, then extra keys in first-seen order. Missing
    values are empty cells and read back as None.
    """
    rows = list(rows)
    for index, row in enumerate(rows):
        _check_row(row, f"write_results_csv({path}), row {index}")
    _write(rows, Path(path), _columns(rows))


def append_results_csv(rows: Row | Iterable[Row], path: str | os.PathLike) -> None:
    """Adds rows (one run as it finishes) to the CSV at `path`, creating it if needed.

    The whole file is rewritten atomically, so a sweep killed at any moment leaves a valid CSV of
    the runs finished so far; a new column (an extra metric) widens the header, old rows get
    empty cells. Existing column order is kept.
    """
    new = [rows] if isinstance(rows, Mapping) else list(rows)
    for index, row in enumerate(new):
        _check_row(row, f"append_results_csv({path}), new row {index}")
    path = Path(path)
    old, header = ([], []) if not path.exists() else _read(path)
    _write(old + new, path, _columns(new, header))


def _write(rows: list[Row], path: Path, columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_format(row.get(column)) for column in columns])
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    with open(path, newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"read_results_csv({path}): empty file, expected a header row")
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise ValueError(f"read_results_csv({path}): header lacks {missing}; found {header}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}:{line}: expected {len(header)} cells for {header}, found {len(cells)}"
                )
            rows.append(
                {
                    column: _parse(column, text, f"{path}:{line}, column {column!r}")
                    for column, text in zip(header, cells)
                }
            )
    return rows, header


def read_results_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows as written, with types restored: shots int | 'all', seed int, scores float, ..."""
    return _read(Path(path))[0]


# ------------------------------------------------------------------------------------ summaries


def _ordered_variants(variants: Iterable[str], order: Sequence[str] | None) -> list[str]:
    """`order` first (those present), then any other variant in first-seen order, none dropped."""
    seen = list(dict.fromkeys(variants))
    order = DEFAULT_VARIANT_ORDER if order is None else tuple(order)
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def _group(rows: Sequence[Row]) -> dict[tuple[Any, str], list[Row]]:
    """{(shots, variant): runs}; a (variant, shots, seed) twice is an error, not a 4th seed."""
    groups: dict[tuple[Any, str], list[Row]] = {}
    seen: dict[tuple[str, Any, Any], int] = {}
    for index, row in enumerate(rows):
        _check_row(row, f"results row {index}")
        key = (row["variant"], row["shots"], row["seed"])
        if key in seen:
            raise ValueError(
                f"results rows {seen[key]} and {index}: the same run (variant, shots, seed) = "
                f"{key} appears twice; a resumed sweep must not re-append finished runs"
            )
        seen[key] = index
        groups.setdefault((row["shots"], row["variant"]), []).append(row)
    return groups


def _stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (NaN for a single seed: no spread can be estimated from one run)."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return float(values.mean()), std


def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    mean, std = _stats(values)
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _sorted_groups(rows: Sequence[Row], variant_order: Sequence[str] | None):
    groups = _group(rows)
    shots = sorted({k for k, _ in groups}, key=_shots_key)
    variants = _ordered_variants((row["variant"] for row in rows), variant_order)
    for k in shots:
        yield k, [(v, groups[(k, v)]) for v in variants if (k, v) in groups]


def summary_table(rows: Sequence[Row], variant_order: Sequence[str] | None = None) -> str:
    """Markdown table, one line per k x variant (k ascending, `all` last; variants in order).

    Scores are mean ± sample std over seeds (no ± for a single seed). Parameters and train
    seconds are means over seeds (tree-node counts of `classical` vary by seed). Steps to 95 %
    is the mean over runs that have it; "(m/n)" marks when only m of the n runs do, "–" none.
    """
    header = ["k", "variant", "seeds", "accuracy", "macro-F1", "trainable params", "train s"]
    lines = [
        "| " + " | ".join([*header, "steps to 95 %"]) + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, group in _sorted_groups(rows, variant_order):
        for variant, runs in group:
            params = round(float(np.mean([run["trainable_params"] for run in runs])))
            seconds = float(np.mean([run["train_seconds"] for run in runs]))
            steps = [run[STEPS_COLUMN] for run in runs if run.get(STEPS_COLUMN) is not None]
            if not steps:
                steps_text = "–"
            else:
                steps_text = f"{float(np.mean(steps)):.0f}"
                if len(steps) < len(runs):
                    steps_text += f" ({len(steps)}/{len(runs)})"
            cells = [
                str(k),
                variant,
                str(len(runs)),
                _mean_std([run["accuracy"] for run in runs]),
                _mean_std([run["macro_f1"] for run in runs]),
                f"{params:,}",
                f"{seconds:.1f}",
                steps_text,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def winners(rows: Sequence[Row], variant_order: Sequence[str] | None = None) -> str:
    """One plain sentence per k: the best mean macro-F1, its margin, and whether it is noise.

    The margin "exceeds one std" when it is larger than the larger of the two variants' seed
    stds — a conservative reading: a gap smaller than the seed-to-seed spread is not a win one
    should bet on. With a single seed the spread is unknown and the sentence says so. Ties (equal
    means to 3 decimals) are called ties.
    """
    sentences = []
    for k, group in _sorted_groups(rows, variant_order):
        scored = []
        for position, (variant, runs) in enumerate(group):
            mean, std = _stats([run["macro_f1"] for run in runs])
            scored.append((-mean, position, variant, mean, std, len(runs)))
        scored.sort()
        _, _, best, best_mean, best_std, best_n = scored[0]
        if len(scored) == 1:
            sentences.append(
                f"At k={k} only {best} was run (macro-F1 {best_mean:.3f}, "
                f"{best_n} seed{'' if best_n == 1 else 's'})."
            )
            continue
        _, _, second, second_mean, second_std, second_n = scored[1]
        margin = best_mean - second_mean
        detail = (
            f"({best_mean:.3f} vs {second_mean:.3f} mean macro-F1 over {best_n} and "
            f"{second_n} seeds"
        )
        if round(margin, 3) == 0:
            sentences.append(f"At k={k} {best} and {second} tie {detail}).")
            continue
        if math.isnan(best_std) or math.isnan(second_std):
            noise = "seed spread unknown: a single seed"
        else:
            spread = max(best_std, second_std)
            relation = "more than" if margin > spread else "within"
            noise = f"{relation} one seed std, {spread:.3f}"
        sentences.append(
            f"At k={k} {best} beats {second} by {margin:.3f} macro-F1 {detail}; {noise})."
        )
    return "\n".join(sentences) + ("\n" if sentences else "")


def convergence_steps(curve: Mapping[str, Any], fraction: float = 0.95) -> int | None:
    """`steps_to_95` of one curve dict {steps, val_macro_f1} (see `evaluate.steps_to_fraction`)."""
    return steps_to_fraction(curve["steps"], curve["val_macro_f1"], fraction)


# ---------------------------------------------------------------------------------------- plots


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


def plot_shots(
    rows: Sequence[Row], path: str | os.PathLike, variant_order: Sequence[str] | None = None
) -> None:
    """Macro-F1 vs k, one line per variant: mean over seeds, shaded ± sample std.

    The x axis is logarithmic (1, 5, 10, 50 shots spread evenly); `all` sits one step to the right
    of the largest k (2x it, or at 2 when only `all` was run), labelled "all".
    """
    groups = _group(rows)
    numeric = sorted({k for k, _ in groups if k != ALL})
    all_position = 2.0 * numeric[-1] if numeric else 2.0
    position = {**{k: float(k) for k in numeric}, ALL: all_position}
    shots = sorted({k for k, _ in groups}, key=_shots_key)
    variants = _ordered_variants((row["variant"] for row in rows), variant_order)
    colours = _colours(variants)
    figure = _figure()
    axes = figure.add_subplot()
    for variant in variants:
        ks = [k for k in shots if (k, variant) in groups]
        stats = [_stats([run["macro_f1"] for run in groups[(k, variant)]]) for k in ks]
        x = np.array([position[k] for k in ks])
        mean = np.array([m for m, _ in stats])
        std = np.nan_to_num(np.array([s for _, s in stats]))  # one seed: no band
        axes.plot(x, mean, marker="o", color=colours[variant], label=variant)
        axes.fill_between(x, mean - std, mean + std, color=colours[variant], alpha=0.2, lw=0)
    axes.set_xscale("log")
    axes.set_xticks([position[k] for k in shots], [str(k) for k in shots])
    axes.minorticks_off()
    axes.set_xlabel("shots per class (k)")
    axes.set_ylabel("test macro-F1")
    axes.set_title("Few-shot macro-F1 (mean ± std over seeds)")
    axes.grid(True, alpha=0.3)
    axes.legend()
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
    variant_order: Sequence[str] | None = None,
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
    shots = sorted({k for k, _ in grouped}, key=_shots_key)
    variants = _ordered_variants((v for _, v in grouped), variant_order)
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
    rows: Sequence[Row], path: str | os.PathLike, variant_order: Sequence[str] | None = None
) -> None:
    """Bar chart (log y) of trainable parameters per variant: mean over its runs.

    A variant whose count varies between runs (classical: tree nodes grow with k) gets a
    min–max whisker, so the bar never hides that range.
    """
    variants = _ordered_variants((row["variant"] for row in rows), variant_order)
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
