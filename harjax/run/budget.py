"""A run's training budget: how many steps, how often to validate, when to stop early.

Fair comparisons between variants and k-shot sizes need each run trained to convergence, not a
fixed step count that is too long for k = 1 and too short for k = all. Three config fields,
all off by default (then a run takes `train.num_steps` steps, as before they existed):

  train.epochs           > 0: the budget is `ceil(epochs * num_train_windows / batch_size)`
                         steps, clipped to [train.min_steps, train.num_steps] (num_steps is the
                         maximum). The LR schedule spans the resolved count.
  train.evals_per_epoch  > 0: validate at least that often per epoch of this run's windows:
                         eval_every = max(1, min(train.eval_every, steps_per_epoch //
                         evals_per_epoch)), steps_per_epoch = ceil(windows / batch_size).
  train.patience         > 0: stop after that many evaluations without a strictly better
                         validation macro-F1, never before train.min_steps
                         (`EarlyStopping` below, per model of the run loop).

`resolve(config, num_train_windows)` returns a copy of the config whose `train.num_steps` and
`train.eval_every` are the resolved values; the run loop trains from that copy (the optimizer,
the compiled-step cache key and `program.group_key` all read it), while the user's config is
what is fingerprinted and written to `config.json`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import ml_collections
import numpy as np


def _field(train_config, name: str, default: Any = 0) -> Any:
    return train_config.get(name, default)


def resolved_num_steps(train_config, num_train_windows: int) -> int:
    """The run's step budget (see the module docstring)."""
    num_steps, epochs = int(train_config.num_steps), float(_field(train_config, "epochs"))
    if epochs <= 0:
        return num_steps
    wanted = math.ceil(epochs * num_train_windows / int(train_config.batch_size))
    return min(max(wanted, int(_field(train_config, "min_steps"))), num_steps)


def resolved_eval_every(train_config, num_train_windows: int) -> int:
    """Steps between validations (see the module docstring)."""
    eval_every, per_epoch = (
        int(train_config.eval_every),
        int(_field(train_config, "evals_per_epoch")),
    )
    if per_epoch <= 0:
        return eval_every
    steps_per_epoch = math.ceil(num_train_windows / int(train_config.batch_size))
    return max(1, min(eval_every, steps_per_epoch // per_epoch))


def resolve(config: ml_collections.ConfigDict, num_train_windows: int) -> ml_collections.ConfigDict:
    """A copy of `config` with the resolved `train.num_steps` and `train.eval_every`."""
    resolved = ml_collections.ConfigDict(config.to_dict())
    num_steps = resolved_num_steps(config.train, num_train_windows)
    eval_every = resolved_eval_every(config.train, num_train_windows)
    resolved.train.num_steps, resolved.train.eval_every = num_steps, eval_every
    return resolved


# ----------------------------------------------------------------------------- early stopping
# The checkpoint meta of a run carries its early-stopping state ('best_score', 'best_step',
# 'evals_since_improvement', 'stopped_step'), so a resumed run continues the same count.


@dataclasses.dataclass
class EarlyStopping:
    """Per-model early stopping on validation macro-F1, host-side (M models of one loop).

    A strictly higher score replaces the best (ties do not). After `patience` evaluations without
    improvement a model stops, but never before `min_steps`; `patience` 0 never stops early.
    """

    patience: np.ndarray  # (M,) int, counted in evaluations
    min_steps: np.ndarray  # (M,) int
    best_score: np.ndarray  # (M,) float, -inf before the first evaluation
    best_step: np.ndarray  # (M,) int, 0 before the first improvement
    evals_since_improvement: np.ndarray  # (M,) int
    stopped: np.ndarray  # (M,) bool

    @classmethod
    def create(cls, num_models: int, *, patience=0, min_steps=0) -> EarlyStopping:
        shape = (num_models,)
        return cls(
            patience=np.broadcast_to(np.asarray(patience, np.int64), shape).copy(),
            min_steps=np.broadcast_to(np.asarray(min_steps, np.int64), shape).copy(),
            best_score=np.full(shape, -np.inf),
            best_step=np.zeros(shape, np.int64),
            evals_since_improvement=np.zeros(shape, np.int64),
            stopped=np.zeros(shape, bool),
        )

    @property
    def active(self) -> np.ndarray:
        return ~self.stopped

    @property
    def all_stopped(self) -> bool:
        return bool(self.stopped.all())

    def update(self, step: int, scores) -> np.ndarray:
        """Records one evaluation at `step`; returns the (M,) mask of models that improved.

        Stopped models ignore their score (they no longer train, so it cannot change).
        """
        scores = np.asarray(scores, np.float64)
        if scores.shape != self.best_score.shape:
            raise ValueError(f"expected {self.best_score.shape} scores, found {scores.shape}")
        improved = self.active & (scores > self.best_score)
        self.best_score = np.where(improved, scores, self.best_score)
        self.best_step = np.where(improved, step, self.best_step)
        counted = self.active & ~improved
        self.evals_since_improvement = np.where(improved, 0, self.evals_since_improvement + counted)
        self.stopped |= (
            (self.patience > 0)
            & (self.evals_since_improvement >= self.patience)
            & (step >= self.min_steps)
        )
        return improved


def early_stopping(train_config, metas: list[dict[str, Any]]) -> EarlyStopping:
    """The `EarlyStopping` of runs with checkpoint metas `metas` (fresh or restored)."""
    stopping = EarlyStopping.create(
        len(metas),
        patience=int(_field(train_config, "patience")),
        min_steps=int(_field(train_config, "min_steps")),
    )
    # A fresh meta's best_score is -1.0 (below any macro-F1), as good as -inf.
    stopping.best_score = np.asarray([float(m["best_score"]) for m in metas])
    stopping.best_step = np.asarray([int(m["best_step"]) for m in metas], np.int64)
    stopping.evals_since_improvement = np.asarray(
        [int(m.get("evals_since_improvement", 0)) for m in metas], np.int64
    )
    stopping.stopped = np.asarray([m.get("stopped_step") is not None for m in metas], bool)
    return stopping


def record_evaluation(
    stopping: EarlyStopping, metas: list[dict[str, Any]], step: int, scores, scored
) -> tuple[np.ndarray, np.ndarray]:
    """One validation at `step`: updates `stopping` and the metas of the `scored` (M,) models.

    Returns (improved, newly stopped) masks. Models not scored (stopped, or waiting for the
    group to reach their resumed step) are left untouched.
    """
    scored = np.asarray(scored, bool)
    was_stopped = stopping.stopped.copy()
    # Unscored models are marked stopped for the update so their counters do not move.
    stopping.stopped = was_stopped | ~scored
    improved = stopping.update(step, np.where(scored, scores, -np.inf))
    newly = stopping.stopped & ~was_stopped & scored
    stopping.stopped = was_stopped | newly
    for i, meta in enumerate(metas):
        if not scored[i]:
            continue
        meta["curve"].append([step, float(scores[i])])
        meta["best_score"] = float(stopping.best_score[i])
        meta["best_step"] = int(stopping.best_step[i])
        meta["evals_since_improvement"] = int(stopping.evals_since_improvement[i])
        if newly[i]:
            meta["stopped_step"] = step
    return improved, newly
