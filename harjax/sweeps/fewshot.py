"""k-shot sweeps: variants x settings x subject splits x seeds x shots, resumable, with tables,
paired comparisons and plots.

    WORKDIR/
      config.json                the resolved base config and the sweep's command
      runs/<variant>[/split<s>][/lr<lr> | /trees<n>]/k<k>_seed<seed>/   one directory per run
                                 (`harjax.run.loop`); the split part only with several split
                                 seeds, the setting part only when the variant's grid has
                                 several values — a default sweep keeps runs/<variant>/k<k>_seed<s>
      results.csv                one row per finished run of this command, `selected` marking
                                 the runs of the setting chosen on validation
      results.md                 mean ± std per variant and k (chosen settings), the settings'
                                 validation scores, paired differences against pretrained with
                                 95 % intervals and their verdicts, the machine, warnings
      shots.png, convergence.png, params.png, differences.png

Every run's training subset is `sampling.k_shot(train split, k, seed)` of its split — nested
across k for a seed, so a curve over k measures the value of more labels, not the luck of the
draw — or the whole training split for k = `all`. Each split seed is a different subject-
disjoint split (`config.data.split_seed`); for one split and seed every variant and setting sees
the same subjects and the same draw, which is what the paired comparisons pair on. How settings
are chosen and compared: `harjax.sweeps.protocol`. Rerunning the same command skips finished
runs and resumes the unfinished one from its checkpoint; a rerun with another config refuses
(or, with `overwrite`, discards the stale runs).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from harjax import variants
from harjax.data import sampling
from harjax.data.bundle import DataBundle, load_data
from harjax.reporting import depth as depth_report
from harjax.reporting import plots, tables
from harjax.run.environment import is_main_process
from harjax.sweeps import core, protocol
from harjax.sweeps.axes import SweepAxes, TableRow, check_configs, depth_axis, sweep_axes

log = logging.getLogger(__name__)

# The method first, then its ablations, then the baselines it has to beat (the table's order).
DEFAULT_VARIANT_ORDER = variants.NAMES
SETTINGS, SETTING_FIELDS = variants.SETTINGS, variants.SETTING_FIELDS  # (`plan` has `variants`)
GRIDS = tuple(setting.grid for setting in SETTINGS)
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
# Written after COLUMNS; not required when reading, so results.csv of older sweeps still reads.
PROTOCOL_COLUMNS = (
    "split_seed",
    "learning_rate",
    "num_trees",
    "val_macro_f1",
    "selected",
)


def _with_default(config, base: str, grids: Mapping[str, Sequence]) -> dict[str, Sequence]:
    """`grids` with the variant's own grid defaulting to the config's one value."""
    setting = variants.get(base).setting
    default = (config[setting.section][setting.field],)
    return {**grids, setting.grid: grids.get(setting.grid) or default}


def run_dir(
    workdir: Path,
    variant: TableRow,
    shots,
    seed: int,
    *,
    split_seed: int | None = None,
    setting: str | None = None,
) -> Path:
    """runs/<variant>[/split<s>][/<setting>]/k<k>_seed<seed>: parts only when they vary."""
    path = Path(workdir) / "runs" / core.slug(variant.name)
    if split_seed is not None:
        path = path / f"split{split_seed}"
    if setting is not None:
        path = path / setting
    return path / f"k{shots}_seed{seed}"


def plan(
    config: ml_collections.ConfigDict,
    workdir: Path,
    data: DataBundle | Mapping[int, DataBundle],
    *,
    shots: Sequence,
    seeds: int,
    variants: Sequence[TableRow],
    **grids: Sequence,
) -> list[core.PlannedRun]:
    """Every (variant, split, setting, seed, k) of the command, in the order they run.

    `data` is one bundle (split by `config.data.split_seed`) or {split seed: bundle}; a bundle
    of None plans without data (no training windows: `replan`, for reports only). `grids` are
    the values each setting is tried with, by `Setting.grid` (`learning_rates=`,
    `classical_trees=`, `rocket_alphas=`); a grid not given is the config's one value.
    """
    bundles = data if isinstance(data, Mapping) else {int(config.data.split_seed): data}
    unknown = sorted(set(grids) - {setting.grid for setting in SETTINGS})
    if unknown:
        raise TypeError(f"plan: unknown grids {unknown}; expected some of {GRIDS}")
    planned = []
    for variant in variants:
        grid = protocol.settings(variant.base, _with_default(config, variant.base, grids))
        for split_seed, bundle in bundles.items():
            for section, field, value in grid:
                setting = protocol.setting_slug(field, value)
                for seed in range(seeds):
                    for k in shots:
                        run_config = variant.apply(config)
                        run_config.seed = int(config.seed) + seed
                        run_config.data.split_seed = int(split_seed)
                        run_config[section][field] = value
                        planned.append(
                            core.PlannedRun(
                                directory=run_dir(
                                    workdir,
                                    variant,
                                    k,
                                    seed,
                                    split_seed=split_seed if len(bundles) > 1 else None,
                                    setting=setting if len(grid) > 1 else None,
                                ),
                                config=run_config,
                                data=bundle,
                                train_indices=(
                                    None
                                    if bundle is None
                                    else sampling.training_windows(bundle, k, seed)
                                ),
                                tags={
                                    "variant": variant.name,
                                    "base_variant": variant.base,
                                    "shots": k,
                                    "seed": seed,
                                    "split_seed": int(split_seed),
                                    field: value,
                                },
                                label=(
                                    f"{variant.name} split={split_seed} {setting} k={k} seed={seed}"
                                ),
                            )
                        )
    return planned


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Runs (or resumes) the sweep of `config.sweep` (`sweep_axes`): every variant x setting x
    split x seed x k, and writes the reports.

    The launch script, the notebook and the tests all call this with their config, so the
    same config runs the same sweep wherever it is run. The data is loaded and split once
    per split seed. Returns every finished run's row, `selected` set as in `protocol.select`.

    A depth axis (`config.sweep.num_layers`, e.g. "1,3,6,12,30") runs this sweep once per
    depth (`backbone.num_layers`) in WORKDIR/layers<N>/, each with its own tables, so every
    paired comparison pairs runs of one depth; every depth's grid is checked before any of
    them trains, and the rows carry `num_layers`; WORKDIR/depth.md and depth.png
    (`reporting.depth`) put the depths side by side after each depth finishes.
    """
    depths = depth_axis(config)
    sweeps = []
    for depth in depths or (None,):
        swept = copy.deepcopy(config)
        if depth is not None:
            swept.backbone.num_layers = depth
            swept.sweep.num_layers = ""
        axes = sweep_axes(swept)
        check_configs(swept, axes)
        sweeps.append((depth, swept, axes))
    rows = []
    for depth, swept, axes in sweeps:
        where = Path(workdir) if depth is None else Path(workdir) / f"layers{depth}"
        found = _run_one(swept, axes, where, progress=progress, overwrite=overwrite)
        rows += found if depth is None else [{**row, "num_layers": depth} for row in found]
        if depth is not None and is_main_process():
            depth_report.write(workdir, protocol.kept(rows))
    return rows


