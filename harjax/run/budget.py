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
                         (`harjax.batched.EarlyStopping`, the one rule for both loops).

`resolve(config, num_train_windows)` returns a copy of the config whose `train.num_steps` and
`train.eval_every` are the resolved values; both loops train from that copy (the optimizer,
the compiled-step cache key and `group_key` all read it), while the user's config is what is
fingerprinted and written to `config.json`.
"""

from __future__ import annotations

import math
from typing import Any

import ml_collections
import numpy as np

from harjax import batched


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


def early_stopping(train_config, metas: list[dict[str, Any]]) -> batched.EarlyStopping:
    """The `EarlyStopping` of runs with checkpoint metas `metas` (fresh or restored)."""
    stopping = batched.EarlyStopping.create(
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
    stopping: batched.EarlyStopping, metas: list[dict[str, Any]], step: int, scores, scored
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
