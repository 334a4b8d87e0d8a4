import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harjax.models.projection import (
    ConvProjection,
    ProjectionConfig,
    WindowAmplitude,
    append_magnitudes,
)

BASE = ProjectionConfig(
    kernel_sizes=(3, 5),
    channels=4,
    strides=(2, 2),
    output_scale_init=1.0,
    norm="channel",
    magnitude_channels=False,
)


def _outputs(config, scale):
    module = ConvProjection(config, d_model=8)
    signal = jax.random.normal(jax.random.key(0), (2, 32, 6))
    params = module.init(jax.random.key(1), signal)
    return np.asarray(module.apply(params, signal)), np.asarray(
        module.apply(params, scale * signal)
    )


def test_channel_norm_is_invariant_to_input_scale_at_init():
    plain, doubled = _outputs(BASE, 2.0)
    np.testing.assert_allclose(plain, doubled, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "changes", [{"norm": "time"}, {"norm": "time", "magnitude_channels": True}]
)
def test_time_norm_keeps_amplitude(changes):
    plain, doubled = _outputs(dataclasses.replace(BASE, **changes), 2.0)
    assert np.abs(plain - doubled).max() > 1e-2


def test_magnitude_channels_are_triple_norms():
    signal = jnp.arange(12.0).reshape(1, 2, 6)
    out = np.asarray(append_magnitudes(signal))
    assert out.shape == (1, 2, 8)
    np.testing.assert_allclose(
        out[0, 0, 6:], [np.linalg.norm([0, 1, 2]), np.linalg.norm([3, 4, 5])]
    )
    with pytest.raises(ValueError, match="triples"):
        append_magnitudes(jnp.zeros((1, 2, 4)))


def test_amplitude_norm_starts_as_channel_norm_and_can_learn_intensity():
    signal = jax.random.normal(jax.random.key(0), (2, 32, 6))
    channel = ConvProjection(BASE, d_model=8)
    amplitude = ConvProjection(dataclasses.replace(BASE, norm="amplitude"), d_model=8)
    params = amplitude.init(jax.random.key(1), signal)
    kernel = params["params"]["amplitude"]["dense"]["kernel"]
    assert kernel.shape == (6, 8) and not np.any(kernel)
    shared = {"params": {k: v for k, v in params["params"].items() if k != "amplitude"}}
    np.testing.assert_array_equal(amplitude.apply(params, signal), channel.apply(shared, signal))
    # With a non-zero amplitude kernel the output follows the window's intensity.
    params["params"]["amplitude"]["dense"]["kernel"] = jnp.ones_like(kernel)
    plain, doubled = amplitude.apply(params, signal), amplitude.apply(params, 2.0 * signal)
    assert np.abs(np.asarray(plain) - np.asarray(doubled)).max() > 1e-2
    # The amplitude feature sees intensity, not orientation: a constant offset (gravity)
    # leaves it unchanged.
    feature = WindowAmplitude(8)
    feature_params = {"params": {"dense": {"kernel": jnp.ones((6, 8))}}}
    np.testing.assert_allclose(
        feature.apply(feature_params, signal + 3.0),
        feature.apply(feature_params, signal),
        rtol=1e-4,
        atol=1e-4,
    )