def replan(workdir: str | Path) -> tuple[list[core.PlannedRun], list[TableRow]]:
    """The plan of the sweep in `workdir` (one depth's directory for a depth axis), rebuilt from
    its WORKDIR/config.json alone: the same run directories, tags and labels as the command
    that wrote it, without data (nothing can train from it). For `rebuild_reports`."""
    recorded = json.loads((Path(workdir) / "config.json").read_text())
    sweep = recorded.pop("sweep")
    if sweep.get("kind") != "fewshot":
        kind = sweep.get("kind")
        raise ValueError(f"{workdir}/config.json: not a few-shot sweep (kind {kind!r})")
    rows = [
        TableRow(
            row["name"],
            row["base"],
            tuple(
                (key, tuple(value) if isinstance(value, list) else value)
                for key, value in row["overrides"]
            ),
        )
        for row in sweep["variants"]
    ]
    config = ml_collections.ConfigDict(recorded)
    planned = plan(
        config,
        Path(workdir),
        {int(split): None for split in sweep["splits"]},
        shots=sweep["shots"],
        seeds=int(sweep["seeds"]),
        variants=rows,
        **{setting.grid: sweep[setting.grid] for setting in SETTINGS if setting.grid in sweep},
    )
    return planned, rows


def rebuild_reports(workdir: str | Path) -> list[dict[str, Any]]:
    """Rewrites a sweep's reports (results.csv, results.md, plots; for a depth axis every
    layers<N>/ and WORKDIR/depth.md) from its committed run directories, without training or
    loading data: how a results page follows a change of the reporting code. Returns the rows.
    """
    workdir = Path(workdir)
    depths = sorted(
        (int(match.group(1)), path)
        for path in workdir.glob("layers*")
        if (match := _DEPTH_DIRECTORY.fullmatch(path.name)) and (path / "config.json").exists()
    )
    if not depths:
        planned, rows = replan(workdir)
        write_reports(workdir, planned, rows)
        return collect_rows(planned)
    found, partial = [], set()
    for depth, path in depths:
        planned, rows = replan(path)
        write_reports(path, planned, rows)
        done = [{**row, "num_layers": depth} for row in collect_rows(planned)]
        if len(done) < len(planned):  # an unfinished depth: its rows and panel say partial
            partial |= {(run.tags["shots"], depth) for run in planned}
        found += done
    depth_report.write(workdir, protocol.kept(found), partial=partial)
    return found


