"""A run's result record (`metrics.json`) and the JSON writing every run output goes through.

Every variant's result has the same keys (`RESULT_KEYS`); what a sweep knows about a run (its
row in the tables: variant name, k, seed, fold, ...) is passed as `tags` and kept apart under
`result["tags"]`, so nothing a caller adds can silently replace a measured field.
`base_fields` are what every run records before it trains (with `class_coverage_warnings`),
`neural_result` the record of a trained neural run, `fitted_result` that of a baseline fitted
once (`Variant.fit`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harjax.data.bundle import DataBundle
from harjax.reporting.metrics import steps_to_fraction
from harjax.run.environment import environment, is_main_process

RESULT_FILE = "metrics.json"
RESULT_KEYS = (
    "variant",
    "dataset",
    "label_key",
    "class_names",
    "channel_names",
    "num_train_windows",
    "split",
    "stats",
    "init_from",
    "backbone",
    "compute_dtype",
    "calibration",
    "test",
    "accuracy",
    "macro_f1",
    "val_curve",
    "best_step",
    "best_val_macro_f1",
    "steps_to_95",
    "trainable_params",
    "total_params",
    "trainable_fraction",
    "train_seconds",
    "num_steps",  # the resolved budget (`harjax.run.budget`)
    "stopped_step",  # where early stopping ended the run, None: it trained its budget
    "models_in_program",  # models trained in this run's compiled program (1: alone)
    "warnings",
    "environment",
    "tags",
)


def json_default(obj):
    if isinstance(obj, np.integer | np.floating):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def write_json(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """Atomic (temp file + rename) JSON, written by process 0 only."""
    if not is_main_process():
        return
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(payload, indent=2, default=json_default))
    os.replace(temp, path)


def read_result(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The finished run's result, or None when the run has not finished."""
    path = Path(directory) / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def make_result(fields: Mapping[str, Any], tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record in `RESULT_KEYS` order; a missing or unknown field is a bug, not data."""
    fields = {**fields, "tags": dict(tags or {})}
    missing = [key for key in RESULT_KEYS if key not in fields]
    unknown = [key for key in fields if key not in RESULT_KEYS]
    if missing or unknown:
        raise KeyError(f"run result: missing fields {missing}, unknown fields {unknown}")
    return {key: fields[key] for key in RESULT_KEYS}


def write_result(workdir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Writes confusion.png, then metrics.json (last: its presence marks the run finished)."""
    from harjax.reporting import plots

    if is_main_process():
        test = result["test"]
        plots.plot_confusion(
            np.asarray(test["confusion"]),
            result["class_names"],
            workdir / "confusion.png",
            f"{result['variant']} — test macro-F1 {test['macro_f1']:.3f}",
        )
    write_json(workdir / RESULT_FILE, result)
    return result


def class_coverage_warnings(data: DataBundle, train_indices: np.ndarray) -> list[str]:
    """Classes a run cannot learn or is not scored on: missing from a part of the split.

    A class absent from the training windows is never predicted correctly; one absent from
    validation or test is left out of that part's macro-F1. Both skew a comparison silently,
    so they are written with the result and shown in the sweep summary.
    """
    present = lambda indices: set(np.unique(data.targets(np.asarray(indices, np.int64))).tolist())
    train_classes = present(train_indices)
    in_subjects = present(data.split.train)
    warnings = []
    for part in ("val", "test"):
        indices = getattr(data.split, part)
        if not len(indices):
            continue
        part_classes = present(indices)
        for index, name in enumerate(data.class_names):
            if index in part_classes and index not in train_classes:
                where = (
                    "not in the training subjects"
                    if index not in in_subjects
                    else "not in this run's training windows"
                )
                warnings.append(f"class {name!r} is in the {part} subjects but {where}")
            if index in in_subjects and index not in part_classes:
                warnings.append(
                    f"class {name!r} is in the training subjects but not in the {part} subjects "
                    f"(left out of {part} macro-F1)"
                )
    return list(dict.fromkeys(warnings))


def base_fields(config, data, train_idx, stats, init_trainable) -> dict[str, Any]:
    """The fields every variant's result has before it trains (what it was given)."""
    return {
        "variant": config.model.variant,
        "dataset": config.dataset,
        "label_key": config.data.label_key,
        "class_names": list(data.class_names),
        "channel_names": list(data.dataset.channel_names),
        "num_train_windows": len(train_idx) if int(config.train.num_steps) > 0 else 0,
        "split": data.split.to_dict(),
        "stats": stats.to_dict(),
        "init_from": None if init_trainable is None else init_trainable.source,
        "warnings": class_coverage_warnings(data, train_idx),
        "environment": environment(),
    }


def _scored(base, test, steps, values, tags, **fields) -> dict[str, Any]:
    """The record of a scored run: what it was given (`base`), its test scores, its validation
    curve and its convergence (steps to 95 %), plus the fields that differ by kind of run."""
    return make_result(
        {
            **base,
            "test": test,
            "accuracy": test["accuracy"],
            "macro_f1": test["macro_f1"],
            "val_curve": {"steps": list(steps), "macro_f1": list(values)},
            "steps_to_95": steps_to_fraction(steps, values, 0.95),
            **fields,
        },
        tags,
    )


def neural_result(base, assembled, test, meta, num_steps: int, tags) -> dict[str, Any]:
    """The result record of a trained neural run."""
    counts = assembled.param_counts()
    return _scored(
        base,
        test,
        [s for s, _ in meta["curve"]],
        [v for _, v in meta["curve"]],
        tags,
        backbone={"spec": assembled.backbone_spec, "hash": assembled.backbone_hash},
        compute_dtype=assembled.compute_dtype,
        calibration=assembled.calibration_record(),
        best_step=meta["best_step"],
        # None without validation subjects: a sweep must not choose settings on -1.
        best_val_macro_f1=meta["best_score"] if meta["curve"] else None,
        trainable_params=counts["trainable"],
        total_params=counts["total"],
        trainable_fraction=counts["fraction"],
        train_seconds=meta["train_seconds"],
        num_steps=num_steps,
        stopped_step=meta.get("stopped_step"),
        models_in_program=int(meta.get("models_in_program", 1)),
    )


def fitted_result(base, model, test, val_macro_f1, seconds: float, tags) -> dict[str, Any]:
    """The result record of a baseline fitted once (`Variant.fit`): no backbone, no steps, no
    curve; its validation score is its one fit's (None without validation subjects), which is
    what a sweep chooses its setting on."""
    params = model.num_parameters()
    return _scored(
        base,
        test,
        [],
        [],
        tags,
        backbone={"spec": "none", "hash": "none"},
        compute_dtype=dict(model.compute_dtype),
        calibration=None,
        best_step=0,
        best_val_macro_f1=val_macro_f1,
        trainable_params=params,
        total_params=params,
        trainable_fraction=1.0,
        train_seconds=seconds,
        num_steps=0,
        stopped_step=None,
        models_in_program=None,
    )
