"""The attention core shared by GPT-2 and LLaMA (its parity is in test_gpt2/test_llama)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harjax.models.attention import causal_attention, causal_mask, merge_heads, split_heads


def test_split_heads_takes_contiguous_columns_and_merge_inverts_it():
    x = jnp.arange(2 * 3 * 12, dtype=jnp.float32).reshape(2, 3, 12)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(heads[:, :, 1], x[..., 3:6])
    np.testing.assert_array_equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        split_heads(x, 5)


def test_causal_mask_lets_each_query_see_itself_and_the_past():
    np.testing.assert_array_equal(
        causal_mask(3, 3), np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], bool)
    )


def test_dropout_attention_path_equals_fused_path_when_nothing_is_dropped():
    rng = np.random.default_rng(0)
    query = jnp.asarray(rng.normal(size=(2, 7, 4, 8)), jnp.float32)
    key, value = (jnp.asarray(rng.normal(size=(2, 7, 2, 8)), jnp.float32) for _ in range(2))
    fused = causal_attention(query, key, value)
    explicit = causal_attention(
        query, key, value, dropout_rate=1e-12, deterministic=False, dropout_rng=jax.random.key(0)
    )
    np.testing.assert_allclose(np.asarray(explicit), np.asarray(fused), atol=1e-6)
    dropped = causal_attention(
        query, key, value, dropout_rate=0.5, deterministic=False, dropout_rng=jax.random.key(0)
    )
    assert not np.allclose(np.asarray(dropped), np.asarray(fused), atol=1e-3)
