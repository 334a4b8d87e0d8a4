"""Orbax checkpoints of what trains — never the frozen backbone.

A checkpoint at step s holds:
    state   the trainable tree (projection, LoRA, head), optimizer state, step, rng
    best    the trainable tree with the best validation macro-F1 so far
    meta    JSON: data-iterator position, validation curve, best step/score, and the backbone's
            spec and content hash

The backbone is recorded by spec and content hash and re-loaded by the caller; restoring onto a
backbone with another hash is an error (LoRA adapters trained on one set of frozen weights mean
nothing on another). Every process calls `save` (orbax coordinates multi-host writes).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from harjax import lora
from harjax.tree import flatten_params

CHECKPOINT_DIR = "checkpoints"


class BackboneMismatchError(ValueError):
    """The checkpoint was trained on a different frozen backbone."""


def _to_host(tree):
    return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)


class RunCheckpointer:
    """Saves/restores one training run under `workdir/checkpoints/<step>`."""

    def __init__(self, workdir: str | os.PathLike, *, max_to_keep: int = 2):
        self.directory = Path(workdir).absolute() / CHECKPOINT_DIR
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
            ),
            item_names=("state", "best", "meta"),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, best, meta: dict[str, Any]) -> None:
        state, best = _to_host(state), _to_host(best)
        self._check_free_space((state, best))
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    best=ocp.args.StandardSave(best),
                    meta=ocp.args.JsonSave(meta),
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except ValueError as error:  # tensorstore reports a full disk as RESOURCE_EXHAUSTED
            if "RESOURCE_EXHAUSTED" not in str(error) and "No space left" not in str(error):
                raise
            raise OSError(
                errno.ENOSPC, f"{self.directory}: no space left on device writing checkpoint {step}"
            ) from None

    def _check_free_space(self, trees) -> None:
        """Refuses a save the disk cannot hold, before orbax starts writing.

        On a full disk orbax's tensorstore writers print dozens of "Event loop is closed"
        tracebacks from their threads before the error arrives; a save that cannot fit stops
        here instead, with one error. A step takes its arrays' bytes plus ~3 % (OCDBT files,
        metadata; measured): asked for are the bytes plus 1/8 and 1 MiB.
        """
        arrays = sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(trees))
        needed = arrays + arrays // 8 + (1 << 20)
        existing = self.directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        if free < needed:
            raise OSError(
                errno.ENOSPC,
                f"{self.directory}: no space left on device for a checkpoint (about "
                f"{needed / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free)",
            )

    def _restore(self, likes: dict[str, Any], backbone_hash: str, step: int | None):
        """Restores the named items shaped like `likes` after checking the backbone hash."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]
        check_backbone(meta, backbone_hash, self.directory / str(step))
        abstract = lambda tree: jax.tree.map(ocp.utils.to_shape_dtype_struct, _to_host(tree))
        args = {name: ocp.args.StandardRestore(abstract(like)) for name, like in likes.items()}
        restored = self.manager.restore(step, args=ocp.args.Composite(**args))
        for name, like in likes.items():
            check_shapes(restored[name], like, self.directory / str(step) / name)
        return {name: restored[name] for name in likes}, meta

    def restore(self, state_like, best_like, *, backbone_hash: str, step: int | None = None):
        """Returns (state, best, meta) at `step` (default latest); checks the backbone hash."""
        items, meta = self._restore({"state": state_like, "best": best_like}, backbone_hash, step)
        return items["state"], items["best"], meta

    def restore_best(self, best_like, *, backbone_hash: str, step: int | None = None):
        """Only the best trainable tree (for inference); checks the backbone hash."""
        items, meta = self._restore({"best": best_like}, backbone_hash, step)
        return items["best"], meta

    def close(self) -> None:
        self.manager.close()


class CheckpointShapeError(ValueError):
    """A restored array does not have the shape the model expects (another model structure)."""


def check_shapes(restored, like, where: Path | str) -> None:
    """Every restored leaf has its template's path and shape, or the error lists what differs."""
    shapes = lambda tree: {
        jax.tree_util.keystr(path, simple=True, separator="/"): tuple(np.shape(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }
    found, expected = shapes(restored), shapes(like)
    problems = [
        f"{path}: expected {shape}, found {found[path]}"
        for path, shape in expected.items()
        if path in found and found[path] != shape
    ]
    problems += [f"{path}: missing" for path in sorted(expected.keys() - found.keys())]
    problems += [f"{path}: unexpected" for path in sorted(found.keys() - expected.keys())]
    if problems:
        shown = "; ".join(problems[:6]) + (" ..." if len(problems) > 6 else "")
        raise CheckpointShapeError(
            f"{where}: the checkpoint does not fit this model ({shown}); it was trained with "
            "another configuration — use a new --workdir"
        )


def check_backbone(meta: dict[str, Any], backbone_hash: str, where: Path | str) -> None:
    saved = meta.get("backbone_hash")
    if saved != backbone_hash:
        raise BackboneMismatchError(
            f"{where}: checkpoint was trained on backbone {meta.get('backbone_spec')!r} with "
            f"content hash {saved}, but the backbone loaded now has hash {backbone_hash}; "
            "pass the same --backbone (and --config.backbone.num_layers) as for training"
        )


def export_merged(path: str | os.PathLike, assembled, trainable, extra: dict[str, Any]) -> Path:
    """Writes an inference bundle: every parameter with LoRA folded into the dense kernels.

    `merged_params.npz` ('/'-joined paths -> arrays) runs with the plain HAR model and no LoRA
    context; `manifest.json` carries the config and class names needed to rebuild it.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = lora.merge_lora(lora.merge_params(trainable, assembled.frozen), assembled.lora_config)
    flat = {p: np.asarray(v) for p, v in flatten_params(params).items()}
    np.savez(path / "merged_params.npz", **flat)
    (path / "manifest.json").write_text(json.dumps(extra, indent=2, default=str))
    return path
