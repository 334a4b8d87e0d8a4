"""Dataset names -> builders: the one place a `--dataset` string is interpreted (the launch
scripts check theirs with `check_spec`, `source.load_dataset` opens it with `get_builder`).

Builder modules (`harjax.data.datasets.*`) are imported lazily, so selecting the embedded
dataset never imports (or requires) the parsers of the six benchmarks. This module stays beside
`source` rather than inside `datasets/`: it is the entry point from a name (config, command
line) into that package, and keeping it outside is what lets `datasets/` be imported lazily.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from harjax.data.builder import HARBuilder, HARConfig
from harjax.data.errors import DataError

CSV_PREFIX = "csv:"
UEA_PREFIX = "uea:"  # a set of the UEA multivariate archive: uea:NAME (datasets/uea.py)

# name -> (module under harjax.data.datasets, builder class)
BUILDERS: dict[str, tuple[str, str]] = {
    "smartwatch": ("smartwatch", "Smartwatch"),
    "uci_har": ("uci_har", "UciHar"),
    "uci_hapt": ("uci_hapt", "UciHapt"),
    "uci_hapt_transitions": ("uci_hapt", "UciHaptTransitions"),
    "hhar": ("hhar", "Hhar"),
    "motionsense": ("motionsense", "MotionSense"),
    "realworld": ("realworld", "RealWorld"),
    "pamap2": ("pamap2", "Pamap2"),
    "wisdm": ("wisdm", "Wisdm"),
}


def default_data_dir() -> Path:
    """`$HARJAX_DATA_DIR`, else `~/.cache/harjax/tfds`: where prepared datasets are kept."""
    root = os.environ.get("HARJAX_DATA_DIR") or Path.home() / ".cache" / "harjax" / "tfds"
    return Path(root).expanduser()


def builder_class(name: str) -> type[HARBuilder]:
    """The builder class registered under `name` (imported on first use)."""
    if name not in BUILDERS:
        raise DataError(
            f"unknown dataset {name!r}; expected one of {sorted(BUILDERS)}, "
            f"'{CSV_PREFIX}/path/to/folder' or '{UEA_PREFIX}NAME' (a UEA archive set)"
        )
    module_name, class_name = BUILDERS[name]
    module = importlib.import_module(f"harjax.data.datasets.{module_name}")
    return getattr(module, class_name)


def _csv_folder(spec: str) -> Path:
    folder = spec[len(CSV_PREFIX) :]
    if not folder:
        raise DataError(f"dataset spec {spec!r}: expected '{CSV_PREFIX}/path/to/folder'")
    return Path(folder).expanduser()


def check_spec(name_or_spec: str) -> None:
    """Fails on an unknown name or a `csv:` folder that does not exist, preparing nothing and
    importing no reader: the launch scripts' check before anything loads."""
    if name_or_spec.startswith(CSV_PREFIX):
        folder = _csv_folder(name_or_spec)
        if not folder.is_dir():
            raise FileNotFoundError(f"--dataset {name_or_spec}: {folder} is not a directory")
        return
    if name_or_spec.startswith(UEA_PREFIX):
        from harjax.data.datasets.uea import problem_name

        problem_name(name_or_spec)
        return
    builder_class(name_or_spec)


def get_builder(
    name_or_spec: str,
    *,
    config: HARConfig,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
) -> HARBuilder:
    """A builder for a dataset name, `csv:/path/to/folder` or `uea:NAME`, not yet prepared."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if name_or_spec.startswith(CSV_PREFIX):
        from harjax.data.datasets.csv_folder import CsvFolder

        return CsvFolder(_csv_folder(name_or_spec), config=config, data_dir=data_dir)
    if name_or_spec.startswith(UEA_PREFIX):
        from harjax.data.datasets.uea import UeaArchive

        return UeaArchive(name_or_spec, config=config, data_dir=data_dir, manual_dir=manual_dir)
    cls = builder_class(name_or_spec)
    return cls(config=config, data_dir=data_dir, manual_dir=manual_dir)
