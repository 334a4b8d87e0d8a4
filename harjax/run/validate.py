"""The resolved config checked once, up front: every numeric field, every choice, the backbone.

A bad size must stop the command before any data loads, with one line per problem, never run
an untrained model into a complete-looking table (`num_steps -5`) or die in a traceback
(`eval_every 0`). `problems(config)` lists them; `check_config` raises `ConfigError` (a
`ValueError`: the launch scripts print it and exit with status 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections

from harjax import variants
from harjax.data.augment import AugmentConfig
from harjax.models.projection import NORMS


class ConfigError(ValueError):
    """One or more config fields are invalid; the message has one line per problem."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at_least(low: float, integer: bool = True) -> Callable[[Any], str | None]:
    def rule(value):
        if not (_integer(value) if integer else _number(value)) or value < low:
            kind = "an integer" if integer else "a number"
            return f"must be {kind} >= {low:g}, found {value!r}"
        return None

    return rule


def _positive(value: Any) -> str | None:
    if not _number(value) or not value > 0 or not math.isfinite(value):
        return f"must be a number > 0, found {value!r}"
    return None


def _fraction(value: Any) -> str | None:
    if not _number(value) or not 0 <= value < 1:
        return f"must be a fraction in [0, 1), found {value!r}"
    return None


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in choices else f"must be one of {choices}, found {value!r}"


def _positive_ints(value: Any) -> str | None:
    values = tuple(value) if isinstance(value, list | tuple) else (value,)
    if not values or not all(_integer(v) and v >= 1 for v in values):
        return f"must be a non-empty list of integers >= 1, found {value!r}"
    return None


def _integers(value: Any) -> str | None:
    if not isinstance(value, list | tuple) or not all(_integer(v) for v in value):
        return f"must be a (possibly empty) list of integers, found {value!r}"
    return None


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be True or False, found {value!r}"


_RULES: dict[str, Callable[[Any], str | None]] = {
    "seed": _at_least(0),
    "data.sample_rate": _positive,
    "data.window_length": _at_least(1),
    "data.window_stride": _at_least(1),
    "data.max_gap_s": _positive,
    "data.channels": _one_of("all", "acc"),
    "data.label_key": _one_of("label", "common_label"),
    "data.val_fraction": _fraction,
    "data.test_fraction": _fraction,
    "data.split_seed": _at_least(0),
    "data.split": _one_of("subject", "official"),
    "backbone.num_layers": _at_least(0),
    "backbone.dtype": _one_of("auto", "float32", "bfloat16", "float16"),
    "backbone.param_dtype": _one_of("float32", "bfloat16", "float16"),
    "model.variant": _one_of(*variants.NAMES),
    "model.random_weights": _one_of("matched", "init"),
    "model.readout_layers": _integers,
    "model.final_norm": _boolean,
    "model.skip_first_token": _boolean,
    "model.standardize_features": _boolean,
    "model.head_dropout": _fraction,
    "model.d_model_none": _at_least(1),
    "projection.kernel_sizes": _positive_ints,
    "projection.channels": _at_least(1),
    "projection.strides": _positive_ints,
    "projection.output_scale_init": _positive,
    "projection.calibrate": _one_of("none", "embedding_rms"),
    "projection.norm": _one_of(*NORMS),
    "projection.magnitude_channels": _boolean,
    "lora.rank": _at_least(0),
    "lora.alpha": _positive,
    "lora.dropout": _fraction,
    "scratch.num_layers": _at_least(1),
    "scratch.hidden_size": _at_least(1),
    "scratch.intermediate_size": _at_least(1),
    "scratch.num_heads": _at_least(1),
    "cnn.num_layers": _at_least(1),
    "cnn.channels": _at_least(1),
    "cnn.kernel_size": _at_least(1),
    "classical.num_trees": _at_least(1),
    "rocket.num_kernels": _at_least(84),  # MultiRocket's smallest kernel set
    "rocket.ridge_alpha": _positive,
    "optim.learning_rate": _positive,
    "optim.warmup_steps": _at_least(0),
    "optim.weight_decay": _at_least(0, integer=False),
    "optim.grad_clip": _at_least(0, integer=False),
    "optim.label_smoothing": _fraction,
    "optim.lora_learning_rate": _at_least(0, integer=False),  # 0 = optim.learning_rate
    "train.batch_size": _at_least(1),
    "train.num_steps": _at_least(1),
    "train.eval_every": _at_least(1),
    "train.eval_batch_size": _at_least(1),
    "train.log_every": _at_least(1),
    "train.checkpoint_every": _at_least(1),
    "train.max_eval_windows": _at_least(0),
    "train.models_per_program": _at_least(1),
    "train.epochs": _at_least(0, integer=False),  # 0 = budget train.num_steps
    "train.min_steps": _at_least(0),
    "train.patience": _at_least(0),  # evaluations; 0 = no early stopping
    "train.evals_per_epoch": _at_least(0),
    "sweep.seeds": _at_least(1),
    "sweep.splits": _at_least(1),
    "pretrain.num_steps": _at_least(1),
    "pretrain.eval_every": _at_least(1),
    "pretrain.checkpoint_every": _at_least(1),
}


