"""Helpers shared by every checkpoint reader: the Backbone record, tree checks, content hash.

Each reader (HF safetensors, HF Flax msgpack, GGUF) produces a flat ``{"a/b/kernel": array}``
dict; ``make_backbone`` checks it against the shapes the Linen module itself declares
(``jax.eval_shape`` of ``init``, nothing allocated), casts, nests and hashes it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from harjax.models.gpt2 import GPT2Config, GPT2Model
from harjax.models.llama import LlamaConfig, LlamaModel
from harjax.tree import flatten_params, unflatten_params  # noqa: F401  (re-exported)

ARCHITECTURES = ("gpt2", "llama")

# Errors list at most this many problems; the count of the rest is given.
_MAX_LISTED = 12


class CheckpointError(ValueError):
    """A checkpoint does not match the architecture it claims (keys, shapes, config)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Backbone:
    """A loaded frozen backbone.

    ``params`` is a plain nested dict of arrays holding the pretrained weights only. It is never
    trained: pass it to a loss as a separate, non-differentiated argument
    (``loss(trainable, frozen, batch)``) and never take gradients with respect to it.
    ``content_hash`` identifies these exact weights (names, shapes, dtypes, bytes) so that a
    trained head/LoRA checkpoint can be checked against the backbone it was trained on.
    """

    name: str  # 'gpt2' or 'llama'
    spec: str
    config: GPT2Config | LlamaConfig
    module: nn.Module
    params: dict[str, Any]
    content_hash: str


def build_module(config: GPT2Config | LlamaConfig, dtype: Any = jnp.float32) -> nn.Module:
    """The Linen module for ``config``, computing and storing parameters in ``dtype``."""
    if isinstance(config, GPT2Config):
        return GPT2Model(config, dtype=dtype, param_dtype=dtype)
    if isinstance(config, LlamaConfig):
        return LlamaModel(config, dtype=dtype, param_dtype=dtype)
    raise TypeError(f"build_module: expected GPT2Config or LlamaConfig, got {type(config)!r}.")


def architecture_name(config: GPT2Config | LlamaConfig) -> str:
    return "gpt2" if isinstance(config, GPT2Config) else "llama"


@functools.lru_cache(maxsize=32)
def expected_shapes(
    config: GPT2Config | LlamaConfig, *, with_embeddings: bool
) -> dict[str, tuple[int, ...]]:
    """Flat path -> shape of the parameters a backbone holds, from the module's own ``init``.

    Without embeddings this is what ``__call__`` touches (GPT-2 keeps ``wpe``); with them,
    what ``lm_logits`` touches (adds ``wte``/``embed_tokens`` and an untied ``lm_head``).
    """
    module = build_module(config)
    if with_embeddings:
        dummy = jax.ShapeDtypeStruct((1, 1), jnp.int32)
        init = functools.partial(module.init, method="lm_logits")
    else:
        dummy = jax.ShapeDtypeStruct((1, 1, config.hidden_size), jnp.float32)
        init = module.init
    shapes = jax.eval_shape(init, jax.random.key(0), dummy)["params"]
    return {path: tuple(leaf.shape) for path, leaf in flatten_params(shapes).items()}


def format_problems(problems: list[str]) -> str:
    """Joins problems one per line, listing at most a dozen (errors stay readable)."""
    shown = problems[:_MAX_LISTED]
    more = len(problems) - len(shown)
    return "\n  ".join(shown) + (f"\n  ... and {more} more" if more else "")


def check_params(
    found: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
    *,
    source: str,
) -> None:
    """Raises one ``CheckpointError`` listing missing, unexpected and mis-shaped parameters."""
    problems = [
        f"missing parameter {path!r} (expected shape {expected[path]})"
        for path in sorted(set(expected) - set(found))
    ]
    problems += [
        f"unexpected parameter {path!r} (shape {found[path]})"
        for path in sorted(set(found) - set(expected))
    ]
    problems += [
        f"parameter {path!r}: expected shape {expected[path]}, found {tuple(found[path])}"
        for path in sorted(set(found) & set(expected))
        if tuple(found[path]) != tuple(expected[path])
    ]
    if problems:
        raise CheckpointError(
            f"{source}: parameters do not match the model:\n  {format_problems(problems)}"
        )


def content_hash(params: Mapping[str, Any]) -> str:
    """sha256 over sorted parameter paths, shapes, dtypes and raw bytes; stable across runs."""
    digest = hashlib.sha256()
    for path, value in sorted(flatten_params(params).items()):
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(f"{path}|{array.shape}|{array.dtype.name}\n".encode())
        digest.update(array.reshape(-1).view(np.uint8))  # the bytes, without a copy (1 GB tables)
    return digest.hexdigest()


def make_backbone(
    config: GPT2Config | LlamaConfig,
    flat_params: Mapping[str, Any],
    *,
    spec: str,
    source: str,
    dtype: Any = jnp.float32,
    with_embeddings: bool = False,
) -> Backbone:
    """Checks ``flat_params`` against ``config``'s module, casts to ``dtype``, nests and hashes."""
    expected = expected_shapes(config, with_embeddings=with_embeddings)
    check_params({k: tuple(np.shape(v)) for k, v in flat_params.items()}, expected, source=source)
    params = unflatten_params({k: jnp.asarray(v, dtype=dtype) for k, v in flat_params.items()})
    return Backbone(
        name=architecture_name(config),
        spec=spec,
        config=config,
        module=build_module(config, dtype),
        params=params,
        content_hash=content_hash(params),
    )
