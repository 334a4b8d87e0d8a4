"""Builds a runnable experiment model from a config: HAR model, frozen tree, trainable tree.

This is the one place where the method's pieces meet: the backbone (loaded, random or none),
the projection, LoRA adapters beside the backbone's kernels, and the decision of what trains.

Variants (`config.model.variant`):
  pretrained  frozen pretrained backbone + LoRA (the method)
  random      same architecture and LoRA, randomly initialised frozen weights (referee ablation 1)
  none        projection + pooling + head, no backbone
  scratch     a small LLaMA-style transformer trained from scratch, every parameter trainable
(`classical` — features + ExtraTrees — is not a neural model; see `harjax.classical`.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from harjax import lora
from harjax.models.har import HARModel
from harjax.models.llama import LlamaConfig, LlamaModel
from harjax.models.projection import ProjectionConfig
from harjax.tree import flatten_params
from harjax.weights.common import check_params, content_hash

Params = dict[str, Any]
NEURAL_VARIANTS = ("pretrained", "random", "none", "scratch")

# What trains besides LoRA: the projection and the head, always.
_ALWAYS_TRAINABLE = [r"^projection/", r"^head_norm/", r"^head/", r"/lora/"]
# Optional LayerNorm tuning: the backbone's own norm scales/biases.
_BACKBONE_NORMS = r"^backbone/.*(ln_1|ln_2|ln_f|layernorm|/norm)/"


@dataclasses.dataclass
class Assembled:
    model: HARModel
    trainable: Params
    frozen: Params
    lora_config: lora.LoraConfig
    variant: str
    backbone_spec: str
    backbone_hash: str  # content hash of the frozen backbone; checked on checkpoint restore
    family: str | None

    def param_counts(self) -> dict[str, float]:
        trainable = lora.count_params(self.trainable)
        total = trainable + lora.count_params(self.frozen)
        return {"total": total, "trainable": trainable, "fraction": trainable / max(total, 1)}

    def describe(self) -> str:
        c = self.param_counts()
        return (
            f"variant={self.variant} backbone={self.backbone_spec}: total {c['total']:,} params, "
            f"trainable {c['trainable']:,} ({100 * c['fraction']:.2f} %)"
        )


def dtype_from_name(name: str) -> jnp.dtype:
    try:
        return {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[name]
    except KeyError:
        raise ValueError(f"dtype must be float32, bfloat16 or float16, got {name!r}") from None


def projection_config(config: ml_collections.ConfigDict) -> ProjectionConfig:
    p = config.projection
    return ProjectionConfig(
        kernel_sizes=tuple(int(k) for k in p.kernel_sizes),
        channels=int(p.channels),
        strides=tuple(int(s) for s in p.strides),
        output_scale_init=float(p.get("output_scale_init", 1.0)),
    )


def lora_config(config: ml_collections.ConfigDict) -> lora.LoraConfig:
    c = config.lora
    return lora.LoraConfig(
        rank=int(c.rank), alpha=float(c.alpha), dropout=float(c.dropout), targets=c.targets or None
    )


def _scratch_backbone(config: ml_collections.ConfigDict, dtype) -> LlamaModel:
    s = config.scratch
    llama = LlamaConfig(
        vocab_size=1,
        hidden_size=int(s.hidden_size),
        intermediate_size=int(s.intermediate_size),
        num_hidden_layers=int(s.num_layers),
        num_attention_heads=int(s.num_heads),
        num_key_value_heads=int(s.num_heads),
        head_dim=int(s.hidden_size) // int(s.num_heads),
        num_layers=int(s.num_layers),
    )
    return LlamaModel(llama, dtype=dtype)


# Jitted initialisers per model structure: a sweep of many runs compiles each once.
_INIT_CACHE: dict[tuple, tuple] = {}


def _initializers(model: HARModel, input_shape: tuple[int, ...]):
    """(init_full, init_without_backbone, param_shapes) for `model`, cached by its structure.

    `init_without_backbone` leaves the (to be loaded) backbone out; XLA drops its random init.
    """
    key = (repr(model), input_shape)
    if key not in _INIT_CACHE:
        dummy = jnp.zeros(input_shape, jnp.float32)
        init_vars = lambda r: model.init({"params": r, "dropout": r}, dummy)["params"]
        without = lambda r: {k: v for k, v in init_vars(r).items() if k != "backbone"}
        shapes = jax.eval_shape(init_vars, jax.random.key(0))
        _INIT_CACHE[key] = (jax.jit(init_vars), jax.jit(without), shapes)
    return _INIT_CACHE[key]


def assemble(
    config: ml_collections.ConfigDict,
    *,
    num_classes: int,
    num_channels: int,
    rng: jax.Array,
    backbone=None,
) -> Assembled:
    """Model + (trainable, frozen) trees for `config.model.variant`.

    `backbone` may be a pre-loaded `harjax.weights.Backbone` (sweeps load it once and reuse it);
    otherwise it is loaded from `config.backbone.spec` when the variant needs it.
    """
    variant = config.model.variant
    if variant not in NEURAL_VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {NEURAL_VARIANTS}")
    compute_dtype = dtype_from_name(config.backbone.dtype)
    lcfg = lora_config(config)
    family, spec, module, loaded = None, "none", None, None
    if variant in ("pretrained", "random"):
        if backbone is None:
            from harjax.weights import load_backbone

            backbone = load_backbone(
                config.backbone.spec,
                num_layers=config.backbone.num_layers or None,
                dtype=dtype_from_name(config.backbone.param_dtype),
            )
        family, spec, loaded = backbone.name, backbone.spec, backbone.params
        module = backbone.module.clone(dtype=compute_dtype)
        d_model = backbone.config.hidden_size
    elif variant == "scratch":
        module, spec, family = _scratch_backbone(config, compute_dtype), "scratch", "llama"
        d_model = int(config.scratch.hidden_size)
        lcfg = dataclasses.replace(lcfg, rank=0)  # everything trains: adapters would be redundant
    else:
        d_model = int(config.model.d_model_none)
        lcfg = dataclasses.replace(lcfg, rank=0)

    model = HARModel(
        projection=projection_config(config),
        d_model=d_model,
        num_classes=num_classes,
        backbone=module,
        pooling=config.model.pooling,
        head_dropout=float(config.model.head_dropout),
        dtype=compute_dtype,
    )
    input_shape = (1, int(config.data.window_length), num_channels)
    init_rng, lora_rng = jax.random.split(rng)
    init_full, init_without_backbone, shapes = _initializers(model, input_shape)
    if variant == "pretrained":
        check_params(
            {p: tuple(v.shape) for p, v in flatten_params(loaded).items()},
            {p: tuple(v.shape) for p, v in flatten_params(shapes["backbone"]).items()},
            source=f"backbone {spec!r}",
        )
        params = init_without_backbone(init_rng)
        params["backbone"] = loaded
    else:
        params = init_full(init_rng)
        if variant == "random":
            params["backbone"] = jax.tree.map(
                lambda x, ref: x.astype(ref.dtype), params["backbone"], loaded
            )
    if "backbone" in params and lcfg.rank > 0:
        params["backbone"] = lora.add_lora(
            lora_rng, params["backbone"], lcfg, lcfg.target_regex(family)
        )

    patterns = list(_ALWAYS_TRAINABLE)
    if variant == "scratch":
        patterns.append(r"^backbone/")
    elif config.model.tune_norms:
        patterns.append(_BACKBONE_NORMS)
    trainable, frozen = lora.split_params(params, lora.trainable_predicate(patterns))
    backbone_hash = (
        backbone.content_hash
        if variant == "pretrained"
        else content_hash(frozen)
        if frozen
        else "none"
    )
    return Assembled(
        model=model,
        trainable=trainable,
        frozen=frozen,
        lora_config=lcfg,
        variant=variant,
        backbone_spec=spec,
        backbone_hash=backbone_hash,
        family=family,
    )
