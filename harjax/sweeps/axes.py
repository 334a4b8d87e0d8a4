"""What a few-shot sweep runs: its config's `sweep` section as axes, checked before anything
loads.

    config.sweep.shots            '1,5,10' ('all' is added unless config.sweep.with_all is
                                  False: a study of one k, e.g. the depth study's k = 10)
    config.sweep.seeds, .splits   seeds per run, subject splits (split seeds data.split_seed + i)
    config.sweep.variants         base variants (`harjax.variants`), one table row each
    config.sweep.ablate           extra 'pretrained' rows, ';'-separated section.field=value
    config.sweep.learning_rates   the grid every neural variant tries ('' = optim.learning_rate)
    config.sweep.classical_trees  the grid classical tries ('' = classical.num_trees)
    config.sweep.rocket_alphas    the grid rocket tries ('' = rocket.ridge_alpha)
                                  (one grid per `Variant.setting` of the table: `Setting.grid`)
    config.sweep.num_layers       a depth axis ('' = backbone.num_layers): one sweep per depth

`sweep_axes(config)` parses them (`SweepAxes`), `check_configs` validates every row x setting
once, and `harjax.sweeps.fewshot.run_sweep` runs them. `parse_setting` is the one reader of a
config field written as text (`--ablate`, `sweep.ablate`, a config file's ARG).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import ml_collections

from harjax import variants
from harjax.sweeps import core, protocol


@dataclasses.dataclass(frozen=True)
class TableRow:
    """A named row of the tables: a base variant (`harjax.variants`) plus config overrides
    (an ablation row: `pretrained rank=0`)."""

    name: str
    base: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def apply(self, config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
        config = copy.deepcopy(config)
        config.model.variant = self.base
        for key, value in self.overrides:
            section, _, field = key.rpartition(".")
            node = config[section] if section else config
            if field not in node:
                raise ValueError(f"variant {self.name!r}: unknown config key {key!r}")
            node[field] = value
        return config


def make_variants(
    names: Sequence[str], overrides: Sequence[tuple[str, Any]] = ()
) -> list[TableRow]:
    """The base variants' rows, then one `pretrained` row per (config key, value) of
    `overrides` (the referee's ablations, from `parse_setting`), named by the field.
    """
    rows = []
    for name in names:
        if name not in variants.NAMES:
            raise ValueError(f"unknown variant {name!r}; expected one of {variants.NAMES}")
        rows.append(TableRow(name, name))
    spell = lambda v: "x".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
    for key, value in overrides:
        value = tuple(value) if isinstance(value, list | tuple) else value
        short = key.split(".")[-1]
        method = variants.REFERENCE  # an ablation is the method with one field changed
        rows.append(TableRow(f"{method} {short}={spell(value)}", method, ((key, value),)))
    names_seen = [row.name for row in rows]
    if len(set(names_seen)) != len(names_seen):
        raise ValueError(f"duplicate variants: {names_seen}")
    return rows


def parse_setting(
    config: ml_collections.ConfigDict, text: str, where: str = "--ablate"
) -> tuple[str, Any]:
    """'section.field=value' (or 'field=value' at the top, e.g. 'dataset=uci_har') -> (key,
    value) typed like the config's field: the one reader of a config field written as text
    (`--ablate`, `config.sweep.ablate`, a config file's ARG).

    Booleans are true/false, tuples integers joined by ',' or 'x'; an unknown key or a value
    that does not parse names the text and `where` it came from.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    section, dot, field = key.rpartition(".")
    if not sep or not raw:
        raise ValueError(f"{where} {text!r}: expected section.field=value")
    node = config.get(section) if dot else config
    if not isinstance(node, ml_collections.ConfigDict) or field not in node:
        raise ValueError(f"{where} {text!r}: unknown config key {key!r}")
    current = node[field]
    if isinstance(current, ml_collections.ConfigDict):
        raise ValueError(f"{where} {text!r}: {key!r} is a section, not a field")
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError
            value = raw.lower() == "true"
        elif isinstance(current, tuple | list):
            value = tuple(int(part) for part in raw.replace("x", ",").split(",") if part.strip())
        elif isinstance(current, int | float | str):
            value = type(current)(raw)
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{where} {text!r}: {raw!r} does not parse as {type(current).__name__}, the type "
            f"of {key} (now {current!r})"
        ) from None
    return key, value


def _unique(values: Sequence, key: str, kind: type, positive: bool = True) -> tuple:
    try:
        values = tuple(kind(v) for v in values)
    except ValueError:
        raise ValueError(f"config.sweep.{key}: {list(values)} must be {kind.__name__}s") from None
    if len(set(values)) != len(values):
        raise ValueError(f"config.sweep.{key}: {list(values)} lists a value twice")
    if positive and any(v <= 0 for v in values):
        raise ValueError(f"config.sweep.{key}: {list(values)} must all be positive")
    return values


def _items(text: str, separator: str = ",") -> list[str]:
    return [part.strip() for part in str(text).split(separator) if part.strip()]


@dataclasses.dataclass(frozen=True)
class SweepAxes:
    """A config's `sweep` section, parsed and checked: exactly what `run_sweep` runs."""

    shots: tuple  # sorted, 'all' last
    seeds: int
    splits: tuple[int, ...]  # split seeds: config.data.split_seed + 0, 1, ...
    variants: tuple[TableRow, ...]  # base variants, then one 'pretrained' row per ablation
    grids: dict[str, tuple]  # per `Setting.grid` of the table ('learning_rates', ...): its values


def sweep_axes(config: ml_collections.ConfigDict) -> SweepAxes:
    """`config.sweep` as `SweepAxes`: an empty grid means the config's one value.

    Every field is checked here, before any data loads; an error names the config key (the
    launch script's flags write into these keys: `--seeds` is `config.sweep.seeds`).
    """
    axes = config.sweep
    seeds, splits = axes.seeds, axes.splits
    for key, value in (("seeds", seeds), ("splits", splits)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"config.sweep.{key} must be an integer >= 1, found {value!r}")
    first = int(config.data.split_seed)
    rows = make_variants(
        _items(axes.variants),
        overrides=[
            parse_setting(config, text, where="config.sweep.ablate")
            for text in _items(axes.get("ablate", ""), ";")
        ],
    )
    if not rows:
        raise ValueError(f"config.sweep.variants: no variant in {axes.variants!r}")
    return SweepAxes(
        shots=tuple(core.parse_shots(axes.shots, always_all=bool(axes.get("with_all", True)))),
        seeds=seeds,
        splits=tuple(range(first, first + splits)),
        variants=tuple(rows),
        grids={
            setting.grid: _unique(
                _items(axes.get(setting.grid, "")) or (config[setting.section][setting.field],),
                setting.grid,
                setting.kind,
            )
            for setting in variants.SETTINGS
        },
    )


def check_configs(config: ml_collections.ConfigDict, axes: SweepAxes) -> None:
    """The sweep's one validation pass, before any data loads: every row x setting's config
    (what each run will be, up to its seeds). Each run checks its own config once more when it
    starts (`harjax.run`)."""
    configs = []
    for row in axes.variants:
        base = row.apply(config)
        for section, field, value in protocol.settings(row.base, axes.grids):
            setting = copy.deepcopy(base)
            setting[section][field] = value
            configs.append(setting)
    core.check_configs(configs)


def depth_axis(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """`config.sweep.num_layers` as the depths of a depth axis; () = none (the config's depth)."""
    return _unique(_items(config.sweep.get("num_layers", "")), "num_layers", int)
