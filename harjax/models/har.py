"""The HAR model: projection -> backbone -> pooling -> norm -> linear head.

    signal (B, window_length, C)
      -> ConvProjection            (B, num_tokens, d_model)    trainable
      -> backbone (frozen + LoRA)  (B, num_tokens, d_model)    GPT-2 / LLaMA / none / scratch
      -> pool ('mean' | 'last')    (B, d_model)                'last' suits a causal decoder:
                                                               the last token has seen them all
      -> LayerNorm + Dense         (B, num_classes)            trainable

The backbone is any Linen module with `__call__(inputs_embeds, *, deterministic)`; it is a
child named `backbone`, so its parameters live under `params/backbone/...` and LoRA adapters
(see `harjax.lora`) sit beside its kernels. This module knows nothing of LoRA or of freezing:
which parameters train is decided by `harjax.train` from the config.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from harjax.models.projection import ConvProjection, ProjectionConfig


class HARModel(nn.Module):
    """Every field but `dtype` is required: the defaults are configs/default.py's (`assemble`)."""

    projection: ProjectionConfig
    d_model: int
    num_classes: int
    backbone: nn.Module | None  # None: projection + head only (the 'none' variant)
    pooling: str  # 'mean' | 'last'
    head_dropout: float
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, signal: jnp.ndarray, *, deterministic: bool = True) -> jnp.ndarray:
        tokens = ConvProjection(self.projection, self.d_model, dtype=self.dtype, name="projection")(
            signal
        )
        hidden = tokens
        if self.backbone is not None:
            hidden = self.backbone(tokens, deterministic=deterministic)
        if self.pooling == "mean":
            pooled = hidden.mean(axis=1)
        elif self.pooling == "last":
            pooled = hidden[:, -1]
        else:
            raise ValueError(f"pooling must be 'mean' or 'last', got {self.pooling!r}")
        pooled = nn.LayerNorm(dtype=jnp.float32, name="head_norm")(pooled.astype(jnp.float32))
        pooled = nn.Dropout(self.head_dropout)(pooled, deterministic=deterministic)
        return nn.Dense(self.num_classes, dtype=jnp.float32, name="head")(pooled)
