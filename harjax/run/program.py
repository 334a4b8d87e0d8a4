"""The compiled programs the run loop trains M >= 1 models with, and which runs can share a loop.

The run loop (`harjax.run.loop`) is one loop over M models. Each model steps through the
compiled program of its own configuration (`StepCache.get`: `train.make_train_step` and
`train.make_eval_step`, the programs a run trained alone compiles), on its own batches sharded
over the mesh by the data pipeline, one model after another. Runs of one `group_key` whose
configs compile the same program share it (a sweep's seeds, k-shot draws, frozen weights: the
learning rate is a constant of the program, so each rate compiles once per structure).

Why not one vmapped program of M models (`harjax.batched`): XLA compiles the vmapped step
into other kernels than the one-model step (batched matmuls, reductions over the stacked axis,
other fusions), whose rounding differs from it and from M to M. In bfloat16 training amplified
that into different runs (one run: test macro-F1 0.72 alone, 0.87 beside one other model), and
in float32 parameters differed by ~1e-7 (docs/performance.md, Findings). Here a run's numbers
are a function of its own configuration: the same run alone or beside any others gives the
same bits, in every dtype (tests/run/test_program_numerics.py). The cost is the vmapped
program's speed-up: on a 2-core CPU none in float32, ~1.2x in bfloat16
(bench/batched_throughput.py; more on an accelerator, unmeasured).

The program answers the loop's questions: where batches go (`batch_sharding`), the initial
states and collecting them (`initial_states`, `stack`), one step of the active models (`step`,
`host_metrics`), each model's trainable tree (`params`), predictions of each model on its
windows (`predict`), keeping the improved models' trees (`keep_best`) and each model's state as
checkpoints hold it (`model_state`: the one-model layout), so a run resumes in any group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from harjax import train, variants
from harjax.data import pipeline
from harjax.run import budget
from harjax.run.compiled import StepCache


def group_key(run) -> str | None:
    """Runs with equal keys can train in one loop; None: the run trains alone.

    The key is the whole `budget.resolve`d config (resolved `train.num_steps` and
    `train.eval_every`: runs of an epochs budget with different numbers of windows train apart)
    except what may differ per model (seed, learning rate, `models_per_program`), the variant
    spelled as its `Variant.program` (pretrained and its controls alike: other frozen values),
    and the data bundle. The LoRA learning rate stays in the key. The k-shot windows are not in
    the config. Runs of a variant without a program (classical) and runs from a given tree are
    None.
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


class Program:
    """M >= 1 models, each with the compiled steps of its own config; states held per model."""

    def __init__(self, members, steps: StepCache, mesh):
        self.mesh = mesh
        self.compiled = []
        for member in members:
            data = member.data
            config = budget.resolve(member.config, len(member.train_indices))
            self.compiled.append(
                steps.get(
                    config, member.assembled, len(data.class_names), data.dataset.num_channels, mesh
                )
            )
        # One device copy per backbone: models on the same frozen weights share it.
        placed: dict[str, Any] = {}
        for member in members:
            if member.assembled.backbone_hash not in placed:
                placed[member.assembled.backbone_hash] = jax.device_put(
                    member.assembled.frozen, train.replicated(mesh)
                )
        self.frozen = [placed[m.assembled.backbone_hash] for m in members]

    def batch_sharding(self):
        return train.batch_sharding(self.mesh)

    def initial_states(self, members) -> list[train.TrainState]:
        return [
            train.create_train_state(m.state_rng, m.initial, compiled.optimizer, mesh=self.mesh)
            for m, compiled in zip(members, self.compiled, strict=True)
        ]

    def stack(self, states: Sequence[Any]) -> list[Any]:
        """Per-model states or trees, placed on the mesh (replicated), kept per model."""
        return [jax.device_put(state, train.replicated(self.mesh)) for state in states]

    def model_state(self, states, index: int):
        return states[index]

    def params(self, states) -> list[Any]:
        return [state.params for state in states]

    def step(self, states, drawn, active) -> tuple[list[Any], list[Any]]:
        """One step of each active model in its own program; inactive models are untouched."""
        states, metrics = list(states), [None] * len(states)
        for i, on in enumerate(active):
            if on:
                states[i], metrics[i] = self.compiled[i].train_step(
                    states[i], self.frozen[i], drawn[i]
                )
        return states, metrics

    def host_metrics(self, metrics) -> dict[str, np.ndarray]:
        """{name: (M,)} on the host; NaN for the models that did not step."""
        hosts = [None if m is None else jax.device_get(m) for m in metrics]
        names = next(host for host in hosts if host is not None)
        return {
            name: np.asarray([np.nan if host is None else float(host[name]) for host in hosts])
            for name in names
        }

    def keep_best(self, best, params, improved: np.ndarray) -> list[Any]:
        # Copies: the step donates the state's buffers, which would otherwise delete `best` too.
        return [
            jax.tree.map(jnp.copy, current) if better else old
            for old, current, better in zip(best, params, improved, strict=True)
        ]

    def predict(self, trainables, members, indices, batch_size: int):
        """[(labels, predictions)] per model: model i on `indices[i]`, padded rows masked out."""
        return [
            self._predict_one(i, trainable, member, idx, batch_size)
            for i, (trainable, member, idx) in enumerate(
                zip(trainables, members, indices, strict=True)
            )
        ]

    def _predict_one(self, index, trainable, member, indices, batch_size: int):
        labels, predictions = [], []
        for batch in pipeline.eval_batches(
            member.data.dataset,
            indices,
            batch_size=batch_size,
            stats=member.stats,
            label_key=member.data.label_key,
            sharding=train.batch_sharding(self.mesh),
        ):
            out = self.compiled[index].eval_step(trainable, self.frozen[index], batch)
            mask = _gather(batch["mask"]) > 0
            labels.append(_gather(batch["label"])[mask])
            predictions.append(_gather(out["prediction"])[mask])
        return _concatenated(labels, predictions)


def make_program(members, steps: StepCache, mesh) -> Program:
    """The program for these members (see the module docstring)."""
    return Program(members, steps, mesh)
