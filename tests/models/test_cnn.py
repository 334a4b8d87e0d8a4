"""The plain CNN: shapes, dropout only in training, and every parameter is a conv or the head."""

import jax
import jax.numpy as jnp
import numpy as np

from harjax.models.cnn import PlainCNN


def _model(**overrides):
    fields = dict(num_classes=5, num_layers=3, channels=8, kernel_size=5, head_dropout=0.5)
    return PlainCNN(**{**fields, **overrides})


def test_shapes_and_parameter_names():
    model = _model()
    signal = jnp.ones((2, 32, 6))
    params = model.init(jax.random.key(0), signal)["params"]
    assert sorted(params) == ["conv_0", "conv_1", "conv_2", "head"]
    assert params["conv_0"]["kernel"].shape == (5, 6, 8)
    assert params["head"]["kernel"].shape == (8, 5)
    assert model.apply({"params": params}, signal).shape == (2, 5)


def test_dropout_acts_only_when_training():
    model = _model()
    signal = jax.random.normal(jax.random.key(1), (4, 32, 3))
    params = model.init(jax.random.key(0), signal)["params"]
    evaluate = model.apply({"params": params}, signal)
    np.testing.assert_array_equal(evaluate, model.apply({"params": params}, signal))
    train = model.apply(
        {"params": params}, signal, deterministic=False, rngs={"dropout": jax.random.key(2)}
    )
    assert not np.allclose(train, evaluate)


def test_output_is_float32_in_bfloat16():
    model = _model(dtype=jnp.bfloat16)
    signal = jnp.ones((2, 16, 6))
    params = model.init(jax.random.key(0), signal)["params"]
    assert model.apply({"params": params}, signal).dtype == jnp.float32
