"""Cross-dataset transfer in the common label space: pre-train on source datasets, then k-shot
fine-tune on a target dataset (or evaluate it zero-shot), against the same k-shot fine-tuning
from a fresh initialisation.

    WORKDIR/
      config.json                         the resolved base config
      folds/<sources>-to-<target>/
        fold.json                         label space, split sizes, dropped windows
        pretrain/                         `experiment.train_and_evaluate` on the sources
        runs/<init>/k<k>_seed<s>/         one run per (init, k, seed)
      results.csv                         one row per finished run
      results.md                          mean ± std per fold, k and init; gain of pre-training
      transfer.png                        macro-F1 vs k, one panel per fold, one line per init

Protocol, per fold (sources -> target):
- Labels are `common_label` (COMMON_LABELS); windows whose activity has no common equivalent are
  dropped and counted. The fold's class list is the common labels present in BOTH the sources'
  training windows and the target's training windows (the k-shot pool), in COMMON_LABELS order;
  windows of any other class are dropped and counted too. Every run of a fold (pre-training,
  zero-shot, fine-tuning) predicts exactly these classes, so the head never changes shape.
- Every dataset is split on its own (`config.data.split`: official where one exists, else
  seeded subject-disjoint); the sources' splits are concatenated. Pre-training trains on the
  sources' training subjects and keeps the best tree by their validation macro-F1.
- init `sources`: start from the pre-trained trainable tree (projection, LoRA, head) and its
  input normalisation; the frozen backbone must have the same content hash. init `none`: a
  fresh initialisation normalised by its own k-shot windows, as in the few-shot sweep.
- k = 0 evaluates the pre-trained tree on the target's test subjects without any training (one
  row per fold, seed 0: nothing in it depends on a fine-tuning seed). k >= 1 fine-tunes on
  `sampling.k_shot(target training subjects, k, seed)` — the same windows for both inits —
  selects by the target's validation subjects, and tests on the target's test subjects.
  k = `all` fine-tunes on the whole target training split.
- Pre-training runs once per fold (seed `config.seed`); seeds vary the k-shot draw and the
  fine-tuning. Rerunning skips finished runs and resumes an unfinished one from its checkpoint.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from harjax import experiment, fewshot
from harjax.data import sampling, splits
from harjax.data.concat import concat_datasets
from harjax.data.labels import COMMON_LABELS
from harjax.data.normalization import Stats

INITS = ("sources", "none")
ALL = "all"
# Variants whose trainable tree can move between datasets on one fixed frozen backbone. `random`
# draws its frozen weights from the run seed, so seeds would not share a backbone; `classical`
# has no trainable tree.
TRANSFER_VARIANTS = ("pretrained", "none", "scratch")
COLUMNS = ("source", "target", "init", "shots", "seed", "accuracy", "macro_f1")


@dataclasses.dataclass(frozen=True)
class Fold:
    """Pre-train on `sources`, transfer to `target`."""

    sources: tuple[str, ...]
    target: str

    @property
    def source(self) -> str:
        return ",".join(self.sources)

    @property
    def name(self) -> str:
        slug = lambda s: re.sub(r"[^A-Za-z0-9_.=-]+", "_", s).strip("_")
        return f"{'+'.join(slug(s) for s in self.sources)}-to-{slug(self.target)}"


@dataclasses.dataclass
class FoldData:
    """A fold's two data bundles, both in the fold's label space (`classes`)."""

    fold: Fold
    classes: tuple[str, ...]
    source: experiment.DataBundle
    target: experiment.DataBundle
    info: dict[str, Any]  # written to fold.json and results.md


# ------------------------------------------------------------------------------- parsing / plan


def parse_names(text: str, flag: str) -> list[str]:
    """'uci_har,hhar' -> ['uci_har', 'hhar']; duplicates are an error."""
    names = [part.strip() for part in str(text or "").split(",") if part.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"--{flag}: a dataset is listed twice in {names}")
    return names


def parse_shots(text: str) -> list[int | str]:
    """'0,1,5,10' -> [0, 1, 5, 10]: 0 = zero-shot evaluation, `all` = the whole training split."""
    return fewshot.parse_shots(text, zero_shot=True, always_all=False)


def plan_folds(
    sources: Sequence[str] = (), target: str = "", leave_one_out: Sequence[str] = ()
) -> list[Fold]:
    """Either one fold (sources -> target) or one fold per dataset of `leave_one_out`."""
    sources, leave_one_out = list(sources), list(leave_one_out)
    if leave_one_out:
        if sources or target:
            raise ValueError(
                "--leave-one-dataset-out chooses sources and targets itself; do not combine it "
                f"with --source ({sources}) or --target ({target!r})"
            )
        if len(set(leave_one_out)) != len(leave_one_out) or len(leave_one_out) < 2:
            raise ValueError(
                f"--leave-one-dataset-out needs >= 2 distinct datasets, found {leave_one_out}"
            )
        return [
            Fold(tuple(n for n in leave_one_out if n != held_out), held_out)
            for held_out in leave_one_out
        ]
    if not sources or not target:
        raise ValueError(
            f"give --source (found {sources}) and --target (found {target!r}), or "
            "--leave-one-dataset-out"
        )
    if target in sources:
        raise ValueError(f"--target {target!r} is also listed in --source {sources}")
    return [Fold(tuple(sources), target)]


def check_config(config: ml_collections.ConfigDict) -> None:
    if config.data.label_key != "common_label":
        raise ValueError(
            "transfer works in the common label space: config.data.label_key must be "
            f"'common_label', found {config.data.label_key!r}"
        )
    if config.model.variant not in TRANSFER_VARIANTS:
        raise ValueError(
            f"transfer: config.model.variant must be one of {TRANSFER_VARIANTS}, found "
            f"{config.model.variant!r} ('random' draws its frozen weights from the run seed, "
            "'classical' has no trainable tree to transfer)"
        )


# ------------------------------------------------------------------------------------------ data


def restrict_labels(ds, classes: Sequence[str]):
    """A copy of `ds` whose `labels`/`class_names` are `classes` (a subset of COMMON_LABELS):
    label = index of the window's common label in `classes`, -1 when it is not there."""
    lookup = np.full(len(COMMON_LABELS) + 1, -1, np.int64)  # last slot: common label -1
    for index, name in enumerate(classes):
        lookup[COMMON_LABELS.index(name)] = index
    return dataclasses.replace(ds, labels=lookup[ds.common_labels], class_names=tuple(classes))


