"""The variants of the comparison, each defined once: its role, what it builds, freezes and
trains (or, for a baseline that is not a network, how it fits and scores), and its setting.

`VARIANTS` is the one table every layer reads: `assemble` (which model, which backbone tree,
what trains), `run.validate` (its config checks), the run loop (steps or one fit, which runs can
share a compiled program), the sweeps (their order and names, the setting each is tried with,
which a transfer run allows, the probe's backbones) and the tables and the summary (their order,
the reference, the controls, the baselines). A new variant is one `Variant` here plus its
builder (a model in `build`, or a `fit` function for a baseline that is not a network).

  role      variant     what it is
  method    pretrained  frozen pretrained backbone + LoRA
  control   random      same architecture and LoRA; every frozen tensor drawn i.i.d. normal with
                        the pretrained tensor's own mean and std (`model.random_weights`
                        'matched'; 'init' = the architecture's std-0.02 init), see `controls`
  control   shuffled    same, the pretrained tensors with their entries permuted within each
  control   none        projection + pooling + head, no backbone
  control   scratch     a small LLaMA-style transformer trained from scratch, all trainable
  baseline  cnn         a plain 1-D CNN on the window (`models.cnn`), the field's default
                        network; no projection, no backbone, every parameter trainable
  baseline  classical   statistical features + ExtraTrees (`classical`): one fit, no steps
  baseline  rocket      MultiRocket features + ridge (`rocket`, sktime: the `baselines`
                        extra): one fit, no steps

Roles: the method is what the paper claims; a control is the method with one ingredient taken
away (the pretrained weights, the backbone), so the method must beat its best control for the
ingredient to count; a baseline is what a practitioner would use instead. The summary compares
the method with its best control (chosen on validation) and with every baseline.

The package's modules: `build` (config -> the model each variant trains), `assemble` (config ->
model, trainable tree, frozen tree), `controls` (the random/shuffled backbones), `calibration`
(the projection's output scale), `classical` and `rocket` (the baselines that are not networks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from harjax.variants import build, controls, rocket

# What trains in every model with a projection and head: those, and LoRA adapters where added.
HEAD_AND_ADAPTERS = (r"^projection/", r"^head_norm/", r"^head/", r"/lora/")
ROLES = ("method", "control", "baseline")


@dataclasses.dataclass(frozen=True)
class Setting:
    """The one setting a variant's runs are tried with, chosen per (variant, k) on validation
    (`harjax.sweeps.protocol`).

    The value lives in `config.<section>.<field>`; `field` is also the run's tag and its
    results.csv column. The sweep tries `config.sweep.<grid>` (comma-separated; '' = the
    config's one value). `slug` and `label` format one value for a run directory ('lr0.001')
    and for the settings table ('lr 0.001').
    """

    section: str
    field: str
    grid: str
    slug: str
    label: str
    kind: type = float


LEARNING_RATE = Setting("optim", "learning_rate", "learning_rates", "lr{:g}", "lr {:g}")
FOREST_SIZE = Setting("classical", "num_trees", "classical_trees", "trees{}", "{} trees", int)
RIDGE_ALPHA = Setting("rocket", "ridge_alpha", "rocket_alphas", "alpha{:g}", "alpha {:g}")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the comparison.

    `role`: 'method', 'control' or 'baseline' (module docstring). A network has `build(config,
    backbone, dtype, num_classes)`, which returns the `build.Built` model; `trainable` are
    regexes over parameter paths, everything else is frozen; `adapters`: LoRA beside the frozen
    backbone's kernels; `control(pretrained tree, rng)` redraws the frozen backbone (the
    referee's controls); `program`: runs of variants with one program name differ only in
    frozen values and can train as one batched program (None: the run trains alone);
    `transferable`: a transfer run may carry its trainable tree between datasets (one fixed
    frozen backbone). A baseline that is not a network has `fit(config, channel_names, signals,
    labels)` instead, which returns a fitted model with `predict(signals)`, `num_parameters()`
    and `compute_dtype` (the result's record); the run loop fits it once on the run's raw
    training windows and scores it like every run. Every variant has its `setting` (chosen on
    validation), `checks(config)`, its own config problems, and `section`: a config section
    only this variant reads, added after results existed, so it is left out of the other
    variants' fingerprints (their older records still match).
    """

    name: str
    role: str
    build: Callable[..., build.Built] | None = None
    fit: Callable[..., Any] | None = None
    setting: Setting = LEARNING_RATE
    trainable: tuple[str, ...] = HEAD_AND_ADAPTERS
    loads_backbone: bool = False
    adapters: bool = False
    control: Callable[[Any, Any], Any] | None = None
    program: str | None = None
    transferable: bool = False
    checks: Callable[[ml_collections.ConfigDict], list[str]] = lambda config: []
    section: str | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"variant {self.name!r}: role {self.role!r} is not one of {ROLES}")
        if (self.build is None) == (self.fit is None):
            raise ValueError(f"variant {self.name!r}: needs one of build (a network) or fit")

    @property
    def neural(self) -> bool:
        return self.build is not None


