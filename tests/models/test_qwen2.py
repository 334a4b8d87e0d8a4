"""Qwen2 (the LLaMA module with q/k/v biases) parity with transformers' Qwen2, via load_backbone.

transformers initialises Linear biases to zero, so every parameter is redrawn here: a loader that
dropped the q/k/v biases, or put one on o_proj, must fail these tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from harjax.models.llama import LlamaConfig
from harjax.weights import CheckpointError, load_backbone
from tests.models.parity import ours, random_embeds, reference_hidden

TOLERANCE = 1e-4
HIDDEN = 48


def tiny_qwen2_config(**overrides) -> transformers.Qwen2Config:
    """6 query heads sharing 2 kv heads (GQA), head_dim 8, rope_theta 1e6 like Qwen2.5."""
    fields = dict(
        vocab_size=97,
        hidden_size=HIDDEN,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=1e6,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    fields.update(overrides)
    return transformers.Qwen2Config(**fields)


def save_tiny_qwen2(directory, *, seed=0, **overrides):
    """A Qwen2 with every parameter drawn at random, saved by ``save_pretrained``."""
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(tiny_qwen2_config(**overrides)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    return model


@pytest.fixture(scope="module")
def untied(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2_untied")
    return save_tiny_qwen2(directory), directory


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qwen2_tied")
    return save_tiny_qwen2(directory, seed=1, tie_word_embeddings=True), directory


def test_config_and_tree_have_qkv_biases_only(untied):
    _, directory = untied
    backbone = load_backbone(directory)
    config = backbone.config
    assert (config.model_type, config.qkv_bias, config.attention_bias) == ("qwen2", True, False)
    assert config.rope_theta == 1e6 and config.head_dim == 8
    assert backbone.name == "llama"  # the module family: LoRA targets and controls are LLaMA's
    attention = backbone.params["layers"]["0"]["self_attn"]
    with_bias = {name for name in attention if "bias" in attention[name]}
    assert with_bias == {"q_proj", "k_proj", "v_proj"}
    assert attention["k_proj"]["bias"].shape == (16,)
    assert "bias" not in backbone.params["layers"]["0"]["mlp"]["up_proj"]
    shapes = jax.eval_shape(backbone.module.init, jax.random.key(0), jnp.zeros((1, 4, HIDDEN)))
    assert jax.tree.map(lambda x: x.shape, shapes["params"]) == jax.tree.map(
        jnp.shape, backbone.params
    )


def test_hidden_states_match_transformers(untied):
    model, directory = untied
    backbone = load_backbone(directory)
    embeds = random_embeds(HIDDEN, length=20)
    np.testing.assert_allclose(
        ours(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )


def test_first_layers_only_match_transformers_prefix(untied):
    model, directory = untied
    backbone = load_backbone(directory, num_layers=1)
    embeds = random_embeds(HIDDEN, seed=2)
    expected = reference_hidden(model, embeds, num_layers=1)
    np.testing.assert_allclose(ours(backbone, embeds), expected, atol=TOLERANCE)


@pytest.mark.parametrize("which", ["untied", "tied"])
def test_lm_logits_match_transformers(which, request):
    model, directory = request.getfixturevalue(which)
    backbone = load_backbone(directory, with_embeddings=True)
    assert ("lm_head" in backbone.params) == (which == "untied")
    ids = np.random.default_rng(5).integers(0, 97, size=(2, 10))
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    got = backbone.module.apply({"params": backbone.params}, ids, method="lm_logits")
    np.testing.assert_allclose(np.asarray(got), expected, atol=TOLERANCE)


def test_bfloat16_storage_and_compute_stay_close(untied):
    model, directory = untied
    backbone = load_backbone(directory, dtype=jnp.bfloat16)
    assert backbone.params["layers"]["0"]["self_attn"]["q_proj"]["bias"].dtype == jnp.bfloat16
    embeds = random_embeds(HIDDEN)
    out = np.asarray(ours(backbone, embeds), np.float32)
    expected = reference_hidden(model, embeds)
    relative = np.sqrt(np.mean((out - expected) ** 2) / np.mean(expected**2))
    assert relative < 0.05, relative  # measured 0.029: peaked attention amplifies rounding


def test_sliding_window_is_refused(tmp_path):
    raw = tiny_qwen2_config(use_sliding_window=True, sliding_window=8).to_dict()
    with pytest.raises(ValueError, match="use_sliding_window"):
        LlamaConfig.from_hf(raw)


def test_missing_bias_is_named(untied, tmp_path):
    from safetensors.numpy import load_file, save_file

    _, directory = untied
    tensors = load_file(directory / "model.safetensors")
    del tensors["model.layers.1.self_attn.v_proj.bias"]
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    missing = r"missing tensor 'model\.layers\.1\.self_attn\.v_proj\.bias'"
    with pytest.raises(CheckpointError, match=missing):
        load_backbone(tmp_path)
