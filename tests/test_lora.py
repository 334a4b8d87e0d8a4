import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harjax import lora
from tests.fakes import tiny_llama_backbone


def _perturb_b(params):
    """LoRA b starts at zero; give it values so adapters actually change the output."""

    def walk(tree, key):
        out = {}
        for k, v in tree.items():
            if k == "lora":
                key, sub = jax.random.split(key)
                out[k] = {"a": v["a"], "b": jax.random.normal(sub, v["b"].shape) * 0.1}
            elif isinstance(v, dict):
                key, sub = jax.random.split(key)
                out[k] = walk(v, sub)
            else:
                out[k] = v
        return out

    return walk(params, jax.random.key(7))


@pytest.fixture(scope="module")
def backbone():
    return tiny_llama_backbone()


def test_default_targets_are_exactly_the_attention_projections(backbone):
    adapters = lora.LoraConfig(rank=2, alpha=4, dropout=0.0)
    adapted = lora.add_lora(
        jax.random.key(1), backbone.params, adapters, adapters.target_regex("llama")
    )
    adapted_scopes = {p.split("/lora/")[0] for p in lora.param_paths(adapted) if "/lora/" in p}
    assert sorted(adapted_scopes) == [
        f"layers/{i}/self_attn/{p}"
        for i in range(2)
        for p in ("k_proj", "o_proj", "q_proj", "v_proj")
    ]
    q = adapted["layers"]["0"]["self_attn"]["q_proj"]["lora"]
    assert q["a"].shape == (16, 2) and q["b"].shape == (2, 16)
    assert not np.any(np.asarray(q["b"]))  # B starts at zero


def test_gpt2_default_regex_adapts_attention_c_proj_not_mlp_c_proj():
    pattern = lora.DEFAULT_TARGETS["gpt2"]
    import re

    assert re.search(pattern, "h/3/attn/c_attn")
    assert re.search(pattern, "backbone/h/3/attn/c_proj")
    assert not re.search(pattern, "h/3/mlp/c_proj")


def test_adapted_equals_base_at_init_and_merged_equals_unmerged(backbone):
    adapters = lora.LoraConfig(rank=2, alpha=4, dropout=0.0)
    x = jax.random.normal(jax.random.key(0), (2, 5, 16))
    base = backbone.module.apply({"params": backbone.params}, x)
    adapted = lora.add_lora(
        jax.random.key(1), backbone.params, adapters, adapters.target_regex("llama")
    )
    with lora.apply_lora(adapters):
        at_init = backbone.module.apply({"params": adapted}, x)
    np.testing.assert_array_equal(np.asarray(at_init), np.asarray(base))

    adapted = _perturb_b(adapted)
    with lora.apply_lora(adapters):
        unmerged = backbone.module.apply({"params": adapted}, x)
    merged = backbone.module.apply({"params": lora.merge_lora(adapted, adapters)}, x)
    assert np.max(np.abs(np.asarray(unmerged) - np.asarray(base))) > 1e-3  # adapters matter
    np.testing.assert_allclose(np.asarray(merged), np.asarray(unmerged), atol=1e-5)
    # Outside the context the adapters are ignored: the interceptor is the only LoRA code path.
    outside = backbone.module.apply({"params": adapted}, x)
    np.testing.assert_array_equal(np.asarray(outside), np.asarray(base))


def test_scale_is_alpha_over_rank():
    adapters = lora.LoraConfig(rank=4, alpha=8, dropout=0.0)
    dense = nn.Dense(3, use_bias=False)
    kernel = jnp.zeros((2, 3))
    a, b = jnp.ones((2, 4)), jnp.ones((4, 3))
    with lora.apply_lora(adapters):
        y = dense.apply({"params": {"kernel": kernel, "lora": {"a": a, "b": b}}}, jnp.ones((1, 2)))
    np.testing.assert_allclose(np.asarray(y), np.full((1, 3), 2 * 4 * 2.0))


def test_lora_dropout_only_when_not_deterministic():
    adapters = lora.LoraConfig(rank=1, alpha=1, dropout=0.5)
    dense = nn.Dense(1, use_bias=False)
    p = {"kernel": jnp.zeros((64, 1)), "lora": {"a": jnp.ones((64, 1)), "b": jnp.ones((1, 1))}}
    x = jnp.ones((1, 64))
    with lora.apply_lora(adapters, deterministic=True):
        assert float(dense.apply({"params": p}, x)[0, 0]) == 64.0
    with lora.apply_lora(adapters, deterministic=False):
        y = float(dense.apply({"params": p}, x, rngs={"dropout": jax.random.key(0)})[0, 0])
    assert y != 64.0 and y % 2 == 0  # kept inputs are scaled by 1 / (1 - 0.5)


def test_unmatched_regex_is_an_error(backbone):
    with pytest.raises(ValueError, match="matches no kernel"):
        lora.add_lora(
            jax.random.key(0),
            backbone.params,
            lora.LoraConfig(rank=8, alpha=16.0, dropout=0.0),
            r"nonexistent",
        )


def test_split_merge_roundtrip_and_overlap_error(backbone):
    adapters = lora.LoraConfig(rank=2, alpha=4, dropout=0.0)
    params = {
        "backbone": lora.add_lora(
            jax.random.key(1), backbone.params, adapters, adapters.target_regex("llama")
        ),
        "head": {"kernel": jnp.ones((16, 3)), "bias": jnp.zeros(3)},
    }
    trainable, frozen = lora.split_params(params, lora.trainable_predicate([r"^head/", r"/lora/"]))
    assert all("/lora/" in p or p.startswith("head/") for p in lora.param_paths(trainable))
    assert not any("/lora/" in p for p in lora.param_paths(frozen))
    merged = lora.merge_params(trainable, frozen)
    assert lora.param_paths(merged) == lora.param_paths(params)
    with pytest.raises(ValueError, match="both trainable and frozen"):
        lora.merge_params(trainable, {"head": {"bias": jnp.zeros(3)}})
