"""Flax Linen LLaMA backbone that consumes input embeddings (no token lookup in ``__call__``).

Numerics follow the Hugging Face PyTorch reference (``transformers`` ``modeling_llama``):
RMSNorm, rotary embeddings with the ``rotate_half`` convention, grouped-query attention and a
SwiGLU MLP. Parameter names are those of the old HF Flax LLaMA without the ``model`` prefix
(see docs/contracts.md), and every projection is an ``nn.Dense`` so that a LoRA transform can
intercept ``nn.Dense.__call__`` by module path. No LoRA or HAR code lives here.

Qwen2 is this decoder with biases on the q/k/v projections (not on ``o_proj``): a ``LlamaConfig``
with ``model_type='qwen2'`` and ``qkv_bias``, not a second module.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from harjax.models.attention import causal_attention, merge_heads, split_heads
from harjax.models.causal_lm import CausalLM, token_embedding, untied_lm_head
from harjax.models.matmul import dense_for, precision

Dtype = Any


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """Rotary frequency scaling; ``rope_type`` is ``linear`` or ``llama3`` (HF's names)."""

    rope_type: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


# HF ``model_type``s this decoder computes exactly (see ``LlamaConfig.from_hf``).
MODEL_TYPES = ("llama", "qwen2")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Architecture of a LLaMA-family checkpoint plus ``num_layers``, the decoder layers kept.

    ``attention_bias`` is LLaMA's (biases on q/k/v/o); ``qkv_bias`` is Qwen2's (q/k/v only).
    ``model_type`` only names the checkpoint family; the computation is set by the other fields.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    num_layers: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    max_position_embeddings: int = 2048
    attention_bias: bool = False
    qkv_bias: bool = False
    mlp_bias: bool = False
    attention_dropout: float = 0.0
    tie_word_embeddings: bool = False
    model_type: str = "llama"

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ValueError(
                f"LlamaConfig: model_type must be one of {MODEL_TYPES}, got {self.model_type!r}."
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"LlamaConfig: num_attention_heads={self.num_attention_heads} must be a multiple "
                f"of num_key_value_heads={self.num_key_value_heads} (grouped-query attention)."
            )
        if not 1 <= self.num_layers <= self.num_hidden_layers:
            raise ValueError(
                f"LlamaConfig: num_layers must be in [1, {self.num_hidden_layers}] "
                f"(the checkpoint has num_hidden_layers={self.num_hidden_layers}), "
                f"got {self.num_layers}."
            )
        if self.head_dim % 2:
            raise ValueError(
                f"LlamaConfig: rotary embeddings need an even head_dim, got {self.head_dim}."
            )

    @classmethod
    def from_hf(cls, config: dict[str, Any], *, num_layers: int | None = None) -> LlamaConfig:
        """Builds the config from an HF ``config.json`` dict (transformers 4.x or 5.x layout).

        transformers 5 moved ``rope_theta``/``rope_scaling`` into ``rope_parameters``; both
        spellings are accepted. ``model_type`` 'qwen2' means q/k/v biases (always on in HF's
        Qwen2) and no sliding-window attention. Unsupported features raise instead of being
        ignored.
        """
        model_type = config.get("model_type", "llama")
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"LlamaConfig.from_hf: expected model_type in {MODEL_TYPES}, found {model_type!r}."
            )
        is_qwen2 = model_type == "qwen2"
        if is_qwen2 and config.get("use_sliding_window", False):
            # Sliding windows would change attention beyond `sliding_window` tokens.
            raise ValueError(
                "LlamaConfig.from_hf: qwen2 with use_sliding_window=true is not supported."
            )
        activation = config.get("hidden_act", "silu")
        if activation != "silu":
            raise ValueError(
                f"LlamaConfig.from_hf: only hidden_act 'silu' (SwiGLU) is supported, "
                f"found {activation!r}."
            )
        rope = dict(config.get("rope_parameters") or {})
        legacy_scaling = config.get("rope_scaling") or {}
        rope_theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
        scaling_source = rope or legacy_scaling
        rope_type = scaling_source.get("rope_type", scaling_source.get("type", "default"))
        rope_scaling = None
        if rope_type in ("linear", "llama3"):
            rope_scaling = RopeScaling(
                rope_type=rope_type,
                factor=float(scaling_source["factor"]),
                low_freq_factor=float(scaling_source.get("low_freq_factor", 1.0)),
                high_freq_factor=float(scaling_source.get("high_freq_factor", 4.0)),
                original_max_position_embeddings=int(
                    scaling_source.get("original_max_position_embeddings", 8192)
                ),
            )
        elif rope_type != "default":
            raise ValueError(
                f"LlamaConfig.from_hf: unsupported rope scaling type {rope_type!r} "
                "(supported: default, linear, llama3)."
            )
        num_heads = int(config["num_attention_heads"])
        hidden_size = int(config["hidden_size"])
        total_layers = int(config["num_hidden_layers"])
        head_dim = config.get("head_dim") or hidden_size // num_heads
        return cls(
            vocab_size=int(config["vocab_size"]),
            hidden_size=hidden_size,
            intermediate_size=int(config["intermediate_size"]),
            num_hidden_layers=total_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=int(config.get("num_key_value_heads") or num_heads),
            head_dim=int(head_dim),
            num_layers=total_layers if num_layers is None else int(num_layers),
            rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope_theta=float(rope_theta),
            rope_scaling=rope_scaling,
            max_position_embeddings=int(config.get("max_position_embeddings", 2048)),
            attention_bias=False if is_qwen2 else bool(config.get("attention_bias", False)),
            qkv_bias=is_qwen2,
            mlp_bias=False if is_qwen2 else bool(config.get("mlp_bias", False)),
            attention_dropout=float(config.get("attention_dropout", 0.0)),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            model_type=model_type,
        )


