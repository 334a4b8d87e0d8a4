"""Input calibration: the projection's output scale set at init to the backbone's token scale.

A pretrained LLM has only ever seen inputs of the size of its token embeddings (SmolLM2-135M:
median per-token RMS about 0.13); a freshly initialised projection emits several times that.
`calibrate_projection` measures the projection's output on a batch of training-like windows and
rescales its `output_scale` so the median per-token RMS equals `embedding_rms` of the backbone.
The output is linear in `output_scale`, so one measurement sets it exactly.

The target comes from the loaded checkpoint's embedding table (`wte` / `embed_tokens`), read
with the first layer only (`load_backbone(spec, num_layers=1, with_embeddings=True)`: the GGUF
and safetensors readers load just the tensors asked for; one read per spec and process). A
backbone whose table cannot be read (a random `scratch` transformer, a checkpoint without one)
falls back to `INIT_EMBEDDING_RMS`, the RMS of an embedding row drawn by the architecture's own
init (std 0.02): the input scale its first layer was built for.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harjax.models.projection import ConvProjection, ProjectionConfig
from harjax.tree import flatten_params

CALIBRATIONS = ("none", "embedding_rms")
INIT_EMBEDDING_RMS = 0.02  # std of harjax.models.matmul.KERNEL_INIT
_EMBEDDING_TABLES = ("wte/embedding", "embed_tokens/embedding")


def median_token_rms(vectors: Any) -> jax.Array:
    """Median over rows of each row's RMS over the last axis."""
    vectors = jnp.asarray(vectors, jnp.float32).reshape(-1, jnp.shape(vectors)[-1])
    return jnp.median(jnp.sqrt(jnp.mean(jnp.square(vectors), axis=-1)))


@functools.lru_cache(maxsize=8)
def _embedding_rms_of_spec(spec: str) -> float | None:
    from harjax.weights import load_backbone

    try:
        loaded = load_backbone(spec, num_layers=1, with_embeddings=True)
    except (ValueError, OSError):  # CheckpointError is a ValueError
        return None
    flat = flatten_params(loaded.params)
    table = next((flat[name] for name in _EMBEDDING_TABLES if name in flat), None)
    return None if table is None else float(median_token_rms(np.asarray(table)))


def embedding_rms(backbone) -> tuple[float, str]:
    """(target RMS, where it came from) for a loaded `harjax.weights.Backbone` or None."""
    if backbone is not None:
        flat = flatten_params(backbone.params)
        for name in _EMBEDDING_TABLES:
            if name in flat:
                return float(median_token_rms(np.asarray(flat[name]))), f"{backbone.spec}:{name}"
        found = _embedding_rms_of_spec(str(backbone.spec))
        if found is not None:
            return found, f"{backbone.spec}:embedding table"
    return INIT_EMBEDDING_RMS, "init std 0.02 (no embedding table)"


def calibration_signal(rng: jax.Array, window_length: int, num_channels: int) -> jax.Array:
    """32 windows of i.i.d. N(0, 1) samples: the moments of the standardised training inputs
    (`harjax.data.normalization`), not their time structure; pass real windows when you can."""
    return jax.random.normal(rng, (32, window_length, num_channels), jnp.float32)


def calibrate_projection(
    projection: ProjectionConfig,
    d_model: int,
    dtype: Any,
    params: dict,
    signal: jax.Array,
    target_rms: float,
) -> tuple[dict, dict[str, Any]]:
    """(projection params with `output_scale` set, record of the calibration).

    The record holds `target_rms`, `rms_before` (median per-token RMS at `output_scale_init`)
    and `output_scale` (as jax scalars; they are tracers under `jax.eval_shape`).
    """
    module = ConvProjection(projection, d_model, dtype=dtype)
    rms_before = median_token_rms(module.apply({"params": params}, signal))
    scale = params["output_scale"] * (target_rms / rms_before)
    calibrated = {**params, "output_scale": scale.astype(params["output_scale"].dtype)}
    record = {"target_rms": target_rms, "rms_before": rms_before, "output_scale": scale[0]}
    return calibrated, record
