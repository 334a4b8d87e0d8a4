"""What every script in `launch/` shares: flags, the config, the workdir, joining a
multi-process run, and one-line errors.

Every script takes `--config FILE[:ARG]` (an ml_collections config file whose `get_config(arg)`
selects a preset; any field overridable as `--config.section.field VALUE`) and the user-facing
flags `--dataset NAME|csv:DIR`, `--backbone SPEC`, `--workdir DIR`. Errors a user can fix
(unknown dataset, backbone or variant, k larger than a class has, unwritable workdir, ...) print
one line and exit with status 2.

`run(main)` first joins the multi-process run this process belongs to, if any
(`initialize_from_env`), before any JAX computation; it calls `jax.distributed.initialize`
exactly when the run is multi-process:

  HARJAX_COORDINATOR, HARJAX_NUM_PROCESSES,   explicit addresses: local multi-process runs and
  HARJAX_PROCESS_ID all set                   tests (`127.0.0.1:PORT`), or any cluster you wire
                                              by hand
  HARJAX_DISTRIBUTED=1                        no arguments: JAX detects the cluster itself
                                              (Cloud TPU VM slices, SLURM, Open MPI, k8s)
  a Cloud TPU VM (Google TPU chips on PCI)    no arguments, as above; `launch/tpu.sh run` also
                                              sets HARJAX_DISTRIBUTED=1
  HARJAX_DISTRIBUTED=0, or none of the above  single process: nothing to do

After it, `jax.devices()` lists the devices of every process; each process feeds its own
shard of each global batch (`harjax.data.pipeline.train_batches` does, by process index), and
only the main process (`harjax.run.environment.is_main_process`) writes reports. Checkpoint
saves are collective: every process calls them (orbax coordinates who writes what).
"""

from __future__ import annotations

import errno
import glob
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
    """The workdir, created, checked writable and locked for this process (`run.lock`: a
    second command on it stops here with one line naming the first)."""
    from harjax.run import lock

    workdir = Path(path or default).expanduser()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"workdir {workdir} is not writable: {error.strerror}") from None
    lock.acquire(workdir)
    return workdir


def validate_dataset(name: str) -> None:
    """Unknown names and missing csv: folders fail before anything is loaded or trained."""
    from harjax.data import registry  # imports tfds: not before a script needs a dataset

    registry.check_spec(name)


ENV_COORDINATOR = "HARJAX_COORDINATOR"
ENV_NUM_PROCESSES = "HARJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "HARJAX_PROCESS_ID"
ENV_DISTRIBUTED = "HARJAX_DISTRIBUTED"
_EXPLICIT = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)
_GOOGLE_PCI_VENDOR = "0x1ae0"  # TPU chips show up as PCI devices of this vendor


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def _on_cloud_tpu_vm() -> bool:
    """True when Google TPU chips are attached (the check libtpu itself starts from)."""
    for vendor_file in glob.glob("/sys/bus/pci/devices/*/vendor"):
        try:
            with open(vendor_file) as f:
                if f.read().strip() == _GOOGLE_PCI_VENDOR:
                    return True
        except OSError:
            continue
    return False


def _mode() -> str:
    """'explicit', 'auto' or 'single'; see the module docstring for the rules."""
    present = [name for name in _EXPLICIT if os.environ.get(name)]
    if present and len(present) != len(_EXPLICIT):
        missing = [name for name in _EXPLICIT if name not in present]
        raise ValueError(
            f"multi-process environment is incomplete: {present} set but {missing} missing; "
            f"set all of {list(_EXPLICIT)} or none"
        )
    flag = os.environ.get(ENV_DISTRIBUTED, "").strip().lower()
    if flag not in ("", "0", "1", "false", "true", "off", "on"):
        raise ValueError(f"{ENV_DISTRIBUTED}={flag!r}: expected 1/true/on or 0/false/off")
    if flag in ("0", "false", "off"):
        if present:
            raise ValueError(f"{ENV_DISTRIBUTED}={flag!r} contradicts {present} being set")
        return "single"
    if present:
        return "explicit"
    if flag in ("1", "true", "on") or _on_cloud_tpu_vm():
        return "auto"
    return "single"


def initialize_from_env(*, initialization_timeout: int = 300) -> bool:
    """Joins the multi-process run this process belongs to, if any; returns whether it did.

    Idempotent: a second call (or one after the caller initialized JAX itself) does nothing.
    Must run before the first JAX computation, as `jax.distributed.initialize` requires.
    """
    import jax  # after flag parsing: `--help` and flag errors never start JAX

    if jax.distributed.is_initialized():
        return True
    mode = _mode()
    if mode == "single":
        return False
    if mode == "explicit":
        num_processes = _env_int(ENV_NUM_PROCESSES)
        process_id = _env_int(ENV_PROCESS_ID)
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"{ENV_PROCESS_ID}={process_id} outside [0, {ENV_NUM_PROCESSES}={num_processes})"
            )
        if not jax.config.jax_cpu_collectives_implementation:  # CPU runs need a collective
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=os.environ[ENV_COORDINATOR],
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=initialization_timeout,
        )
    else:
        jax.distributed.initialize(initialization_timeout=initialization_timeout)
    logging.info(
        "process %d of %d (%s): %d local of %d global devices",
        jax.process_index(),
        jax.process_count(),
        mode,
        jax.local_device_count(),
        jax.device_count(),
    )
    return True


def run(main: Callable[[list[str]], None]) -> None:
    """`absl.app.run` with user errors turned into one line on stderr and exit status 2."""

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bars
        try:
            initialize_from_env()  # multi-host (TPU pod slices, local multi-process tests)
            main(argv)
        except USER_ERRORS as error:
            if os.environ.get("HARJAX_DEBUG"):
                traceback.print_exc()
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if os.environ.get("HARJAX_DEBUG"):
                traceback.print_exc()
            where = f" writing {error.filename}" if error.filename else ""
            print(
                f"error: {error.strerror}{where}; free some space or use another --workdir "
                "(finished runs are kept: the same command resumes)",
                file=sys.stderr,
                flush=True,
            )
            sys.stdout.flush()
            # Not sys.exit: the TensorBoard writer's exit hook and its thread would each print
            # a traceback trying to flush onto the full disk.
            os._exit(2)

    app.run(wrapped, flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a flag mistake (an unknown flag, a bad value, `--config.*`
    before `--config`) reported as one line and exit status 2, like every other user error."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error} (see --helpshort)", file=sys.stderr)
        sys.exit(2)
