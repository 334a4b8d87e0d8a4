"""Language-model checks of a loaded backbone: mean NLL of a text and greedy continuation.

These verify that weights were loaded right (a real checkpoint predicts real text; random weights
give NLL ~ log(vocab)); HAR itself never decodes text. Both functions only need the backbone
contract's `embed`, `__call__` and `logits`, so GPT-2 and LLaMA work alike.

Sequences are padded to a multiple of `_BUCKET` tokens so that one compiled program serves many
prompt lengths. Attention is causal, so padding after the last real token changes nothing before
it. Greedy decoding re-runs the whole (short) buffer each step instead of keeping a KV cache, and
projects only the one position it needs onto the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["greedy_continue", "mean_nll", "token_nll"]

_BUCKET = 64


def _hidden(module: nn.Module, input_ids: jax.Array) -> jax.Array:
    return module(module.embed(input_ids))


def _check_ids(token_ids: Sequence[int], vocab_size: int, *, minimum: int) -> np.ndarray:
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or ids.size < minimum:
        raise ValueError(
            f"Expected a 1-D sequence of at least {minimum} token id(s), got shape {ids.shape}."
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"Token ids must be integers, got dtype {ids.dtype}.")
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.size:
        raise ValueError(f"Token ids {bad.tolist()} are outside the vocabulary [0, {vocab_size}).")
    return ids.astype(np.int32)


def _padded(ids: np.ndarray, length: int, config) -> jax.Array:
    """`ids` zero-padded to `length` rounded up to a bucket, within the model's positions."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and length > limit:
        raise ValueError(f"{length} tokens exceed the model's max_position_embeddings={limit}.")
    size = -(-length // _BUCKET) * _BUCKET
    if limit is not None:
        size = min(size, limit)  # GPT-2 has no position embedding past its limit
    return jnp.asarray(np.pad(ids, (0, size - ids.size)))[None, :]


@partial(jax.jit, static_argnums=0)
def _token_nll(module: nn.Module, params, input_ids: jax.Array) -> jax.Array:
    logits = module.apply(
        {"params": params}, input_ids, method=lambda m, i: m.logits(_hidden(m, i))
    )
    log_probs = jax.nn.log_softmax(logits[0, :-1].astype(jnp.float32), axis=-1)
    return -jnp.take_along_axis(log_probs, input_ids[0, 1:, None], axis=-1)[:, 0]


def token_nll(module: nn.Module, params, token_ids: Sequence[int]) -> np.ndarray:
    """Negative log-likelihood (nats) of each token after the first, given those before it."""
    ids = _check_ids(token_ids, module.config.vocab_size, minimum=2)
    return np.asarray(_token_nll(module, params, _padded(ids, ids.size, module.config)))[
        : ids.size - 1
    ]


def mean_nll(module: nn.Module, params, token_ids: Sequence[int]) -> float:
    """Mean next-token negative log-likelihood in nats/token (the first token is not scored)."""
    return float(token_nll(module, params, token_ids).mean())


@partial(jax.jit, static_argnums=0)
def _greedy(module, params, buffer, max_new_tokens, start, eos_id):
    """Fill `buffer[start:start + max_new_tokens]` greedily; stop early after `eos_id`."""

    def next_token(ids, position):
        def last_logits(m, ids):
            hidden = _hidden(m, ids)
            return m.logits(jax.lax.dynamic_slice_in_dim(hidden, position - 1, 1, axis=1))

        logits = module.apply({"params": params}, ids, method=last_logits)
        return jnp.argmax(logits[0, 0]).astype(ids.dtype)

    def keep_going(state):
        _, position, done = state
        return (position < start + max_new_tokens) & ~done

    def step(state):
        ids, position, _ = state
        token = next_token(ids, position)
        ids = jax.lax.dynamic_update_slice(ids, token[None, None], (0, position))
        return ids, position + 1, token == eos_id

    ids, end, _ = jax.lax.while_loop(keep_going, step, (buffer, start, jnp.array(False)))
    return ids, end


def greedy_continue(
    module: nn.Module,
    params,
    prompt_ids: Sequence[int],
    max_new_tokens: int = 20,
    *,
    eos_id: int | None = None,
) -> list[int]:
    """Greedy (argmax) continuation of `prompt_ids`; stops after `eos_id`, which is not returned."""
    ids = _check_ids(prompt_ids, module.config.vocab_size, minimum=1)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    buffer = _padded(ids, ids.size + max_new_tokens, module.config)
    out, end = _greedy(
        module, params, buffer, max_new_tokens, ids.size, -1 if eos_id is None else eos_id
    )
    new = np.asarray(out[0, ids.size : int(end)]).tolist()
    if eos_id is not None and new and new[-1] == eos_id:
        new = new[:-1]
    return new