def _shift(bundles: Sequence[experiment.DataBundle], offsets: np.ndarray) -> splits.Split:
    """The sources' own splits, concatenated with each part's index offset."""
    part = lambda name: np.concatenate(
        [getattr(b.split, name) + offsets[i] for i, b in enumerate(bundles)]
    ).astype(np.int64)
    names = lambda name: tuple(
        f"{b.dataset.name}/{s}" for b in bundles for s in getattr(b.split, f"{name}_subjects")
    )
    return splits.Split(
        train=part("train"),
        val=part("val"),
        test=part("test"),
        train_subjects=names("train"),
        val_subjects=names("val"),
        test_subjects=names("test"),
        seed=bundles[0].split.seed,
        kind="+".join(sorted({b.split.kind for b in bundles})),
    )


def _keep(split: splits.Split, labels: np.ndarray) -> tuple[splits.Split, int]:
    """The split without windows outside the label space (-1), and how many were dropped."""
    kept = {name: getattr(split, name) for name in ("train", "val", "test")}
    kept = {name: idx[labels[idx] >= 0] for name, idx in kept.items()}
    dropped = sum(len(getattr(split, name)) - len(idx) for name, idx in kept.items())
    return dataclasses.replace(split, **kept), dropped


def _present(common_labels: np.ndarray, indices: np.ndarray) -> set[str]:
    return {COMMON_LABELS[i] for i in np.unique(common_labels[indices]) if i >= 0}


