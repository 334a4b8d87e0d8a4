"""The run loop: data -> model -> train with validation -> test report, resumable.

`train_and_evaluate(config, workdir)` trains `config.model.variant` on the training subjects
(or the windows given) for its budget (`harjax.run.budget`: `train.num_steps`, or an epochs
budget), evaluates on the validation subjects every `eval_every` steps, keeps the trainable
tree with the best validation macro-F1, stops early after `train.patience` evaluations without
improvement (when set), and reports test accuracy, macro-F1,
per-class F1 and a confusion matrix (`metrics.json`, `confusion.png`). It checkpoints (orbax)
what trains plus the data-iterator position; a rerun of the same run resumes from the last
checkpoint and ends with the same numbers, and a rerun of another run in the same directory is
refused (`fingerprint`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from harjax import train
from harjax.data import pipeline
from harjax.data.bundle import DataBundle, load_data
from harjax.data.normalization import compute_stats
from harjax.reporting.metrics import classification_metrics, steps_to_fraction
from harjax.run import budget
from harjax.run import fingerprint as fingerprints
from harjax.run.checkpoint import BackboneMismatchError, RunCheckpointer
from harjax.run.compiled import StepCache
from harjax.run.environment import environment, is_main_process
from harjax.run.metrics_log import MetricsLog
from harjax.run.result import make_result, read_result, write_json, write_result
from harjax.run.validate import check_config
from harjax.run.warm_start import InitTrainable, start_from
from harjax.variants import assemble

VARIANTS = (*assemble.NEURAL_VARIANTS, "classical")


def eval_subset(indices: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A seeded subsample of at most `limit` windows (0 = all), to keep frequent evals cheap."""
    if not limit or len(indices) <= limit:
        return indices
    return np.sort(np.random.default_rng(seed).choice(indices, size=limit, replace=False))