def report_path(config: ml_collections.ConfigDict, workdir: str | Path) -> Path:
    """The page a finished `run_sweep(config, workdir)` is read from: WORKDIR/depth.md for a
    depth axis (there is no WORKDIR/results.md then: each depth's tables are in
    WORKDIR/layers<N>/), else WORKDIR/results.md."""
    return Path(workdir) / ("depth.md" if depth_axis(config) else "results.md")


_DEPTH_DIRECTORY = re.compile(r"layers(\d+)")


def depth_rows(workdir: str | Path) -> list[dict[str, Any]]:
    """The kept rows (setting chosen on validation per depth) of every depth of a depth-axis
    sweep, read back from WORKDIR/layers<N>/results.csv, each with `num_layers` = N."""
    rows = []
    for path in sorted(Path(workdir).glob("layers*/results.csv")):
        match = _DEPTH_DIRECTORY.fullmatch(path.parent.name)
        if match is not None:
            found = protocol.kept(protocol.select(tables.read_csv(path)))
            rows += [{**row, "num_layers": int(match.group(1))} for row in found]
    if not rows:
        raise FileNotFoundError(f"{workdir}: no layers<N>/results.csv (not a depth-axis sweep)")
    return rows


def _run_one(
    config: ml_collections.ConfigDict,
    axes: SweepAxes,
    workdir: Path,
    *,
    progress: bool,
    overwrite: bool,
) -> list[dict[str, Any]]:
    """One sweep of checked `axes` into `workdir`: load, plan, check the directories, train."""
    workdir = Path(workdir)
    bundles = {}
    for split_seed in axes.splits:
        split_config = copy.deepcopy(config)
        split_config.data.split_seed = split_seed
        bundles[split_seed] = load_data(split_config)
        if progress:
            print(bundles[split_seed].describe())
    # A k that some class cannot supply on some split is left out of every split (pairs need
    # the same k everywhere), said on the command line and in the sweep's config record.
    shots, dropped = sampling.feasible_shots(list(bundles.values()), axes.shots, axes.seeds)
    for k, why in dropped.items():
        log.warning("k=%s left out of this sweep: %s", k, why)
    axes = dataclasses.replace(axes, shots=tuple(shots))
    planned = plan(
        config,
        workdir,
        bundles,
        shots=axes.shots,
        seeds=axes.seeds,
        variants=axes.variants,
        **axes.grids,
    )
    sweep = core.Sweep(workdir, progress=progress, overwrite=overwrite)
    sweep.check(planned)
    sweep.write_config(
        config,
        {
            "kind": "fewshot",
            "shots": list(axes.shots),
            "shots_left_out": {str(k): why for k, why in dropped.items()},
            "seeds": axes.seeds,
            "variants": [dataclasses.asdict(v) for v in axes.variants],
            "splits": list(axes.splits),
            **{name: list(values) for name, values in axes.grids.items()},
        },
    )
    sweep.run(planned, after_each=lambda: write_reports(workdir, planned, axes.variants))
    return collect_rows(planned)


