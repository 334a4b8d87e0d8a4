"""One training run from a config: data -> split -> model -> train with validation -> test report.

`train_and_evaluate(config, workdir)` is what `launch/train.py`, the few-shot sweep, transfer and
the notebooks all call. It trains on the training subjects, evaluates on validation subjects
every `eval_every` steps, keeps the trainable tree with the best validation macro-F1, and
reports test accuracy, macro-F1, per-class F1 and a confusion matrix (`metrics.json`,
`confusion.png`). It checkpoints (orbax) what trains plus the data-iterator position, and a
rerun of the same command resumes from the last checkpoint and ends with the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from harjax import assemble, evaluate, lora, train
from harjax.checkpoint import BackboneMismatchError, RunCheckpointer
from harjax.data import pipeline
from harjax.data.bundle import DataBundle, load_data
from harjax.data.normalization import Stats, compute_stats
from harjax.metrics_log import MetricsLog
from harjax.tree import flatten_params, unflatten_params

RESULT_FILE = "metrics.json"
VARIANTS = (*assemble.NEURAL_VARIANTS, "classical")


@dataclasses.dataclass(frozen=True)
class InitTrainable:
    """A trainable tree to start a run from (transfer: a run pre-trained on other datasets).

    `params` is a trainable tree (projection, LoRA, head, ...) of the same model structure.
    `backbone_hash` must equal the run's frozen backbone hash: adapters trained against other
    frozen weights mean nothing. `stats` is the input normalisation `params` was trained with;
    it replaces the statistics of the run's own training windows, so the projection keeps
    seeing inputs on the scale it learned (and k-shot statistics of a few windows are noisy).
    Head parameters (`head/...`) of another shape — another label space — are re-initialised;
    `reinit_head=True` forces that for a label space of the same size but other classes.
    """

    params: Any
    backbone_hash: str
    stats: Stats | None = None
    source: str = ""  # where the tree came from, recorded in metrics.json as `init_from`
    reinit_head: bool = False


def start_from(fresh: dict[str, Any], init: InitTrainable) -> dict[str, Any]:
    """`fresh` (the run's initial trainable tree) with every leaf taken from `init.params`,
    except head leaves that `InitTrainable` says to re-initialise. Any other missing,
    unexpected or mis-shaped path is an error listing them."""
    fresh_flat, init_flat = flatten_params(fresh), flatten_params(init.params)
    merged, problems = {}, []
    for path, value in fresh_flat.items():
        old = init_flat.get(path)
        if path.startswith("head/") and (
            init.reinit_head or old is None or tuple(old.shape) != tuple(value.shape)
        ):
            merged[path] = value
        elif old is None:
            problems.append(f"{path}: missing")
        elif tuple(old.shape) != tuple(value.shape):
            problems.append(f"{path}: expected {tuple(value.shape)}, found {tuple(old.shape)}")
        else:
            merged[path] = jnp.asarray(old, value.dtype)
    problems += [f"{path}: unexpected" for path in sorted(init_flat.keys() - fresh_flat.keys())]
    if problems:
        raise ValueError(
            f"init_trainable from {init.source or 'caller'} does not fit this model's trainable "
            f"tree: {problems[:6]}{' ...' if len(problems) > 6 else ''}"
        )
    return unflatten_params(merged)


def _eval_subset(indices: np.ndarray, limit: int, seed: int) -> np.ndarray:
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


# Jitted steps are cached by everything that shapes the computation, so a sweep compiles once
# per distinct model structure (pretrained and random variants share one compile).
_STEP_CACHE: dict[str, tuple[Any, Any]] = {}


def _step_key(config, assembled, num_classes, num_channels, mesh) -> str:
    parts = {k: config[k].to_dict() for k in ("model", "projection", "lora", "optim", "scratch")}
    parts.update(
        backbone_module=repr(assembled.model.backbone),
        num_classes=num_classes,
        num_channels=num_channels,
        window=int(config.data.window_length),
        steps=int(config.train.num_steps),
        devices=[str(d) for d in mesh.devices.flat],
        variant_structure=lora.param_paths(assembled.trainable),
    )
    return json.dumps(parts, sort_keys=True, default=str)


def _steps_for(config, assembled, num_classes, num_channels, mesh):
    key = _step_key(config, assembled, num_classes, num_channels, mesh)
    if key not in _STEP_CACHE:
        optimizer = train.optimizer_from_config(config)
        step = train.make_train_step(
            assembled.model,
            optimizer,
            assembled.lora_config,
            mesh=mesh,
            label_smoothing=float(config.optim.label_smoothing),
        )
        eval_step = train.make_eval_step(assembled.model, assembled.lora_config, mesh=mesh)
        _STEP_CACHE[key] = (optimizer, step, eval_step)
    return _STEP_CACHE[key]


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    if jax.process_index() != 0:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _finish(workdir, base, test, class_names, **fields) -> dict[str, Any]:
    """Writes metrics.json and confusion.png; every variant's result has the same keys."""
    from harjax import report

    result = {**base, "test": test, "accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
    result.update(fields)
    title = f"{base['variant']} — test macro-F1 {test['macro_f1']:.3f}"
    if jax.process_index() == 0:
        report.plot_confusion(
            np.asarray(result["test"]["confusion"]), class_names, workdir / "confusion.png", title
        )
    _write_json(workdir / RESULT_FILE, result)
    return result


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    data: DataBundle | None = None,
    train_indices: np.ndarray | None = None,
    backbone=None,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
    init_trainable: InitTrainable | None = None,
) -> dict[str, Any]:
    """Trains `config.model.variant` and returns (and writes) the result dict.

    `data`, `train_indices` (e.g. a k-shot subset of the training split) and a pre-loaded
    `backbone` let a sweep share work between runs. A finished run (its `metrics.json` exists)
    is returned as is; an unfinished one resumes from its last checkpoint. `init_trainable`
    starts from a given trainable tree instead of a fresh one (see `InitTrainable`); with
    `config.train.num_steps = 0` the run only evaluates it (zero-shot transfer).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / RESULT_FILE).exists():
        return json.loads((workdir / RESULT_FILE).read_text())
    _write_json(workdir / "config.json", config.to_dict())
    data = load_data(config) if data is None else data
    split = data.split
    train_idx = split.train if train_indices is None else np.asarray(train_indices, np.int64)
    class_names = data.class_names
    stats_path = workdir / "stats.json"
    # Normalisation statistics from the windows this run trains on, never from val/test.
    if init_trainable is not None and init_trainable.stats is not None:
        stats = init_trainable.stats
    else:
        stats = compute_stats(data.dataset, train_idx)
    if jax.process_index() == 0:
        stats.save(stats_path)
    base = {
        "variant": config.model.variant,
        "dataset": config.dataset,
        "label_key": data.label_key,
        "class_names": list(class_names),
        "channel_names": list(data.dataset.channel_names),
        "num_train_windows": len(train_idx),
        "split": split.to_dict(),
        "stats": stats.to_dict(),
        **({"init_from": init_trainable.source} if init_trainable is not None else {}),
        **(extra or {}),
    }
    variant = config.model.variant
    if variant == "classical":
        return _train_classical(config, workdir, data, train_idx, base)
    if variant not in assemble.NEURAL_VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {VARIANTS}")

    t = config.train
    mesh = train.data_mesh()
    assembled = assemble.assemble(
        config,
        num_classes=len(class_names),
        num_channels=data.dataset.num_channels,
        rng=jax.random.key(int(config.seed)),
        backbone=backbone,
    )
    initial = assembled.trainable
    if init_trainable is not None:
        if init_trainable.backbone_hash != assembled.backbone_hash:
            raise BackboneMismatchError(
                f"{workdir}: init_trainable from {init_trainable.source or 'caller'} was trained "
                f"on a backbone with hash {init_trainable.backbone_hash}, this run's backbone "
                f"{assembled.backbone_spec!r} has hash {assembled.backbone_hash}"
            )
        initial = start_from(assembled.trainable, init_trainable)
    counts = assembled.param_counts()
    if jax.process_index() == 0:
        print(assembled.describe(), flush=True)
    optimizer, step_fn, eval_step = _steps_for(
        config, assembled, len(class_names), data.dataset.num_channels, mesh
    )
    rep = train.replicated(mesh)
    frozen = jax.device_put(assembled.frozen, rep)
    state = train.create_train_state(
        jax.random.key_data(jax.random.key(int(config.seed) + 1)), initial, optimizer
    )
    # A copy: the step donates the state's buffers, which would otherwise delete `best` too.
    best = jax.tree.map(jnp.copy, initial)
    meta: dict[str, Any] = {
        "iterator": None,
        "curve": [],
        "best_step": 0,
        "best_score": -1.0,
        "train_seconds": 0.0,
        "backbone_spec": assembled.backbone_spec,
        "backbone_hash": assembled.backbone_hash,
    }
    batches = pipeline.train_batches(
        data.dataset,
        train_idx,
        batch_size=int(t.batch_size),
        seed=int(config.seed),
        stats=stats,
        label_key=data.label_key,
        sharding=train.batch_sharding(mesh),
    )
    checkpointer = RunCheckpointer(workdir)
    start = checkpointer.latest_step() or 0
    if start:
        state, best, meta = checkpointer.restore(state, best, backbone_hash=assembled.backbone_hash)
        batches.set_state(meta["iterator"])
    state = jax.device_put(state, rep)
    log = MetricsLog(workdir, resume_step=start)
    val_idx = _eval_subset(split.val, int(t.get("max_eval_windows", 0)), int(config.seed))
    num_steps, eval_every = int(t.num_steps), int(t.eval_every)
    checkpoint_every, log_every = int(t.checkpoint_every), int(t.log_every)

    def validate(trainable) -> float:
        labels, preds = predict_indices(
            eval_step, trainable, frozen, data, val_idx, stats, int(t.eval_batch_size), mesh
        )
        return evaluate.classification_metrics(labels, preds, class_names)["macro_f1"]

    bar = tqdm(
        range(start, num_steps),
        initial=start,
        total=num_steps,
        desc=f"{variant} {workdir.name}",
        disable=not progress or jax.process_index() != 0,
        leave=False,
    )
    clock = time.perf_counter()
    for step in bar:
        state, metrics = step_fn(state, frozen, next(batches))
        done = step + 1
        if done % log_every == 0 or done == num_steps:
            scalars = jax.device_get(metrics)
            log.write(done, "train", scalars)
            bar.set_postfix(loss=f"{float(scalars['loss']):.3f}")
        if len(val_idx) and (done % eval_every == 0 or done == num_steps):
            score = validate(state.params)
            meta["curve"].append([done, score])
            log.write(done, "val", {"macro_f1": score})
            if score > meta["best_score"]:
                meta["best_score"], meta["best_step"] = score, done
                best = jax.tree.map(jnp.copy, state.params)
        if done % checkpoint_every == 0 or done == num_steps:
            meta["train_seconds"] += time.perf_counter() - clock
            clock = time.perf_counter()
            meta["iterator"] = batches.get_state()
            checkpointer.save(done, state, best, meta)
    bar.close()
    checkpointer.close()
    if not len(val_idx):  # no validation subjects: the last state is the result
        best = state.params
    labels, preds = predict_indices(
        eval_step, best, frozen, data, split.test, stats, int(t.eval_batch_size), mesh
    )
    test = evaluate.classification_metrics(labels, preds, class_names)
    curve_steps = [s for s, _ in meta["curve"]]
    curve_values = [v for _, v in meta["curve"]]
    log.write(num_steps, "test", {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]})
    log.close()
    return _finish(
        workdir,
        base,
        test,
        class_names,
        backbone={"spec": assembled.backbone_spec, "hash": assembled.backbone_hash},
        val_curve={"steps": curve_steps, "macro_f1": curve_values},
        best_step=meta["best_step"],
        best_val_macro_f1=meta["best_score"],
        steps_to_95=evaluate.steps_to_fraction(curve_steps, curve_values, 0.95),
        trainable_params=counts["trainable"],
        total_params=counts["total"],
        trainable_fraction=counts["fraction"],
        train_seconds=meta["train_seconds"],
        num_steps=num_steps,
    )


def _train_classical(config, workdir, data, train_idx, base) -> dict[str, Any]:
    from harjax.classical import ClassicalBaseline

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
    test_signals, test_labels = pipeline.load_arrays(
        data.dataset, data.split.test, None, data.label_key
    )
    test = evaluate.classification_metrics(
        test_labels, model.predict(test_signals), data.class_names
    )
    return _finish(
        Path(workdir),
        base,
        test,
        data.class_names,
        backbone={"spec": "none", "hash": "none"},
        val_curve={"steps": [], "macro_f1": []},
        best_step=0,
        best_val_macro_f1=None,
        steps_to_95=None,
        trainable_params=model.num_parameters(),
        total_params=model.num_parameters(),
        trainable_fraction=1.0,
        train_seconds=seconds,
        num_steps=0,
    )