def _gather(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def predict_indices(
    eval_step, trainable, frozen, data: DataBundle, indices, stats, batch_size, mesh
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) for `indices`, padded batches masked out."""
    labels, predictions = [], []
    for batch in pipeline.eval_batches(
        data.dataset,
        indices,
        batch_size=batch_size,
        stats=stats,
        label_key=data.label_key,
        sharding=train.batch_sharding(mesh),
    ):
        out = eval_step(trainable, frozen, batch)
        mask = _gather(batch["mask"]) > 0
        labels.append(_gather(batch["label"])[mask])
        predictions.append(_gather(out["prediction"])[mask])
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(labels), np.concatenate(predictions)


def class_coverage_warnings(data: DataBundle, train_indices: np.ndarray) -> list[str]:
    """Classes a run cannot learn or is not scored on: missing from a part of the split.

    A class absent from the training windows is never predicted correctly; one absent from
    validation or test is left out of that part's macro-F1. Both skew a comparison silently,
    so they are written with the result and shown in the sweep summary.
    """
    present = lambda indices: set(np.unique(data.targets(np.asarray(indices, np.int64))).tolist())
    train_classes = present(train_indices)
    in_subjects = present(data.split.train)
    warnings = []
    for part in ("val", "test"):
        indices = getattr(data.split, part)
        if not len(indices):
            continue
        part_classes = present(indices)
        for index, name in enumerate(data.class_names):
            if index in part_classes and index not in train_classes:
                where = (
                    "not in the training subjects"
                    if index not in in_subjects
                    else "not in this run's training windows"
                )
                warnings.append(f"class {name!r} is in the {part} subjects but {where}")
            if index in in_subjects and index not in part_classes:
                warnings.append(
                    f"class {name!r} is in the training subjects but not in the {part} subjects "
                    f"(left out of {part} macro-F1)"
                )
    return list(dict.fromkeys(warnings))


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    data: DataBundle | None = None,
    train_indices: np.ndarray | None = None,
    backbone=None,
    progress: bool = True,
    tags: Mapping[str, Any] | None = None,
    init_trainable: InitTrainable | None = None,
    steps: StepCache | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Trains `config.model.variant` and returns (and writes) the result dict.

    `data`, `train_indices` (e.g. a k-shot subset of the training split), a pre-loaded
    `backbone` and a `steps` cache let a sweep share work between runs; `tags` are the sweep's
    name for the run (kept under `result["tags"]`). A finished run of the same fingerprint is
    returned as is, an unfinished one resumes from its last checkpoint; a directory holding
    another run is an error unless `overwrite` discards it. `init_trainable` starts from a given
    trainable tree (see `InitTrainable`); with `config.train.num_steps = 0` the run only
    evaluates it (zero-shot transfer).
    """
    # The run's one config check (a sweep checked its grid once more, up front), before the
    # data loads.
    check_config(config, zero_steps=init_trainable is not None)
    workdir = Path(workdir)
    data = load_data(config) if data is None else data
    train_idx = data.split.train if train_indices is None else np.asarray(train_indices, np.int64)
    expected, finished = open_run(config, workdir, data, train_idx, init_trainable, tags, overwrite)
    if finished is not None:
        return finished
    try:
        steps = StepCache() if steps is None else steps
        return _train(
            config,
            workdir,
            data,
            train_idx,
            backbone,
            progress,
            tags,
            init_trainable,
            steps,
            expected,
        )
    except BaseException:
        # A run that failed before writing anything leaves no empty directory behind.
        if workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()
        raise


def open_run(config, workdir: Path, data, train_idx, init_trainable, tags, overwrite):
    """(expected fingerprint, finished result or None) after checking the directory (the
    caller checked the config).

    A directory of another run is refused (or discarded with `overwrite`); the directory of an
    unfinished run exists afterwards.
    """
    expected = fingerprints.fingerprint(
        config,
        data,
        train_idx,
        init=None if init_trainable is None else init_trainable.identity(),
        tags=tags,
    )
    if overwrite:
        if fingerprints.is_used(workdir) and not fingerprints.matches(
            fingerprints.recorded(workdir), expected
        ):
            fingerprints.discard(workdir)
    fingerprints.check(workdir, expected)
    finished = read_result(workdir)
    if finished is None:
        workdir.mkdir(parents=True, exist_ok=True)
    return expected, finished


def run_stats(data, train_idx, init_trainable):
    """Normalisation statistics from the windows this run trains on, never from val/test."""
    if init_trainable is not None and init_trainable.stats is not None:
        return init_trainable.stats
    return compute_stats(data.dataset, train_idx)


def assemble_run(config, data, backbone, init_trainable, workdir):
    """(assembled, initial trainable tree) of one neural run, seeded by `config.seed`."""
    assembled = assemble.assemble(
        config,
        num_classes=len(data.class_names),
        num_channels=data.dataset.num_channels,
        rng=jax.random.key(int(config.seed)),
        backbone=backbone,
    )
    if init_trainable is None:
        return assembled, assembled.trainable
    if init_trainable.backbone_hash != assembled.backbone_hash:
        raise BackboneMismatchError(
            f"{workdir}: init_trainable from {init_trainable.source or 'caller'} was trained "
            f"on a backbone with hash {init_trainable.backbone_hash}, this run's backbone "
            f"{assembled.backbone_spec!r} has hash {assembled.backbone_hash}"
        )
    return assembled, start_from(assembled.trainable, init_trainable)


def initial_meta(assembled) -> dict[str, Any]:
    """A run's checkpointed bookkeeping before its first step."""
    return {
        "iterator": None,
        "curve": [],
        "best_step": 0,
        "best_score": -1.0,
        "evals_since_improvement": 0,  # early stopping's count (`budget.early_stopping`)
        "stopped_step": None,  # the step it stopped early at
        "train_seconds": 0.0,
        # The most models any compiled program trained this run with (`run.group` raises it;
        # checkpointed, so a run resumed elsewhere keeps it): in bfloat16 that program's
        # rounding shaped the run (docs/performance.md, Findings).
        "models_in_program": 1,
        "backbone_spec": assembled.backbone_spec,
        "backbone_hash": assembled.backbone_hash,
    }


def state_rng(config) -> jax.Array:
    """The dropout key a run's train state starts from."""
    return jax.random.key_data(jax.random.key(int(config.seed) + 1))


def neural_result(base, assembled, test, meta, num_steps: int, tags) -> dict[str, Any]:
    """The result record of a trained neural run (the sequential and the group loop)."""
    counts = assembled.param_counts()
    curve_steps = [s for s, _ in meta["curve"]]
    curve_values = [v for _, v in meta["curve"]]
    return make_result(
        {
            **base,
            "backbone": {"spec": assembled.backbone_spec, "hash": assembled.backbone_hash},
            "compute_dtype": assembled.compute_dtype,
            "calibration": assembled.calibration_record(),
            "test": test,
            "accuracy": test["accuracy"],
            "macro_f1": test["macro_f1"],
            "val_curve": {"steps": curve_steps, "macro_f1": curve_values},
            "best_step": meta["best_step"],
            # None without validation subjects: a sweep must not choose settings on -1.
            "best_val_macro_f1": meta["best_score"] if meta["curve"] else None,
            "steps_to_95": steps_to_fraction(curve_steps, curve_values, 0.95),
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "trainable_fraction": counts["fraction"],
            "train_seconds": meta["train_seconds"],
            "num_steps": num_steps,
            "stopped_step": meta.get("stopped_step"),
            "models_in_program": int(meta.get("models_in_program", 1)),
        },
        tags,
    )


def final_step(meta, num_steps: int) -> int:
    """The last step a run trained: where it stopped early, else its budget."""
    stopped = meta.get("stopped_step")
    return num_steps if stopped is None else int(stopped)


def base_fields(config, data, train_idx, stats, init_trainable) -> dict[str, Any]:
    return {
        "variant": config.model.variant,
        "dataset": config.dataset,
        "label_key": config.data.label_key,
        "class_names": list(data.class_names),
        "channel_names": list(data.dataset.channel_names),
        "num_train_windows": len(train_idx) if int(config.train.num_steps) > 0 else 0,
        "split": data.split.to_dict(),
        "stats": stats.to_dict(),
        "init_from": None if init_trainable is None else init_trainable.source,
        "warnings": class_coverage_warnings(data, train_idx),
        "environment": environment(),
    }


def _train(
    config, workdir, data, train_idx, backbone, progress, tags, init_trainable, steps, expected
):
    variant = config.model.variant
    class_names = data.class_names
    stats = run_stats(data, train_idx, init_trainable)
    if variant == "classical":
        base = base_fields(config, data, train_idx, stats, init_trainable)
        start_run(workdir, config, expected, stats)
        return _train_classical(config, workdir, data, train_idx, base, tags)

    run_config = budget.resolve(config, len(train_idx))  # the step budget and eval spacing
    train_config = run_config.train
    mesh = train.data_mesh()
    assembled, initial = assemble_run(config, data, backbone, init_trainable, workdir)
    compiled = steps.get(run_config, assembled, len(class_names), data.dataset.num_channels, mesh)
    rep = train.replicated(mesh)
    frozen = jax.device_put(assembled.frozen, rep)
    state = train.create_train_state(state_rng(config), initial, compiled.optimizer)
    # A copy: the step donates the state's buffers, which would otherwise delete `best` too.
    best = jax.tree.map(jnp.copy, initial)
    meta = initial_meta(assembled)
    batches = pipeline.train_batches(
        data.dataset,
        train_idx,
        batch_size=int(train_config.batch_size),
        seed=int(config.seed),
        stats=stats,
        label_key=data.label_key,
        sharding=train.batch_sharding(mesh),
    )
    checkpointer = RunCheckpointer(workdir)
    start = checkpointer.latest_step() or 0
    if start:  # restored (and shape-checked) before anything of this invocation is written
        state, best, meta = checkpointer.restore(state, best, backbone_hash=assembled.backbone_hash)
        batches.set_state(meta["iterator"])
    base = base_fields(config, data, train_idx, stats, init_trainable)
    start_run(workdir, config, expected, stats)
    if is_main_process():
        print(assembled.describe(), flush=True)
    state = jax.device_put(state, rep)
    log = MetricsLog(workdir, resume_step=start)
    val_idx = eval_subset(data.split.val, int(train_config.max_eval_windows), int(config.seed))
    num_steps, eval_every = int(train_config.num_steps), int(train_config.eval_every)
    checkpoint_every, log_every = int(train_config.checkpoint_every), int(train_config.log_every)
    eval_batch_size = int(train_config.eval_batch_size)

    def validate(trainable) -> float:
        labels, predictions = predict_indices(
            compiled.eval_step, trainable, frozen, data, val_idx, stats, eval_batch_size, mesh
        )
        return classification_metrics(labels, predictions, class_names)["macro_f1"]

    stopping = budget.early_stopping(train_config, [meta])
    bar = tqdm(
        range(start, final_step(meta, num_steps)),  # a run that stopped early does not resume
        initial=start,
        total=num_steps,
        desc=f"{variant} {workdir.name}",
        disable=not progress or not is_main_process(),
        leave=False,
    )
    clock = time.perf_counter()
    for step in bar:
        state, metrics = compiled.train_step(state, frozen, next(batches))
        done = step + 1
        if done % log_every == 0 or done == num_steps:
            scalars = jax.device_get(metrics)
            log.write(done, "train", scalars)
            bar.set_postfix(loss=f"{float(scalars['loss']):.3f}")
        stopped = False
        if len(val_idx) and (done % eval_every == 0 or done == num_steps):
            score = validate(state.params)
            log.write(done, "val", {"macro_f1": score})
            improved, newly = budget.record_evaluation(stopping, [meta], done, [score], [True])
            if improved[0]:
                best = jax.tree.map(jnp.copy, state.params)
            stopped = bool(newly[0])
        if done % checkpoint_every == 0 or done == num_steps or stopped:
            meta["train_seconds"] += time.perf_counter() - clock
            clock = time.perf_counter()
            meta["iterator"] = batches.get_state()
            checkpointer.save(done, state, best, meta)
        if stopped:
            break
    bar.close()
    checkpointer.close()
    if not len(val_idx):  # no validation subjects: the last state is the result
        best = state.params
    labels, predictions = predict_indices(
        compiled.eval_step, best, frozen, data, data.split.test, stats, eval_batch_size, mesh
    )
    test = classification_metrics(labels, predictions, class_names)
    log.write(
        final_step(meta, num_steps),
        "test",
        {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]},
    )
    log.close()
    result = neural_result(base, assembled, test, meta, num_steps, tags)
    return write_result(workdir, result)