def prepare_fold(fold: Fold, bundles: dict[str, experiment.DataBundle]) -> FoldData:
    """Concatenates the sources, finds the shared label space, restricts both sides to it.

    `bundles` come from `experiment.load_data` with label_key 'common_label' (windows without
    a common label already left out of the split and counted here).
    """
    source_bundles = [bundles[name] for name in fold.sources]
    target_bundle = bundles[fold.target]
    concat = concat_datasets([b.dataset for b in source_bundles])
    source_split = _shift(source_bundles, concat.offsets)
    source_labels = _present(concat.common_labels, source_split.train)
    target_labels = _present(target_bundle.dataset.common_labels, target_bundle.split.train)
    classes = tuple(c for c in COMMON_LABELS if c in source_labels and c in target_labels)
    if len(classes) < 2:
        raise ValueError(
            f"transfer {fold.source} -> {fold.target}: the sources' training windows have "
            f"common labels {sorted(source_labels)}, the target's {sorted(target_labels)}; "
            f"shared: {list(classes)} — at least 2 shared common labels are needed"
        )
    source_ds = restrict_labels(concat, classes)
    target_ds = restrict_labels(target_bundle.dataset, classes)
    source_split, source_outside = _keep(source_split, source_ds.labels)
    target_split, target_outside = _keep(target_bundle.split, target_ds.labels)
    no_common = {
        name: int((bundles[name].dataset.common_labels < 0).sum())
        for name in (*fold.sources, fold.target)
    }
    info = {
        "source": fold.source,
        "target": fold.target,
        "classes": list(classes),
        "source_common_labels": sorted(source_labels, key=COMMON_LABELS.index),
        "target_common_labels": sorted(target_labels, key=COMMON_LABELS.index),
        "dropped_no_common_label": no_common,
        "dropped_outside_shared_labels": {"source": source_outside, "target": target_outside},
        "source_split": source_split.to_dict(),
        "target_split": target_split.to_dict(),
    }
    return FoldData(
        fold=fold,
        classes=classes,
        source=experiment.DataBundle(source_ds, source_split, "label"),
        target=experiment.DataBundle(target_ds, target_split, "label"),
        info=info,
    )


def load_bundles(
    config: ml_collections.ConfigDict, names: Sequence[str]
) -> dict[str, experiment.DataBundle]:
    """Each dataset opened and split once (same rate, window and channels for all)."""
    bundles = {}
    for name in names:
        dataset_config = copy.deepcopy(config)
        dataset_config.dataset = name
        bundles[name] = experiment.load_data(dataset_config)
    channels = {name: tuple(b.dataset.channel_names) for name, b in bundles.items()}
    if len(set(channels.values())) > 1:
        raise ValueError(
            f"transfer: datasets serve different channels {channels}; pass --channels acc "
            "(config.data.channels='acc') to use the accelerometer only"
        )
    return bundles


def check_shots(data: FoldData, shots: Sequence[int | str], seeds: int) -> None:
    """Fails before any training if a k exceeds what a class has in the target's training split."""
    numeric = [k for k in shots if k != ALL and k > 0]
    if not numeric:
        return
    labels = data.target.dataset.labels
    for seed in range(seeds):
        try:
            sampling.k_shot(labels, data.target.split.train, max(numeric), seed, data.classes)
        except ValueError as error:
            raise ValueError(f"transfer to {data.fold.target}: {error}") from None


# ------------------------------------------------------------------------------------------ runs


def pretrain_config(config: ml_collections.ConfigDict, fold: Fold) -> ml_collections.ConfigDict:
    c = copy.deepcopy(config)
    c.dataset = fold.source
    for field in ("num_steps", "eval_every", "checkpoint_every"):
        c.train[field] = int(config.pretrain[field])
    return c


def finetune_config(
    config: ml_collections.ConfigDict, fold: Fold, shots: int | str, seed: int
) -> ml_collections.ConfigDict:
    c = copy.deepcopy(config)
    c.dataset = fold.target
    c.seed = int(config.seed) + seed
    if shots == 0:
        c.train.num_steps = 0  # zero-shot: evaluate the pre-trained tree only
    return c


