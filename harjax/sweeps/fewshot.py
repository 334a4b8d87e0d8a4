"""k-shot sweeps: shots x seeds x variants, resumable, with tables and plots.

    WORKDIR/
      config.json                the resolved base config and the sweep's command
      runs/<variant>/k<k>_seed<s>/   one run directory per run (`harjax.run.loop`)
      results.csv                one row per finished run of this command
      results.md                 mean ± std per variant and k, steps to 95 % of final val
                                 macro-F1, who wins at each k, the machine, warnings
      shots.png, convergence.png, params.png

Every run's training subset is `sampling.k_shot(train split, k, seed)` — nested across k for a
seed, so a curve over k measures the value of more labels, not the luck of the draw — or the
whole training split for k = `all`. Validation and test subjects are the same for every run.
Rerunning the same command skips finished runs and resumes the unfinished one from its
checkpoint; a rerun with another config refuses (or, with `overwrite`, discards the stale runs).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from harjax.data.bundle import DataBundle, load_data
from harjax.reporting import plots, tables
from harjax.run.loop import VARIANTS
from harjax.run.validate import check_config
from harjax.sweeps import core

BASE_VARIANTS = VARIANTS
# The method first, then its ablations, then the baselines it has to beat.
DEFAULT_VARIANT_ORDER = ("pretrained", "random", "shuffled", "none", "scratch", "classical")
COLUMNS = (
    "variant",
    "shots",
    "seed",
    "accuracy",
    "macro_f1",
    "trainable_params",
    "train_seconds",
    "steps_to_95",
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named row of the tables: a base variant plus config overrides (ablations)."""

    name: str
    base: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def apply(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
        config = copy.deepcopy(config)
        config.model.variant = self.base
        for key, value in self.overrides:
            section, _, field = key.partition(".")
            if section not in config or field not in config[section]:
                raise ValueError(f"variant {self.name!r}: unknown config key {key!r}")
            config[section][field] = value
        return config


def make_variants(
    names: Sequence[str],
    *,
    lora_ranks: Sequence[int] = (),
    kernel_sizes: Sequence[Sequence[int]] = (),
    projection_channels: Sequence[int] = (),
    strides: Sequence[Sequence[int]] = (),
    layers: Sequence[int] = (),
) -> list[Variant]:
    """Base variants plus one `pretrained` row per ablation value (the referee's axes)."""
    variants = []
    for name in names:
        if name not in BASE_VARIANTS:
            raise ValueError(f"unknown variant {name!r}; expected one of {BASE_VARIANTS}")
        variants.append(Variant(name, name))
    spell = lambda v: "x".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
    for key, values in (
        ("lora.rank", lora_ranks),
        ("projection.kernel_sizes", kernel_sizes),
        ("projection.channels", projection_channels),
        ("projection.strides", strides),
        ("backbone.num_layers", layers),
    ):
        for value in values:
            value = tuple(value) if isinstance(value, list | tuple) else value
            short = key.split(".")[-1]
            variants.append(
                Variant(f"pretrained {short}={spell(value)}", "pretrained", ((key, value),))
            )
    names_seen = [v.name for v in variants]
    if len(set(names_seen)) != len(names_seen):
        raise ValueError(f"duplicate variants: {names_seen}")
    return variants


def run_dir(workdir: Path, variant: Variant, shots, seed: int) -> Path:
    return Path(workdir) / "runs" / core.slug(variant.name) / f"k{shots}_seed{seed}"


def plan(
    config: ml_collections.ConfigDict,
    workdir: Path,
    data: DataBundle,
    *,
    shots: Sequence,
    seeds: int,
    variants: Sequence[Variant],
) -> list[core.PlannedRun]:
    """Every (variant, seed, k) of the command, in the order they run."""
    planned = []
    for variant in variants:
        for seed in range(seeds):
            for k in shots:
                run_config = variant.apply(config)
                run_config.seed = int(config.seed) + seed
                planned.append(
                    core.PlannedRun(
                        directory=run_dir(workdir, variant, k, seed),
                        config=run_config,
                        data=data,
                        train_indices=core.training_windows(data, k, seed),
                        tags={
                            "variant": variant.name,
                            "base_variant": variant.base,
                            "shots": k,
                            "seed": seed,
                        },
                        label=f"{variant.name} k={k} seed={seed}",
                    )
                )
    return planned


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    shots: Sequence,
    seeds: int,
    variants: Sequence[Variant],
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Runs (or resumes) every variant x k x seed and writes the reports; returns the rows."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    workdir = Path(workdir)
    for variant in variants:  # every row's config is checked before the dataset loads
        check_config(variant.apply(config))
    data = load_data(config)
    core.check_shots(data, shots, seeds)
    planned = plan(config, workdir, data, shots=shots, seeds=seeds, variants=variants)
    sweep = core.Sweep(workdir, progress=progress, overwrite=overwrite)
    sweep.check(planned)
    sweep.write_config(
        config,
        {
            "kind": "fewshot",
            "shots": list(shots),
            "seeds": seeds,
            "variants": [dataclasses.asdict(v) for v in variants],
        },
    )
    sweep.run(planned, after_each=lambda: write_reports(workdir, planned, variants))
    return collect_rows(planned)


def _row(result: dict[str, Any]) -> dict[str, Any]:
    tags = result["tags"]
    return {
        "variant": tags["variant"],
        "shots": tags["shots"],
        "seed": tags["seed"],
        "accuracy": result["accuracy"],
        "macro_f1": result["macro_f1"],
        "trainable_params": result["trainable_params"],
        "train_seconds": round(float(result["train_seconds"]), 2),
        "steps_to_95": result.get("steps_to_95"),
        "best_step": result.get("best_step"),
        "num_train_windows": result["num_train_windows"],
    }


def collect_rows(planned: Sequence[core.PlannedRun]) -> list[dict[str, Any]]:
    """One row per finished run of the plan, read back from its directory (the source of truth),
    sorted by variant (plan order), k (`all` last) and seed."""
    rows = [_row(result) for _, result in core.finished_results(planned)]
    order = {
        name: index for index, name in enumerate(dict.fromkeys(r.tags["variant"] for r in planned))
    }
    rows.sort(key=lambda r: (order[r["variant"]], tables.shots_key(r["shots"]), r["seed"]))
    return rows


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """A sweep's results.csv back as rows (types restored; `variant` always text)."""
    return tables.read_csv(path, required=COLUMNS, types={"variant": str})


def summary_table(
    rows: Sequence[dict[str, Any]], variant_order: Sequence[str] = DEFAULT_VARIANT_ORDER
) -> str:
    """Markdown table, one line per k x variant (k ascending, `all` last; variants in order).

    Scores are mean ± sample std over seeds (no ± for a single seed). Parameters and train
    seconds are means over seeds (tree-node counts of `classical` vary by seed). Steps to 95 %
    is the mean over runs that have it; "(m/n)" marks when only m of the n runs do, "–" none.
    """
    groups = tables.group_rows(rows, ["shots", "variant"])
    lines = []
    for k in sorted({k for k, _ in groups}, key=tables.shots_key):
        for variant in tables.ordered((v for _, v in groups), variant_order):
            runs = groups.get((k, variant))
            if not runs:
                continue
            params = round(sum(run["trainable_params"] for run in runs) / len(runs))
            seconds = sum(run["train_seconds"] for run in runs) / len(runs)
            steps = [run["steps_to_95"] for run in runs if run.get("steps_to_95") is not None]
            steps_text = "–" if not steps else f"{sum(steps) / len(steps):.0f}"
            if steps and len(steps) < len(runs):
                steps_text += f" ({len(steps)}/{len(runs)})"
            lines.append(
                [
                    k,
                    variant,
                    len(runs),
                    tables.format_mean_std([run["accuracy"] for run in runs]),
                    tables.format_mean_std([run["macro_f1"] for run in runs]),
                    f"{params:,}",
                    f"{seconds:.1f}",
                    steps_text,
                ]
            )
    header = [
        "k",
        "variant",
        "seeds",
        "accuracy",
        "macro-F1",
        "trainable params",
        "train s",
        "steps to 95 %",
    ]
    return tables.markdown_table(header, lines, "llrrrrrr")


def winners(
    rows: Sequence[dict[str, Any]], variant_order: Sequence[str] = DEFAULT_VARIANT_ORDER
) -> str:
    """One plain sentence per k: the best mean macro-F1, its margin, and whether it is noise.

    The margin "exceeds one std" when it is larger than the larger of the two variants' seed
    stds — a conservative reading: a gap smaller than the seed-to-seed spread is not a win one
    should bet on. With a single seed the spread is unknown and the sentence says so. Ties (equal
    means to 3 decimals) are called ties.
    """
    groups = tables.group_rows(rows, ["shots", "variant"])
    sentences = []
    for k in sorted({k for k, _ in groups}, key=tables.shots_key):
        scored = []
        order = tables.ordered((v for _, v in groups), variant_order)
        for position, variant in enumerate(v for v in order if (k, v) in groups):
            runs = groups[(k, variant)]
            mean, std = tables.mean_std([run["macro_f1"] for run in runs])
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


def _curves(planned: Sequence[core.PlannedRun]) -> list[dict[str, Any]]:
    curves = []
    for _, result in core.finished_results(planned):
        if result["val_curve"]["steps"]:
            curves.append(
                {
                    "variant": result["tags"]["variant"],
                    "shots": result["tags"]["shots"],
                    "seed": result["tags"]["seed"],
                    "steps": result["val_curve"]["steps"],
                    "val_macro_f1": result["val_curve"]["macro_f1"],
                }
            )
    return curves


def write_reports(
    workdir: str | Path, planned: Sequence[core.PlannedRun], variants: Sequence[Variant]
) -> None:
    """results.csv, results.md and the plots from the finished runs of this command."""
    workdir = Path(workdir)
    rows = collect_rows(planned)
    if not rows:
        return
    order = [v.name for v in variants]
    tables.write_csv(rows, workdir / "results.csv", COLUMNS)
    text = ["# Few-shot results", "", tables.completeness(len(rows), len(planned)), ""]
    text += [summary_table(rows, order), winners(rows, order)]
    text += core.warning_lines(planned)
    others = core.others_on_disk(workdir, planned, "runs/*/*")
    if others:
        text += [
            f"Not in these tables: {len(others)} finished run(s) in {workdir / 'runs'} from "
            "another command (other seeds, k or variants), e.g. "
            f"{', '.join(str(p.relative_to(workdir)) for p in others[:3])}.",
            "",
        ]
    text += core.machine_lines(planned)
    (workdir / "results.md").write_text("\n".join(text))
    plots.plot_shots(
        rows,
        workdir / "shots.png",
        series="variant",
        series_order=order,
        title="Few-shot macro-F1 (mean ± std over seeds)",
    )
    plots.plot_trainable_params(rows, workdir / "params.png", order)
    curves = _curves(planned)
    if curves:
        plots.plot_convergence(curves, workdir / "convergence.png", order)
