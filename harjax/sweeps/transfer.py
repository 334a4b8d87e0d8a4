"""Cross-dataset transfer in the common label space: pre-train on source datasets, then k-shot
fine-tune on a target dataset (or evaluate it zero-shot), against the same k-shot fine-tuning
from a fresh initialisation.

    WORKDIR/
      config.json                         the resolved base config and the sweep's command
      folds/<sources>-to-<target>/
        fold.json                         label space, split sizes, dropped windows
        pretrain/                         the run on the sources
        runs/<init>/k<k>_seed<s>/         one run per (init, k, seed)
      results.csv                         one row per finished run of this command
      results.md                          mean ± std per fold, k and init; gain of pre-training
      transfer.png                        macro-F1 vs k, one panel per fold, one line per init

Protocol, per fold (sources -> target; the label space is `folds`'):
- Every dataset is split on its own (`config.data.split`); the sources' splits are concatenated.
  Pre-training trains on the sources' training subjects and keeps the best tree by their
  validation macro-F1; it runs once per fold (seed `config.seed`).
- init `sources`: start from the pre-trained trainable tree (projection, LoRA, head) and its
  input normalisation; the frozen backbone must have the same content hash. init `none`: a
  fresh initialisation normalised by its own k-shot windows, as in the few-shot sweep.
- k = 0 evaluates the pre-trained tree on the target's test subjects without any training (one
  row per fold, seed 0). k >= 1 fine-tunes on `sampling.k_shot(target training subjects, k,
  seed)` — the same windows for both inits — selects by the target's validation subjects, and
  tests on the target's test subjects. k = `all` fine-tunes on the whole target training split.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from harjax.data import sampling
from harjax.data.normalization import Stats
from harjax.reporting import plots, stats, tables
from harjax.run.result import write_json
from harjax.run.warm_start import InitTrainable, restore_best, trainable_template
from harjax.sweeps import core
from harjax.sweeps.folds import (
    Fold,
    FoldData,
    check_config,
    load_bundles,
    parse_names,
    plan_folds,
    prepare_fold,
)

INITS = ("sources", "none")
COLUMNS = ("source", "target", "init", "shots", "seed", "accuracy", "macro_f1")


def parse_shots(text: str) -> list[int | str]:
    """'0,1,5,10' -> [0, 1, 5, 10]: 0 = zero-shot evaluation, `all` = the whole training split."""
    return core.parse_shots(text, zero_shot=True, always_all=False)


def pretrain_config(config: ml_collections.ConfigDict, fold: Fold) -> ml_collections.ConfigDict:
    pretrain = copy.deepcopy(config)
    pretrain.dataset = fold.source
    for field in ("num_steps", "eval_every", "checkpoint_every"):
        pretrain.train[field] = int(config.pretrain[field])
    return pretrain


def finetune_config(
    config: ml_collections.ConfigDict, fold: Fold, shots: int | str, seed: int
) -> ml_collections.ConfigDict:
    finetune = copy.deepcopy(config)
    finetune.dataset = fold.target
    finetune.seed = int(config.seed) + seed
    if shots == 0:
        finetune.train.num_steps = 0  # zero-shot: evaluate the pre-trained tree only
    return finetune


def load_pretrained(
    config: ml_collections.ConfigDict, pretrain_dir: Path, data: FoldData, backbone
) -> InitTrainable:
    """The best trainable tree of the pre-training run, with its input statistics.

    Restoring checks the checkpoint's backbone hash and shapes against the model built now, and
    every run started from the tree checks the hash again against its own assembled model.
    """
    template, backbone_hash = trainable_template(
        config,
        num_classes=len(data.classes),
        num_channels=data.source.dataset.num_channels,
        backbone=backbone,
    )
    best, result = restore_best(pretrain_dir, template, backbone_hash)
    if list(result["class_names"]) != list(data.classes):
        raise ValueError(
            f"{pretrain_dir}: pre-trained on classes {result['class_names']}, the fold now has "
            f"{list(data.classes)}; the data changed — use a new --workdir"
        )
    return InitTrainable(
        params=best,
        backbone_hash=backbone_hash,
        stats=Stats.from_dict(result["stats"]),
        source=str(pretrain_dir),
    )


def run_dir(workdir: Path, fold: Fold, init: str, shots, seed: int) -> Path:
    return Path(workdir) / "folds" / fold.name / "runs" / init / f"k{shots}_seed{seed}"


def fold_runs(fold: Fold, shots: Sequence[int | str], seeds: int) -> list[tuple[str, Any, int]]:
    """(init, k, seed) of a fold: zero-shot once, every other k for both inits and all seeds."""
    runs = [("sources", 0, 0)] if 0 in shots else []
    for init in INITS:
        runs += [(init, k, s) for s in range(seeds) for k in shots if k != 0]
    return runs


def plan(config, workdir: Path, data: FoldData, shots, seeds: int, sweep: core.Sweep):
    """(the pre-training run, the fold's transfer runs); `sources` runs load its tree lazily."""
    fold = data.fold
    common = {"source": fold.source, "target": fold.target, "classes": ";".join(data.classes)}
    pretrain = core.PlannedRun(
        directory=Path(workdir) / "folds" / fold.name / "pretrain",
        config=pretrain_config(config, fold),
        data=data.source,
        train_indices=data.source.split.train,
        tags={**common, "stage": "pretrain"},
        label=f"[{fold.name}] pre-training on {fold.source}",
    )
    loaded: dict[str, InitTrainable] = {}

    def init() -> InitTrainable:
        if "tree" not in loaded:
            backbone = sweep.backbones.get(config)
            loaded["tree"] = load_pretrained(config, pretrain.directory, data, backbone)
        return loaded["tree"]

    runs = []
    for init_name, k, seed in fold_runs(fold, shots, seeds):
        runs.append(
            core.PlannedRun(
                directory=run_dir(workdir, fold, init_name, k, seed),
                config=finetune_config(config, fold, k, seed),
                data=data.target,
                # k = 0 trains nothing; its statistics come from the pre-trained tree.
                train_indices=sampling.training_windows(data.target, k, seed, data.classes),
                tags={**common, "stage": "transfer", "init": init_name, "shots": k, "seed": seed},
                label=f"[{fold.name}] init={init_name} k={k} seed={seed}",
                init=init if init_name == "sources" else None,
            )
        )
    return pretrain, runs


@dataclasses.dataclass(frozen=True)
class TransferAxes:
    """A transfer config's `sweep` section, parsed and checked: what `run_transfer` runs."""

    folds: tuple[Fold, ...]
    shots: tuple  # ascending, 0 = zero-shot, 'all' only when listed
    seeds: int


def transfer_axes(config: ml_collections.ConfigDict) -> TransferAxes:
    """`config.sweep` (configs/transfer.py: `source`, `target`, `leave_one_dataset_out`,
    `shots`, `seeds`) as `TransferAxes`; the launch script's flags write into these keys."""
    axes = config.sweep
    seeds = axes.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"config.sweep.seeds (--seeds) must be an integer >= 1, found {seeds!r}")
    folds = plan_folds(
        parse_names(axes.source, "source"),
        str(axes.target),
        parse_names(axes.leave_one_dataset_out, "leave-one-dataset-out"),
    )
    return TransferAxes(folds=tuple(folds), shots=tuple(parse_shots(axes.shots)), seeds=seeds)


