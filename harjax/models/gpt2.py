"""Flax Linen GPT-2 backbone that consumes input embeddings (no token lookup in ``__call__``).

Numerics follow the Hugging Face PyTorch reference (``transformers`` ``modeling_gpt2``):
learned positions added to the inputs, pre-LayerNorm blocks, GELU (tanh approximation for
``gelu_new``), causal attention. Parameter names are those of the old HF Flax GPT-2 without the
``transformer`` prefix, but every projection is an ``nn.Dense`` with a ``(in, out)`` kernel (HF
Flax's ``FlaxConv1D`` stored ``(out, in)``; the loader converts), so a LoRA transform can
intercept ``nn.Dense.__call__`` by module path. No LoRA or HAR code lives here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from harjax.models.attention import causal_attention, merge_heads, split_heads
from harjax.models.causal_lm import CausalLM, token_embedding, untied_lm_head
from harjax.models.matmul import dense_for, precision

Dtype = Any


# HF activation names -> functions; `gelu_new` and `gelu_pytorch_tanh` are the tanh approximation.
_ACTIVATIONS = {
    "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_pytorch_tanh": functools.partial(jax.nn.gelu, approximate=True),
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class GPT2Config:
    """Architecture of a GPT-2 checkpoint plus ``num_layers``, the blocks kept (GPT4TS keeps 6)."""

    vocab_size: int
    max_position_embeddings: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    num_layers: int
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"GPT2Config: hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}."
            )
        if self.activation_function not in _ACTIVATIONS:
            raise ValueError(
                f"GPT2Config: unsupported activation_function {self.activation_function!r} "
                f"(supported: {sorted(_ACTIVATIONS)})."
            )
        if not 1 <= self.num_layers <= self.num_hidden_layers:
            raise ValueError(
                f"GPT2Config: num_layers must be in [1, {self.num_hidden_layers}] "
                f"(the checkpoint has n_layer={self.num_hidden_layers}), got {self.num_layers}."
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, config: dict[str, Any], *, num_layers: int | None = None) -> GPT2Config:
        """Builds the config from an HF GPT-2 ``config.json`` dict; unsupported options raise."""
        model_type = config.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ValueError(
                f"GPT2Config.from_hf: expected model_type 'gpt2', found {model_type!r}."
            )
        if config.get("add_cross_attention", False):
            raise ValueError("GPT2Config.from_hf: add_cross_attention=True is not supported.")
        hidden_size = int(config["n_embd"])
        total_layers = int(config["n_layer"])
        # reorder_and_upcast_attn only changes fp16 numerics in torch; we softmax in float32 anyway.
        return cls(
            vocab_size=int(config["vocab_size"]),
            max_position_embeddings=int(config["n_positions"]),
            hidden_size=hidden_size,
            num_hidden_layers=total_layers,
            num_attention_heads=int(config["n_head"]),
            intermediate_size=int(config.get("n_inner") or 4 * hidden_size),
            num_layers=total_layers if num_layers is None else int(num_layers),
            activation_function=config.get("activation_function", "gelu_new"),
            layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-5)),
            resid_pdrop=float(config.get("resid_pdrop", 0.1)),
            embd_pdrop=float(config.get("embd_pdrop", 0.1)),
            attn_pdrop=float(config.get("attn_pdrop", 0.1)),
            scale_attn_weights=bool(config.get("scale_attn_weights", True)),
            scale_attn_by_inverse_layer_idx=bool(
                config.get("scale_attn_by_inverse_layer_idx", False)
            ),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", True)),
        )


class GPT2Attention(nn.Module):
    config: GPT2Config
    layer_index: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        config = self.config
        width = x.shape[-1]
        linear = dense_for(self)
        # c_attn's output columns are [query | key | value], each (heads * head_dim) wide.
        qkv = linear(3 * width, "c_attn")(x)
        query, key, value = (
            split_heads(part, config.num_attention_heads) for part in jnp.split(qkv, 3, axis=-1)
        )
        scale = 1.0 / math.sqrt(config.head_dim) if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            scale /= self.layer_index + 1
        use_dropout = not deterministic and config.attn_pdrop > 0.0
        out = causal_attention(
            query,
            key,
            value,
            dropout_rate=config.attn_pdrop,
            deterministic=deterministic,
            dropout_rng=self.make_rng("dropout") if use_dropout else None,
            scale=scale,
        )
        out = linear(width, "c_proj")(merge_heads(out))
        return nn.Dropout(config.resid_pdrop)(out, deterministic=deterministic)


class GPT2MLP(nn.Module):
    config: GPT2Config
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        config = self.config
        linear = dense_for(self)
        hidden = linear(config.intermediate_size, "c_fc")(x)
        hidden = _ACTIVATIONS[config.activation_function](hidden)
        out = linear(config.hidden_size, "c_proj")(hidden)
        return nn.Dropout(config.resid_pdrop)(out, deterministic=deterministic)


class GPT2Block(nn.Module):
    config: GPT2Config
    layer_index: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    @nn.compact
    def __call__(self, x: jax.Array, *, deterministic: bool = True) -> jax.Array:
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        eps = self.config.layer_norm_epsilon
        attn = GPT2Attention(self.config, self.layer_index, name="attn", **precision(self))
        x = x + attn(nn.LayerNorm(eps, name="ln_1", **dtypes)(x), deterministic=deterministic)
        mlp = GPT2MLP(self.config, name="mlp", **precision(self))
        return x + mlp(nn.LayerNorm(eps, name="ln_2", **dtypes)(x), deterministic=deterministic)


class GPT2BlockCollection(nn.Module):
    """Holds the kept blocks under ``h/{i}`` (HF Flax naming)."""

    config: GPT2Config
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
            block = GPT2Block(self.config, index, name=str(index), **precision(self))
            x = block(x, deterministic=deterministic)
            hidden_states.append(x)
        return tuple(hidden_states) if return_hidden_states else x


class GPT2Model(CausalLM):
    """GPT-2 decoder: ``inputs_embeds (B, T, D) -> hidden (B, T, D)`` after ``ln_f``.

    ``__call__`` adds the learned positions ``wpe`` (as HF does for ``inputs_embeds``) but never
    touches ``wte``; ``embed``/``logits``/``lm_logits`` come from ``CausalLM``.
    """

    TOKEN_EMBEDDING = "wte"

    config: GPT2Config
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    accumulate_in_float32: bool = True  # bf16/f16 matmuls (see harjax.models.matmul.dense)

    def setup(self):
        config = self.config
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        self.wte = token_embedding(config.vocab_size, config.hidden_size, dtypes)
        self.wpe = token_embedding(config.max_position_embeddings, config.hidden_size, dtypes)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = GPT2BlockCollection(config, **precision(self))
        self.ln_f = nn.LayerNorm(config.layer_norm_epsilon, **dtypes)
        self.lm_head = untied_lm_head(config, dtypes)

    def __call__(
        self, inputs_embeds: jax.Array, *, deterministic: bool = True, return_hidden_states=False
    ) -> jax.Array | tuple[jax.Array, tuple[jax.Array, ...]]:
        """Hidden states after ``ln_f``; with ``return_hidden_states`` also every block's output
        (before ``ln_f``; apply it with ``final_norm``) as ``(hidden, per_layer)``."""
        length = inputs_embeds.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(
                f"GPT2Model: inputs_embeds {inputs_embeds.shape} has {length} tokens, more than "
                f"n_positions={self.config.max_position_embeddings}."
            )
        hidden = inputs_embeds.astype(self.dtype) + self.wpe(jnp.arange(length))[None]
        hidden = self.drop(hidden, deterministic=deterministic)
        per_layer = self.h(hidden, deterministic=deterministic, return_hidden_states=True)
        output = self.ln_f(per_layer[-1])
        return (output, per_layer) if return_hidden_states else output

    def final_norm(self, hidden: jax.Array) -> jax.Array:
        return self.ln_f(hidden)
