"""The machine a result was measured on: recorded beside every result, printed in results.md.

The same run on another CPU can differ in its last digits (XLA picks other kernels), so a
table is only reproducible together with the machine it came from.
"""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from typing import Any

import jax

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint")
_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")


def _cpu(cpuinfo: str) -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    return {"model": model, "flags": [flag for flag in _CPU_FLAGS if flag in flags]}


@functools.cache
def environment() -> dict[str, Any]:
    try:
        with open("/proc/cpuinfo") as file:
            cpuinfo = file.read()
    except OSError:
        cpuinfo = ""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    return {
        "cpu": {**_cpu(cpuinfo), "cores": os.cpu_count()},
        "platform": devices[0].platform,
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "python": platform.python_version(),
        "packages": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def describe(env: dict[str, Any]) -> str:
    """One line: CPU model, cores and flags, devices, package versions, XLA flags."""
    cpu = env["cpu"]
    packages = ", ".join(
        f"{name} {version}" for name, version in env["packages"].items() if version
    )
    flags = ", ".join(cpu["flags"]) or "none of " + "/".join(_CPU_FLAGS)
    text = f"{cpu['model']} ({cpu['cores']} cores; {flags}); {env['devices']}; {packages}"
    return text + (f"; XLA_FLAGS={env['xla_flags']}" if env["xla_flags"] else "")