def load_pretrained(
    config: ml_collections.ConfigDict, pretrain_dir: Path, data: FoldData, backbone
) -> experiment.InitTrainable:
    """The best trainable tree of the pre-training run, with its input statistics.

    Restoring checks the checkpoint's backbone hash against the backbone loaded now, and every
    run started from the tree checks it again against its own assembled model.
    """
    from harjax import assemble
    from harjax.checkpoint import RunCheckpointer

    # Shapes only (eval_shape): no parameter is initialised or compiled just to be overwritten.
    shapes = jax.eval_shape(
        lambda: (
            assemble.assemble(
                config,
                num_classes=len(data.classes),
                num_channels=data.source.dataset.num_channels,
                rng=jax.random.key(int(config.seed)),
                backbone=backbone,
            ).trainable
        )
    )
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    # The hash `assemble` gives the transferable variants: the loaded backbone's content hash,
    # or "none" when nothing is frozen ('none', 'scratch').
    backbone_hash = backbone.content_hash if config.model.variant == "pretrained" else "none"
    checkpointer = RunCheckpointer(pretrain_dir)
    try:
        best, _ = checkpointer.restore_best(template, backbone_hash=backbone_hash)
    finally:
        checkpointer.close()
    result = json.loads((pretrain_dir / experiment.RESULT_FILE).read_text())
    if list(result["class_names"]) != list(data.classes):
        raise ValueError(
            f"{pretrain_dir}: pre-trained on classes {result['class_names']}, the fold now has "
            f"{list(data.classes)}; the data changed — use a new --workdir"
        )
    return experiment.InitTrainable(
        params=best,
        backbone_hash=backbone_hash,
        stats=Stats.from_dict(result["stats"]),
        source=str(pretrain_dir),
    )


def _load_backbone(config: ml_collections.ConfigDict):
    if config.model.variant != "pretrained":
        return None
    from harjax.assemble import _dtype
    from harjax.weights import load_backbone

    return load_backbone(
        config.backbone.spec,
        num_layers=config.backbone.num_layers or None,
        dtype=_dtype(config.backbone.param_dtype),
    )


def run_dir(workdir: Path, fold: Fold, init: str, shots, seed: int) -> Path:
    return workdir / "folds" / fold.name / "runs" / init / f"k{shots}_seed{seed}"


def fold_runs(fold: Fold, shots: Sequence[int | str], seeds: int) -> list[tuple[str, Any, int]]:
    """(init, k, seed) of a fold: zero-shot once, every other k for both inits and all seeds."""
    runs = [("sources", 0, 0)] if 0 in shots else []
    for init in INITS:
        runs += [(init, k, s) for s in range(seeds) for k in shots if k != 0]
    return runs


def run_transfer(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    folds: Sequence[Fold],
    shots: Sequence[int | str],
    seeds: int,
    progress: bool = True,
    backbone=None,
) -> list[dict[str, Any]]:
    """Runs (or resumes) every fold's pre-training and transfer runs; returns the rows.

    All datasets are opened, and every fold's label space and k are checked, before anything
    trains, so bad input fails in seconds. `backbone` may be pre-loaded (tests, notebooks).
    """
    check_config(config)
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, found {seeds}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, default=str))
    names = list(dict.fromkeys(n for f in folds for n in (*f.sources, f.target)))
    bundles = load_bundles(config, names)
    prepared = [prepare_fold(fold, bundles) for fold in folds]
    for data in prepared:
        check_shots(data, shots, seeds)
    if backbone is None:
        backbone = _load_backbone(config)
    for data in prepared:
        _run_fold(config, workdir, data, shots, seeds, backbone, progress)
    return collect_rows(workdir)


def _say(progress: bool, text: str) -> None:
    if progress and jax.process_index() == 0:
        print(text, flush=True)


