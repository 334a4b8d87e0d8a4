"""The run loop: data -> model -> train with validation -> test report, for M >= 1 runs, resumable.

`train_and_evaluate(config, workdir)` trains one run (`config.model.variant`), `train_group`
several runs that can share one loop (`program.group_key`: they differ only in seed, learning
rate, k-shot windows and frozen weights); both go through the one loop below, over M models
(M = 1: one run). Per model, exactly as if it trained alone (bit for bit, in every dtype):
  budget          `harjax.run.budget.resolve`: `train.num_steps`, or an epochs budget, and the
                  eval spacing (in `group_key`, so a group shares them)
  batches         its own `pipeline.train_batches` iterator (its windows, its seed, its stats,
                  `data.augment` when set: the same draws for every run with that seed)
  validation      its own windows (`eval_subset` by its seed, its normalisation) every
                  `eval_every` steps; a strictly better macro-F1 keeps its trainable tree
  early stopping  `budget.EarlyStopping` after `train.patience` evaluations without improvement
                  (when set): a model that stops turns inactive, keeps its best tree and writes
                  its last checkpoint; the loop ends when every model stopped or the budget is
                  spent
  checkpoints     orbax (`run.checkpoint`): what trains, the best tree and the data-iterator
                  position, in the one-model layout whatever M (`program.Program.model_state`)
  report          test accuracy, macro-F1, per-class F1, confusion matrix (`metrics.json`,
                  `confusion.png`), `metrics.jsonl` (`run.metrics_log`)
Under the loop each model steps through the compiled program of its own config
(`program.Program`), so a run's numbers do not depend on the runs beside it.

Resume: a finished run is returned as is; each unfinished one restores its own latest
checkpoint. When they stand at different steps the loop starts at the lowest one and the
models that are ahead wait, inactive (carried bit-identically, no batch drawn, nothing logged or
checkpointed), until the loop reaches their step — each model sees the very same sequence of
steps as uninterrupted. A run directory holding another run is refused (`fingerprint`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from harjax import train, variants
from harjax.data import pipeline
from harjax.data.augment import AugmentConfig
from harjax.data.bundle import DataBundle, load_data
from harjax.data.normalization import compute_stats
from harjax.reporting.metrics import classification_metrics
from harjax.run import budget
from harjax.run import fingerprint as fingerprints
from harjax.run.checkpoint import BackboneMismatchError, RunCheckpointer
from harjax.run.compiled import StepCache
from harjax.run.environment import is_main_process
from harjax.run.metrics_log import MetricsLog
from harjax.run.program import group_key, make_program
from harjax.run.result import (
    base_fields,
    fitted_result,
    neural_result,
    read_result,
    write_json,
    write_result,
)
from harjax.run.validate import check_config
from harjax.run.warm_start import InitTrainable, start_from
from harjax.variants import assemble


def eval_subset(indices: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """A seeded subsample of at most `limit` windows (0 = all), to keep frequent evals cheap."""
    if not limit or len(indices) <= limit:
        return indices
    return np.sort(np.random.default_rng(seed).choice(indices, size=limit, replace=False))


@dataclasses.dataclass
class _Member:
    """One unfinished run of the loop: what it was given, and what its training holds."""

    config: ml_collections.ConfigDict
    directory: Path
    data: DataBundle
    train_indices: np.ndarray
    tags: Mapping[str, Any] | None
    init: InitTrainable | None
    expected: dict[str, Any]
    backbone: Any = None
    stats: Any = None
    assembled: Any = None
    initial: Any = None  # the trainable tree it starts from
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    batches: Any = None
    checkpointer: Any = None
    log: Any = None
    start: int = 0
    val_idx: np.ndarray | None = None
    base: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def state_rng(self) -> jax.Array:
        """The dropout key the run's train state starts from."""
        return jax.random.key_data(jax.random.key(int(self.config.seed) + 1))


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
        variant = variants.get(config.model.variant)
        if not variant.neural:
            stats = run_stats(data, train_idx, init_trainable)
            base = base_fields(config, data, train_idx, stats, init_trainable)
            start_run(workdir, config, expected, stats)
            return _fit(variant, config, workdir, data, train_idx, base, tags)
        member = _Member(config, workdir, data, train_idx, tags, init_trainable, expected, backbone)
        return _train([member], StepCache() if steps is None else steps, progress)[0]
    except BaseException:
        # A run that failed before writing anything leaves no empty directory behind.
        if workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()
        raise


