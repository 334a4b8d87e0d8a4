"""Compute dtype by capability, from described machines (never this one's /proc/cpuinfo)."""

import pytest

from harjax import precision

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni
"""
SKYLAKE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw
"""
SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8
"""
GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes sve bf16 i8mm
CPU implementer\t: 0x41
"""


def test_cpu_info_parses_model_cores_and_flags():
    info = precision.cpu_info(ZEN4, machine="x86_64")
    assert info == {
        "model_name": "AMD EPYC 9R14 96-Core Processor",
        "num_cores": 2,
        "machine": "x86_64",
        "flags": {"avx2": True, "avx512f": True, "avx512_bf16": True, "amx_bf16": False},
    }
    assert precision.cpu_info(SKYLAKE, machine="x86_64")["flags"]["avx512_bf16"] is False
    arm = precision.cpu_info(GRAVITON3, machine="aarch64")
    assert arm["flags"]["bf16"] and arm["model_name"] == "unknown" and arm["num_cores"] == 1


@pytest.mark.parametrize(
    "text, machine, expected, reason",
    [
        (ZEN4, "x86_64", "bfloat16", "auto: cpu flags: avx512_bf16 present"),
        (SAPPHIRE_RAPIDS, "x86_64", "bfloat16", "auto: cpu flags: amx_bf16 present"),
        (SKYLAKE, "x86_64", "float32", "auto: cpu flags: no avx512_bf16 or amx_bf16"),
        (GRAVITON3, "aarch64", "bfloat16", "auto: cpu features: bf16 present"),
        ("", "x86_64", "float32", "auto: cpu flags: no avx512_bf16 or amx_bf16"),
    ],
)
def test_auto_on_cpu_follows_the_bf16_flags(text, machine, expected, reason):
    got = precision.resolve_compute_dtype(
        "auto", platform="cpu", cpuinfo_text=text, machine=machine
    )
    assert got == (expected, reason)
    assert precision.bf16_support(platform="cpu", cpuinfo_text=text, machine=machine)[0] == (
        expected == "bfloat16"
    )


def test_auto_on_accelerators_and_explicit_names():
    auto = lambda **device: precision.resolve_compute_dtype("auto", **device)[0]
    assert auto(platform="tpu") == "bfloat16"
    assert auto(platform="gpu", compute_capability="9.0") == "bfloat16"  # H100
    assert auto(platform="gpu", compute_capability="8.0") == "bfloat16"  # A100
    assert auto(platform="gpu", compute_capability="7.5") == "float32"  # T4
    assert auto(platform="gpu", compute_capability=None) == "float32"
    # Explicit names are taken as asked, whatever the machine.
    assert precision.resolve_compute_dtype("bfloat16", platform="cpu", cpuinfo_text=SKYLAKE) == (
        "bfloat16",
        "bfloat16 requested",
    )
    assert precision.resolve_compute_dtype("float32")[0] == "float32"
    with pytest.raises(ValueError, match="float16"):
        precision.resolve_compute_dtype("float16")


def test_this_machine_gives_an_answer():
    dtype, reason = precision.resolve_compute_dtype("auto")
    assert dtype in ("float32", "bfloat16") and reason.startswith("auto: ")
    assert precision.cpu_info()["num_cores"] >= 1
