"""The few-shot sweep's comparison protocol: settings per variant, choice on validation, verdicts.

A fair comparison gives every variant the same chances and judges it on data it did not choose
on. So each variant trains with every value of its setting's grid (`Variant.setting`: a learning
rate for the networks, scratch included; a forest size for `classical`; the ridge
regularisation for `rocket`) on every subject split and seed, and for each (variant, k) the
value with the best mean VALIDATION macro-F1 over those runs is kept — test scores never
choose. Tables and comparisons then read the kept runs only; the paired differences against
the method (`variants.REFERENCE`, matched on `variants.PAIR_ON`: the same subjects and the same
k-shot draw) and their verdicts come from `harjax.reporting.stats`.

Validation scores are the run loop's `best_val_macro_f1` (for a fitted baseline: its one fit
scored on the validation subjects).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harjax import variants
from harjax.reporting import stats, tables

REFERENCE = variants.REFERENCE


def settings(base_variant: str, grids: Mapping[str, Sequence] | None = None) -> list[tuple]:
    """The (config section, field, value) settings a variant is tried with: its setting's grid
    from `grids` (keyed by `Setting.grid`, e.g. 'learning_rates'), else none."""
    setting = variants.get(base_variant).setting
    values = (grids or {}).get(setting.grid, ())
    return [(setting.section, setting.field, setting.kind(value)) for value in values]


def _setting(field: str) -> variants.Setting:
    return next(setting for setting in variants.SETTINGS if setting.field == field)


def setting_slug(field: str, value) -> str:
    """Run-directory part for a setting: 'lr0.002', 'trees100', 'alpha10'."""
    return _setting(field).slug.format(value)


def setting_of(row: dict[str, Any]) -> tuple:
    """A row's setting, one slot per `variants.SETTING_FIELDS` (None where another variant's)."""
    return tuple(row.get(field) for field in variants.SETTING_FIELDS)


def setting_label(row: dict[str, Any]) -> str:
    """The settings table's spelling of a row's setting: 'lr 0.001', '100 trees'."""
    for field in variants.SETTING_FIELDS:
        if row.get(field) is not None:
            return _setting(field).label.format(row[field])
    return "–"


REPLICATE = "_replicate"


def with_replicate(rows: Sequence[dict[str, Any]], settings: bool = False) -> list[dict[str, Any]]:
    """Rows tagged with what tells runs of one (variant, k) apart — split seed and seed, and the
    setting when `settings` — for `tables.group_rows` (rows without `split_seed`: one split)."""
    return [
        {
            **row,
            REPLICATE: (row.get("split_seed"), row["seed"], *(setting_of(row) if settings else ())),
        }
        for row in rows
    ]


def select(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with `selected`: per (variant, k), the setting of best mean val macro-F1.

    The mean is over every run of that setting (all splits and seeds); test scores are never
    read. Ties go to the setting seen first (grid order). A (variant, k) tried with a single
    setting keeps it whatever its validation score; with several, every run needs one.
    """
    chosen: dict[tuple, tuple] = {}
    for (variant, shots), group in tables.group_rows(
        with_replicate(rows, settings=True), ["variant", "shots"], replicate=REPLICATE
    ).items():
        by_setting: dict[tuple, list[float]] = {}
        for row in group:
            by_setting.setdefault(setting_of(row), []).append(row.get("val_macro_f1"))
        if len(by_setting) == 1:
            chosen[(variant, shots)] = next(iter(by_setting))
            continue
        best, best_mean = None, -math.inf
        for setting, values in by_setting.items():
            if any(v is None or math.isnan(float(v)) for v in values):
                raise ValueError(
                    f"variant {variant!r} k={shots} setting {setting}: a run has no validation "
                    "macro-F1, so its setting cannot be chosen on validation"
                )
            mean = float(np.mean(values))
            if mean > best_mean:
                best, best_mean = setting, mean
        chosen[(variant, shots)] = best
    return [
        {**row, "selected": setting_of(row) == chosen[(row["variant"], row["shots"])]}
        for row in rows
    ]


def kept(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The selected rows (rows without a `selected` value, from older sweeps, are all kept)."""
    return [row for row in rows if row.get("selected") in (None, True, 1, "True")]


def selection_table(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> str:
    """Markdown: per k and variant, every setting's mean val macro-F1 and which was kept."""
    groups = tables.group_rows(
        with_replicate(rows, settings=True), ["shots", "variant"], replicate=REPLICATE
    )
    lines = []
    for k in sorted({k for k, _ in groups}, key=tables.shots_key):
        for variant in tables.ordered((v for _, v in groups), order):
            group = groups.get((k, variant))
            if not group:
                continue
            by_setting: dict[tuple, list[dict]] = {}
            for row in group:
                by_setting.setdefault(setting_of(row), []).append(row)
            for runs in by_setting.values():
                values = [r["val_macro_f1"] for r in runs if r.get("val_macro_f1") is not None]
                val = "–" if not values else tables.format_mean_std(values)
                lines.append(
                    [
                        k,
                        variant,
                        setting_label(runs[0]),
                        len(runs),
                        val,
                        "✓" if runs[0]["selected"] else "",
                    ]
                )
    header = ["k", "variant", "setting", "runs", "val macro-F1", "kept"]
    return tables.markdown_table(header, lines, "lllrrl")


def others(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> list[str]:
    return [v for v in tables.ordered((r["variant"] for r in rows), order) if v != REFERENCE]


def comparison_lines(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> list[str]:
    """results.md lines: the paired CI table against `pretrained` and one verdict per pair."""
    compared = others(rows, order)
    if not any(r["variant"] == REFERENCE for r in rows) or not compared:
        return []
    arguments = dict(
        metric="macro_f1",
        reference=REFERENCE,
        others=compared,
        within=("shots",),
        pair_on=variants.PAIR_ON,
    )
    found = stats.comparisons(rows, **arguments)
    return [
        f"Paired differences against {REFERENCE} (test macro-F1, same split seed and seed; a "
        "variant wins only when the interval excludes zero). "
        + stats.design_note([c.interval for c in found]),
        "",
        stats.comparison_table(rows, **arguments),
        *[f"- {sentence}" for sentence in stats.verdicts(rows, **arguments)],
        "",
    ]
