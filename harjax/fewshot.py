"""k-shot sweeps: shots x seeds x variants, resumable, with tables and plots.

    WORKDIR/
      config.json                the resolved base config
      runs/<variant>/k<k>_seed<s>/   one `experiment.train_and_evaluate` workdir per run
      results.csv                one row per finished run
      results.md                 mean ± std per variant and k, steps to 95 % of final val
                                 macro-F1, and who wins at each k
      shots.png, convergence.png, params.png

Every run's training subset is `sampling.k_shot(train split, k, seed)` — nested across k for a
seed, so a curve over k measures the value of more labels, not the luck of the draw — or the
whole training split for k = `all`. Validation and test subjects are the same for every run.
Rerunning the same command skips finished runs (their `metrics.json`) and resumes the unfinished
one from its checkpoint; the tables are rebuilt from the run directories, so an interrupted and an
uninterrupted sweep end with the same table.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from harjax import experiment, report
from harjax.data import sampling

BASE_VARIANTS = experiment.VARIANTS


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


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
    fmt = lambda v: "x".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
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
                Variant(f"pretrained {short}={fmt(value)}", "pretrained", ((key, value),))
            )
    names_seen = [v.name for v in variants]
    if len(set(names_seen)) != len(names_seen):
        raise ValueError(f"duplicate variants: {names_seen}")
    return variants


def parse_shots(text: str, *, zero_shot: bool = False, always_all: bool = True) -> list:
    """'1,5,10' -> [1, 5, 10, 'all']: sorted, unique, 'all' last.

    `always_all` appends 'all' even when not listed (the few-shot sweep's reference point);
    `zero_shot` admits k = 0 (transfer: evaluate without fine-tuning).
    """
    shots: set[int] = set()
    with_all = always_all
    lowest = 0 if zero_shot else 1
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        if part == "all":
            with_all = True
        elif part.isdigit() and int(part) >= lowest:
            shots.add(int(part))
        else:
            kind = "non-negative" if zero_shot else "positive"
            raise ValueError(f"--shots: {part!r} is not a {kind} integer (or 'all')")
    if not shots and not with_all:
        raise ValueError(f"--shots: no value in {text!r}")
    return sorted(shots) + (["all"] if with_all else [])


def run_dir(workdir: Path, variant: Variant, shots, seed: int) -> Path:
    return workdir / "runs" / _slug(variant.name) / f"k{shots}_seed{seed}"


def check_shots(data: experiment.DataBundle, shots: Sequence[int | str], seeds: int) -> None:
    """Fails before any training if a k exceeds what a class has in the training split."""
    numeric = [k for k in shots if k != "all"]
    if not numeric:
        return
    for seed in range(seeds):
        sampling.k_shot(
            data.targets(np.arange(len(data.dataset))),
            data.split.train,
            max(numeric),
            seed,
            data.class_names,
        )


def run_sweep(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    shots: Sequence[int | str],
    seeds: int,
    variants: Sequence[Variant],
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Runs (or resumes) every variant x k x seed and writes the reports; returns the rows."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, default=str))
    data = experiment.load_data(config)
    check_shots(data, shots, seeds)
    backbone = None
    if any(v.base in ("pretrained", "random") for v in variants):
        backbone = _load_backbones(config, variants)
    targets = data.targets(np.arange(len(data.dataset)))
    runs = [(v, k, s) for v in variants for s in range(seeds) for k in shots]
    for index, (variant, k, seed) in enumerate(runs, 1):
        run_config = variant.apply(config)
        run_config.seed = int(config.seed) + seed
        train_idx = (
            data.split.train
            if k == "all"
            else sampling.k_shot(targets, data.split.train, int(k), seed, data.class_names)
        )
        directory = run_dir(workdir, variant, k, seed)
        if progress and jax.process_index() == 0:
            state = "done" if (directory / experiment.RESULT_FILE).exists() else "run"
            print(f"[{index}/{len(runs)}] {state} {variant.name} k={k} seed={seed}", flush=True)
        experiment.train_and_evaluate(
            run_config,
            directory,
            data=data,
            train_indices=train_idx,
            backbone=backbone.get(_backbone_key(run_config)) if backbone else None,
            progress=progress,
            extra={"variant": variant.name, "base_variant": variant.base, "shots": k, "seed": seed},
        )
        if jax.process_index() == 0:
            write_reports(workdir, variants)
    return collect_rows(workdir, variants)


def _backbone_key(config) -> tuple:
    return (config.backbone.spec, int(config.backbone.num_layers or 0), config.backbone.param_dtype)


def _load_backbones(config, variants) -> dict[tuple, Any]:
    """Each distinct (spec, layers, dtype) among the variants, loaded once for the sweep."""
    from harjax.assemble import dtype_from_name
    from harjax.weights import load_backbone

    loaded = {}
    for variant in variants:
        if variant.base not in ("pretrained", "random"):
            continue
        key = _backbone_key(variant.apply(config))
        if key not in loaded:
            loaded[key] = load_backbone(
                key[0], num_layers=key[1] or None, dtype=dtype_from_name(key[2])
            )
    return loaded


def collect_rows(workdir: Path, variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """One row per finished run, read back from the run directories (the source of truth)."""
    rows = []
    for variant in variants:
        base = workdir / "runs" / _slug(variant.name)
        for path in sorted(base.glob(f"*/{experiment.RESULT_FILE}")):
            result = json.loads(path.read_text())
            rows.append(
                {
                    "variant": variant.name,
                    "shots": result["shots"],
                    "seed": result["seed"],
                    "accuracy": result["accuracy"],
                    "macro_f1": result["macro_f1"],
                    "trainable_params": result["trainable_params"],
                    "train_seconds": round(float(result["train_seconds"]), 2),
                    "steps_to_95": result.get("steps_to_95"),
                    "best_step": result.get("best_step"),
                    "num_train_windows": result["num_train_windows"],
                }
            )
    order = {v.name: i for i, v in enumerate(variants)}
    shot_key = lambda k: float("inf") if k == "all" else int(k)
    rows.sort(key=lambda r: (order[r["variant"]], shot_key(r["shots"]), r["seed"]))
    return rows


def collect_curves(workdir: Path, variants: Sequence[Variant]) -> list[dict[str, Any]]:
    curves = []
    for variant in variants:
        for path in sorted((workdir / "runs" / _slug(variant.name)).glob("*/metrics.json")):
            result = json.loads(path.read_text())
            if result["val_curve"]["steps"]:
                curves.append(
                    {
                        "variant": variant.name,
                        "shots": result["shots"],
                        "seed": result["seed"],
                        "steps": result["val_curve"]["steps"],
                        "val_macro_f1": result["val_curve"]["macro_f1"],
                    }
                )
    return curves


def write_reports(workdir: Path, variants: Sequence[Variant]) -> None:
    rows = collect_rows(workdir, variants)
    if not rows:
        return
    order = [v.name for v in variants]
    report.write_results_csv(rows, workdir / "results.csv")
    table = report.summary_table(rows, variant_order=order)
    (workdir / "results.md").write_text(
        "# Few-shot results\n\n" + table + "\n\n" + report.winners(rows) + "\n"
    )
    report.plot_shots(rows, workdir / "shots.png")
    report.plot_trainable_params(rows, workdir / "params.png")
    curves = collect_curves(workdir, variants)
    if curves:
        report.plot_convergence(curves, workdir / "convergence.png")
