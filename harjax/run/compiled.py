"""Compiled train/eval steps shared between the runs of a sweep.

A sweep trains many models of the same structure; compiling the step once per structure instead
of once per run saves most of a small run's wall time. The cache is an object the caller holds
(a sweep creates one and passes it to every run), not module state: two sweeps in one process,
or a test, never see each other's programs.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import ml_collections
from jax.sharding import Mesh

from harjax import lora, train, variants


@dataclasses.dataclass
class Steps:
    optimizer: Any
    train_step: Any
    eval_step: Any


class StepCache:
    """`get(config, assembled, ...)` returns the `Steps` for that model structure, compiling once.

    The key is everything that shapes the computation: the model, projection, LoRA and optimizer
    sections (`optim.lora_learning_rate` among them: it adds a parameter group; the variant as
    its `Variant.program`), the model module itself (its backbone, and whatever a variant's own
    config section sets in it), class/channel counts, window length, the resolved step count
    (the schedule's length: callers pass `budget.resolve`d configs), the devices and the
    trainable tree's paths. The learning rate is a constant of its program, as when the run
    trains alone: a run gets the very program it would compile by itself, whichever runs share
    its loop (`harjax.run.program`). The eval step is shared by every optimizer setting.
    """

    def __init__(self):
        self._steps: dict[str, Steps] = {}
        self._eval_steps: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._steps)

    @staticmethod
    def key(config, assembled, num_classes: int, num_channels: int, mesh: Mesh) -> str:
        sections = ("model", "projection", "lora", "optim")
        parts: dict[str, Any] = {name: config[name].to_dict() for name in sections}
        # Variants of one program (pretrained, random, shuffled) differ only in frozen values,
        # which are arguments: one compilation.
        variant = parts["model"]["variant"]
        parts["model"]["variant"] = variants.get(variant).program or variant
        parts.update(
            model_module=repr(assembled.model),
            num_classes=num_classes,
            num_channels=num_channels,
            window=int(config.data.window_length),
            steps=int(config.train.num_steps),
            devices=[str(device) for device in mesh.devices.flat],
            trainable_paths=lora.param_paths(assembled.trainable),
        )
        return json.dumps(parts, sort_keys=True, default=str)

    def get(
        self,
        config: ml_collections.ConfigDict,
        assembled,
        num_classes: int,
        num_channels: int,
        mesh: Mesh,
    ) -> Steps:
        key = self.key(config, assembled, num_classes, num_channels, mesh)
        if key not in self._steps:
            optimizer = train.optimizer_from_config(config)
            self._steps[key] = Steps(
                optimizer=optimizer,
                train_step=train.make_train_step(
                    assembled.model,
                    optimizer,
                    assembled.lora_config,
                    mesh=mesh,
                    label_smoothing=float(config.optim.label_smoothing),
                ),
                eval_step=self._eval_step(key, assembled, mesh),
            )
        return self._steps[key]

    def _eval_step(self, key: str, assembled, mesh: Mesh):
        """One eval step for every optimizer setting of a structure: evaluation never reads the
        optimizer, so runs that differ only in their learning rate share one compilation."""
        parts = json.loads(key)
        for name in ("optim", "steps"):
            del parts[name]
        eval_key = json.dumps(parts, sort_keys=True)
        if eval_key not in self._eval_steps:
            self._eval_steps[eval_key] = train.make_eval_step(
                assembled.model, assembled.lora_config, mesh=mesh
            )
        return self._eval_steps[eval_key]
