"""Config -> the Flax model each neural variant trains (`Variant.build`), and the config readers
every variant shares (dtypes, projection, LoRA).

A builder returns a `Built`: the model, what its backbone is (spec, LoRA family, the loaded
pretrained tree when there is one) and the width its head reads. Initialising, controls,
calibration, LoRA and the trainable/frozen split are `assemble`'s, the same for every variant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from harjax import lora, precision
from harjax.models.cnn import PlainCNN
from harjax.models.har import HARModel
from harjax.models.llama import LlamaConfig, LlamaModel
from harjax.models.projection import ProjectionConfig


@dataclasses.dataclass(frozen=True)
class Built:
    """A variant's model before initialisation."""

    model: nn.Module  # called as model.apply({'params': ...}, signal, deterministic=...)
    backbone_spec: str  # the loaded spec, 'scratch' or 'none'
    family: str | None  # the backbone family (LoRA target presets), None without a backbone
    loaded: Any = None  # the pretrained backbone tree, for variants that load one


def dtype_from_name(name: str) -> jnp.dtype:
    """The jnp dtype a config names (``backbone.dtype``/``param_dtype``); unknown names raise."""
    try:
        return {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[name]
    except KeyError:
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {name!r}") from None


def resolve_compute_dtype(name: str) -> dict[str, str]:
    """`backbone.dtype` as run: {'name', 'reason'}; 'auto' asks `precision.resolve_compute_dtype`
    (bfloat16 where the device multiplies it natively, else float32)."""
    if name == "float16":  # not a capability choice: taken as asked
        return {"name": name, "reason": "float16 requested"}
    resolved, reason = precision.resolve_compute_dtype(name)
    return {"name": resolved, "reason": reason}


def projection_config(config: ml_collections.ConfigDict) -> ProjectionConfig:
    projection = config.projection
    return ProjectionConfig(
        kernel_sizes=tuple(int(size) for size in projection.kernel_sizes),
        channels=int(projection.channels),
        strides=tuple(int(stride) for stride in projection.strides),
        output_scale_init=float(projection.output_scale_init),
        norm=str(projection.norm),
        magnitude_channels=bool(projection.magnitude_channels),
    )


def lora_config(config: ml_collections.ConfigDict) -> lora.LoraConfig:
    settings = config.lora
    return lora.LoraConfig(
        rank=int(settings.rank),
        alpha=float(settings.alpha),
        dropout=float(settings.dropout),
        targets=settings.targets or None,
    )


def har_model(config, backbone: nn.Module | None, d_model: int, num_classes: int, dtype):
    """projection -> `backbone` (None: none) -> readout -> head, as `config.model` says."""
    return HARModel(
        projection=projection_config(config),
        d_model=d_model,
        num_classes=num_classes,
        backbone=backbone,
        pooling=config.model.pooling,
        head_dropout=float(config.model.head_dropout),
        readout_layers=tuple(int(index) for index in config.model.readout_layers),
        final_norm=bool(config.model.final_norm),
        skip_first_token=bool(config.model.skip_first_token),
        standardize_features=bool(config.model.standardize_features),
        dtype=dtype,
    )


def pretrained_model(config, backbone, dtype, num_classes: int) -> Built:
    """The loaded backbone's module in the HAR model (pretrained and its controls)."""
    module = backbone.module.clone(dtype=dtype)
    model = har_model(config, module, backbone.config.hidden_size, num_classes, dtype)
    return Built(model, backbone.spec, backbone.name, backbone.params)


def scratch_model(config, backbone, dtype, num_classes: int) -> Built:
    """A small LLaMA-style transformer of `config.scratch`'s size, randomly initialised."""
    scratch = config.scratch
    llama = LlamaConfig(
        vocab_size=1,
        hidden_size=int(scratch.hidden_size),
        intermediate_size=int(scratch.intermediate_size),
        num_hidden_layers=int(scratch.num_layers),
        num_attention_heads=int(scratch.num_heads),
        num_key_value_heads=int(scratch.num_heads),
        head_dim=int(scratch.hidden_size) // int(scratch.num_heads),
        num_layers=int(scratch.num_layers),
    )
    module = LlamaModel(llama, dtype=dtype)
    return Built(
        har_model(config, module, int(scratch.hidden_size), num_classes, dtype), "scratch", "llama"
    )


def no_backbone_model(config, backbone, dtype, num_classes: int) -> Built:
    """Projection, pooling and head only, `model.d_model_none` wide."""
    model = har_model(config, None, int(config.model.d_model_none), num_classes, dtype)
    return Built(model, "none", None)


def cnn_model(config, backbone, dtype, num_classes: int) -> Built:
    """The plain 1-D CNN of `config.cnn` on the normalised window (no projection, no backbone)."""
    model = PlainCNN(
        num_classes=num_classes,
        num_layers=int(config.cnn.num_layers),
        channels=int(config.cnn.channels),
        kernel_size=int(config.cnn.kernel_size),
        head_dropout=float(config.model.head_dropout),
        dtype=dtype,
    )
    return Built(model, "none", None)
