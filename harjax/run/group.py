"""Several planned runs that share one program, trained as one batched program.

`train_group(planned_runs, backbones=...)` trains runs that differ only in seed, learning rate,
k-shot windows and frozen weights (pretrained vs random backbones) with `harjax.batched`: one
compiled step for M models on a leading model axis. Per model, exactly as the sequential loop
(`harjax.run.loop`) would train it alone:
  batches         its own `pipeline.train_batches` iterator (its windows, its seed, its stats)
  learning rate   `config.optim.learning_rate`, optimizer state on the model axis
  dropout key     from its seed, folded with its own step
  validation      its own windows (`eval_subset` by its seed, its normalisation), every
                  `eval_every` steps; a strictly better macro-F1 replaces its best tree
  early stopping  `budget.early_stopping` (`batched.EarlyStopping`, the sequential loop's rule):
                  a model that stops turns inactive, keeps its best tree and writes its last
                  checkpoint; the group ends when every model stopped or the budget is spent.
The step budget and eval spacing (`harjax.run.budget.resolve`: an epochs budget depends on the
number of training windows) are in `group_key`, so every model of a group has the same
`num_steps`, `eval_every` and schedule length.

Each run writes what the sequential loop writes in its own directory (fingerprint.json,
config.json, stats.json, metrics.jsonl, checkpoints, confusion.png, metrics.json), and its
checkpoints have the sequential loop's layout (the optimizer's inner state, without the
per-model hyperparameters), so a run can resume in either loop.

Resume: finished runs are skipped (their result is read back); each unfinished run restores
its own latest checkpoint. When they stand at different steps the group starts at the lowest
one and the models that are ahead wait, inactive (`active` mask: carried bit-identically, no
batch drawn, nothing logged or checkpointed), until the group reaches their step — each model
sees the very same sequence of steps as uninterrupted.

Single-process only (batches are stacked on the host); `Sweep` trains runs sequentially on a
multi-process job.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from harjax import batched, train
from harjax.data import pipeline
from harjax.reporting.metrics import classification_metrics
from harjax.run import budget
from harjax.run.checkpoint import RunCheckpointer
from harjax.run.compiled import StepCache
from harjax.run.loop import (
    assemble_run,
    base_fields,
    eval_subset,
    final_step,
    initial_meta,
    neural_result,
    open_run,
    run_stats,
    start_run,
    state_rng,
)
from harjax.run.metrics_log import MetricsLog
from harjax.run.result import write_result
from harjax.run.validate import check_config

# Variants whose runs can share a program; 'random' shares with 'pretrained' (same shapes,
# other frozen values: the frozen trees are then stacked on the model axis).
_SAME_PROGRAM = {
    "pretrained": "pretrained",
    "random": "pretrained",
    "shuffled": "pretrained",
    "none": "none",
    "scratch": "scratch",
}


def group_key(run) -> str | None:
    """Runs with equal keys can train as one program; None: the run trains alone.

    The key is the whole `budget.resolve`d config (resolved `train.num_steps` and
    `train.eval_every`: runs of an epochs budget with different numbers of windows train apart)
    except what may differ per model (seed, learning rate, `models_per_program`), pretrained
    and random spelled alike, and the data bundle. The LoRA learning rate stays in the key (one
    per program). The k-shot windows are not in the config. Classical runs and runs from a given
    tree are None.
    """
    config = run.config
    if config.model.variant not in _SAME_PROGRAM or run.init is not None:
        return None
    fields = budget.resolve(config, _num_windows(run)).to_dict()
    fields.pop("seed", None)
    fields["optim"].pop("learning_rate", None)
    fields["train"].pop("models_per_program", None)
    fields["model"]["variant"] = _SAME_PROGRAM[config.model.variant]
    return json.dumps({"config": fields, "data": id(run.data)}, sort_keys=True, default=str)


def _num_windows(run) -> int:
    return len(run.data.split.train if run.train_indices is None else run.train_indices)


@dataclasses.dataclass
class _Member:
    """One unfinished run of the group and what its training needs beside the batched state."""

    run: Any
    expected: dict[str, Any]
    stats: Any = None
    assembled: Any = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    batches: Any = None
    checkpointer: Any = None
    log: Any = None
    start: int = 0
    val_idx: np.ndarray | None = None
    base: dict[str, Any] = dataclasses.field(default_factory=dict)


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
    `StepCache`. All runs must have one `group_key` (ValueError otherwise).
    """
    runs = list(planned_runs)
    keys = {group_key(run) for run in runs}
    if None in keys or len(keys) != 1:
        labels = [run.label for run in runs]
        raise ValueError(f"train_group: these runs cannot share one program: {labels}")
    results: list[dict[str, Any] | None] = [None] * len(runs)
    members, where = [], []
    for index, run in enumerate(runs):
        check_config(run.config)  # each run's one check, as in `loop.train_and_evaluate`
        expected, finished = open_run(
            run.config, run.directory, run.data, run.train_indices, None, run.tags, overwrite
        )
        if finished is not None:
            results[index] = finished
        else:
            members.append(_Member(run, expected))
            where.append(index)
    if members:
        trained = _train(members, backbones, progress, StepCache() if steps is None else steps)
        for index, result in zip(where, trained, strict=True):
            results[index] = result
    return results


