"""GPT-2 backbone parity with the transformers PyTorch reference, via load_backbone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from harjax.models.gpt2 import GPT2Config, GPT2Model
from harjax.weights import load_backbone
from tests.models.parity import ours, random_embeds, reference_hidden

TOLERANCE = 1e-4


def tiny_gpt2_config(**overrides) -> transformers.GPT2Config:
    fields = dict(
        vocab_size=101,
        n_positions=32,
        n_embd=48,
        n_layer=3,
        n_head=4,
        layer_norm_epsilon=1e-5,
        bos_token_id=0,
        eos_token_id=0,
    )
    fields.update(overrides)
    return transformers.GPT2Config(**fields)


def save_tiny_gpt2(directory, *, seed=0, save_kwargs=None, **overrides):
    """A randomly initialised HF GPT-2 (LM head, tied) saved with ``save_pretrained``."""
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(tiny_gpt2_config(**overrides)).eval()
    model.save_pretrained(directory, **(save_kwargs or {}))
    return model


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    return save_tiny_gpt2(directory), directory


def test_hidden_states_match_transformers(gpt2_dir):
    model, directory = gpt2_dir
    backbone = load_backbone(directory)
    embeds = random_embeds(48)
    assert backbone.name == "gpt2" and backbone.config.hidden_size == 48
    np.testing.assert_allclose(
        ours(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )


def test_first_layers_only_match_transformers_prefix(gpt2_dir):
    model, directory = gpt2_dir
    backbone = load_backbone(directory, num_layers=2)
    assert backbone.config.num_layers == 2 and backbone.config.num_hidden_layers == 3
    assert sorted(backbone.params["h"]) == ["0", "1"]
    embeds = random_embeds(48, seed=4)
    expected = reference_hidden(model, embeds, num_layers=2)
    np.testing.assert_allclose(ours(backbone, embeds), expected, atol=TOLERANCE)


def test_lm_logits_match_transformers(gpt2_dir):
    model, directory = gpt2_dir
    backbone = load_backbone(directory, with_embeddings=True)
    assert "wte" in backbone.params and "lm_head" not in backbone.params  # tied
    ids = np.random.default_rng(2).integers(0, 101, size=(2, 9))
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    got = backbone.module.apply({"params": backbone.params}, ids, method="lm_logits")
    np.testing.assert_allclose(np.asarray(got), expected, atol=TOLERANCE)


def test_without_embeddings_keeps_positions_only(gpt2_dir):
    _, directory = gpt2_dir
    params = load_backbone(directory).params
    assert "wte" not in params and params["wpe"]["embedding"].shape == (32, 48)
    shapes = jax.eval_shape(
        load_backbone(directory).module.init, jax.random.key(0), jnp.zeros((1, 3, 48))
    )
    assert jax.tree.map(lambda x: x.shape, shapes["params"]) == jax.tree.map(jnp.shape, params)
    # Conv1D weights arrive as Dense kernels (in, out).
    assert params["h"]["0"]["attn"]["c_attn"]["kernel"].shape == (48, 144)
    assert params["h"]["0"]["mlp"]["c_proj"]["kernel"].shape == (192, 48)


def test_scaled_attention_options_match_transformers(tmp_path):
    model = save_tiny_gpt2(
        tmp_path,
        n_layer=2,
        scale_attn_by_inverse_layer_idx=True,
        activation_function="relu",
        n_inner=40,
    )
    backbone = load_backbone(tmp_path)
    embeds = random_embeds(48, length=7)
    np.testing.assert_allclose(
        ours(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )


def test_dropout_rates_are_honoured_when_not_deterministic(gpt2_dir):
    _, directory = gpt2_dir
    backbone = load_backbone(directory)
    embeds = random_embeds(48)
    eval_out = ours(backbone, embeds)
    train_a = ours(backbone, embeds, deterministic=False, rngs={"dropout": jax.random.key(0)})
    train_b = ours(backbone, embeds, deterministic=False, rngs={"dropout": jax.random.key(0)})
    train_c = ours(backbone, embeds, deterministic=False, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.allclose(train_a, eval_out, atol=1e-3)
    assert not np.allclose(train_a, train_c, atol=1e-3)
    quiet = GPT2Config(
        **{**vars(backbone.config), "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    )
    no_dropout = GPT2Model(quiet).apply(
        {"params": backbone.params},
        embeds,
        deterministic=False,
        rngs={"dropout": jax.random.key(0)},
    )
    np.testing.assert_allclose(np.asarray(no_dropout), eval_out, atol=1e-6)


def test_too_many_tokens_is_a_clear_error(gpt2_dir):
    _, directory = gpt2_dir
    backbone = load_backbone(directory, num_layers=1)
    with pytest.raises(ValueError, match="33 tokens, more than n_positions=32"):
        ours(backbone, random_embeds(48, length=33))


def test_unsupported_options_are_refused():
    raw = tiny_gpt2_config(activation_function="swish").to_dict()
    with pytest.raises(ValueError, match="unsupported activation_function 'swish'"):
        GPT2Config.from_hf(raw)
    with pytest.raises(ValueError, match="num_layers must be in \\[1, 3\\]"):
        GPT2Config.from_hf(tiny_gpt2_config().to_dict(), num_layers=4)