def _get(config: ml_collections.ConfigDict, key: str) -> tuple[bool, Any]:
    node: Any = config
    for part in key.split("."):
        if part not in node:
            return False, None
        node = node[part]
    return True, node


def _backbone_problem(spec: str) -> str | None:
    """The spec's kind, checked without loading anything (hub ids are checked when loading)."""
    from harjax.weights import _HUB_ID, EMBEDDED_SMOLLM2

    path = Path(str(spec)).expanduser()
    if spec == EMBEDDED_SMOLLM2 or path.is_dir() or (path.suffix == ".gguf" and path.is_file()):
        return None
    if path.suffix == ".gguf":
        return f"GGUF file {path} does not exist"
    if path.exists():
        return f"{path} is a file; pass a Hugging Face model directory or a .gguf file"
    if _HUB_ID.match(str(spec)) and not str(spec).startswith((".", "~")):
        return None
    return (
        f"{spec!r} is neither an existing directory, a .gguf file, {EMBEDDED_SMOLLM2!r} nor a "
        "hub id"
    )


def problems(config: ml_collections.ConfigDict, *, zero_steps: bool = False) -> list[str]:
    """One line per invalid field; `zero_steps` admits `train.num_steps = 0` (evaluate only)."""
    found = []
    for key, rule in _RULES.items():
        present, value = _get(config, key)
        if not present:
            continue
        if key == "train.num_steps" and zero_steps and value == 0:
            continue
        message = rule(value)
        if message:
            found.append(f"config.{key} {message}")
    present, value = _get(config, "data")
    if present and not found:
        if float(value.val_fraction) + float(value.test_fraction) >= 1:
            found.append(
                "config.data.val_fraction + config.data.test_fraction must be < 1 (subjects are "
                f"left to train on), found {value.val_fraction} + {value.test_fraction}"
            )
        total_stride = math.prod(tuple(config.projection.strides))
        if int(value.window_length) % total_stride:
            found.append(
                f"config.data.window_length {value.window_length} is not divisible by the "
                f"projection's total stride {total_stride} (config.projection.strides "
                f"{tuple(config.projection.strides)})"
            )
    present, value = _get(config, "data.augment")
    if present:
        try:
            AugmentConfig.from_config(value)
        except (ValueError, KeyError, TypeError) as error:
            found.append(str(error).strip("'\""))
    present, value = _get(config, "train")
    if present and not found and "min_steps" in value:
        if int(value.min_steps) > int(value.num_steps) and not (zero_steps and not value.num_steps):
            found.append(
                f"config.train.min_steps {value.min_steps} must be <= config.train.num_steps "
                f"{value.num_steps} (the largest budget)"
            )
    variant = variants.VARIANTS.get(str(config.model.variant))  # unknown: reported above
    if variant is None:
        return found
    if not found:  # the variant's own checks read fields checked above
        found += variant.checks(config)
    if variant.loads_backbone:
        problem = _backbone_problem(str(config.backbone.spec))
        if problem:
            found.append(f"config.backbone.spec: {problem}")
    return found


def check_config(config: ml_collections.ConfigDict, *, zero_steps: bool = False) -> None:
    found = problems(config, zero_steps=zero_steps)
    if found:
        raise ConfigError("invalid config:\n  " + "\n  ".join(found))
