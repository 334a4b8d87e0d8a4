"""Training-time augmentation of IMU windows: the standard few-shot HAR set, on the fly.

    jitter      x + N(0, (jitter_std * sigma_c)^2)   sigma_c: the channel's std in the training
                                                     windows (the normalisation statistics)
    scaling     x_c * N(1, scaling_std^2)            one factor per window and channel
    rotation    R @ acc, R @ gyro                    one rotation per window, the SAME for both
                                                     sensors (they share the device's frame):
                                                     a uniform random axis, an angle uniform in
                                                     [-rotation_degrees, rotation_degrees]
    time_warp   x(w(t))                              w: a smooth monotone map of [0, T-1] onto
                                                     itself (speeds N(1, time_warp_std^2) at
                                                     `time_warp_knots` knots); length kept
    permutation segments reordered                   `permutation_segments` pieces, random cuts

(Um et al. 2017, "Data augmentation of wearable sensor data for Parkinson's disease monitoring
using convolutional neural networks"; rotation was the strongest single transform for
self-supervised HAR in Tang et al. 2020.) They apply in that order to the raw windows in
physical units, before normalisation: a rotation of the device is a rotation of the physical
vectors, which a per-channel z-score would distort.

Where and when: only `harjax.data.pipeline.train_batches` calls `augment_batch`; validation and
test windows, normalisation statistics and the `classical` features never see it. Each
window's draws come from `numpy.random.default_rng((seed, AUGMENT_STREAM, position))`, its
position in the run's shuffled stream: a resumed run repeats them exactly, the draws do not
depend on how a global batch is split over processes, and runs with the same seed (the
variants of one paired comparison) see the same augmented windows, so augmentation adds no
noise to the paired differences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from harjax.data.errors import DataError

TRANSFORMS = ("jitter", "scaling", "rotation", "time_warp", "permutation")
AUGMENT_STREAM = 0x6175  # separates the augmentation draws from the shuffling draws
SENSOR_AXES = (("acc_x", "acc_y", "acc_z"), ("gyro_x", "gyro_y", "gyro_z"))


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Which transforms (applied in `TRANSFORMS` order) and their strengths; see the module."""

    transforms: tuple[str, ...] = ()
    jitter_std: float = 0.05
    scaling_std: float = 0.1
    rotation_degrees: float = 15.0
    time_warp_std: float = 0.2
    time_warp_knots: int = 4
    permutation_segments: int = 4

    def __post_init__(self):
        unknown = [name for name in self.transforms if name not in TRANSFORMS]
        if unknown or len(set(self.transforms)) != len(self.transforms):
            raise ValueError(
                f"config.data.augment.transforms: expected distinct names from {TRANSFORMS}, "
                f"found {self.transforms}"
            )
        for field in ("jitter_std", "scaling_std", "time_warp_std"):
            if not getattr(self, field) >= 0:
                raise ValueError(
                    f"config.data.augment.{field} must be >= 0, found {getattr(self, field)}"
                )
        if not 0 <= self.rotation_degrees <= 180:
            raise ValueError(
                "config.data.augment.rotation_degrees must be in [0, 180], found "
                f"{self.rotation_degrees}"
            )
        if self.time_warp_knots < 1 or self.permutation_segments < 1:
            raise ValueError(
                "config.data.augment.time_warp_knots and permutation_segments must be >= 1, found "
                f"{self.time_warp_knots} and {self.permutation_segments}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.transforms)

    @classmethod
    def from_config(cls, augment_config) -> AugmentConfig:
        """From `config.data.augment` (transforms as a comma-separated string or a sequence)."""
        transforms = augment_config.transforms
        if isinstance(transforms, str):
            transforms = [name.strip() for name in transforms.split(",") if name.strip()]
        fields = {field.name for field in dataclasses.fields(cls)} - {"transforms"}
        return cls(
            transforms=tuple(transforms),
            **{name: augment_config[name] for name in fields if name in augment_config},
        )


def sensor_triples(channel_names: Sequence[str]) -> list[np.ndarray]:
    """Column indices of each complete (x, y, z) sensor among `channel_names`."""
    names = list(channel_names)
    return [
        np.asarray([names.index(axis) for axis in axes])
        for axes in SENSOR_AXES
        if all(axis in names for axis in axes)
    ]


def check_channels(config: AugmentConfig, channel_names: Sequence[str], *, source: str) -> None:
    """Rotation needs at least one complete x/y/z sensor; say so before training starts."""
    if "rotation" in config.transforms and not sensor_triples(channel_names):
        raise DataError(
            f"{source}: config.data.augment.transforms has 'rotation', which needs the x, y, z "
            f"axes of a sensor ({SENSOR_AXES}); found channels {tuple(channel_names)}"
        )


def random_rotations(rng: np.random.Generator, count: int, max_degrees: float) -> np.ndarray:
    """(count, 3, 3) rotation matrices: uniform axis, angle uniform in [-max, max] (Rodrigues)."""
    axis = rng.normal(size=(count, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, size=count))
    cross = np.zeros((count, 3, 3))
    cross[:, 0, 1], cross[:, 0, 2] = -axis[:, 2], axis[:, 1]
    cross[:, 1, 0], cross[:, 1, 2] = axis[:, 2], -axis[:, 0]
    cross[:, 2, 0], cross[:, 2, 1] = -axis[:, 1], axis[:, 0]
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + sin * cross + (1 - cos) * (cross @ cross)


def _rotate(signal, rng, config, channel_names):
    rotations = random_rotations(rng, len(signal), config.rotation_degrees)
    for columns in sensor_triples(channel_names):
        signal[..., columns] = np.einsum("bij,btj->bti", rotations, signal[..., columns])
    return signal


def _warp_positions(rng, count: int, length: int, config: AugmentConfig) -> np.ndarray:
    """(count, length) monotone sample positions in [0, length - 1], first and last fixed."""
    knots = config.time_warp_knots + 2
    speeds = np.clip(rng.normal(1.0, config.time_warp_std, size=(count, knots)), 0.1, None)
    grid = np.linspace(0.0, 1.0, knots)
    time = np.linspace(0.0, 1.0, length)
    speed = np.stack([np.interp(time, grid, row) for row in speeds])
    position = np.cumsum(speed, axis=1) - speed[:, :1]
    return position / position[:, -1:] * (length - 1)


def _time_warp(signal, rng, config):
    count, length, _ = signal.shape
    positions = _warp_positions(rng, count, length, config)
    steps = np.arange(length)
    for window in range(count):
        for channel in range(signal.shape[-1]):
            signal[window, :, channel] = np.interp(
                positions[window], steps, signal[window, :, channel]
            )
    return signal


def _permute(signal, rng, config):
    count, length, _ = signal.shape
    pieces = min(config.permutation_segments, length)
    for window in range(count):
        cuts = np.sort(rng.choice(np.arange(1, length), pieces - 1, replace=False))
        segments = np.split(signal[window], cuts)
        signal[window] = np.concatenate([segments[i] for i in rng.permutation(pieces)])
    return signal


def augment_batch(
    signal: np.ndarray,
    channel_names: Sequence[str],
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    channel_std: np.ndarray | None = None,
) -> np.ndarray:
    """(B, T, C) raw windows -> augmented float32 copy. `channel_std` (C,) scales the jitter
    (the training windows' std per channel); without it the batch's own std is used."""
    signal = np.array(signal, dtype=np.float64)
    if signal.ndim != 3 or signal.shape[-1] != len(channel_names):
        raise DataError(
            f"augmentation: expected a (batch, time, {len(channel_names)}) signal with channels "
            f"{tuple(channel_names)}, found shape {signal.shape}"
        )
    count = len(signal)
    if "jitter" in config.transforms:
        scale = signal.std(axis=(0, 1)) if channel_std is None else np.asarray(channel_std)
        signal += rng.normal(size=signal.shape) * config.jitter_std * scale
    if "scaling" in config.transforms:
        signal *= rng.normal(1.0, config.scaling_std, size=(count, 1, signal.shape[-1]))
    if "rotation" in config.transforms:
        signal = _rotate(signal, rng, config, channel_names)
    if "time_warp" in config.transforms:
        signal = _time_warp(signal, rng, config)
    if "permutation" in config.transforms:
        signal = _permute(signal, rng, config)
    return signal.astype(np.float32)


def window_rng(seed: int, position: int) -> np.random.Generator:
    """The draws of one training window: a function of the run's seed and its stream position."""
    return np.random.default_rng((int(seed), AUGMENT_STREAM, int(position)))


def augment_stream(
    signal: np.ndarray,
    positions: np.ndarray,
    channel_names: Sequence[str],
    config: AugmentConfig,
    *,
    seed: int,
    channel_std: np.ndarray | None = None,
) -> np.ndarray:
    """(B, T, C) raw windows at stream `positions` -> augmented, each with its own draws."""
    return np.concatenate(
        [
            augment_batch(
                signal[i : i + 1],
                channel_names,
                config,
                window_rng(seed, position),
                channel_std=channel_std,
            )
            for i, position in enumerate(positions)
        ]
    )