def rope_inverse_frequencies(config: LlamaConfig) -> np.ndarray:
    """Per-pair inverse frequencies ``(head_dim // 2,)`` in float64, HF's default/linear/llama3."""
    exponents = np.arange(0, config.head_dim, 2, dtype=np.float64) / config.head_dim
    inv_freq = 1.0 / (config.rope_theta**exponents)
    scaling = config.rope_scaling
    if scaling is None:
        return inv_freq
    if scaling.rope_type == "linear":
        return inv_freq / scaling.factor
    # llama3: long wavelengths are slowed down by `factor`, short ones kept, a smooth ramp between.
    old_context = scaling.original_max_position_embeddings
    low_freq_wavelen = old_context / scaling.low_freq_factor
    high_freq_wavelen = old_context / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (old_context / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(is_medium, smoothed, scaled)


def apply_rotary(x: jax.Array, positions: jax.Array, inv_freq: np.ndarray) -> jax.Array:
    """Rotates ``x`` (B, T, heads, head_dim) with HF's ``rotate_half`` layout, in float32.

    The two halves of each head are the (real, imaginary) parts, unlike llama.cpp's interleaved
    layout; GGUF weights must be un-permuted on load to match.
    """
    angles = positions[:, None].astype(jnp.float32) * jnp.asarray(inv_freq, jnp.float32)[None, :]
    angles = jnp.concatenate([angles, angles], axis=-1)  # (T, head_dim)
    cos = jnp.cos(angles)[None, :, None, :]
    sin = jnp.sin(angles)[None, :, None, :]
    x32 = x.astype(jnp.float32)
    first, second = jnp.split(x32, 2, axis=-1)
    rotated = jnp.concatenate([-second, first], axis=-1)
    return (x32 * cos + rotated * sin).astype(x.dtype)


class RMSNorm(nn.Module):
    """HF LlamaRMSNorm: normalise in float32, cast back, then scale by ``weight``."""

    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), self.param_dtype)
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        return weight.astype(self.dtype) * x32.astype(self.dtype)