def _row(run: core.PlannedRun, result: dict[str, Any]) -> dict[str, Any]:
    tags = result["tags"]
    return {
        "variant": tags["variant"],
        "shots": tags["shots"],
        "seed": tags["seed"],
        "split_seed": tags.get("split_seed", run.config.data.split_seed),
        "learning_rate": tags.get("learning_rate"),
        "num_trees": tags.get("num_trees"),
        "val_macro_f1": result["best_val_macro_f1"],  # validation only, never test
        "accuracy": result["accuracy"],
        "macro_f1": result["macro_f1"],
        "trainable_params": result["trainable_params"],
        "train_seconds": round(float(result["train_seconds"]), 2),
        "steps_to_95": result.get("steps_to_95"),
        "best_step": result.get("best_step"),
        "num_train_windows": result["num_train_windows"],
        # The convergence measure's floor: a run can reach 95 % no sooner than this.
        "first_eval_step": next(iter((result.get("val_curve") or {}).get("steps") or []), None),
        # A setting added after PROTOCOL_COLUMNS (rocket's ridge_alpha): a column only in the
        # sweeps that ran it, so results.csv of the others keeps its columns.
        **{f: tags[f] for f in SETTING_FIELDS if f in tags and f not in PROTOCOL_COLUMNS},
    }


def collect_rows(planned: Sequence[core.PlannedRun]) -> list[dict[str, Any]]:
    """One row per finished run of the plan, read back from its directory (the source of truth),
    sorted by variant (plan order), k (`all` last), split seed, setting (grid order) and seed,
    with `selected` (`protocol.select`: the setting chosen on validation)."""
    found = core.finished_results(planned)
    rows = [_row(run, result) for run, result in found]
    order = {
        name: index for index, name in enumerate(dict.fromkeys(r.tags["variant"] for r in planned))
    }
    grid = {
        setting: index
        for index, setting in enumerate(
            dict.fromkeys(protocol.setting_of(r.tags) for r in planned)
        )
    }
    rows.sort(
        key=lambda r: (
            order[r["variant"]],
            tables.shots_key(r["shots"]),
            r["split_seed"],
            grid[protocol.setting_of(r)],
            r["seed"],
        )
    )
    return protocol.select(rows)


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """A sweep's results.csv back as rows (types restored; `variant` always text)."""
    return tables.read_csv(path, required=COLUMNS, types={"variant": str})


def summary_table(
    rows: Sequence[dict[str, Any]], variant_order: Sequence[str] = DEFAULT_VARIANT_ORDER
) -> str:
    """Markdown table, one line per k x variant (k ascending, `all` last; variants in order).

    Pass the kept rows (`protocol.kept`). Scores are mean ± sample std over the runs — split
    seeds x seeds — (no ± for a single run). Parameters and train seconds are means over runs
    (tree-node counts of `classical` vary by seed). Steps to 95 % is the mean over runs that
    have it; "(m/n)" marks when only m of the n runs do, "–" none.
    """
    groups = tables.group_rows(
        protocol.with_replicate(rows), ["shots", "variant"], replicate=protocol.REPLICATE
    )
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
        "runs",
        "accuracy",
        "macro-F1",
        "trainable params",
        "train s",
        "steps to 95 %",
    ]
    return tables.markdown_table(header, lines, "llrrrrrr")


def verdict_text(
    rows: Sequence[dict[str, Any]], variant_order: Sequence[str] = DEFAULT_VARIANT_ORDER
) -> str:
    """The paired comparisons of the kept rows against `pretrained`: CI table and verdicts."""
    return "\n".join(protocol.comparison_lines(protocol.kept(rows), variant_order))