def start_run(workdir: Path, config, expected, stats) -> None:
    """The run's first writes, after every check passed: fingerprint, config, statistics."""
    fingerprints.record(workdir, expected)
    write_json(workdir / "config.json", config.to_dict())
    if is_main_process():
        stats.save(workdir / "stats.json")


def _train_classical(config, workdir, data, train_idx, base, tags) -> dict[str, Any]:
    from harjax.variants.classical import ClassicalBaseline

    clock = time.perf_counter()
    signals, labels = pipeline.load_arrays(data.dataset, train_idx, None, data.label_key)
    model = ClassicalBaseline(
        num_trees=int(config.classical.num_trees),
        seed=int(config.seed),
        sample_rate=float(config.data.sample_rate),
        channel_names=tuple(data.dataset.channel_names),
    )
    model.fit(signals, labels)
    seconds = time.perf_counter() - clock

    def score(indices):
        signals, labels = pipeline.load_arrays(data.dataset, indices, None, data.label_key)
        return classification_metrics(labels, model.predict(signals), data.class_names)

    test = score(data.split.test)
    # Scored on the validation subjects like every neural run, so a sweep can choose the
    # forest's settings on validation (it has no curve: one fit, one score).
    val_macro_f1 = score(data.split.val)["macro_f1"] if len(data.split.val) else None
    result = make_result(
        {
            **base,
            "backbone": {"spec": "none", "hash": "none"},
            "compute_dtype": {"name": "float64", "reason": "classical baseline (numpy)"},
            "calibration": None,
            "test": test,
            "accuracy": test["accuracy"],
            "macro_f1": test["macro_f1"],
            "val_curve": {"steps": [], "macro_f1": []},
            "best_step": 0,
            "best_val_macro_f1": val_macro_f1,
            "steps_to_95": None,
            "trainable_params": model.num_parameters(),
            "total_params": model.num_parameters(),
            "trainable_fraction": 1.0,
            "train_seconds": seconds,
            "num_steps": 0,
            "stopped_step": None,
            "models_in_program": None,
        },
        tags,
    )
    return write_result(Path(workdir), result)
