"""The compiled program the run loop trains M >= 1 models with, and which runs can share one.

The run loop (`harjax.run.loop`) is one loop over M models; what differs with M is only the
program under it:

  M = 1   `Single`: `train.make_train_step`, the batch sharded over the mesh by the data
          pipeline (every process its rows: multi-process jobs run here), the state as is.
  M > 1   `Batched`: `harjax.batched`'s vmapped step, each model's batch stacked on a leading
          model axis, per-model learning rates in the optimizer state, a stopped or waiting
          model carried bit-identically (`active`). Single-process: the model batches are
          stacked on the host, and no test shows a multi-process job doing it (`Sweep` gives
          such jobs groups of one).

Both answer the loop's questions the same way: where batches go (`batch_sharding`), the
initial states and stacking them (`initial_states`, `stack`), one step of the active models
(`step`, `host_metrics`), predictions of each model on its windows (`predict`), keeping the
improved models' trees (`keep_best`), and each model's state in the form the M = 1 program
keeps it (`model_state`), which is what checkpoints hold, so a run resumes under either program.
In float32 both give the same numbers; in bfloat16 a program's rounding depends on M
(docs/performance.md, Findings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from harjax import batched, train, variants
from harjax.data import pipeline
from harjax.run import budget
from harjax.run.compiled import StepCache


def group_key(run) -> str | None:
    """Runs with equal keys can train as one program; None: the run trains alone.

    The key is the whole `budget.resolve`d config (resolved `train.num_steps` and
    `train.eval_every`: runs of an epochs budget with different numbers of windows train apart)
    except what may differ per model (seed, learning rate, `models_per_program`), the variant
    spelled as its `Variant.program` (pretrained and its controls alike: other frozen values,
    stacked on the model axis), and the data bundle. The LoRA learning rate stays in the key
    (one per program). The k-shot windows are not in the config. Runs of a variant without a
    program (classical) and runs from a given tree are None.
    """
    config = run.config
    program = variants.get(config.model.variant).program
    if program is None or run.init is not None:
        return None
    fields = budget.resolve(config, num_windows(run)).to_dict()
    fields.pop("seed", None)
    fields["optim"].pop("learning_rate", None)
    fields["train"].pop("models_per_program", None)
    fields["model"]["variant"] = program
    return json.dumps({"config": fields, "data": id(run.data)}, sort_keys=True, default=str)


def num_windows(run) -> int:
    return len(run.data.split.train if run.train_indices is None else run.train_indices)


def _gather(x: jax.Array) -> np.ndarray:
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def _concatenated(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(labels), np.concatenate(predictions)


class Single:
    """One model: the sequential step; its state, best tree and batches live on the mesh."""

    def __init__(self, run_config, members, steps: StepCache, mesh):
        member = members[0]
        data = member.data
        self.mesh = mesh
        self.compiled = steps.get(
            run_config, member.assembled, len(data.class_names), data.dataset.num_channels, mesh
        )
        self.frozen = jax.device_put(member.assembled.frozen, train.replicated(mesh))

    def batch_sharding(self):
        return train.batch_sharding(self.mesh)

    def initial_states(self, members) -> list[train.TrainState]:
        member = members[0]
        return [train.create_train_state(member.state_rng, member.initial, self.compiled.optimizer)]

    def stack(self, states: Sequence[Any]) -> Any:
        return jax.device_put(states[0], train.replicated(self.mesh))

    def model_state(self, stacked, index: int):
        return stacked

    def step(self, state, drawn, active):
        return self.compiled.train_step(state, self.frozen, drawn[0])

    def host_metrics(self, metrics) -> dict[str, np.ndarray]:
        return {key: np.asarray(value)[None] for key, value in jax.device_get(metrics).items()}

    def keep_best(self, best, params, improved: np.ndarray):
        # A copy: the step donates the state's buffers, which would otherwise delete `best` too.
        return jax.tree.map(jnp.copy, params) if improved[0] else best

    def predict(self, trainables, members, indices, batch_size: int):
        """[(labels, predictions)] of the model on `indices[0]`, padded batches masked out."""
        member = members[0]
        labels, predictions = [], []
        for batch in pipeline.eval_batches(
            member.data.dataset,
            indices[0],
            batch_size=batch_size,
            stats=member.stats,
            label_key=member.data.label_key,
            sharding=train.batch_sharding(self.mesh),
        ):
            out = self.compiled.eval_step(trainables, self.frozen, batch)
            mask = _gather(batch["mask"]) > 0
            labels.append(_gather(batch["label"])[mask])
            predictions.append(_gather(out["prediction"])[mask])
        return [_concatenated(labels, predictions)]


def _sequential_form(state: train.TrainState) -> train.TrainState:
    """A model's batched state as the M = 1 program keeps it (the optimizer's inner state)."""
    return state.replace(opt_state=state.opt_state.inner_state)


def _batched_form(restored: train.TrainState, template: train.TrainState) -> train.TrainState:
    """A sequential-form state back in `template`'s (inject_hyperparams) form."""
    opt_state = template.opt_state
    count = np.asarray(restored.step, np.asarray(opt_state.count).dtype)
    return restored.replace(
        opt_state=opt_state._replace(count=count, inner_state=restored.opt_state)
    )