def _curves(planned: Sequence[core.PlannedRun]) -> list[dict[str, Any]]:
    curves = []
    for _, result in core.finished_results(planned):
        if result["val_curve"]["steps"]:
            curves.append(
                {
                    "variant": result["tags"]["variant"],
                    "shots": result["tags"]["shots"],
                    "seed": result["tags"]["seed"],
                    "split_seed": result["tags"].get("split_seed"),
                    "steps": result["val_curve"]["steps"],
                    "val_macro_f1": result["val_curve"]["macro_f1"],
                }
            )
    return curves


def write_reports(
    workdir: str | Path, planned: Sequence[core.PlannedRun], variants: Sequence[TableRow]
) -> None:
    """results.csv, results.md and the plots from the finished runs of this command."""
    workdir = Path(workdir)
    rows = collect_rows(planned)
    if not rows:
        return
    order = [v.name for v in variants]
    tables.write_csv(rows, workdir / "results.csv", (*COLUMNS, *PROTOCOL_COLUMNS))
    chosen = protocol.kept(rows)
    text = ["# Few-shot results", "", tables.completeness(len(rows), len(planned)), ""]
    if len(chosen) < len(rows):
        text += [
            f"Tables and comparisons use the {len(chosen)} runs of the setting chosen for each "
            "variant and k by mean validation macro-F1 (test never chooses); results.csv has "
            "all of them.",
            "",
        ]
    text += [summary_table(chosen, order)]
    if len(chosen) < len(rows):
        text += ["Settings tried (validation macro-F1, mean ± std over runs):", ""]
        text += [protocol.selection_table(rows, order)]
    text += protocol.comparison_lines(chosen, order)
    text += core.warning_lines(planned)
    others = core.others_on_disk(workdir, planned, "runs/**")
    if others:
        text += [
            f"Not in these tables: {len(others)} finished run(s) in {workdir / 'runs'} from "
            "another command (other seeds, k or variants), e.g. "
            f"{', '.join(str(p.relative_to(workdir)) for p in others[:3])}.",
            "",
        ]
    text += core.precision_lines(planned) + core.machine_lines(planned)
    (workdir / "results.md").write_text("\n".join(text))
    write_figures(workdir, rows, order, _curves([run for run in planned if _is_kept(run, chosen)]))


def write_figures(
    workdir: str | Path,
    rows: Sequence[dict[str, Any]],
    variant_order: Sequence[str] = DEFAULT_VARIANT_ORDER,
    curves: Sequence[dict[str, Any]] = (),
) -> None:
    """shots.png, params.png, differences.png (and convergence.png given validation `curves`)
    of a sweep's rows (all of them: the kept setting is chosen here, as for the tables). The one
    place these figures are drawn: the sweep calls it, and so does a notebook that has only a
    results.csv."""
    workdir, chosen = Path(workdir), protocol.kept(rows)
    order = [name for name in variant_order if any(row["variant"] == name for row in chosen)]
    order += sorted({row["variant"] for row in chosen} - set(order))
    plots.plot_shots(
        protocol.with_replicate(chosen),
        workdir / "shots.png",
        series="variant",
        series_order=order,
        title="Few-shot macro-F1 (mean ± std over splits and seeds)",
        replicate=protocol.REPLICATE,
    )
    plots.plot_trainable_params(chosen, workdir / "params.png", order)
    compared = protocol.others(chosen, order)
    if compared and any(row["variant"] == protocol.REFERENCE for row in chosen):
        plots.plot_differences(
            chosen,
            workdir / "differences.png",
            reference=protocol.REFERENCE,
            others=compared,
            title=f"macro-F1 − {protocol.REFERENCE} (paired, 95 % t interval)",
        )
    if curves:
        plots.plot_convergence(curves, workdir / "convergence.png", order)


def _is_kept(run: core.PlannedRun, chosen: Sequence[dict[str, Any]]) -> bool:
    tags = run.tags
    return any(
        row["variant"] == tags["variant"]
        and row["shots"] == tags["shots"]
        and row["seed"] == tags["seed"]
        and row["split_seed"] == tags["split_seed"]
        and protocol.setting_of(row) == protocol.setting_of(tags)
        for row in chosen
    )
