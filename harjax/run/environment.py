"""Where a run runs: the machine a result was measured on (recorded beside every result,
printed in results.md) and the one process that writes it (`is_main_process`).

The same run on another CPU can differ in its last digits (XLA picks other kernels), so a
table is only reproducible together with the machine it came from. The record also holds the
code that made the result (`harjax.run.code_version`).
"""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from typing import Any

import jax

from harjax import precision
from harjax.run.code_version import code_version

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint")


@functools.cache
def environment() -> dict[str, Any]:
    cpu = precision.cpu_info()
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    return {
        "cpu": {
            "model": cpu["model_name"],
            "cores": cpu["num_cores"],
            "flags": [flag for flag, present in cpu["flags"].items() if present],
        },
        "platform": devices[0].platform,
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "python": platform.python_version(),
        "packages": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "code": code_version(),
    }


def describe(env: dict[str, Any]) -> str:
    """One line: CPU model, cores and flags, devices, package versions, XLA flags."""
    cpu = env["cpu"]
    packages = ", ".join(
        f"{name} {version}" for name, version in env["packages"].items() if version
    )
    flags = ", ".join(cpu["flags"]) or "none of " + "/".join(precision.CPU_FLAGS)
    text = f"{cpu['model']} ({cpu['cores']} cores; {flags}); {env['devices']}; {packages}"
    return text + (f"; XLA_FLAGS={env['xla_flags']}" if env["xla_flags"] else "")


def is_main_process() -> bool:
    """The one gate for writing: only this process writes reports, plots, result files, logs
    and progress lines; every process computes the same numbers and joins checkpoint saves and
    restores (orbax coordinates them; guarding one would hang the other processes)."""
    return jax.process_index() == 0
