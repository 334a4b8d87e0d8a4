"""Compute dtype by capability: bfloat16 where the hardware multiplies it natively, else float32.

bfloat16 halves memory traffic, but only hardware with bf16 dot products turns that into speed:
TPUs, GPUs with bf16 tensor cores (NVIDIA compute capability >= 8.0, Ampere and later), and CPUs
with native bf16 dot-product instructions (x86 AVX512_BF16 or AMX-BF16; the aarch64 `bf16`
feature), which XLA:CPU reaches through `harjax.models.matmul`'s f32-accumulating products.
Elsewhere bf16 is emulated: slower than float32 and less accurate, so 'auto' picks float32.

Every function takes its inputs (platform, compute capability, /proc/cpuinfo text, machine) as
optional arguments so that tests can describe a machine instead of depending on this one.
"""

from __future__ import annotations

import os
import platform as platform_module
from typing import Any

#: x86 flags / aarch64 features recorded beside timings; the bf16 ones decide 'auto' on CPU.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
AARCH64_BF16_FEATURE = "bf16"
DTYPE_NAMES = ("auto", "float32", "bfloat16")


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:  # not Linux: no flags known, 'auto' falls back to float32 on CPU
        return ""


def _cpuinfo_fields(text: str) -> tuple[str, set[str], int]:
    """(model name, flags/features of the first processor, number of processor entries)."""
    model_name, flags, processors = "", set(), 0
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "processor":
            processors += 1
        elif key in ("model name", "cpu model", "hardware") and not model_name:
            model_name = value.strip()
        elif key in ("flags", "features") and not flags:  # x86 'flags', aarch64 'Features'
            flags = set(value.split())
    return model_name, flags, processors


def cpu_info(cpuinfo_text: str | None = None, machine: str | None = None) -> dict[str, Any]:
    """The CPU as recorded beside timings: model name, core count, machine, the flags that matter.

    With `cpuinfo_text` given the core count is that text's processor entries; otherwise it is
    the cores this process may use (`os.sched_getaffinity`, which respects container limits).
    """
    live = cpuinfo_text is None
    text = _read_cpuinfo() if live else cpuinfo_text
    machine = platform_module.machine() if machine is None else machine
    model_name, flags, processors = _cpuinfo_fields(text)
    if live:
        processors = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        processors = processors or os.cpu_count() or 0
    relevant = (*CPU_FLAGS, AARCH64_BF16_FEATURE) if _is_aarch64(machine) else CPU_FLAGS
    return {
        "model_name": model_name or "unknown",
        "num_cores": processors,
        "machine": machine,
        "flags": {flag: flag in flags for flag in relevant},
    }


def _is_aarch64(machine: str) -> bool:
    return machine.lower() in ("aarch64", "arm64")


def _cpu_bf16(cpuinfo_text: str | None, machine: str | None) -> tuple[bool, str]:
    info = cpu_info(cpuinfo_text, machine)
    flags = info["flags"]
    if _is_aarch64(info["machine"]):
        present = flags.get(AARCH64_BF16_FEATURE, False)
        return present, f"cpu features: bf16 {'present' if present else 'absent'}"
    found = [flag for flag in X86_BF16_FLAGS if flags[flag]]
    if found:
        return True, f"cpu flags: {', '.join(found)} present"
    return False, f"cpu flags: no {' or '.join(X86_BF16_FLAGS)}"


def _default_device() -> tuple[str, str | None]:
    import jax

    device = jax.devices()[0]
    return device.platform, getattr(device, "compute_capability", None)


def bf16_support(
    *,
    platform: str | None = None,
    compute_capability: str | None = None,
    cpuinfo_text: str | None = None,
    machine: str | None = None,
) -> tuple[bool, str]:
    """(native bf16 dot products?, a one-line reason) for the default JAX device or the one
    described by the arguments (platform 'cpu', 'gpu'/'cuda', 'rocm' or 'tpu')."""
    if platform is None:
        platform, compute_capability = _default_device()
    platform = platform.lower()
    if platform == "tpu":
        return True, "tpu: bf16 matrix units"
    if platform in ("gpu", "cuda"):
        if compute_capability is None:
            return False, "gpu: compute capability unknown"
        major = int(str(compute_capability).split(".")[0])
        native = major >= 8
        relation = ">=" if native else "<"
        return native, f"gpu compute capability {compute_capability} {relation} 8.0"
    if platform == "rocm":  # MI100 and later have bf16 matrix cores; older cards are rare now
        return True, "rocm: bf16 matrix cores assumed"
    if platform == "cpu":
        return _cpu_bf16(cpuinfo_text, machine)
    return False, f"{platform}: bf16 support unknown"


def resolve_compute_dtype(name: str, **device) -> tuple[str, str]:
    """('float32' | 'bfloat16', reason) for a configured compute dtype name.

    'float32' and 'bfloat16' are taken as asked; 'auto' asks `bf16_support` (keyword arguments
    describe the device, as there).
    """
    if name not in DTYPE_NAMES:
        raise ValueError(f"compute dtype must be one of {DTYPE_NAMES}, got {name!r}")
    if name != "auto":
        return name, f"{name} requested"
    native, reason = bf16_support(**device)
    return ("bfloat16" if native else "float32"), f"auto: {reason}"
