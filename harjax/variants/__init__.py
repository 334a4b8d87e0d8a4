"""The variants of the comparison, each defined once: what it builds, freezes and trains.

`VARIANTS` is the one table every layer reads: `assemble` (which model, which backbone tree,
what trains), `run.validate` (its config checks), the run loop (neural or not, which runs can
share a compiled program), the sweeps (their order and names, which a transfer run allows,
the probe's backbones) and the tables (their order). A new variant is one `Variant` here plus
its model module.

  pretrained  frozen pretrained backbone + LoRA (the method)
  random      same architecture and LoRA; every frozen tensor drawn i.i.d. normal with the
              pretrained tensor's own mean and std (`model.random_weights` 'matched'; 'init' =
              the architecture's std-0.02 init), see `controls`
  shuffled    same, the pretrained tensors with their entries permuted within each tensor
  none        projection + pooling + head, no backbone
  scratch     a small LLaMA-style transformer trained from scratch, every parameter trainable
  cnn         a plain 1-D CNN on the window (`models.cnn`), the field's default baseline;
              no projection, no backbone, every parameter trainable
  classical   statistical features + ExtraTrees (`classical`): not neural, fitted once

The package's modules: `build` (config -> the model each variant trains), `assemble` (config ->
model, trainable tree, frozen tree), `controls` (the random/shuffled backbones), `calibration`
(the projection's output scale), `classical` (the features + ExtraTrees baseline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from harjax.variants import build, controls

# What trains in every model with a projection and head: those, and LoRA adapters where added.
HEAD_AND_ADAPTERS = (r"^projection/", r"^head_norm/", r"^head/", r"/lora/")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the comparison.

    `build(config, backbone, dtype, num_classes)` returns the `build.Built` model (None for a
    variant that is not neural); `trainable` are regexes over parameter paths, everything else
    is frozen; `adapters`: LoRA beside the frozen backbone's kernels; `control(pretrained tree,
    rng)` redraws the frozen backbone (the referee's controls); `program`: runs of variants with
    one program name differ only in frozen values and can train as one batched program (None:
    the run trains alone); `transferable`: a transfer run may carry its trainable tree between
    datasets (one fixed frozen backbone); `checks(config)` are its own config problems;
    `section`: a config section only this variant reads, added after results existed, so it
    is left out of the other variants' fingerprints (their older records still match).
    """

    name: str
    build: Callable[..., build.Built] | None
    trainable: tuple[str, ...] = HEAD_AND_ADAPTERS
    loads_backbone: bool = False
    adapters: bool = False
    control: Callable[[Any, Any], Any] | None = None
    program: str | None = None
    transferable: bool = False
    checks: Callable[[ml_collections.ConfigDict], list[str]] = lambda config: []
    section: str | None = None

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


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant(
            "pretrained",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            program="pretrained",
            transferable=True,
        ),
        Variant(
            "random",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            control=controls.random_like,
            program="pretrained",  # its seed draws the backbone: seeds share no tree to transfer
        ),
        Variant(
            "shuffled",
            build.pretrained_model,
            loads_backbone=True,
            adapters=True,
            control=controls.shuffled_like,
            program="pretrained",
            checks=_shuffled_checks,
        ),
        Variant("none", build.no_backbone_model, program="none", transferable=True),
        Variant(
            "scratch",
            build.scratch_model,
            trainable=(*HEAD_AND_ADAPTERS, r"^backbone/"),
            program="scratch",
            transferable=True,
            checks=_scratch_checks,
        ),
        Variant(
            "cnn",
            build.cnn_model,
            trainable=(r"^conv_\d+/", r"^head/"),
            program="cnn",
            transferable=True,
            section="cnn",
        ),
        Variant("classical", None, trainable=()),  # no trainable tree to transfer
    )
}
NAMES = tuple(VARIANTS)
#: The referee's controls: the pretrained backbone's statistics without its learning.
CONTROLS = tuple(name for name, v in VARIANTS.items() if v.control is not None)
#: Variants built on the pretrained checkpoint (pretrained and its controls; the probe's).
BACKBONE_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.loads_backbone)
TRANSFER_VARIANTS = tuple(name for name, v in VARIANTS.items() if v.transferable)


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
