"""The prepared accelerator check (issues 5 and 6): harjax vs PyTorch + PEFT in bf16 on one GPU.

    XLA_PYTHON_CLIENT_PREALLOCATE=false python -m bench.gpu [--shapes smollm2,gpt2] [--batch 256]

Both frameworks run in this one process on the same GPU, steps alternating (A B A B ...) after
warm-up: harjax in bfloat16 (bf16 activations and frozen weights, f32-accumulating matmuls) and
PyTorch + PEFT under `torch.autocast("cuda", dtype=torch.bfloat16)`. Prints median step time,
throughput (windows/s), model-FLOPs utilisation against the best measured bf16 matmul rate and
against the nominal dense peak, and the harjax/PyTorch ratio (target >= 1.3x). Sized to finish in
a few minutes on an H100; on CPU it still runs (tiny `--batch` and `--layers` for a smoke test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with PyTorch

from bench.common import Variant, build_harjax, matmul_flops  # noqa: E402

NOMINAL_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def bf16_matmul_rate(size: int = 8192, repeats: int = 10) -> float:
    """Best measured bf16 x bf16 -> f32 matmul rate of this device through JAX (FLOP/s)."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.bfloat16)
    f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    f(a, a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="smollm2,gpt2")
    parser.add_argument("--layers", type=int, default=0, help="default: all (30 / 12)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import jax
    import torch

    from bench.torch_twin import build_torch

    device = jax.devices()[0]
    on_gpu = device.platform == "gpu" and torch.cuda.is_available()
    name = getattr(device, "device_kind", device.platform)
    peak_measured = bf16_matmul_rate(8192 if on_gpu else 512, 10 if on_gpu else 2)
    nominal = next((v * 1e12 for k, v in NOMINAL_BF16_TFLOPS.items() if k in name), None)
    print(
        f"device: {name}; best measured bf16 matmul: {peak_measured / 1e12:.1f} TFLOP/s"
        + (f"; nominal dense bf16 peak {nominal / 1e12:.0f} TFLOP/s" if nominal else "")
    )
    print(
        "| shape | layers | framework | median ms | windows/s | MFU (measured peak) "
        "| MFU (nominal) |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        layers = args.layers or {"smollm2": 30, "gpt2": 12}[shape]
        common = dict(shape=shape, layers=layers, batch=args.batch, tokens=args.tokens)
        jax_variant = Variant(name="harjax-bf16", dtype="bfloat16", **common)
        torch_variant = Variant(name="pytorch-bf16", framework="torch", dtype="bfloat16", **common)
        steps = {
            "harjax-bf16": build_harjax(jax_variant)["step"],
            "pytorch-bf16": build_torch(torch_variant, "cuda" if on_gpu else "cpu")["step"],
        }
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        times = {k: [] for k in steps}
        for _ in range(args.repeats):
            for key, step in steps.items():
                start = time.perf_counter()
                step()
                times[key].append(time.perf_counter() - start)
        flops = matmul_flops(jax_variant)["total"]
        medians = {k: statistics.median(v) for k, v in times.items()}
        for key, seconds in medians.items():
            mfu = flops / seconds / peak_measured
            mfu_nominal = f"{100 * flops / seconds / nominal:.0f} %" if nominal else "-"
            print(
                f"| {shape} | {layers} | {key} | {1000 * seconds:.1f} | "
                f"{args.batch / seconds:,.0f} | {100 * mfu:.0f} % | {mfu_nominal} |"
            )
        ratio = medians["pytorch-bf16"] / medians["harjax-bf16"]
        print(f"{shape}: harjax bf16 = {ratio:.2f}x PyTorch+PEFT bf16 autocast (target >= 1.3x)")


if __name__ == "__main__":
    main()
