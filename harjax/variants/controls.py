"""Control backbones for the pretrained-vs-not comparison: same tensors' statistics, no learning.

Two controls (the `random` and `shuffled` entries of `harjax.variants.VARIANTS`), each a pure
function of the pretrained tree and a seed:

  random    every tensor redrawn i.i.d. normal with *that tensor's own* mean and std. The
            architecture's default init (std 0.02, norm weights 1) makes a near-identity network
            that says nothing about pretraining; matching the moments per tensor keeps each
            layer's scale (and so the residual stream's growth) and removes only the structure.
  shuffled  every tensor's entries permuted within the tensor: the exact multiset of values
            (outliers included) with no learned arrangement.

Norm weights are treated like every other tensor (drawn, or shuffled). Copying them would keep
learned per-dimension structure, e.g. which dimensions a layer amplifies (the massive-activation
dimension), so a 'random' model that copied them would not be free of pretraining.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from harjax.tree import flatten_params, unflatten_params

Params = dict[str, Any]


def _per_tensor(params: Params, rng: jax.Array, transform) -> Params:
    """Applies `transform(key, tensor)` to each leaf; the key is folded from its sorted index,
    so a tensor's draw depends on the seed and its path only."""
    flat = flatten_params(params)
    out = {}
    for index, path in enumerate(sorted(flat)):
        value = jnp.asarray(flat[path])
        out[path] = transform(jax.random.fold_in(rng, index), value).astype(value.dtype)
    return unflatten_params(out)


def _draw_matched(key: jax.Array, value: jax.Array) -> jax.Array:
    value32 = value.astype(jnp.float32)
    mean, std = value32.mean(), value32.std()
    return mean + std * jax.random.normal(key, value.shape, jnp.float32)


def _shuffle(key: jax.Array, value: jax.Array) -> jax.Array:
    return jax.random.permutation(key, value.reshape(-1)).reshape(value.shape)


def random_like(params: Params, rng: jax.Array) -> Params:
    """Each tensor replaced by i.i.d. N(mean, std^2) draws of its own mean and std."""
    return _per_tensor(params, rng, _draw_matched)


def shuffled_like(params: Params, rng: jax.Array) -> Params:
    """Each tensor's entries randomly permuted within the tensor (same values, same shape)."""
    return _per_tensor(params, rng, _shuffle)
