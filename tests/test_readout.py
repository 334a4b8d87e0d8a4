"""model.readout_layers / final_norm / skip_first_token / standardize_features."""

import jax
import numpy as np
import pytest

from harjax import lora
from harjax.models.llama import LlamaModel
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config


def _build(**overrides):
    config = tiny_config("pretrained")
    for key, value in overrides.items():
        section, name = key.split("__")
        config[section][name] = value
    return assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(0), backbone=tiny_llama_backbone()
    )


SIGNAL = jax.random.normal(jax.random.key(5), (3, 32, 6))


def _features(built):
    params = lora.merge_params(built.trainable, built.frozen)
    return np.asarray(built.model.apply({"params": params}, SIGNAL, return_features=True))


def test_backbone_returns_every_layers_output_and_the_same_final_output():
    backbone = tiny_llama_backbone()
    module = LlamaModel(backbone.config)
    tokens = jax.random.normal(jax.random.key(0), (2, 5, 16))
    plain = module.apply({"params": backbone.params}, tokens)
    output, per_layer = module.apply({"params": backbone.params}, tokens, return_hidden_states=True)
    assert len(per_layer) == 2
    np.testing.assert_array_equal(np.asarray(plain), np.asarray(output))
    normed = module.apply({"params": backbone.params}, per_layer[-1], method="final_norm")
    np.testing.assert_allclose(np.asarray(normed), np.asarray(output), rtol=1e-6)


def test_readout_layers_concatenate_and_final_norm_is_optional():
    default = _features(_build())
    last = _features(_build(model__readout_layers=(-1,)))
    np.testing.assert_allclose(last, default, rtol=1e-5, atol=1e-6)
    both = _features(_build(model__readout_layers=(0, 1)))
    assert both.shape == (3, 32)
    np.testing.assert_allclose(both[:, 16:], default, rtol=1e-5, atol=1e-6)
    raw = _features(_build(model__final_norm=False))
    assert not np.allclose(raw, default)


def test_skip_first_token_changes_the_mean():
    assert not np.allclose(_features(_build(model__skip_first_token=True)), _features(_build()))


def test_standardize_features_uses_fixed_init_statistics():
    built = _build(model__standardize_features=True)
    assert "feature_mean" in built.frozen and "feature_std" in built.frozen
    assert not any(p.startswith("feature_") for p in lora.param_paths(built.trainable))
    assert built.frozen["feature_mean"].shape == (16,)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(np.asarray(built.frozen["feature_std"]), 1.0)