def train_group(
    planned_runs: Sequence,
    *,
    backbones,
    progress: bool = True,
    overwrite: bool = False,
    steps: StepCache | None = None,
) -> list[dict[str, Any]]:
    """Trains the `PlannedRun`s of one program together; returns their results in order.

    `backbones` is a `BackboneCache` (or anything with `get(config)`); `steps` a shared
    `StepCache`. All runs must have one `group_key` (ValueError otherwise). Each run writes
    what it would write trained alone, in its own directory.
    """
    runs = list(planned_runs)
    keys = {group_key(run) for run in runs}
    if None in keys or len(keys) != 1:
        labels = [run.label for run in runs]
        raise ValueError(f"train_group: these runs cannot share one program: {labels}")
    results: list[dict[str, Any] | None] = [None] * len(runs)
    members, where = [], []
    for index, run in enumerate(runs):
        check_config(run.config)  # each run's one check, as in `train_and_evaluate`
        expected, finished = open_run(
            run.config, run.directory, run.data, run.train_indices, None, run.tags, overwrite
        )
        if finished is not None:
            results[index] = finished
            continue
        backbone = backbones.get(run.config)
        train_idx = np.asarray(
            run.data.split.train if run.train_indices is None else run.train_indices, np.int64
        )
        member = _Member(
            run.config, run.directory, run.data, train_idx, run.tags, None, expected, backbone
        )
        members.append(member)
        where.append(index)
    if members:
        trained = _train(members, StepCache() if steps is None else steps, progress)
        for index, result in zip(where, trained, strict=True):
            results[index] = result
    return results


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


def _assemble(member: _Member) -> None:
    """The member's model and initial trainable tree, seeded by `config.seed`."""
    config, data = member.config, member.data
    member.assembled = assemble.assemble(
        config,
        num_classes=len(data.class_names),
        num_channels=data.dataset.num_channels,
        rng=jax.random.key(int(config.seed)),
        backbone=member.backbone,
    )
    init = member.init
    if init is None:
        member.initial = member.assembled.trainable
        return
    if init.backbone_hash != member.assembled.backbone_hash:
        raise BackboneMismatchError(
            f"{member.directory}: init_trainable from {init.source or 'caller'} was trained "
            f"on a backbone with hash {init.backbone_hash}, this run's backbone "
            f"{member.assembled.backbone_spec!r} has hash {member.assembled.backbone_hash}"
        )
    member.initial = start_from(member.assembled.trainable, init)


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
        # The most models one compiled program trained this run with (checkpointed, so a run
        # resumed here keeps it): 1 since each model has its own program; more in runs that
        # trained in the former vmapped program of several models, whose bfloat16 rounding
        # shaped the run (docs/performance.md, Findings).
        "models_in_program": 1,
        "backbone_spec": assembled.backbone_spec,
        "backbone_hash": assembled.backbone_hash,
    }


def final_step(meta, num_steps: int) -> int:
    """The last step a run trained: where it stopped early, else its budget."""
    stopped = meta.get("stopped_step")
    return num_steps if stopped is None else int(stopped)


def start_run(workdir: Path, config, expected, stats) -> None:
    """The run's first writes, after every check passed: fingerprint, config, statistics."""
    fingerprints.record(workdir, expected)
    write_json(workdir / "config.json", config.to_dict())
    if is_main_process():
        stats.save(workdir / "stats.json")


def _prepare(members: list[_Member], program, train_config, progress: bool):
    """(stacked state, stacked best) after every member restored its latest checkpoint; each
    member's first writes (fingerprint, config, statistics) happen after its restore."""
    states = program.initial_states(members)
    # Copies: the step donates the state's buffers, which would otherwise delete `best` too.
    bests = [jax.tree.map(jnp.copy, m.initial) for m in members]
    for i, m in enumerate(members):
        config, data = m.config, m.data
        m.meta = initial_meta(m.assembled)
        m.batches = pipeline.train_batches(
            data.dataset,
            m.train_indices,
            batch_size=int(train_config.batch_size),
            seed=int(config.seed),
            stats=m.stats,
            label_key=data.label_key,
            sharding=program.batch_sharding(),
            augment=AugmentConfig.from_config(config.data.augment)
            if "augment" in config.data
            else None,
        )
        m.checkpointer = RunCheckpointer(m.directory)
        m.start = m.checkpointer.latest_step() or 0
        if m.start:  # restored (and shape-checked) before anything of this invocation is written
            states[i], bests[i], m.meta = m.checkpointer.restore(
                states[i], bests[i], backbone_hash=m.assembled.backbone_hash
            )
            m.batches.set_state(m.meta["iterator"])
        m.meta.setdefault("models_in_program", 1)  # one model per compiled program
        m.base = base_fields(config, data, m.train_indices, m.stats, m.init)
        start_run(m.directory, config, m.expected, m.stats)
        if progress and is_main_process():
            print(m.assembled.describe(), flush=True)
        m.log = MetricsLog(m.directory, resume_step=m.start)
        m.val_idx = eval_subset(
            data.split.val, int(train_config.max_eval_windows), int(config.seed)
        )
    return program.stack(states), program.stack(bests)


