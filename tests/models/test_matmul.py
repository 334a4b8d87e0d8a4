"""The f32-accumulating low-precision matmul: same values and gradients as a float32 reference."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from harjax.models.matmul import dot_general_for, low_precision_dot_general


def test_float32_keeps_flax_default():
    assert dot_general_for(jnp.float32) is None
    assert dot_general_for(jnp.bfloat16) is low_precision_dot_general


def test_bf16_dense_matches_float32_reference_forward_and_backward():
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (2, 5, 16)).astype(jnp.bfloat16)
    w = jax.random.normal(keys[1], (16, 8)).astype(jnp.bfloat16)
    probe = jax.random.normal(keys[2], (2, 5, 8))

    def loss(dot, x, w):
        y = dot(x, w, (((2,), (0,)), ((), ())))
        return jnp.sum(y.astype(jnp.float32) * probe)

    reference = lambda x, w, dn: jax.lax.dot_general(
        x.astype(jnp.float32), w.astype(jnp.float32), dn
    )
    got = jax.grad(lambda x, w: loss(low_precision_dot_general, x, w), argnums=(0, 1))(x, w)
    want = jax.grad(lambda x, w: loss(reference, x, w), argnums=(0, 1))(x, w)
    y = low_precision_dot_general(x, w, (((2,), (0,)), ((), ())))
    assert y.dtype == jnp.bfloat16 and got[0].dtype == jnp.bfloat16 and got[1].dtype == jnp.bfloat16
    np.testing.assert_allclose(
        y.astype(np.float32), reference(x, w, (((2,), (0,)), ((), ()))), rtol=2e-2, atol=2e-2
    )
    for g, r in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float32), r, rtol=2e-2, atol=5e-2)


def test_other_contractions_fall_back_to_lax():
    x, w = jnp.ones((3, 4), jnp.bfloat16), jnp.ones((5, 4), jnp.bfloat16)
    y = low_precision_dot_general(x, w, (((1,), (1,)), ((), ())))  # x @ w.T: not Dense-shaped
    assert y.shape == (3, 5) and y.dtype == jnp.bfloat16


def test_dense_with_it_trains_like_plain_dense():
    layer = nn.Dense(8, dtype=jnp.bfloat16, dot_general=dot_general_for(jnp.bfloat16))
    plain = nn.Dense(8, dtype=jnp.bfloat16)
    x = jnp.linspace(-1, 1, 32).reshape(2, 16)
    params = plain.init(jax.random.key(1), x)
    g1 = jax.grad(lambda p: layer.apply(p, x).astype(jnp.float32).sum())(params)
    g2 = jax.grad(lambda p: plain.apply(p, x).astype(jnp.float32).sum())(params)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2)


def _has_f32_accumulating_matmul(function, *args) -> bool:
    return "custom_vjp_call" in str(jax.make_jaxpr(function)(*args))


def test_accumulate_in_float32_false_gives_plain_bf16_dots_in_backbone_and_lora():
    """The public switch bench's 'plain' variant uses (it used to patch module globals)."""
    from harjax import lora
    from harjax.models.llama import LlamaConfig, LlamaModel

    config = LlamaConfig(
        vocab_size=8,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        num_layers=1,
    )
    embeds = jnp.ones((1, 4, 16), jnp.bfloat16)
    for accumulate in (True, False):
        model = LlamaModel(config, dtype=jnp.bfloat16, accumulate_in_float32=accumulate)
        params = model.init(jax.random.key(0), embeds)["params"]
        adapters = lora.LoraConfig(rank=2, alpha=4.0, dropout=0.0, accumulate_in_float32=accumulate)
        params = lora.add_lora(jax.random.key(1), params, adapters, adapters.target_regex("llama"))
        base = lambda p, x, m=model: m.apply({"params": p}, x)
        assert _has_f32_accumulating_matmul(base, params, embeds) is accumulate

        accumulating = model.clone(accumulate_in_float32=True)

        def low_rank_only(p, x, m=accumulating, a=adapters):
            with lora.apply_lora(a):  # the backbone accumulates; only LoRA follows the switch
                return m.apply({"params": p}, x)

        jaxpr = str(jax.make_jaxpr(low_rank_only)(params, embeds))
        # 7 Dense, plus x @ a and (x a) @ b for each of the 4 adapted projections.
        assert jaxpr.count("custom_vjp_call") == 7 + 8 * accumulate
