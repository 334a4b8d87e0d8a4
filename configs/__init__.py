"""Experiment configs: one file per experiment, each `get_config(arg) -> ConfigDict`.

`default.py` is one run and holds every field with its default; `fewshot.py` (the default
sweep), `study.py`, `study_uci_har.py`, `transfer.py` and `probe.py` each start from their
parent's `get_config()`, change what makes them that experiment, and end with
`presets.apply(config, arg)`: `--config configs/FILE.py:ARG` selects presets and field
settings (configs/presets.py), then `--config.section.field VALUE` overrides. A sweep's axes
are its config's `sweep` section.
"""
