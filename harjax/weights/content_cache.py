"""A backbone's content hash without loading it on every run: cached against its files.

A run's fingerprint holds the content hash of its frozen backbone (`Backbone.content_hash`, the
one checkpoints and predict check), so editing the weights behind an unchanged path makes the
run another run. Loading a backbone only to hash it would cost seconds per run, so the hash is
remembered per (spec, layers, dtype) together with the identity of the files it was read from
(`harjax.digests.identity`: size, times, inode and sampled bytes); any change of a file loads
and hashes it again. `load_backbone` records every hash it computes here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from harjax.digests import identity
from harjax.weights.assets import cache_dir

CACHE_FILE = "backbone_content_hashes.json"
_MAX_ENTRIES = 256
_memory: dict[str, str] = {}

# Files of a Hugging Face directory that its loaded weights depend on.
_HF_FILES = ("config.json", "*.safetensors", "model.safetensors.index.json", "flax_model.msgpack")


def backbone_files(spec: str) -> list[Path] | None:
    """The local files a spec is read from; None when only the hub could say (a hub id)."""
    from harjax.weights import EMBEDDED_SMOLLM2

    if spec == EMBEDDED_SMOLLM2:
        from harjax.weights.gguf import smollm2_path

        return [smollm2_path()]
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted({p for pattern in _HF_FILES for p in path.glob(pattern) if p.is_file()})
    return None


def _key(spec: str, num_layers: int | None, dtype: Any, with_embeddings: bool) -> str | None:
    files = backbone_files(spec)
    if files is None:
        return None
    payload = {
        "spec": spec,
        "num_layers": num_layers,
        "dtype": jnp.dtype(dtype).name,
        "with_embeddings": with_embeddings,
        "files": [[str(p.resolve()), identity(p)] for p in files],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _path() -> Path:
    return cache_dir() / CACHE_FILE


def _read() -> dict[str, str]:
    try:
        found = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def remember(
    spec: str, num_layers: int | None, dtype: Any, with_embeddings: bool, content_hash: str
) -> None:
    """Records a freshly computed hash (a read-only cache location only costs a reload)."""
    try:
        key = _key(spec, num_layers, dtype, with_embeddings)
    except OSError:  # a file gone since it was read: nothing to remember it by
        return
    if key is None:
        return
    _memory[key] = content_hash
    entries = _read()
    entries.pop(key, None)
    entries[key] = content_hash  # newest last; the oldest are dropped beyond _MAX_ENTRIES
    entries = dict(list(entries.items())[-_MAX_ENTRIES:])
    temp = None
    try:
        _path().parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=_path().parent, prefix=f".{CACHE_FILE}.")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f)
        os.chmod(temp, 0o644)  # mkstemp makes it private; the cache is shared
        os.replace(temp, _path())
    except OSError:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)


def content_hash_of(spec: str, *, num_layers: int | None = None, dtype: Any = jnp.float32) -> str:
    """The content hash `load_backbone(spec, num_layers=..., dtype=...)` would give.

    From the cache while the backbone's files are unchanged, else by loading it (which
    records it). Loading errors (a missing or damaged file) surface here, before any run.
    """
    key = _key(str(spec), num_layers, dtype, False)
    if key is not None:
        if key in _memory:
            return _memory[key]
        found = _read().get(key)
        if found is not None:
            _memory[key] = found
            return found
    from harjax.weights import load_backbone

    return load_backbone(spec, num_layers=num_layers, dtype=dtype).content_hash
