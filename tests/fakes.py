"""A tiny in-memory 'pretrained' backbone with the `harjax.weights.Backbone` attributes."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from harjax.models.llama import LlamaConfig, LlamaModel


@dataclasses.dataclass
class FakeBackbone:
    name: str
    spec: str
    config: Any
    module: Any
    params: dict
    content_hash: str


def tiny_llama_backbone(seed: int = 0, num_layers: int = 2) -> FakeBackbone:
    config = LlamaConfig(
        vocab_size=11,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=4,
        num_layers=num_layers,
    )
    module = LlamaModel(config)
    params = module.init(jax.random.key(seed), jnp.zeros((1, 4, 16)))["params"]
    return FakeBackbone("llama", f"tiny-llama-{seed}", config, module, params, f"hash{seed}")