def _run_fold(config, workdir: Path, data: FoldData, shots, seeds, backbone, progress) -> None:
    fold = data.fold
    fold_dir = workdir / "folds" / fold.name
    fold_dir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (fold_dir / "fold.json").write_text(json.dumps(data.info, indent=2))
    common = {"source": fold.source, "target": fold.target, "classes": ";".join(data.classes)}
    runs = fold_runs(fold, shots, seeds)
    pretrain_dir = fold_dir / "pretrain"
    pending_sources = [
        r for r in runs if r[0] == "sources" and not _finished(run_dir(workdir, fold, *r))
    ]
    init = None
    if pending_sources:
        state = "done" if _finished(pretrain_dir) else "run"
        _say(progress, f"[{fold.name}] {state} pre-training on {fold.source}")
        experiment.train_and_evaluate(
            pretrain_config(config, fold),
            pretrain_dir,
            data=data.source,
            backbone=backbone,
            progress=progress,
            extra={**common, "label_key": "common_label", "stage": "pretrain"},
        )
        init = load_pretrained(config, pretrain_dir, data, backbone)
    target_targets = data.target.dataset.labels
    for index, (init_name, k, seed) in enumerate(runs, 1):
        directory = run_dir(workdir, fold, init_name, k, seed)
        state = "done" if _finished(directory) else "run"
        _say(progress, f"[{fold.name} {index}/{len(runs)}] {state} init={init_name} k={k} s={seed}")
        if k == ALL or k == 0:
            train_idx = data.target.split.train  # k=0 trains nothing; its stats come from init
        else:
            train_idx = sampling.k_shot(
                target_targets, data.target.split.train, int(k), seed, data.classes
            )
        experiment.train_and_evaluate(
            finetune_config(config, fold, k, seed),
            directory,
            data=data.target,
            train_indices=train_idx,
            backbone=backbone,
            progress=progress,
            init_trainable=init if init_name == "sources" else None,
            extra={
                **common,
                "label_key": "common_label",
                "stage": "transfer",
                "init": init_name,
                "shots": k,
                "seed": seed,
                "num_train_windows": 0 if k == 0 else len(train_idx),
            },
        )
        if jax.process_index() == 0:
            write_reports(workdir)


def _finished(directory: Path) -> bool:
    return (directory / experiment.RESULT_FILE).exists()


# --------------------------------------------------------------------------------------- reports


def _shots_key(k) -> float:
    return math.inf if k == ALL else float(k)