def _sequential_form(state: train.TrainState) -> train.TrainState:
    """A model's batched state as the sequential loop checkpoints it (inner optimizer state)."""
    return state.replace(opt_state=state.opt_state.inner_state)


def _batched_form(restored: train.TrainState, template: train.TrainState) -> train.TrainState:
    """A restored sequential-form state back in `template`'s (inject_hyperparams) form."""
    opt_state = template.opt_state
    count = np.asarray(restored.step, np.asarray(opt_state.count).dtype)
    return restored.replace(
        opt_state=opt_state._replace(count=count, inner_state=restored.opt_state)
    )


def _host_batch(batches: Sequence[dict[str, np.ndarray]], keys=("signal", "label")) -> dict:
    return {key: np.stack([batch[key] for batch in batches]) for key in keys}


def predict_group(eval_step, trainables, frozen, members, indices, batch_size, mesh):
    """[(labels, predictions)] per model: model i on `indices[i]` with its own statistics."""
    streams = [
        pipeline.eval_batches(
            m.run.data.dataset,
            idx,
            batch_size=batch_size,
            stats=m.stats,
            label_key=m.run.data.label_key,
        )
        for m, idx in zip(members, indices, strict=True)
    ]
    labels = [[] for _ in members]
    predictions = [[] for _ in members]
    sharding = batched.model_batch_sharding(mesh)
    for group in zip(*streams, strict=True):
        out = eval_step(trainables, frozen, jax.device_put(_host_batch(group), sharding))
        predicted = np.asarray(jax.device_get(out["prediction"]))
        for i, batch in enumerate(group):
            mask = batch["mask"] > 0
            labels[i].append(batch["label"][mask])
            predictions[i].append(predicted[i][mask])
    empty = np.zeros(0, np.int64)
    return [
        (np.concatenate(ls), np.concatenate(ps)) if ls else (empty, empty)
        for ls, ps in zip(labels, predictions, strict=True)
    ]


