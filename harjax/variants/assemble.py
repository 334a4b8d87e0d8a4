"""Builds a runnable experiment model from a config: HAR model, frozen tree, trainable tree.

This is the one place where the method's pieces meet: the backbone (loaded, random or none),
the projection, LoRA adapters beside the backbone's kernels, and the decision of what trains.

Variants (`config.model.variant`):
  pretrained  frozen pretrained backbone + LoRA (the method)
  random      same architecture and LoRA; every frozen tensor drawn i.i.d. normal with the
              pretrained tensor's own mean and std (`model.random_weights` 'matched'; 'init' =
              the architecture's std-0.02 init, as before), see `harjax.variants.controls`
  shuffled    same, the pretrained tensors with their entries permuted within each tensor
  none        projection + pooling + head, no backbone
  scratch     a small LLaMA-style transformer trained from scratch, every parameter trainable
(`classical` — features + ExtraTrees — is not a neural model; see `harjax.variants.classical`.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from harjax import lora, precision
from harjax.models.har import HARModel
from harjax.models.llama import LlamaConfig, LlamaModel
from harjax.models.projection import ProjectionConfig
from harjax.tree import flatten_params
from harjax.variants import calibration, controls
from harjax.weights.common import check_params, content_hash

Params = dict[str, Any]
NEURAL_VARIANTS = ("pretrained", "random", "shuffled", "none", "scratch")
#: Variants that need the pretrained backbone loaded.
BACKBONE_VARIANTS = ("pretrained", *controls.CONTROL_VARIANTS)

# What trains besides LoRA: the projection and the head, always.
_ALWAYS_TRAINABLE = [r"^projection/", r"^head_norm/", r"^head/", r"/lora/"]
# Optional LayerNorm tuning: the backbone's own norm scales/biases, the final norm included
# (GPT-2 ln_1/ln_2/ln_f, LLaMA input_/post_attention_layernorm and norm).
_BACKBONE_NORMS = r"^backbone/(.*/)?(ln_1|ln_2|ln_f|\w*layernorm|norm)/"


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
    # {'name': the compute dtype used, 'reason': why}: 'auto' resolved by capability.
    compute_dtype: dict[str, str] = dataclasses.field(default_factory=dict)
    # projection.calibrate: {'target_rms', 'rms_before', 'output_scale'} (jax scalars), else None
    calibration: dict[str, Any] | None = None

    def calibration_record(self) -> dict[str, float] | None:
        """The calibration figures as floats, for metrics.json."""
        if self.calibration is None:
            return None
        return {key: float(value) for key, value in self.calibration.items()}

    def param_counts(self) -> dict[str, float]:
        trainable = lora.count_params(self.trainable)
        total = trainable + lora.count_params(self.frozen)
        return {"total": total, "trainable": trainable, "fraction": trainable / max(total, 1)}

    def describe(self) -> str:
        counts = self.param_counts()
        return (
            f"variant={self.variant} backbone={self.backbone_spec}: total {counts['total']:,} "
            f"params, trainable {counts['trainable']:,} ({100 * counts['fraction']:.2f} %)"
        )


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


def _scratch_backbone(config: ml_collections.ConfigDict, dtype) -> LlamaModel:
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
    calibration_signal: jax.Array | None = None,
) -> Assembled:
    """Model + (trainable, frozen) trees for `config.model.variant`.

    `backbone` may be a pre-loaded `harjax.weights.Backbone` (sweeps load it once and reuse it);
    otherwise it is loaded from `config.backbone.spec` when the variant needs it.
    `calibration_signal` (B, window_length, C), e.g. a batch of normalised training windows, is
    what `projection.calibrate` and `model.standardize_features` measure at init; without it,
    `harjax.variants.calibration.calibration_signal` (seeded N(0, 1) windows).
    """
    variant = config.model.variant
    if variant not in NEURAL_VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {NEURAL_VARIANTS}")
    resolved_dtype = resolve_compute_dtype(str(config.backbone.dtype))
    compute_dtype = dtype_from_name(resolved_dtype["name"])
    adapters = lora_config(config)
    family, spec, module, loaded = None, "none", None, None
    if variant in BACKBONE_VARIANTS:
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
        # Everything trains: adapters would be redundant.
        adapters = dataclasses.replace(adapters, rank=0)
    else:
        d_model = int(config.model.d_model_none)
        adapters = dataclasses.replace(adapters, rank=0)

    model = HARModel(
        projection=projection_config(config),
        d_model=d_model,
        num_classes=num_classes,
        backbone=module,
        pooling=config.model.pooling,
        head_dropout=float(config.model.head_dropout),
        readout_layers=tuple(int(index) for index in config.model.readout_layers),
        final_norm=bool(config.model.final_norm),
        skip_first_token=bool(config.model.skip_first_token),
        standardize_features=bool(config.model.standardize_features),
        dtype=compute_dtype,
    )
    input_shape = (1, int(config.data.window_length), num_channels)
    # fold_in, not a wider split: the projection/head/LoRA draws stay those of earlier runs.
    init_rng, lora_rng = jax.random.split(rng)
    control_rng, signal_rng = jax.random.fold_in(rng, 1), jax.random.fold_in(rng, 2)
    init_full, init_without_backbone, shapes = _initializers(model, input_shape)
    if loaded is not None:
        check_params(
            {p: tuple(v.shape) for p, v in flatten_params(loaded).items()},
            {p: tuple(v.shape) for p, v in flatten_params(shapes["backbone"]).items()},
            source=f"backbone {spec!r}",
        )
    if variant == "pretrained" or (
        variant in controls.CONTROL_VARIANTS and config.model.random_weights == "matched"
    ):
        params = init_without_backbone(init_rng)
        params["backbone"] = (
            loaded
            if variant == "pretrained"
            else controls.control_backbone(variant, loaded, control_rng)
        )
    else:
        params = init_full(init_rng)
        if variant in controls.CONTROL_VARIANTS:  # random_weights 'init': the module's own init
            if variant == "shuffled":
                raise ValueError("model.variant 'shuffled' needs model.random_weights 'matched'")
            params["backbone"] = jax.tree.map(
                lambda x, ref: x.astype(ref.dtype), params["backbone"], loaded
            )

    record = None
    needs_signal = config.projection.calibrate != "none" or config.model.standardize_features
    if needs_signal and calibration_signal is None:
        calibration_signal = calibration.calibration_signal(
            signal_rng, int(config.data.window_length), num_channels
        )
    if config.projection.calibrate == "embedding_rms":
        target, _ = calibration.embedding_rms(backbone if variant in BACKBONE_VARIANTS else None)
        params["projection"], record = calibration.calibrate_projection(
            model.projection,
            d_model,
            compute_dtype,
            params["projection"],
            calibration_signal,
            target,
        )
    if config.model.standardize_features:
        # Statistics of the model at init (LoRA is the identity then), fixed from here on.
        features = model.apply({"params": params}, calibration_signal, return_features=True)
        params["feature_mean"] = features.mean(axis=0)
        params["feature_std"] = jnp.sqrt(features.var(axis=0) + 1e-6)
    if "backbone" in params and adapters.rank > 0:
        params["backbone"] = lora.add_lora(
            lora_rng, params["backbone"], adapters, adapters.target_regex(family)
        )

    patterns = list(_ALWAYS_TRAINABLE)
    if variant == "scratch":
        patterns.append(r"^backbone/")
    elif config.model.tune_norms:
        patterns.append(_BACKBONE_NORMS)
    trainable, frozen = lora.split_params(params, lora.trainable_predicate(patterns))
    if variant == "pretrained":
        backbone_hash = backbone.content_hash
    elif "backbone" in frozen:  # a drawn backbone: the hash of what was drawn
        backbone_hash = content_hash({"backbone": frozen["backbone"]})
    else:
        backbone_hash = "none"
    return Assembled(
        model=model,
        trainable=trainable,
        frozen=frozen,
        lora_config=adapters,
        variant=variant,
        backbone_spec=spec,
        backbone_hash=backbone_hash,
        family=family,
        compute_dtype=resolved_dtype,
        calibration=record,
    )