def _host_batch(batches: Sequence[dict[str, np.ndarray]], keys=("signal", "label")) -> dict:
    return {key: np.stack([batch[key] for batch in batches]) for key in keys}


class Batched:
    """M models of one `group_key` in one vmapped program (`harjax.batched`)."""

    def __init__(self, run_config, members, steps: StepCache, mesh):
        first = members[0]
        data = first.data
        self.mesh = mesh
        stacked_frozen = len({m.assembled.backbone_hash for m in members}) > 1
        self.compiled = steps.get_batched(
            run_config,
            first.assembled,
            len(data.class_names),
            data.dataset.num_channels,
            mesh,
            num_models=len(members),
            stacked_frozen=stacked_frozen,
        )
        if stacked_frozen:
            frozen = batched.stack_trees([m.assembled.frozen for m in members], what="frozen tree")
        else:
            frozen = first.assembled.frozen
        self.frozen = jax.device_put(frozen, train.replicated(mesh))
        self._templates: list[train.TrainState] = []

    def batch_sharding(self):
        return None  # host batches, stacked per step

    def initial_states(self, members) -> list[train.TrainState]:
        state = batched.create_batched_train_state(
            [m.state_rng for m in members],
            [m.initial for m in members],
            self.compiled.optimizer,
            [float(m.config.optim.learning_rate) for m in members],
            mesh=self.mesh,
        )
        self._templates = [batched.unstack_tree(state, i) for i in range(len(members))]
        return [_sequential_form(template) for template in self._templates]

    def stack(self, states: Sequence[Any]) -> Any:
        """Per-model states (sequential form) or trees, stacked on the model axis."""
        if isinstance(states[0], train.TrainState):
            states = [_batched_form(s, t) for s, t in zip(states, self._templates, strict=True)]
        stacked = batched.stack_trees(list(states), what="model state")
        return jax.device_put(stacked, train.replicated(self.mesh))

    def model_state(self, stacked, index: int):
        model = batched.unstack_tree(stacked, index)
        return _sequential_form(model) if isinstance(model, train.TrainState) else model

    def step(self, state, drawn, active):
        filler = next(batch for batch in drawn if batch is not None)
        drawn = [filler if batch is None else batch for batch in drawn]
        batch = jax.device_put(_host_batch(drawn), batched.model_batch_sharding(self.mesh))
        return self.compiled.train_step(state, self.frozen, batch, jnp.asarray(active))

    def host_metrics(self, metrics) -> dict[str, np.ndarray]:
        return {key: np.asarray(value) for key, value in jax.device_get(metrics).items()}

    def keep_best(self, best, params, improved: np.ndarray):
        return batched.keep_best(best, params, jnp.asarray(improved)) if improved.any() else best

    def predict(self, trainables, members, indices, batch_size: int):
        """[(labels, predictions)] per model: model i on `indices[i]` with its own statistics."""
        streams = [
            pipeline.eval_batches(
                m.data.dataset,
                idx,
                batch_size=batch_size,
                stats=m.stats,
                label_key=m.data.label_key,
            )
            for m, idx in zip(members, indices, strict=True)
        ]
        labels = [[] for _ in members]
        predictions = [[] for _ in members]
        sharding = batched.model_batch_sharding(self.mesh)
        for group in zip(*streams, strict=True):
            batch = jax.device_put(_host_batch(group), sharding)
            predicted = np.asarray(
                jax.device_get(
                    self.compiled.eval_step(trainables, self.frozen, batch)["prediction"]
                )
            )
            for i, host in enumerate(group):
                mask = host["mask"] > 0
                labels[i].append(host["label"][mask])
                predictions[i].append(predicted[i][mask])
        return [_concatenated(ls, ps) for ls, ps in zip(labels, predictions, strict=True)]


def make_program(run_config, members, steps: StepCache, mesh) -> Single | Batched:
    """The program for these members (see the module docstring)."""
    kind = Single if len(members) == 1 else Batched
    return kind(run_config, members, steps, mesh)