def _train(members: list[_Member], backbones, progress: bool, steps: StepCache):
    first = budget.resolve(members[0].run.config, _num_windows(members[0].run))  # as all others
    data0 = members[0].run.data
    mesh = train.data_mesh()
    rep = train.replicated(mesh)
    for m in members:
        m.stats = run_stats(m.run.data, m.run.train_indices, None)
        m.assembled, _ = assemble_run(
            m.run.config, m.run.data, backbones.get(m.run.config), None, m.run.directory
        )
    assembled0 = members[0].assembled
    stacked_frozen = len({m.assembled.backbone_hash for m in members}) > 1
    compiled = steps.get_batched(
        first,
        assembled0,
        len(data0.class_names),
        data0.dataset.num_channels,
        mesh,
        num_models=len(members),
        stacked_frozen=stacked_frozen,
    )
    if stacked_frozen:
        frozen = batched.stack_trees([m.assembled.frozen for m in members], what="frozen tree")
    else:
        frozen = assembled0.frozen
    frozen = jax.device_put(frozen, rep)
    state = batched.create_batched_train_state(
        [state_rng(m.run.config) for m in members],
        [m.assembled.trainable for m in members],
        compiled.optimizer,
        [float(m.run.config.optim.learning_rate) for m in members],
        mesh=mesh,
    )
    states = [batched.unstack_tree(state, i) for i in range(len(members))]
    bests = [jax.tree.map(jnp.copy, s.params) for s in states]
    train_config = first.train
    for i, m in enumerate(members):
        config, data = m.run.config, m.run.data
        m.meta = initial_meta(m.assembled)
        m.batches = pipeline.train_batches(
            data.dataset,
            m.run.train_indices,
            batch_size=int(train_config.batch_size),
            seed=int(config.seed),
            stats=m.stats,
            label_key=data.label_key,
        )
        m.checkpointer = RunCheckpointer(m.run.directory)
        m.start = m.checkpointer.latest_step() or 0
        if m.start:  # restored (and shape-checked) before anything of this invocation is written
            restored, bests[i], m.meta = m.checkpointer.restore(
                _sequential_form(states[i]), bests[i], backbone_hash=m.assembled.backbone_hash
            )
            states[i] = _batched_form(restored, states[i])
            m.batches.set_state(m.meta["iterator"])
        m.meta["models_in_program"] = max(int(m.meta.get("models_in_program", 1)), len(members))
        m.base = base_fields(config, data, m.run.train_indices, m.stats, None)
        start_run(m.run.directory, config, m.expected, m.stats)
        if progress:
            print(m.assembled.describe(), flush=True)
        m.log = MetricsLog(m.run.directory, resume_step=m.start)
        m.val_idx = eval_subset(
            data.split.val, int(train_config.max_eval_windows), int(config.seed)
        )
    state = jax.device_put(batched.stack_trees(states, what="train state"), rep)
    best = jax.device_put(batched.stack_trees(bests, what="best tree"), rep)
    del states, bests
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
    bar = tqdm(
        range(start, num_steps),
        initial=start,
        total=num_steps,
        desc=f"{first.model.variant} group of {len(members)}",
        disable=not progress,
        leave=False,
    )
    sharding = batched.model_batch_sharding(mesh)
    clock = time.perf_counter()
    for step in bar:
        if stopping.all_stopped:
            break
        active = (step >= starts) & stopping.active
        if not active.any():  # the ones that stopped wait for none: skip to the next resumed
            continue
        drawn = [next(m.batches) if on else None for m, on in zip(members, active, strict=True)]
        filler = next(batch for batch in drawn if batch is not None)
        drawn = [filler if batch is None else batch for batch in drawn]
        batch = jax.device_put(_host_batch(drawn), sharding)
        state, metrics = compiled.train_step(state, frozen, batch, jnp.asarray(active))
        done = step + 1
        actives = [(i, m) for i, m in enumerate(members) if active[i]]
        if done % log_every == 0 or done == num_steps:
            scalars = jax.device_get(metrics)
            for i, m in actives:
                m.log.write(done, "train", {key: value[i] for key, value in scalars.items()})
            bar.set_postfix(loss=f"{float(np.mean(scalars['loss'])):.3f}")
        if validating and (done % eval_every == 0 or done == num_steps):
            scored = predict_group(
                compiled.eval_step,
                state.params,
                frozen,
                members,
                [m.val_idx for m in members],
                eval_batch_size,
                mesh,
            )
            scores = np.zeros(len(members))
            for i, m in actives:
                labels, predictions = scored[i]
                scores[i] = classification_metrics(labels, predictions, m.run.data.class_names)[
                    "macro_f1"
                ]
                m.log.write(done, "val", {"macro_f1": float(scores[i])})
            improved, newly = budget.record_evaluation(stopping, metas, done, scores, active)
            if improved.any():
                best = batched.keep_best(best, state.params, jnp.asarray(improved))
        else:
            newly = np.zeros(len(members), bool)
        regular = done % checkpoint_every == 0 or done == num_steps
        if regular or newly.any():
            # The group's wall time is shared equally by the models that trained in it.
            share = (time.perf_counter() - clock) / len(actives)
            clock = time.perf_counter()
            for i, m in actives:
                m.meta["train_seconds"] += share
                if not (regular or newly[i]):
                    continue
                m.meta["iterator"] = m.batches.get_state()
                m.checkpointer.save(
                    done,
                    _sequential_form(batched.unstack_tree(state, i)),
                    batched.unstack_tree(best, i),
                    m.meta,
                )
    bar.close()
    for m in members:
        m.checkpointer.close()
    if not validating:  # no validation subjects: the last state is the result
        best = state.params
    tested = predict_group(
        compiled.eval_step,
        best,
        frozen,
        members,
        [m.run.data.split.test for m in members],
        eval_batch_size,
        mesh,
    )
    results = []
    for m, (labels, predictions) in zip(members, tested, strict=True):
        test = classification_metrics(labels, predictions, m.run.data.class_names)
        m.log.write(
            final_step(m.meta, num_steps),
            "test",
            {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]},
        )
        m.log.close()
        result = neural_result(m.base, m.assembled, test, m.meta, num_steps, m.run.tags)
        results.append(write_result(m.run.directory, result))
    return results
