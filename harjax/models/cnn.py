"""A plain 1-D CNN: the field's default HAR baseline, the `cnn` variant.

    signal (B, window_length, C)
      -> num_layers x [Conv1D(channels, kernel_size, 'SAME') + ReLU]
      -> mean over time              (B, channels)
      -> Dropout(head_dropout) + Dense  (B, num_classes)

No projection, no backbone, no normalisation layers (batch statistics would make a k = 1 batch
of 16 repeated windows its own reference), defaults three Conv1D(64, kernel 5) layers: the
plain baseline a HAR reader expects in every table. Everything trains. It takes the same
`(signal, *, deterministic)` call as `HARModel`, so the run loop trains and evaluates it with
the same step, learning-rate grid, budget and early stopping.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class PlainCNN(nn.Module):
    num_classes: int
    num_layers: int
    channels: int
    kernel_size: int
    head_dropout: float
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, signal: jnp.ndarray, *, deterministic: bool = True) -> jnp.ndarray:
        hidden = signal.astype(self.dtype)
        for index in range(self.num_layers):
            hidden = nn.Conv(
                self.channels, (self.kernel_size,), dtype=self.dtype, name=f"conv_{index}"
            )(hidden)
            hidden = nn.relu(hidden)
        pooled = hidden.mean(axis=1).astype(jnp.float32)
        pooled = nn.Dropout(self.head_dropout)(pooled, deterministic=deterministic)
        return nn.Dense(self.num_classes, dtype=jnp.float32, name="head")(pooled)