class LlamaAttention(nn.Module):
    config: LlamaConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        config = self.config
        length = x.shape[1]
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        head_dim = config.head_dim
        bias = config.attention_bias or config.qkv_bias
        linear = dense_for(self)
        query = linear(heads * head_dim, "q_proj", use_bias=bias)(x)
        key = linear(kv_heads * head_dim, "k_proj", use_bias=bias)(x)
        value = linear(kv_heads * head_dim, "v_proj", use_bias=bias)(x)
        query = split_heads(query, heads)
        key, value = split_heads(key, kv_heads), split_heads(value, kv_heads)
        positions = jnp.arange(length)
        inv_freq = rope_inverse_frequencies(config)
        query = apply_rotary(query, positions, inv_freq)
        key = apply_rotary(key, positions, inv_freq)
        use_dropout = not deterministic and config.attention_dropout > 0.0
        out = causal_attention(
            query,
            key,
            value,
            dropout_rate=config.attention_dropout,
            deterministic=deterministic,
            dropout_rng=self.make_rng("dropout") if use_dropout else None,
        )
        output = linear(config.hidden_size, "o_proj", use_bias=config.attention_bias)
        return output(merge_heads(out))


class LlamaMLP(nn.Module):
    config: LlamaConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        config = self.config
        width, bias = config.intermediate_size, config.mlp_bias
        linear = dense_for(self)
        gate = linear(width, "gate_proj", use_bias=bias)(x)
        up = linear(width, "up_proj", use_bias=bias)(x)
        return linear(config.hidden_size, "down_proj", use_bias=bias)(nn.silu(gate) * up)


class LlamaDecoderLayer(nn.Module):
    config: LlamaConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        eps = self.config.rms_norm_eps
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        attn_in = RMSNorm(eps, name="input_layernorm", **dtypes)(x)
        x = x + LlamaAttention(self.config, name="self_attn", **precision(self))(
            attn_in, deterministic=deterministic
        )
        mlp_in = RMSNorm(eps, name="post_attention_layernorm", **dtypes)(x)
        return x + LlamaMLP(self.config, name="mlp", **precision(self))(mlp_in)


class LlamaLayerCollection(nn.Module):
    """Holds the kept decoder layers under ``layers/{i}`` (HF Flax naming)."""

    config: LlamaConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(
        self, x: jax.Array, *, deterministic: bool = True, return_hidden_states: bool = False
    ) -> jax.Array | tuple[jax.Array, ...]:
        """The last layer's output, or every layer's (``return_hidden_states``), in order."""
        hidden_states = []
        for index in range(self.config.num_layers):
            layer = LlamaDecoderLayer(self.config, name=str(index), **precision(self))
            x = layer(x, deterministic=deterministic)
            hidden_states.append(x)
        return tuple(hidden_states) if return_hidden_states else x


class LlamaModel(CausalLM):
    """LLaMA decoder: ``inputs_embeds (B, T, D) -> hidden (B, T, D)`` after the final RMSNorm.

    ``__call__`` never touches ``embed_tokens``; ``embed``/``logits``/``lm_logits`` come from
    ``CausalLM``.
    """

    TOKEN_EMBEDDING = "embed_tokens"

    config: LlamaConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    def setup(self):
        config = self.config
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        self.embed_tokens = token_embedding(config.vocab_size, config.hidden_size, dtypes)
        self.layers = LlamaLayerCollection(config, **precision(self))
        self.norm = RMSNorm(config.rms_norm_eps, **dtypes)
        self.lm_head = untied_lm_head(config, dtypes)

    def __call__(
        self, inputs_embeds: jax.Array, *, deterministic: bool = True, return_hidden_states=False
    ) -> jax.Array | tuple[jax.Array, tuple[jax.Array, ...]]:
        """Final-normed hidden states; with ``return_hidden_states`` also every layer's output
        (before the final norm; apply it with ``final_norm``) as ``(hidden, per_layer)``."""
        hidden = inputs_embeds.astype(self.dtype)
        per_layer = self.layers(hidden, deterministic=deterministic, return_hidden_states=True)
        output = self.norm(per_layer[-1])
        return (output, per_layer) if return_hidden_states else output

    def final_norm(self, hidden: jax.Array) -> jax.Array:
        return self.norm(hidden)
