"""Shared tiny configs for tests (no files, no downloads)."""

from __future__ import annotations

import ml_collections

from configs.default import get_config


def tiny_config(variant: str = "random", window_length: int = 32) -> ml_collections.ConfigDict:
    c = get_config()
    c.data.window_length = window_length
    c.model.variant = variant
    c.backbone.dtype = "float32"  # 'auto' differs between CPU kinds; tests compare exact numbers
    c.model.head_dropout = 0.0
    c.model.d_model_none = 16
    c.projection.kernel_sizes = (3, 5)
    c.projection.channels = 4
    c.projection.strides = (2, 2)
    c.lora.rank = 2
    c.lora.alpha = 4.0
    c.scratch.num_layers = 1
    c.scratch.hidden_size = 16
    c.scratch.intermediate_size = 32
    c.scratch.num_heads = 2
    c.cnn.channels = 8
    c.train.batch_size = 4
    return c
