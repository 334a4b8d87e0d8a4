"""Nested parameter dicts <-> flat {'a/b/c': leaf} maps: the one path convention of harjax.

Checkpoint key maps, LoRA targets, trainable/frozen splits and structure checks all speak in
these '/'-joined paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"h": {"0": {"attn": ...}}}`` -> ``{"h/0/attn/...": leaf}`` (empty dicts vanish)."""
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, path + "/"))
        else:
            flat[path] = value
    return flat


def unflatten_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `flatten_params`."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree
