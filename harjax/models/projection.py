"""The structured convolutional projection: IMU window -> a short sequence of LLM embeddings.

It replaces the LLM's token embedding. Shapes, for configs/default.py (window 128 x 6 channels,
kernel sizes (3, 5, 9), 32 channels per branch, strides (2, 2), d_model 576):

    signal              (B, 128, 6)        `magnitude_channels` appends |acc| and |gyro| (the
                                           Euclidean norm of each consecutive x, y, z triple)
    multi-scale convs   (B, 128, 3 * 32)   parallel 'SAME' 1-D convolutions, one per kernel size,
                                           concatenated: each branch sees motion at its own scale
                                           (3 samples = 60 ms jitter .. 9 samples = 180 ms strides)
    norm + GELU         (B, 128, 96)       `norm`: 'channel' = LayerNorm over channels at each
                                           step; 'amplitude' = the same plus `WindowAmplitude`
                                           (below) added after this first norm; 'time' =
                                           `TimeNorm` (below) at every norm
    downsample stage 1  (B, 64, 96)        conv with kernel = 2 * stride, stride 2, norm, GELU
    downsample stage 2  (B, 32, 96)        same: the token rate is window_length / prod(strides)
    to LLM width        (B, 32, 576)       linear map into the embedding space, times a learned
                                           scalar `output_scale`, initialised to
                                           `output_scale_init` (`variants.assemble` can overwrite it
                                           at init so the output RMS matches the backbone's
                                           token embeddings: `projection.calibrate`)

Why this shape: IMU activity cues live at several time scales (parallel kernels), the LLM costs
grow with the token count (strided downsampling sets it), and the LLM expects inputs of the
magnitude of its own token embeddings (the output scale). With `norm='channel'` the convs have
no effect of input scale after the first norm: the whole projection is invariant to scaling the
window, so movement intensity is lost. `norm='amplitude'` and `norm='time'` keep it. Every axis is
config — the referee's projection ablation varies `kernel_sizes`, `channels` and `strides`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ProjectionConfig:
    """The projection's hyper-parameters; their defaults live in configs/default.py only
    (`config.projection`, read by `harjax.variants.build.projection_config`)."""

    kernel_sizes: Sequence[int]
    channels: int
    strides: Sequence[int]
    output_scale_init: float
    norm: str  # 'channel' | 'amplitude' | 'time'
    magnitude_channels: bool

    def num_tokens(self, window_length: int) -> int:
        """Tokens produced for a window; errors if the strides do not divide the window."""
        total_stride = math.prod(self.strides)
        if window_length % total_stride:
            raise ValueError(
                f"window_length {window_length} is not divisible by the projection's total stride "
                f"{total_stride} (strides {tuple(self.strides)})"
            )
        return window_length // total_stride

    def validate(self) -> None:
        if not self.kernel_sizes or any(k < 1 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive integers, got {self.kernel_sizes}")
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if any(s < 1 for s in self.strides):
            raise ValueError(f"strides must be >= 1, got {self.strides}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")


NORMS = ("channel", "amplitude", "time")


def append_magnitudes(signal: jnp.ndarray) -> jnp.ndarray:
    """(B, T, C) -> (B, T, C + C // 3): the Euclidean norm of each (x, y, z) channel triple
    (|acc|, then |gyro|) appended; the channels must come in such triples."""
    channels = signal.shape[-1]
    if channels % 3:
        raise ValueError(
            f"magnitude_channels needs (x, y, z) channel triples, got {channels} channels"
        )
    triples = signal.reshape(*signal.shape[:-1], channels // 3, 3)
    return jnp.concatenate([signal, jnp.linalg.norm(triples, axis=-1)], axis=-1)


class TimeNorm(nn.Module):
    """Per window and channel: RMS over time normalised away, its logarithm put back as a feature.

        x_hat = x / rms_t(x) * scale + bias          (B, T, C), shape of each channel's signal
        out   = x_hat + Dense(log rms_t(x))          amplitude added to every step

    (x_hat, log rms) is a lossless reparametrisation of x, so unlike a LayerNorm over channels
    the output depends on how hard the wearer moves: scaling the window by 2 shifts log rms by
    log 2. No centring: the per-window mean (e.g. gravity's direction) stays in x_hat.
    """

    epsilon: float = 1e-6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        width = x.shape[-1]
        x32 = x.astype(jnp.float32)
        mean_square = jnp.mean(jnp.square(x32), axis=1, keepdims=True)  # (B, 1, C)
        normalised = x32 * jax.lax.rsqrt(mean_square + self.epsilon)
        scale = self.param("scale", nn.initializers.ones, (width,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (width,), jnp.float32)
        log_rms = 0.5 * jnp.log(mean_square + self.epsilon)
        amplitude = nn.Dense(width, dtype=jnp.float32, name="amplitude")(log_rms)
        return (normalised * scale + bias + amplitude).astype(self.dtype)


class WindowAmplitude(nn.Module):
    """Each input channel's log standard deviation over the window, mapped to `width` features.

        out = Dense(0.5 * log var_t(signal))      (B, 1, width), added to every step

    Centred, so it measures how hard the wearer moves, not the sensor's orientation (gravity
    sits in the mean). The kernel starts at zero: at init `norm='amplitude'` computes exactly
    what `norm='channel'` does, and training decides how much intensity the tokens carry.
    """

    width: int
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, signal: jnp.ndarray) -> jnp.ndarray:
        variance = jnp.var(signal.astype(jnp.float32), axis=1, keepdims=True)
        log_std = 0.5 * jnp.log(variance + self.epsilon)
        return nn.Dense(
            self.width, use_bias=False, kernel_init=nn.initializers.zeros, name="dense"
        )(log_std)


class ConvProjection(nn.Module):
    """(B, window_length, C) float -> (B, num_tokens, d_model)."""

    config: ProjectionConfig
    d_model: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, signal: jnp.ndarray) -> jnp.ndarray:
        config = self.config
        config.validate()
        if signal.ndim != 3:
            raise ValueError(
                f"expected signal of shape (batch, time, channels), got {signal.shape}"
            )
        config.num_tokens(signal.shape[1])
        x = signal.astype(self.dtype)
        if config.magnitude_channels:
            x = append_magnitudes(x)
        signal_in = x

        def norm(name: str):
            if config.norm == "time":
                return TimeNorm(dtype=self.dtype, name=name)
            return nn.LayerNorm(dtype=self.dtype, name=name)

        branches = [
            nn.Conv(config.channels, (k,), padding="SAME", dtype=self.dtype, name=f"conv_k{k}")(x)
            for k in config.kernel_sizes
        ]
        x = jnp.concatenate(branches, axis=-1)
        width = x.shape[-1]
        normed = norm("norm_in")(x)
        if config.norm == "amplitude":
            amplitude = WindowAmplitude(width, name="amplitude")(signal_in)
            normed = (normed.astype(jnp.float32) + amplitude).astype(self.dtype)
        x = nn.gelu(normed)
        for i, stride in enumerate(config.strides):
            if stride == 1:
                continue
            # Kernel 2*stride with 'SAME' padding overlaps neighbouring tokens, so a movement that
            # straddles a token boundary is seen whole by at least one token.
            x = nn.Conv(
                width,
                (2 * stride,),
                strides=(stride,),
                padding="SAME",
                dtype=self.dtype,
                name=f"down_{i}",
            )(x)
            x = nn.gelu(norm(f"norm_down_{i}")(x))
        x = nn.Dense(self.d_model, dtype=self.dtype, name="to_model")(x)
        scale = self.param(
            "output_scale",
            lambda _, shape: jnp.full(shape, config.output_scale_init, jnp.float32),
            (1,),
        )
        return x * scale.astype(self.dtype)
