"""Builds a runnable experiment model from a config: model, trainable tree, frozen tree.

This is the one place where the method's pieces meet, the same for every variant (the
variant's own part is its `harjax.variants.Variant`: which model, which backbone tree, what
trains): the backbone (loaded, a control drawn from it, or none), LoRA adapters beside the
frozen kernels, the projection's calibration, and the split into what trains and what not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from harjax import lora, variants
from harjax.models.har import HARModel
from harjax.tree import flatten_params
from harjax.variants import calibration
from harjax.variants.build import dtype_from_name, lora_config, resolve_compute_dtype
from harjax.weights.common import check_params, content_hash

Params = dict[str, Any]
# Optional LayerNorm tuning: the backbone's own norm scales/biases, the final norm included
# (GPT-2 ln_1/ln_2/ln_f, LLaMA input_/post_attention_layernorm and norm).
_BACKBONE_NORMS = r"^backbone/(.*/)?(ln_1|ln_2|ln_f|\w*layernorm|norm)/"


@dataclasses.dataclass
class Assembled:
    model: Any  # a Flax module (`harjax.variants.build.Built.model`)
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


# Jitted initialisers per model structure: a sweep of many runs compiles each once.
_INIT_CACHE: dict[tuple, tuple] = {}


def _initializers(model, input_shape: tuple[int, ...]):
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
    name = config.model.variant
    variant = variants.get(name)
    if not variant.neural:
        raise ValueError(f"model variant {name!r} is not a neural model; assemble builds those")
    problems = variant.checks(config)
    if problems:
        raise ValueError("; ".join(problems))
    resolved_dtype = resolve_compute_dtype(str(config.backbone.dtype))
    compute_dtype = dtype_from_name(resolved_dtype["name"])
    adapters = lora_config(config)
    if not variant.adapters:  # no frozen backbone to adapt (or everything trains)
        adapters = dataclasses.replace(adapters, rank=0)
    if variant.loads_backbone and backbone is None:
        backbone = variants.load_backbone(variants.backbone_source(config))
    built = variant.build(config, backbone, compute_dtype, num_classes)
    model, loaded = built.model, built.loaded
    input_shape = (1, int(config.data.window_length), num_channels)
    # fold_in, not a wider split: the projection/head/LoRA draws stay those of earlier runs.
    init_rng, lora_rng = jax.random.split(rng)
    control_rng, signal_rng = jax.random.fold_in(rng, 1), jax.random.fold_in(rng, 2)
    init_full, init_without_backbone, shapes = _initializers(model, input_shape)
    if loaded is not None:
        check_params(
            {p: tuple(v.shape) for p, v in flatten_params(loaded).items()},
            {p: tuple(v.shape) for p, v in flatten_params(shapes["backbone"]).items()},
            source=f"backbone {built.backbone_spec!r}",
        )
    if loaded is not None and (variant.control is None or config.model.random_weights == "matched"):
        params = init_without_backbone(init_rng)
        control = variant.control
        params["backbone"] = loaded if control is None else control(loaded, control_rng)
    else:
        params = init_full(init_rng)
        if loaded is not None:  # a control with random_weights 'init': the module's own init
            params["backbone"] = jax.tree.map(
                lambda x, ref: x.astype(ref.dtype), params["backbone"], loaded
            )

    record = None
    if isinstance(model, HARModel):
        record = _calibrate(
            config,
            model,
            params,
            backbone if variant.loads_backbone else None,
            calibration_signal,
            signal_rng,
            num_channels,
        )
    if "backbone" in params and adapters.rank > 0:
        params["backbone"] = lora.add_lora(
            lora_rng, params["backbone"], adapters, adapters.target_regex(built.family)
        )

    patterns = list(variant.trainable)
    if config.model.tune_norms:
        patterns.append(_BACKBONE_NORMS)
    trainable, frozen = lora.split_params(params, lora.trainable_predicate(patterns))
    if loaded is not None and variant.control is None:
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
        variant=name,
        backbone_spec=built.backbone_spec,
        backbone_hash=backbone_hash,
        family=built.family,
        compute_dtype=resolved_dtype,
        calibration=record,
    )


def _calibrate(config, model: HARModel, params, backbone, signal, signal_rng, num_channels):
    """`projection.calibrate` and `model.standardize_features`, measured at init on `signal`
    (seeded N(0, 1) windows when None); updates `params`, returns the calibration record."""
    record = None
    needs_signal = config.projection.calibrate != "none" or config.model.standardize_features
    if needs_signal and signal is None:
        signal = calibration.calibration_signal(
            signal_rng, int(config.data.window_length), num_channels
        )
    if config.projection.calibrate == "embedding_rms":
        target, _ = calibration.embedding_rms(backbone)
        params["projection"], record = calibration.calibrate_projection(
            model.projection, model.d_model, model.dtype, params["projection"], signal, target
        )
    if config.model.standardize_features:
        # Statistics of the model at init (LoRA is the identity then), fixed from here on.
        features = model.apply({"params": params}, signal, return_features=True)
        params["feature_mean"] = features.mean(axis=0)
        params["feature_std"] = jnp.sqrt(features.var(axis=0) + 1e-6)
    return record