def check_configs(config: ml_collections.ConfigDict, axes: TransferAxes) -> None:
    """The sweep's one validation pass, before any dataset loads: the transfer rules
    (`folds.check_config`), then every size of the pre-training, fine-tuning and zero-shot
    configs (each run checks its own config once more when it starts)."""
    check_config(config)
    fold = axes.folds[0]  # folds differ in their datasets only
    configs = [pretrain_config(config, fold), config]
    if 0 in axes.shots:
        configs.append(finetune_config(config, fold, 0, 0))
    core.check_configs(configs, zero_steps=[False, False, True])


def run_transfer(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Runs (or resumes) the transfer sweep of `config.sweep` (`transfer_axes`): every fold's
    pre-training and transfer runs; returns the rows.

    All datasets are opened, and every fold's label space, k and run directory are checked,
    before anything trains, so bad input fails in seconds.
    """
    axes = transfer_axes(config)
    check_configs(config, axes)
    folds, shots, seeds = axes.folds, axes.shots, axes.seeds
    workdir = Path(workdir)
    names = list(dict.fromkeys(n for f in folds for n in (*f.sources, f.target)))
    bundles = load_bundles(config, names)
    prepared = [prepare_fold(fold, bundles) for fold in folds]
    for data in prepared:
        sampling.check_shots(data.target, shots, seeds, where=f"transfer to {data.fold.target}: ")
    sweep = core.Sweep(workdir, progress=progress, overwrite=overwrite)
    plans = [plan(config, workdir, data, shots, seeds, sweep) for data in prepared]
    everything = [run for pretrain, runs in plans for run in (pretrain, *runs)]
    sweep.check(everything)
    sweep.write_config(
        config,
        {
            "kind": "transfer",
            "folds": [[list(f.sources), f.target] for f in folds],
            "shots": list(shots),
            "seeds": seeds,
        },
    )
    transfer_runs = [run for _, runs in plans for run in runs]
    for data, (pretrain, runs) in zip(prepared, plans):
        fold_dir = workdir / "folds" / data.fold.name
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_json(fold_dir / "fold.json", data.info)
        # The pre-trained tree is needed by every `sources` run, finished ones included (their
        # fingerprint holds the tree's digest): pre-train whenever it is missing or one of them
        # is unfinished (a finished pre-training returns at once).
        sources = [run for run in runs if run.init is not None]
        needs_tree = bool(sources) and (
            core.read_result(pretrain.directory) is None
            or any(core.read_result(run.directory) is None for run in sources)
        )
        sweep.run([pretrain] if needs_tree else [], after_each=lambda: None)
        sweep.run(runs, after_each=lambda: write_reports(workdir, transfer_runs))
    return collect_rows(transfer_runs)


def collect_rows(planned: Sequence[core.PlannedRun]) -> list[dict[str, Any]]:
    """One row per finished transfer run of the plan, read back from its directory."""
    rows = []
    for run, result in core.finished_results(planned):
        tags = result["tags"]
        pretrain = core.read_result(run.directory.parents[2] / "pretrain")
        rows.append(
            {
                "source": tags["source"],
                "target": tags["target"],
                "init": tags["init"],
                "shots": tags["shots"],
                "seed": tags["seed"],
                "accuracy": result["accuracy"],
                "macro_f1": result["macro_f1"],
                "variant": result["variant"],
                "classes": tags["classes"],
                "num_train_windows": result["num_train_windows"],
                "trainable_params": result["trainable_params"],
                "train_seconds": round(float(result["train_seconds"]), 2),
                "steps_to_95": result.get("steps_to_95"),
                "best_step": result.get("best_step"),
                "source_test_macro_f1": None if pretrain is None else pretrain["macro_f1"],
            }
        )
    folds = list(dict.fromkeys((r["source"], r["target"]) for r in rows))
    rows.sort(
        key=lambda r: (
            folds.index((r["source"], r["target"])),
            tables.shots_key(r["shots"]),
            INITS.index(r["init"]),
            r["seed"],
        )
    )
    return rows


def summary_markdown(rows, folds_info, planned: int) -> str:
    """Per-fold label space, the runs' mean ± std, and the gain of pre-training per k."""
    lines = ["# Cross-dataset transfer", "", tables.completeness(len(rows), planned), ""]
    if folds_info:
        lines += [
            "Label space per fold: common labels present in the training windows of both the "
            "sources and the target; other windows are dropped and counted.",
            "",
        ]
        fold_lines = []
        for info in folds_info:
            no_common = ", ".join(f"{k}: {v}" for k, v in info["dropped_no_common_label"].items())
            outside = info["dropped_outside_shared_labels"]
            fold_lines.append(
                [
                    info["source"],
                    info["target"],
                    ", ".join(info["classes"]),
                    no_common,
                    f"{outside['source']} / {outside['target']}",
                ]
            )
        header = [
            "source",
            "target",
            "classes",
            "windows without common label",
            "outside shared labels (source / target)",
        ]
        lines += [tables.markdown_table(header, fold_lines, "lllll")]
    lines += [
        "k = 0: the pre-trained model evaluated on the target without fine-tuning. "
        "init `sources`: fine-tuned from the tree pre-trained on the sources; `none`: the same "
        "fine-tuning from a fresh initialisation. Test macro-F1 / accuracy on the target's test "
        "subjects, mean ± sample std over seeds.",
        "",
    ]
    groups = tables.group_rows(rows, ["source", "target", "shots", "init"])
    score_lines = []
    for (source, target, k, init), runs in groups.items():
        score = runs[0]["source_test_macro_f1"]
        score_lines.append(
            [
                source,
                target,
                k,
                init,
                len(runs),
                tables.format_mean_std([r["accuracy"] for r in runs]),
                tables.format_mean_std([r["macro_f1"] for r in runs]),
                "–" if score is None else f"{score:.3f}",
            ]
        )
    header = [
        "source",
        "target",
        "k",
        "init",
        "seeds",
        "accuracy",
        "macro-F1",
        "source test macro-F1",
    ]
    lines += [tables.markdown_table(header, score_lines, "llllrrrr").rstrip("\n")]
    gains = []
    for (source, target, k, init), runs in groups.items():
        other = groups.get((source, target, k, "none"))
        if init != "sources" or other is None:
            continue
        by_seed = {r["seed"]: r["macro_f1"] for r in other}
        paired = [r["macro_f1"] - by_seed[r["seed"]] for r in runs if r["seed"] in by_seed]
        if paired:
            # A fold's seeds share its one split of the target: the interval is over seeds.
            interval = stats.design_interval(paired, [0] * len(paired))
            gains.append(((source, target, k), dataclasses.replace(interval, unit="seed")))
    if gains:
        fixed = stats.correct_family([interval for _, interval in gains])
        gain_lines = [
            [
                *key,
                interval.units,
                "—" if interval.n == 0 else f"{interval.mean:+.3f}",
                "—" if interval.n < 2 else f"{interval.low:+.3f} to {interval.high:+.3f}",
                stats.WORDS[corrected.uncorrected],
                stats.format_p(corrected.p_holm),
                stats.WORDS[corrected.corrected],
                "—" if math.isnan(corrected.mdd) else f"{corrected.mdd:.3f}",
            ]
            for (key, interval), corrected in zip(gains, fixed)
        ]
        header = ["source", "target", "k", "n", "gain", "95 % CI", "verdict (uncorrected)"]
        header += ["Holm p", "after Holm", "MDD (80 %)"]
        lines += [
            "",
            "Gain of pre-training: macro-F1(`sources`) − macro-F1(`none`), paired by seed "
            "(same k-shot windows); 'better' means pre-training on the sources helps. "
            + stats.design_note([interval for _, interval in gains]),
            "",
            tables.markdown_table(header, gain_lines, "lllrrrlrlr"),
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _fold_title(source: str, target: str) -> str:
    short = lambda spec: ",".join(
        f"csv:{Path(n[4:]).name}" if n.startswith("csv:") else n for n in spec.split(",")
    )
    return f"{short(source)} → {short(target)}"


def write_reports(workdir: str | os.PathLike, planned: Sequence[core.PlannedRun]) -> None:
    """results.csv, results.md and transfer.png from the finished runs of this command."""
    workdir = Path(workdir)
    rows = collect_rows(planned)
    if not rows:
        return
    folds_info = [json.loads(p.read_text()) for p in sorted(workdir.glob("folds/*/fold.json"))]
    tables.write_csv(rows, workdir / "results.csv", COLUMNS)
    notes = core.warning_lines(planned) + core.precision_lines(planned)
    notes += core.machine_lines(planned)
    text = summary_markdown(rows, folds_info, len(planned)) + "\n" + "\n".join(notes)
    (workdir / "results.md").write_text(text)
    plots.plot_shots(
        rows,
        workdir / "transfer.png",
        series="init",
        series_order=INITS,
        panels=("source", "target"),
        panel_title=_fold_title,
    )
