"""What follows a config file's name: `--config configs/FILE.py:ARG` -> `get_config(ARG)`.

One way for every config file (big_vision style): a file is an experiment (`default.py` one
run, `fewshot.py` the default sweep, `study.py` the study, `transfer.py`, `probe.py`), each
`get_config(arg)` builds it from its parent's `get_config()` and ends with `apply(config, arg)`,
so an ARG is applied last, on top of the file's own settings. ARG is comma-separated items,
applied in order:

  NAME                  a preset below (e.g. `float32`)
  section.field=VALUE   one field, typed like it (`harjax.sweeps.axes.parse_setting`, as
                        `--ablate`): true/false, a number, text, or a tuple of integers
                        written with `x` here (`projection.kernel_sizes=3x5x9`)

e.g. `python launch/fewshot.py --config configs/study.py:float32,backbone.num_layers=12
--workdir runs/study_12_layers` runs the study at 12 layers in float32. `--config.*` flags
still override after that. Multi-valued axes (k, seeds, splits, learning rates, ablation rows,
depths: `sweep.num_layers`) are the `sweep` section's, not ARG's.
"""

from __future__ import annotations

import ml_collections

PRESETS: dict[str, dict[str, object]] = {
    # Run-by-run reproducible: in bfloat16 a run's result depends on the runs sharing its
    # program (README, "In bfloat16 a run's result depends ...").
    "float32": {"backbone.dtype": "float32"},
    # One model per compiled program: the sequential path, e.g. to compare against a batched run.
    "sequential": {"train.models_per_program": 1},
}


def _set(config: ml_collections.ConfigDict, key: str, value: object) -> None:
    section, dot, field = key.rpartition(".")
    node = config.get(section) if dot else config
    if not isinstance(node, ml_collections.ConfigDict) or field not in node:
        raise ValueError(f"config arg {key!r}: no such field in the config")
    node[field] = value


def apply(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """`config` with the items of `arg` applied in order (see the module docstring)."""
    for item in filter(None, (part.strip() for part in (arg or "").split(","))):
        if "=" in item:
            from harjax.sweeps.axes import parse_setting  # the one typed text -> field parser

            _set(config, *parse_setting(config, item, where="config arg"))
        elif item in PRESETS:
            for preset_key, value in PRESETS[item].items():
                _set(config, preset_key, value)
        else:
            raise ValueError(
                f"config arg {item!r}: expected a preset ({', '.join(PRESETS)}) or "
                "section.field=value"
            )
    return config
