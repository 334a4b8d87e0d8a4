"""A run's result record (`metrics.json`) and the JSON writing every run output goes through.

Every variant's result has the same keys (`RESULT_KEYS`); what a sweep knows about a run (its
row in the tables: variant name, k, seed, fold, ...) is passed as `tags` and kept apart under
`result["tags"]`, so nothing a caller adds can silently replace a measured field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harjax.run.environment import is_main_process

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
