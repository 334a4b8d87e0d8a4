"""The HAR model: projection -> backbone -> readout -> pooling -> norm -> linear head.

    signal (B, window_length, C)
      -> ConvProjection            (B, num_tokens, d_model)    trainable
      -> backbone (frozen + LoRA)  (B, num_tokens, d_model)    GPT-2 / LLaMA / none / scratch
      -> readout                   `readout_layers`: () = the last layer; else those layers'
                                   outputs (0-based, -1 = last), pooled one by one and
                                   concatenated (B, len * d_model): each layer keeps its own
                                   features and the head weighs them. `final_norm` applies the
                                   backbone's final norm (trained for the last of all layers)
      -> pool ('mean' | 'last')    (B, features)               'last' suits a causal decoder:
                                                               the last token has seen them all;
                                                               `skip_first_token` leaves the
                                                               first position (an attention sink)
                                                               out of the mean
      -> standardise (optional)    per-feature (x - mean) / std with fixed statistics that
                                   `variants.assemble` measures at init (frozen, not learned):
                                   a constant massive-activation dimension no longer dominates
      -> LayerNorm + Dense         (B, num_classes)            trainable

The backbone is any Linen module with `__call__(inputs_embeds, *, deterministic,
return_hidden_states)` and `final_norm(hidden)`; it is a child named `backbone`, so its
parameters live under `params/backbone/...` and LoRA adapters (see `harjax.lora`) sit beside its
kernels. This module knows nothing of LoRA or of freezing: which parameters train is decided by
`harjax.variants.assemble` from the config. Without a backbone the readout options do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    readout_layers: Sequence[int]  # () = the backbone's output
    final_norm: bool  # only with readout_layers: apply the backbone's final norm to each
    skip_first_token: bool
    standardize_features: bool
    dtype: jnp.dtype = jnp.float32

    @property
    def num_features(self) -> int:
        return self.d_model * (len(self._layers) if self.backbone is not None else 1)

    @property
    def _layers(self) -> tuple[int, ...]:
        return tuple(self.readout_layers) or (-1,)

    def _pool(self, hidden: jnp.ndarray) -> jnp.ndarray:
        if self.pooling == "mean":
            return (hidden[:, 1:] if self.skip_first_token else hidden).mean(axis=1)
        if self.pooling == "last":
            return hidden[:, -1]
        raise ValueError(f"pooling must be 'mean' or 'last', got {self.pooling!r}")

    def _read(self, tokens: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
        """Backbone tokens -> pooled (B, num_features) float32 features."""
        if self._layers == (-1,) and self.final_norm:
            return self._pool(self.backbone(tokens, deterministic=deterministic)).astype(
                jnp.float32
            )
        _, per_layer = self.backbone(tokens, deterministic=deterministic, return_hidden_states=True)
        pooled = []
        for index in self._layers:
            hidden = per_layer[index]
            if self.final_norm:
                hidden = self.backbone.final_norm(hidden)
            pooled.append(self._pool(hidden).astype(jnp.float32))
        return jnp.concatenate(pooled, axis=-1)

    @nn.compact
    def __call__(
        self, signal: jnp.ndarray, *, deterministic: bool = True, return_features: bool = False
    ) -> jnp.ndarray:
        """Logits (B, num_classes); `return_features`: the pooled features before
        standardisation (what `harjax.variants.assemble` measures the statistics on)."""
        tokens = ConvProjection(self.projection, self.d_model, dtype=self.dtype, name="projection")(
            signal
        )
        if self.backbone is None:
            pooled = self._pool(tokens).astype(jnp.float32)
        else:
            pooled = self._read(tokens, deterministic)
        if return_features:
            return pooled
        if self.standardize_features:
            shape = (self.num_features,)
            mean = self.param("feature_mean", nn.initializers.zeros, shape, jnp.float32)
            std = self.param("feature_std", nn.initializers.ones, shape, jnp.float32)
            pooled = (pooled - mean) / std
        pooled = nn.LayerNorm(dtype=jnp.float32, name="head_norm")(pooled)
        pooled = nn.Dropout(self.head_dropout)(pooled, deterministic=deterministic)
        return nn.Dense(self.num_classes, dtype=jnp.float32, name="head")(pooled)
