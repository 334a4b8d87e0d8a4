"""Starting from a trained tree, or restoring one: the one path transfer and predict share.

`trainable_template` gives the shapes of a model's trainable tree (by `jax.eval_shape`: nothing
is initialised or compiled) and the backbone hash `assemble` assigns it; `restore_best` reads a
finished run's best tree against that template (backbone hash and every shape checked);
`InitTrainable` + `start_from` make a new run start from such a tree.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harjax import variants
from harjax.data.normalization import Stats
from harjax.run.checkpoint import RunCheckpointer
from harjax.run.result import read_result
from harjax.tree import flatten_params, unflatten_params
from harjax.variants import assemble


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

    def identity(self) -> dict[str, Any]:
        """What a run's fingerprint records of its start: source, hash and a digest of the tree."""
        from harjax.run.fingerprint import array_digest

        leaves = sorted(
            (path, array_digest(np.asarray(value)))
            for path, value in flatten_params(self.params).items()
        )
        joined = "".join(f"{path}={digest};" for path, digest in leaves).encode()
        return {
            "source": self.source,
            "backbone_hash": self.backbone_hash,
            "params": hashlib.sha256(joined).hexdigest()[:16],
            "stats": None if self.stats is None else self.stats.to_dict(),
            "reinit_head": self.reinit_head,
        }


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


def trainable_template(config, *, num_classes: int, num_channels: int, backbone=None):
    """(zeros shaped like the trainable tree, the backbone hash `assemble` gives this model).

    Built under `jax.eval_shape`, so a pretrained backbone is not copied and nothing random is
    drawn; the hash comes from `assemble` itself, so there is one rule for it.
    """
    if variants.get(config.model.variant).control is not None:
        # A control backbone's hash is over its drawn values, which eval_shape cannot see.
        raise ValueError(
            f"trainable_template: a {config.model.variant!r} backbone has no hash without its "
            "values"
        )
    found: dict[str, str] = {}

    def build():
        assembled = assemble.assemble(
            config,
            num_classes=num_classes,
            num_channels=num_channels,
            rng=jax.random.key(int(config.seed)),
            backbone=backbone,
        )
        found["hash"] = assembled.backbone_hash
        return assembled.trainable

    shapes = jax.eval_shape(build)
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    return template, found["hash"]


def restore_best(run_dir: str | Path, template, backbone_hash: str):
    """The best trainable tree of a finished run, checked against `template` and the hash."""
    run_dir = Path(run_dir)
    result = read_result(run_dir)
    if result is None:
        raise FileNotFoundError(f"{run_dir}: the run has not finished (no metrics.json)")
    checkpointer = RunCheckpointer(run_dir)
    try:
        best, _ = checkpointer.restore_best(template, backbone_hash=backbone_hash)
    finally:
        checkpointer.close()
    return best, result
