"""LLaMA backbone parity with the transformers PyTorch reference, via load_backbone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from harjax.models.llama import LlamaConfig, LlamaModel
from harjax.weights import load_backbone
from tests.models.parity import ours, random_embeds, reference_hidden

TOLERANCE = 1e-4


def tiny_llama_config(**overrides) -> transformers.LlamaConfig:
    """4 query heads sharing 2 kv heads (GQA), head_dim 16 != hidden/heads, rope_theta 5000."""
    fields = dict(
        vocab_size=97,
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        rms_norm_eps=1e-5,
        rope_theta=5000.0,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    fields.update(overrides)
    return transformers.LlamaConfig(**fields)


def save_tiny_llama(directory, *, seed=0, save_kwargs=None, **overrides):
    """A randomly initialised HF LLaMA saved with ``save_pretrained``; returns the torch model."""
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(tiny_llama_config(**overrides)).eval()
    model.save_pretrained(directory, **(save_kwargs or {}))
    return model


@pytest.fixture(scope="module")
def untied(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama_untied")
    return save_tiny_llama(directory), directory


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama_tied")
    return save_tiny_llama(directory, seed=1, tie_word_embeddings=True), directory


def test_hidden_states_match_transformers(untied):
    model, directory = untied
    backbone = load_backbone(directory)
    embeds = random_embeds(48)
    assert backbone.name == "llama"
    assert backbone.config.num_key_value_heads == 2 and backbone.config.rope_theta == 5000.0
    np.testing.assert_allclose(
        ours(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )


def test_first_layers_only_match_transformers_prefix(untied):
    model, directory = untied
    backbone = load_backbone(directory, num_layers=2)
    embeds = random_embeds(48, seed=3)
    assert sorted(backbone.params["layers"]) == ["0", "1"]
    expected = reference_hidden(model, embeds, num_layers=2)
    np.testing.assert_allclose(ours(backbone, embeds), expected, atol=TOLERANCE)


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_lm_logits_match_transformers(which, request):
    model, directory = request.getfixturevalue(which)
    backbone = load_backbone(directory, with_embeddings=True)
    assert ("lm_head" in backbone.params) == (which == "untied")
    ids = np.random.default_rng(5).integers(0, 97, size=(2, 10))
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    variables = {"params": backbone.params}
    got = backbone.module.apply(variables, ids, method="lm_logits")
    np.testing.assert_allclose(np.asarray(got), expected, atol=TOLERANCE)
    hidden = backbone.module.apply(variables, backbone.module.apply(variables, ids, method="embed"))
    logits = backbone.module.apply(variables, hidden, method="logits")
    np.testing.assert_allclose(np.asarray(logits), expected, atol=TOLERANCE)


def test_llama3_rope_scaling_and_biases_match_transformers(tmp_path):
    rope = {
        "rope_type": "llama3",
        "rope_theta": 5000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8,
    }
    model = save_tiny_llama(
        tmp_path, rope_parameters=rope, attention_bias=True, mlp_bias=True, num_hidden_layers=2
    )
    backbone = load_backbone(tmp_path)
    assert backbone.config.rope_scaling.rope_type == "llama3"
    assert "bias" in backbone.params["layers"]["0"]["mlp"]["up_proj"]
    embeds = random_embeds(48, length=20)
    np.testing.assert_allclose(
        ours(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )


def test_unsupported_rope_type_is_refused():
    raw = tiny_llama_config().to_dict()
    raw["rope_parameters"] = {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}
    with pytest.raises(ValueError, match="unsupported rope scaling type 'yarn'"):
        LlamaConfig.from_hf(raw)


def test_legacy_config_spelling_is_read():
    """transformers 4.x wrote rope_theta / rope_scaling at the top level."""
    raw = tiny_llama_config().to_dict()
    del raw["rope_parameters"]
    raw["rope_theta"] = 123.0
    raw["rope_scaling"] = {"type": "linear", "factor": 2.0}
    config = LlamaConfig.from_hf(raw, num_layers=1)
    assert config.rope_theta == 123.0 and config.rope_scaling.factor == 2.0
    assert config.num_layers == 1 and config.num_hidden_layers == 3


def test_init_tree_equals_loaded_tree(untied):
    _, directory = untied
    backbone = load_backbone(directory)
    shapes = jax.eval_shape(backbone.module.init, jax.random.key(0), jnp.zeros((1, 4, 48)))
    assert jax.tree.map(lambda x: x.shape, shapes["params"]) == jax.tree.map(
        jnp.shape, backbone.params
    )
    names = set(backbone.params["layers"]["0"]["self_attn"])
    assert names == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert backbone.params["layers"]["0"]["self_attn"]["k_proj"]["kernel"].shape == (48, 32)


def test_bfloat16_compute_stays_close(untied):
    model, directory = untied
    backbone = load_backbone(directory, dtype=jnp.bfloat16)
    assert backbone.params["norm"]["weight"].dtype == jnp.bfloat16
    embeds = random_embeds(48)
    out = backbone.module.apply({"params": backbone.params}, embeds)
    assert out.dtype == jnp.bfloat16
    error = np.abs(np.asarray(out, np.float32) - reference_hidden(model, embeds)).max()
    assert error < 0.1, error


def test_attention_dropout_needs_rng_only_when_training():
    config = LlamaConfig.from_hf(tiny_llama_config(attention_dropout=0.5).to_dict(), num_layers=1)
    module = LlamaModel(config)
    embeds = jnp.asarray(random_embeds(48))
    params = module.init(jax.random.key(0), embeds)["params"]
    eval_out = module.apply({"params": params}, embeds)
    train_out = module.apply(
        {"params": params}, embeds, deterministic=False, rngs={"dropout": jax.random.key(1)}
    )
    assert not np.allclose(np.asarray(eval_out), np.asarray(train_out), atol=1e-4)
