"""What determines a run's result, recorded in its directory so a directory is never reused for
another run.

`fingerprint(...)` is a JSON-able dict: the resolved config, the data it trains and tests on
(dataset identity, split, the training windows), where its initial tree came from, the tags the
sweep gave it and the harjax version. `check(directory, fingerprint)` compares it with the one
recorded when the run started; a run directory that holds a different run (finished or only
started) is a `StaleRunError` naming the keys that differ and the two ways out. Hardware is
recorded with the result (`environment`), not fingerprinted: the same run on another machine is
the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import harjax
from harjax.run.result import json_default, write_json

FINGERPRINT_FILE = "fingerprint.json"
_OFF_BY_DEFAULT = (
    ("train", "epochs"),
    ("train", "min_steps"),
    ("train", "patience"),
    ("train", "evals_per_epoch"),
    ("optim", "lora_learning_rate"),
)


class StaleRunError(ValueError):
    """The run directory holds a run of another configuration (a user error: exit status 2)."""


def array_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(str(array.dtype).encode() + array.tobytes()).hexdigest()[:16]


def data_identity(data) -> dict[str, Any]:
    """The prepared dataset as a run sees it: name, build, windows' labels/subjects, split."""
    dataset = data.dataset
    identity: dict[str, Any] = {
        "name": dataset.name,
        "num_windows": len(dataset),
        "class_names": list(data.class_names),
        "channel_names": list(dataset.channel_names),
        "label_key": data.label_key,
        "labels": array_digest(np.asarray(data.targets(np.arange(len(dataset))))),
        "subjects": array_digest(np.asarray(dataset.subjects)),
        "split": {
            part: array_digest(getattr(data.split, part)) for part in ("train", "val", "test")
        },
    }
    builder = getattr(dataset, "builder", None)
    if builder is not None:
        identity["build"] = f"{builder.name}/{builder.builder_config.name}/{builder.version}"
    return identity


def fingerprint(
    config,
    data,
    train_indices: np.ndarray,
    *,
    init: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config = config.to_dict()
    # How many runs share a program changes the wall time, not the run: not fingerprinted.
    config.get("train", {}).pop("models_per_program", None)
    config.pop("sweep", None)  # what else the command runs, not what this run is
    # Fields added after runs were recorded are left out while off, so those runs still match.
    for section, name in _OFF_BY_DEFAULT:
        if not config.get(section, {}).get(name, 0):
            config.get(section, {}).pop(name, None)
    payload = {
        "config": config,
        "data": data_identity(data),
        "train_windows": array_digest(np.asarray(train_indices, np.int64)),
        "init": dict(init or {}),
        "tags": dict(tags or {}),
        "harjax_version": harjax.__version__,
    }
    if "backbone" in config:  # 'auto' resolves per machine: the dtype actually used is the run's
        from harjax.assemble import resolve_compute_dtype

        payload["compute_dtype"] = resolve_compute_dtype(str(config["backbone"]["dtype"]))["name"]
    # Round-trip through JSON so tuples/lists and numpy scalars compare as they are stored.
    return json.loads(json.dumps(payload, default=json_default))


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """'key: old -> new' for every leaf that differs (missing leaves shown as <absent>)."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        before, after = old_flat.get(key, "<absent>"), new_flat.get(key, "<absent>")
        if before != after:
            lines.append(f"{key}: {before!r} -> {after!r}")
    return lines


def recorded(directory: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(directory) / FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def is_used(directory: str | os.PathLike) -> bool:
    """Holds anything a run wrote (a result, a checkpoint, a fingerprint)."""
    directory = Path(directory)
    return directory.is_dir() and any(directory.iterdir())


def check(directory: str | os.PathLike, expected: Mapping[str, Any]) -> None:
    """Refuses a used run directory whose recorded fingerprint differs from `expected`."""
    directory = Path(directory)
    if not is_used(directory):
        return
    old = recorded(directory)
    if old == expected:
        return
    problems = (
        ["no fingerprint.json (written by an older harjax or another tool)"]
        if old is None
        else differences(old, expected)
    )
    shown = "; ".join(problems[:6]) + (
        f"; ... ({len(problems)} in all)" if len(problems) > 6 else ""
    )
    raise StaleRunError(
        f"{directory} holds a run of another configuration ({shown}); use a new --workdir, or "
        "pass --overwrite to discard the stale runs"
    )


def discard(directory: str | os.PathLike) -> None:
    """Removes a stale run directory (the explicit `--overwrite` way out)."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)


def record(directory: str | os.PathLike, value: Mapping[str, Any]) -> None:
    write_json(Path(directory) / FINGERPRINT_FILE, value)
