"""The attention core the GPT-2 and LLaMA decoders share: head split/merge and causal attention.

Each backbone keeps its own projections (GPT-2's fused ``c_attn``, LLaMA's ``q/k/v_proj`` and
rotary embeddings) because those carry checkpoint parameter names; what happens between the
projections is the same computation in both and lives here once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def split_heads(x: jax.Array, num_heads: int) -> jax.Array:
    """(B, T, heads * head_dim) -> (B, T, heads, head_dim); head ``h`` is columns ``h*hd:(h+1)*hd``.

    That column order is the one HF checkpoints use for both backbones.
    """
    batch, length, width = x.shape
    if width % num_heads:
        raise ValueError(f"split_heads: width {width} is not divisible by {num_heads} heads.")
    return x.reshape(batch, length, num_heads, width // num_heads)


def merge_heads(x: jax.Array) -> jax.Array:
    """(B, T, heads, head_dim) -> (B, T, heads * head_dim), the inverse of ``split_heads``."""
    batch, length, num_heads, head_dim = x.shape
    return x.reshape(batch, length, num_heads * head_dim)


def causal_mask(query_length: int, key_length: int) -> jax.Array:
    """(query_length, key_length) bool, True where query ``t`` may attend to key ``s <= t``."""
    return jnp.tril(jnp.ones((query_length, key_length), dtype=bool))


def causal_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    dropout_rate: float = 0.0,
    deterministic: bool = True,
    dropout_rng: jax.Array | None = None,
    scale: float | None = None,
) -> jax.Array:
    """Causal attention on (B, T, heads, head_dim); ``key``/``value`` may have fewer heads (GQA).

    Without dropout this is ``jax.nn.dot_product_attention`` (softmax in float32, fusable).
    Dropout on the attention probabilities needs the weights explicitly, so that path is spelled
    out with ``einsum``. Logits are multiplied by ``scale`` (default ``1/sqrt(head_dim)``).
    """
    batch, length, num_heads, head_dim = query.shape
    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    if deterministic or dropout_rate == 0.0:
        return jax.nn.dot_product_attention(query, key, value, scale=scale, is_causal=True)
    num_kv_heads = key.shape[2]
    groups = num_heads // num_kv_heads
    query = query.reshape(batch, length, num_kv_heads, groups, head_dim)
    logits = jnp.einsum("btkgh,bskh->bkgts", query, key, preferred_element_type=jnp.float32)
    logits = logits * np.float32(scale)
    logits = jnp.where(causal_mask(length, key.shape[1]), logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
    probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0).astype(value.dtype)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, value)
    return out.reshape(batch, length, num_heads, head_dim)
