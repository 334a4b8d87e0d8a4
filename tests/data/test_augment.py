"""Each augmentation does what its docstring says, reproducibly, and bad settings are named."""

import numpy as np
import pytest

from harjax.data import augment
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS


def _windows(seed=0, count=4, length=64):
    rng = np.random.default_rng(seed)
    gravity = np.array([0, 0, 9.8, 0, 0, 0], np.float32)
    return rng.normal(size=(count, length, 6)).astype(np.float32) + gravity


def _run(signal, *transforms, seed=0, channels=CANONICAL_CHANNELS, **strengths):
    config = augment.AugmentConfig(transforms=transforms, **strengths)
    return augment.augment_batch(signal, channels, config, augment.window_rng(seed, 0))


def test_rotation_keeps_each_sensor_norm_and_rotates_both_by_the_same_matrix():
    signal = _windows()
    signal[..., 3:] = signal[..., :3] * 0.5  # gyro parallel to acc: stays parallel iff same R
    rotated = _run(signal, "rotation")
    for sensor in (slice(0, 3), slice(3, 6)):
        np.testing.assert_allclose(
            np.linalg.norm(rotated[..., sensor], axis=-1),
            np.linalg.norm(signal[..., sensor], axis=-1),
            rtol=1e-5,
        )
    np.testing.assert_allclose(rotated[..., 3:], rotated[..., :3] * 0.5, rtol=1e-4, atol=1e-5)
    assert not np.allclose(rotated, signal, atol=1e-2)


def test_rotation_matrices_are_proper_rotations_within_the_angle():
    rotations = augment.random_rotations(np.random.default_rng(1), 50, 30.0)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.eye(3)[None].repeat(50, 0), atol=1e-10
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-10)
    angles = np.degrees(np.arccos(np.clip((np.trace(rotations, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angles.max() <= 30.0 + 1e-6 and angles.max() > 10.0
    assert np.allclose(augment.random_rotations(np.random.default_rng(1), 3, 0.0), np.eye(3))


def test_time_warp_keeps_length_and_endpoints_and_order():
    ramp = np.repeat(np.linspace(0, 1, 128)[None, :, None], 6, axis=2).repeat(3, axis=0)
    warped = _run(ramp, "time_warp", time_warp_std=0.4)
    assert warped.shape == ramp.shape
    np.testing.assert_allclose(warped[:, [0, -1]], ramp[:, [0, -1]], atol=1e-6)
    assert (np.diff(warped, axis=1) >= -1e-7).all()  # monotone time map: a ramp stays a ramp
    assert not np.allclose(warped, ramp, atol=1e-3)


def test_permutation_reorders_whole_samples():
    signal = _windows(length=40)
    permuted = _run(signal, "permutation", permutation_segments=5)
    for window in range(len(signal)):
        original = {tuple(row) for row in signal[window].round(5)}
        assert {tuple(row) for row in permuted[window].round(5)} == original
    assert not np.allclose(permuted, signal)


def test_scaling_is_one_factor_per_window_and_channel():
    signal = np.abs(_windows()) + 1.0
    ratio = _run(signal, "scaling", scaling_std=0.2) / signal
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(signal.shape[1], 1), rtol=1e-5)
    assert 0.2 < ratio.min() and ratio.max() < 1.8 and 0.1 < ratio.std() < 0.3


def test_jitter_scales_with_the_channel_std():
    signal = np.zeros((64, 128, 6), np.float32)
    config = augment.AugmentConfig(transforms=("jitter",), jitter_std=0.1)
    std = np.array([1, 2, 4, 0.5, 0.5, 0.5])
    noise = augment.augment_batch(
        signal, CANONICAL_CHANNELS, config, augment.window_rng(0, 0), channel_std=std
    )
    np.testing.assert_allclose(noise.std(axis=(0, 1)), 0.1 * std, rtol=0.05)


def test_draws_depend_on_seed_and_batch_only():
    signal, config = _windows(), augment.AugmentConfig(transforms=augment.TRANSFORMS)

    def draw(seed, batch):
        return augment.augment_batch(
            signal, CANONICAL_CHANNELS, config, augment.window_rng(seed, batch)
        )

    np.testing.assert_array_equal(draw(3, 7), draw(3, 7))
    assert not np.allclose(draw(3, 7), draw(3, 8))
    assert not np.allclose(draw(3, 7), draw(4, 7))
    assert signal.dtype == np.float32 and draw(3, 7).dtype == np.float32


def test_input_is_not_modified():
    signal = _windows()
    before = signal.copy()
    _run(signal, *augment.TRANSFORMS)
    np.testing.assert_array_equal(signal, before)


def test_accelerometer_only_rotation_and_missing_axes():
    acc = _windows()[..., :3]
    rotated = _run(acc, "rotation", channels=CANONICAL_CHANNELS[:3])
    np.testing.assert_allclose(
        np.linalg.norm(rotated, axis=-1), np.linalg.norm(acc, axis=-1), rtol=1e-5
    )
    config = augment.AugmentConfig(transforms=("rotation",))
    with pytest.raises(DataError, match="rotation.*x, y, z"):
        augment.check_channels(config, ("acc_x", "acc_y", "mag"), source="csv:/x")


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="augment.transforms.*'flip'"):
        augment.AugmentConfig(transforms=("flip",))
    with pytest.raises(ValueError, match="rotation_degrees"):
        augment.AugmentConfig(transforms=("rotation",), rotation_degrees=270)
    with pytest.raises(ValueError, match="jitter_std"):
        augment.AugmentConfig(jitter_std=-1)


def test_from_config_reads_a_comma_separated_list():
    import ml_collections

    section = ml_collections.ConfigDict({"transforms": "rotation, jitter", "jitter_std": 0.2})
    config = augment.AugmentConfig.from_config(section)
    assert config.transforms == ("rotation", "jitter") and config.jitter_std == 0.2
    assert not augment.AugmentConfig.from_config(
        ml_collections.ConfigDict({"transforms": ""})
    ).enabled


def test_stream_draws_follow_each_window_not_the_batch_split():
    signal, config = _windows(count=6), augment.AugmentConfig(transforms=augment.TRANSFORMS)
    positions = np.arange(10, 16)

    def stream(lo, hi):
        return augment.augment_stream(
            signal[lo:hi], positions[lo:hi], CANONICAL_CHANNELS, config, seed=5
        )

    whole = stream(0, 6)
    np.testing.assert_array_equal(np.concatenate([stream(0, 2), stream(2, 6)]), whole)
    alone = augment.augment_batch(
        signal[1:2], CANONICAL_CHANNELS, config, augment.window_rng(5, 11)
    )
    np.testing.assert_array_equal(whole[1:2], alone)