def collect_rows(workdir: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per finished transfer run, read back from the run directories (the truth)."""
    workdir = Path(workdir)
    rows = []
    for path in sorted(workdir.glob(f"folds/*/runs/*/*/{experiment.RESULT_FILE}")):
        result = json.loads(path.read_text())
        pretrain = path.parents[3] / "pretrain" / experiment.RESULT_FILE
        source_score = json.loads(pretrain.read_text())["macro_f1"] if pretrain.exists() else None
        rows.append(
            {
                "source": result["source"],
                "target": result["target"],
                "init": result["init"],
                "shots": result["shots"],
                "seed": result["seed"],
                "accuracy": result["accuracy"],
                "macro_f1": result["macro_f1"],
                "variant": result["variant"],
                "classes": result["classes"],
                "num_train_windows": result["num_train_windows"],
                "trainable_params": result["trainable_params"],
                "train_seconds": round(float(result["train_seconds"]), 2),
                "steps_to_95": result.get("steps_to_95"),
                "best_step": result.get("best_step"),
                "source_test_macro_f1": source_score,
            }
        )
    folds = list(dict.fromkeys((r["source"], r["target"]) for r in rows))
    rows.sort(
        key=lambda r: (
            folds.index((r["source"], r["target"])),
            _shots_key(r["shots"]),
            INITS.index(r["init"]),
            r["seed"],
        )
    )
    return rows


def write_results_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """COLUMNS first, then the rest; written to a temp file and renamed (a kill leaves the old)."""
    columns = list(COLUMNS) + [c for r in rows for c in r if c not in COLUMNS]
    columns = list(dict.fromkeys(columns))
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _mean_std(values: Sequence[float]) -> str:
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return f"{values.mean():.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def _groups(rows) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["source"], row["target"], row["shots"], row["init"])
        groups.setdefault(key, []).append(row)
    return groups


def summary_markdown(rows: Sequence[dict[str, Any]], folds_info: Sequence[dict]) -> str:
    """Per-fold label space, the runs' mean ± std, and the gain of pre-training per k."""
    lines = ["# Cross-dataset transfer", ""]
    if folds_info:
        lines += [
            "Label space per fold: common labels present in the training windows of both the "
            "sources and the target; other windows are dropped and counted.",
            "",
            "| source | target | classes | windows without common label | "
            "outside shared labels (source / target) |",
            "|---|---|---|---|---|",
        ]
        for info in folds_info:
            no_common = ", ".join(f"{k}: {v}" for k, v in info["dropped_no_common_label"].items())
            outside = info["dropped_outside_shared_labels"]
            lines.append(
                f"| {info['source']} | {info['target']} | {', '.join(info['classes'])} | "
                f"{no_common} | {outside['source']} / {outside['target']} |"
            )
        lines.append("")
    lines += [
        "k = 0: the pre-trained model evaluated on the target without fine-tuning. "
        "init `sources`: fine-tuned from the tree pre-trained on the sources; `none`: the same "
        "fine-tuning from a fresh initialisation. Test macro-F1 / accuracy on the target's test "
        "subjects, mean ± sample std over seeds.",
        "",
        "| source | target | k | init | seeds | accuracy | macro-F1 | source test macro-F1 |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    groups = _groups(rows)
    for (source, target, k, init), runs in groups.items():
        score = runs[0]["source_test_macro_f1"]
        lines.append(
            f"| {source} | {target} | {k} | {init} | {len(runs)} | "
            f"{_mean_std([r['accuracy'] for r in runs])} | "
            f"{_mean_std([r['macro_f1'] for r in runs])} | "
            f"{'–' if score is None else f'{score:.3f}'} |"
        )
    gains = []
    for (source, target, k, init), runs in groups.items():
        other = groups.get((source, target, k, "none"))
        if init != "sources" or other is None:
            continue
        by_seed = {r["seed"]: r["macro_f1"] for r in other}
        paired = [r["macro_f1"] - by_seed[r["seed"]] for r in runs if r["seed"] in by_seed]
        if paired:
            gains.append(f"| {source} | {target} | {k} | {len(paired)} | {_mean_std(paired)} |")
    if gains:
        lines += [
            "",
            "Gain of pre-training: macro-F1(`sources`) − macro-F1(`none`), paired by seed "
            "(same k-shot windows).",
            "",
            "| source | target | k | seeds | gain |",
            "|---|---|---|---:|---:|",
            *gains,
        ]
    return "\n".join(lines) + "\n"


def plot_transfer(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Macro-F1 vs k, one panel per fold, one line per init (mean, shaded ± sample std)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    groups = _groups(rows)
    folds = list(dict.fromkeys((s, t) for s, t, _, _ in groups))
    shots = sorted({k for _, _, k, _ in groups}, key=_shots_key)
    position = {k: i for i, k in enumerate(shots)}  # categorical: 0 and `all` have no log place
    columns = min(3, len(folds))
    figure, axes = plt.subplots(
        math.ceil(len(folds) / columns),
        columns,
        figsize=(4.6 * columns, 3.6 * math.ceil(len(folds) / columns)),
        squeeze=False,
    )
    for panel, (source, target) in zip(axes.flat, folds):
        for init, colour in zip(INITS, ("tab:blue", "tab:orange")):
            ks = [k for k in shots if (source, target, k, init) in groups]
            if not ks:
                continue
            scores = [[r["macro_f1"] for r in groups[(source, target, k, init)]] for k in ks]
            mean = np.array([np.mean(s) for s in scores])
            std = np.array([np.std(s, ddof=1) if len(s) > 1 else 0.0 for s in scores])
            x = np.array([position[k] for k in ks])
            panel.plot(x, mean, marker="o", color=colour, label=f"init {init}")
            panel.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        panel.set_xticks(range(len(shots)), [str(k) for k in shots])
        short = lambda spec: ",".join(
            f"csv:{Path(n[4:]).name}" if n.startswith("csv:") else n for n in spec.split(",")
        )
        panel.set_title(f"{short(source)} → {short(target)}", fontsize=9)
        panel.set_xlabel("shots per class (k; 0 = zero-shot)")
        panel.set_ylabel("target test macro-F1")
        panel.grid(True, alpha=0.3)
        panel.legend(fontsize=8)
    for panel in list(axes.flat)[len(folds) :]:
        panel.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_reports(workdir: str | os.PathLike) -> None:
    """results.csv, results.md and transfer.png from the finished runs on disk."""
    workdir = Path(workdir)
    rows = collect_rows(workdir)
    if not rows:
        return
    folds_info = [json.loads(p.read_text()) for p in sorted(workdir.glob("folds/*/fold.json"))]
    write_results_csv(rows, workdir / "results.csv")
    (workdir / "results.md").write_text(summary_markdown(rows, folds_info))
    plot_transfer(rows, workdir / "transfer.png")
