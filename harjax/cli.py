"""Shared command-line plumbing for the thin scripts in `launch/`.

Every script takes `--config FILE[:ARG]` (an ml_collections config file; any field overridable as
`--config.section.field VALUE`) and the user-facing flags `--dataset NAME|csv:DIR`,
`--backbone SPEC`, `--workdir DIR`. Errors a user can fix (unknown dataset, backbone or variant,
k larger than a class has, unwritable workdir, ...) print one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"

# Exceptions that describe bad input: reported as one line, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
)


def define_common_flags(default_config: str) -> None:
    config_flags.DEFINE_config_file(
        "config",
        str(CONFIG_DIR / default_config),
        "Config file (ml_collections).",
        lock_config=True,
    )
    flags.DEFINE_string("dataset", None, "Dataset: a registered name or csv:/path/to/folder.")
    flags.DEFINE_string(
        "backbone", None, "Backbone spec: smollm2-135m, a hub id, an HF dir or a .gguf file."
    )
    flags.DEFINE_string("workdir", None, "Output directory (created; must be writable).")
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Discard run directories that hold runs of another configuration (default: refuse).",
    )


def resolved_config():
    """The config with the user-facing flags applied on top of `--config.*` overrides."""
    config = flags.FLAGS.config
    if flags.FLAGS.dataset:
        config.dataset = flags.FLAGS.dataset
    if flags.FLAGS.backbone:
        config.backbone.spec = flags.FLAGS.backbone
    return config


def prepare_workdir(path: str | None, default: str) -> Path:
    workdir = Path(path or default).expanduser()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"workdir {workdir} is not writable: {error.strerror}") from None
    return workdir


def validate_dataset(name: str) -> None:
    """Unknown names fail before anything is loaded or trained."""
    from harjax.data import registry

    if name.startswith("csv:"):
        folder = Path(name[4:]).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"--dataset {name}: {folder} is not a directory")
        return
    registry.builder_class(name)


def run(main: Callable[[list[str]], None]) -> None:
    """`absl.app.run` with user errors turned into one line on stderr and exit status 2."""

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bars
        try:
            from harjax.distributed import initialize_from_env

            initialize_from_env()  # multi-host (TPU pod slices, local multi-process tests)
            main(argv)
        except USER_ERRORS as error:
            if os.environ.get("HARJAX_DEBUG"):
                traceback.print_exc()
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(wrapped)
