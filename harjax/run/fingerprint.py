"""What determines a run's result, recorded in its directory so a directory is never reused for
another run.

`fingerprint(...)` is a JSON-able dict: the resolved config, the data it trains and tests on
(dataset identity, split, the training windows, and the raw files' content digest where the
user supplies them: a `csv:` folder or a manual archive), the content hash of its frozen
backbone (`weights.content_cache`: the hash checkpoints check, not the path), where its initial
tree came from, the tags the sweep gave it and the harjax version. `check(directory,
fingerprint)` compares it with the one recorded when the run started; a run directory that
holds a different run (finished or only started) is a `StaleRunError` naming the keys that
differ and the two ways out. Hardware and code are recorded with the result (`environment`),
not fingerprinted: the same run on another machine is the same run, and an unrelated code edit
must not make every finished run stale (results.md says when a table mixes code versions).
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
from harjax import variants
from harjax.data import archives
from harjax.run.lock import LOCK_FILE
from harjax.run.result import json_default, write_json

FINGERPRINT_FILE = "fingerprint.json"
# Content identities added after runs were recorded: a record without them (older harjax) is
# compared on the rest, so finished studies stay usable; every new record holds them.
_CONTENT_KEYS = (("backbone_content",), ("data", "content"))
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
        content = archives.raw_data_content(builder)
        if content is not None:
            identity["content"] = content
    return identity


def backbone_content(config) -> str | None:
    """The frozen backbone's content hash for variants that load one (else None)."""
    source = variants.backbone_source(config)
    if source is None:
        return None
    from harjax.variants.build import dtype_from_name
    from harjax.weights.content_cache import content_hash_of

    return content_hash_of(
        source.spec, num_layers=source.num_layers, dtype=dtype_from_name(source.param_dtype)
    )


def fingerprint(
    config,
    data,
    train_indices: np.ndarray,
    *,
    init: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    frozen_content = backbone_content(config)
    config = config.to_dict()
    # How many runs share a program changes the wall time, not the run: not fingerprinted.
    config.get("train", {}).pop("models_per_program", None)
    config.pop("sweep", None)  # what else the command runs, not what this run is
    # Fields added after runs were recorded are left out while off, so those runs still match.
    for section, name in _OFF_BY_DEFAULT:
        if not config.get(section, {}).get(name, 0):
            config.get(section, {}).pop(name, None)
    if not config.get("data", {}).get("augment", {}).get("transforms", ""):
        config.get("data", {}).pop("augment", None)  # augmentation off: as before it existed
    variant = config.get("model", {}).get("variant")
    for other in variants.VARIANTS.values():  # a section only another variant reads
        if other.section and other.name != variant:
            config.pop(other.section, None)
    payload = {
        "config": config,
        "data": data_identity(data),
        "train_windows": array_digest(np.asarray(train_indices, np.int64)),
        "init": dict(init or {}),
        "tags": dict(tags or {}),
        "harjax_version": harjax.__version__,
    }
    if frozen_content is not None:
        payload["backbone_content"] = frozen_content
    if "backbone" in config:  # 'auto' resolves per machine: the dtype actually used is the run's
        from harjax.variants.build import resolve_compute_dtype

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


def matches(old: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> bool:
    """The recorded fingerprint is this run's (a record from before `_CONTENT_KEYS` existed is
    compared without them)."""
    if old is None:
        return False
    if old == expected:
        return True
    lenient = json.loads(json.dumps(expected))
    for path in _CONTENT_KEYS:
        recorded_here, parent = old, lenient
        for key in path[:-1]:
            recorded_here = recorded_here.get(key, {})
            parent = parent.get(key, {})
        if path[-1] not in recorded_here:
            parent.pop(path[-1], None)
    return old == lenient


def recorded(directory: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(directory) / FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def is_used(directory: str | os.PathLike) -> bool:
    """Holds anything a run wrote (a result, a checkpoint, a fingerprint; not the workdir lock)."""
    directory = Path(directory)
    return directory.is_dir() and any(p.name != LOCK_FILE for p in directory.iterdir())


def check(directory: str | os.PathLike, expected: Mapping[str, Any]) -> None:
    """Refuses a used run directory whose recorded fingerprint differs from `expected`."""
    directory = Path(directory)
    if not is_used(directory):
        return
    old = recorded(directory)
    if matches(old, expected):
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
    """Removes a stale run (the explicit `--overwrite` way out); a workdir lock held in it (the
    run directory of launch/train.py) stays, so the directory stays locked."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not (directory / LOCK_FILE).exists():
        shutil.rmtree(directory)
        return
    for path in directory.iterdir():
        if path.name == LOCK_FILE:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def record(directory: str | os.PathLike, value: Mapping[str, Any]) -> None:
    write_json(Path(directory) / FINGERPRINT_FILE, value)
