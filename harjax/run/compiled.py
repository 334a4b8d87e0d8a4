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

from harjax import batched, lora, train


@dataclasses.dataclass
class Steps:
    optimizer: Any
    train_step: Any
    eval_step: Any


class StepCache:
    """`get(config, assembled, ...)` returns the `Steps` for that model structure, compiling once.

    The key is everything that shapes the computation: the model, projection, LoRA and optimizer
    sections (`optim.lora_learning_rate` among them: it adds a parameter group), the model
    module itself (its backbone, and whatever a variant's own config section sets in it),
    class/channel counts, window length, the resolved step count (the schedule's length:
    callers pass `budget.resolve`d configs), the devices and the trainable tree's paths.
    """

    def __init__(self):
        self._steps: dict[str, Steps] = {}

    def __len__(self) -> int:
        return len(self._steps)

    @staticmethod
    def key(config, assembled, num_classes: int, num_channels: int, mesh: Mesh) -> str:
        sections = ("model", "projection", "lora", "optim")
        parts: dict[str, Any] = {name: config[name].to_dict() for name in sections}
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
                eval_step=train.make_eval_step(assembled.model, assembled.lora_config, mesh=mesh),
            )
        return self._steps[key]

    def get_batched(self, *structure, num_models: int, stacked_frozen: bool) -> Steps:
        """The `harjax.batched` steps for `num_models` models of this structure.

        `structure` is `get`'s (config, assembled, num_classes, num_channels, mesh). The
        learning rate is per-model optimizer state there, so it is not part of the key (the LoRA
        learning rate is static, one per program, and stays in it).
        """
        config, assembled, _, _, mesh = structure
        parts = json.loads(self.key(*structure))
        parts["optim"].pop("learning_rate", None)
        parts.update(num_models=num_models, stacked_frozen=stacked_frozen)
        key = "batched:" + json.dumps(parts, sort_keys=True)
        if key not in self._steps:
            arguments = train.optimizer_arguments(config)
            del arguments["learning_rate"]  # per model, in the batched optimizer's state
            optimizer = batched.make_batched_optimizer(**arguments)
            model, adapters = assembled.model, assembled.lora_config
            self._steps[key] = Steps(
                optimizer=optimizer,
                train_step=batched.make_batched_train_step(
                    model,
                    optimizer,
                    adapters,
                    mesh=mesh,
                    label_smoothing=float(config.optim.label_smoothing),
                    stacked_frozen=stacked_frozen,
                ),
                eval_step=batched.make_batched_eval_step(
                    model, adapters, mesh=mesh, stacked_frozen=stacked_frozen, shared_batch=False
                ),
            )
        return self._steps[key]