def _train(members: list[_Member], steps: StepCache, progress: bool) -> list[dict[str, Any]]:
    """The loop over M >= 1 members of one program (see the module docstring)."""
    first = members[0]
    run_config = budget.resolve(first.config, len(first.train_indices))  # as every other's
    train_config = run_config.train
    mesh = train.data_mesh()
    for m in members:
        m.stats = run_stats(m.data, m.train_indices, m.init)
        _assemble(m)
    program = make_program(members, steps, mesh)
    state, best = _prepare(members, program, train_config, progress)
    num_steps, eval_every = int(train_config.num_steps), int(train_config.eval_every)
    checkpoint_every, log_every = int(train_config.checkpoint_every), int(train_config.log_every)
    eval_batch_size = int(train_config.eval_batch_size)
    validating = any(len(m.val_idx) for m in members)
    metas = [m.meta for m in members]
    stopping = budget.early_stopping(train_config, metas)
    # Models that stopped early before a kill resume stopped; the others from their step.
    starts = np.asarray([m.start for m in members])
    start = min(
        (m.start for m, on in zip(members, stopping.active, strict=True) if on), default=num_steps
    )
    name = f"group of {len(members)}" if len(members) > 1 else first.directory.name
    bar = tqdm(
        range(start, num_steps),
        initial=start,
        total=num_steps,
        desc=f"{run_config.model.variant} {name}",
        disable=not progress or not is_main_process(),
        leave=False,
    )
    clock = time.perf_counter()
    for step in bar:
        if stopping.all_stopped:
            break
        active = (step >= starts) & stopping.active
        if not active.any():  # the ones that stopped wait for none: skip to the next resumed
            continue
        drawn = [next(m.batches) if on else None for m, on in zip(members, active, strict=True)]
        state, metrics = program.step(state, drawn, active)
        done = step + 1
        actives = [(i, m) for i, m in enumerate(members) if active[i]]
        if done % log_every == 0 or done == num_steps:
            scalars = program.host_metrics(metrics)
            for i, m in actives:
                m.log.write(done, "train", {key: value[i] for key, value in scalars.items()})
            bar.set_postfix(loss=f"{float(np.nanmean(scalars['loss'])):.3f}")
        newly = np.zeros(len(members), bool)
        if validating and (done % eval_every == 0 or done == num_steps):
            scored = program.predict(
                program.params(state), members, [m.val_idx for m in members], eval_batch_size
            )
            scores = np.zeros(len(members))
            for i, m in actives:
                labels, predictions = scored[i]
                scores[i] = classification_metrics(labels, predictions, m.data.class_names)[
                    "macro_f1"
                ]
                m.log.write(done, "val", {"macro_f1": float(scores[i])})
            improved, newly = budget.record_evaluation(stopping, metas, done, scores, active)
            best = program.keep_best(best, program.params(state), improved)
        regular = done % checkpoint_every == 0 or done == num_steps
        if regular or newly.any():
            # The program's wall time is shared equally by the models that trained in it.
            share = (time.perf_counter() - clock) / len(actives)
            clock = time.perf_counter()
            for i, m in actives:
                m.meta["train_seconds"] += share
                if not (regular or newly[i]):
                    continue
                m.meta["iterator"] = m.batches.get_state()
                m.checkpointer.save(
                    done, program.model_state(state, i), program.model_state(best, i), m.meta
                )
    bar.close()
    for m in members:
        m.checkpointer.close()
    if not validating:  # no validation subjects: the last state is the result
        best = program.params(state)
    tested = program.predict(best, members, [m.data.split.test for m in members], eval_batch_size)
    results = []
    for m, (labels, predictions) in zip(members, tested, strict=True):
        test = classification_metrics(labels, predictions, m.data.class_names)
        m.log.write(
            final_step(m.meta, num_steps),
            "test",
            {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]},
        )
        m.log.close()
        result = neural_result(m.base, m.assembled, test, m.meta, num_steps, m.tags)
        results.append(write_result(m.directory, result))
    return results


def _fit(variant, config, workdir, data, train_idx, base, tags) -> dict[str, Any]:
    """A baseline that is not a network (`Variant.fit`): one fit on the raw training windows,
    scored like every run, on the test and (to choose its setting) the validation subjects."""
    clock = time.perf_counter()
    signals, labels = pipeline.load_arrays(data.dataset, train_idx, None, data.label_key)
    model = variant.fit(config, data.dataset.channel_names, signals, labels)
    seconds = time.perf_counter() - clock

    def score(indices):
        signals, labels = pipeline.load_arrays(data.dataset, indices, None, data.label_key)
        return classification_metrics(labels, model.predict(signals), data.class_names)

    test = score(data.split.test)
    val_macro_f1 = score(data.split.val)["macro_f1"] if len(data.split.val) else None
    result = fitted_result(base, model, test, val_macro_f1, seconds, tags)
    return write_result(Path(workdir), result)