def _scratch_checks(config) -> list[str]:
    if int(config.scratch.hidden_size) % int(config.scratch.num_heads):
        return [
            f"config.scratch.hidden_size {config.scratch.hidden_size} is not divisible by "
            f"config.scratch.num_heads {config.scratch.num_heads}"
        ]
    return []


def _shuffled_checks(config) -> list[str]:
    if config.model.random_weights != "matched":
        return ["config.model.variant 'shuffled' needs config.model.random_weights 'matched'"]
    return []


def _fit_classical(config, channel_names, signals, labels):
    from harjax.variants.classical import ClassicalBaseline  # sklearn's forest: seconds to import

    return ClassicalBaseline(
        num_trees=int(config.classical.num_trees),
        seed=int(config.seed),
        sample_rate=float(config.data.sample_rate),
        channel_names=tuple(channel_names),
    ).fit(signals, labels)


def _fit_rocket(config, channel_names, signals, labels):
    return rocket.RocketBaseline(
        num_kernels=int(config.rocket.num_kernels),
        ridge_alpha=float(config.rocket.ridge_alpha),
        seed=int(config.seed),
    ).fit(signals, labels)


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "pretrained",
            "method",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            program="pretrained",
            transferable=True,
        ),
        Variant(
            "random",
            "control",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            control=controls.random_like,
            program="pretrained",  # its seed draws the backbone: seeds share no tree to transfer
        ),
        Variant(
            "shuffled",
            "control",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            control=controls.shuffled_like,
            program="pretrained",
            checks=_shuffled_checks,
        ),
        Variant("none", "control", build.no_backbone_model, program="none", transferable=True),
        Variant(
            "scratch",
            "control",
            build.scratch_model,
            trainable=(*HEAD_AND_ADAPTERS, r"^backbone/"),
            program="scratch",
            transferable=True,
            checks=_scratch_checks,
        ),
        Variant(
            "cnn",
            "baseline",
            build.cnn_model,
            trainable=(r"^conv_\d+/", r"^head/"),
            program="cnn",
            transferable=True,
            section="cnn",
        ),
        # Not networks: no trainable tree to transfer, no program to share.
        Variant("classical", "baseline", fit=_fit_classical, setting=FOREST_SIZE, trainable=()),
        Variant(
            "rocket",
            "baseline",
            fit=_fit_rocket,
            setting=RIDGE_ALPHA,
            trainable=(),
            checks=rocket.checks,
            section="rocket",
        ),
    )
}
NAMES = tuple(VARIANTS)
#: The method: what every paired comparison is against (`pretrained`).
(REFERENCE,) = (name for name, v in VARIANTS.items() if v.role == "method")
#: The method with one ingredient taken away: the pretrained weights or the backbone.
CONTROLS = tuple(name for name, v in VARIANTS.items() if v.role == "control")
#: The referee's controls: the pretrained backbone's statistics without its learning (the
#: controls that redraw the backbone; the depth and probe studies run them per layer).
BACKBONE_CONTROLS = tuple(name for name, v in VARIANTS.items() if v.control is not None)
#: What a practitioner would use instead of the method.
BASELINES = tuple(name for name, v in VARIANTS.items() if v.role == "baseline")
#: Variants built on the pretrained checkpoint (pretrained and its controls; the probe's).
BACKBONE_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.loads_backbone)
TRANSFER_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.transferable)
#: Every variant's setting, once, in table order; their tags and results columns.
SETTINGS = tuple(dict.fromkeys(v.setting for v in VARIANTS.values()))
SETTING_FIELDS = tuple(setting.field for setting in SETTINGS)
#: What pairs runs of two variants: the same split seed (subjects) and seed (k-shot draw), so a
#: paired difference compares the variants on the same data.
PAIR_ON = ("split_seed", "seed")


def get(name: str) -> Variant:
    """The variant called `name`; an unknown name lists the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown model variant {name!r}; expected one of {NAMES}") from None


@dataclasses.dataclass(frozen=True)
class BackboneSource:
    """Which checkpoint, how many layers and which storage dtype a config's backbone is."""

    spec: str
    num_layers: int | None  # None: all
    param_dtype: str


def backbone_source(config: ml_collections.ConfigDict) -> BackboneSource | None:
    """The backbone `config.model.variant` loads (None for variants without one)."""
    if not get(config.model.variant).loads_backbone:
        return None
    backbone = config.backbone
    return BackboneSource(
        str(backbone.spec), int(backbone.num_layers or 0) or None, str(backbone.param_dtype)
    )


def load_backbone(source: BackboneSource):
    """The `harjax.weights.Backbone` of `source`: the one place a config's backbone loads."""
    from harjax.weights import load_backbone as load

    return load(
        source.spec, num_layers=source.num_layers, dtype=build.dtype_from_name(source.param_dtype)
    )
