"""Roofline: the best matmul rate this CPU gives per dtype vs. the model FLOPs a train step does.

1. Matmul rates (jax; PyTorch/oneDNN for reference) at 2048^3 and at the model's own GEMM shapes
   (rows = batch x tokens; weight and transposed-weight products, as forward and backward run).
2. FLOPs per step counted analytically (`bench.common.matmul_flops`: a frozen matrix costs one
   matmul backward, not two) and cross-checked with XLA's `compiled.cost_analysis()`.
3. Model-FLOPs utilisation = analytic FLOPs / median step time / best matmul rate of the dtype.
4. `--xla-flags`: the same matmul probe under XLA:CPU flag sets (XNNPACK, oneDNN, YNNPACK, fast
   math), each in its own process since flags are fixed at start-up.

    python -m bench.roofline [--shape smollm2] [--layers 8] [--xla-flags] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench import common
from bench.common import Variant

#: Flag sets surveyed for a faster low-precision matmul (all exist in jax 0.10's XLA).
XLA_FLAG_SETS = [
    "",
    "--xla_cpu_use_xnnpack=false",
    "--xla_cpu_experimental_xnn_fusion_type=dot",
    "--xla_cpu_experimental_onednn_fusion_type=dot",
    "--xla_cpu_experimental_ynn_fusion_type=dot",
    "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
    "--xla_cpu_enable_fast_math=true",
]
MATMUL_KINDS = ("float32", "bfloat16", "bf16->f32 accumulate")


def _best_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_shapes(variant: Variant) -> list[tuple[int, int, int]]:
    """(m, k, n) of the backbone's dense products, forward (x W) and backward (dY W^T)."""
    backbone = common.backbone_config(variant.shape, variant.layers)
    rows, hidden = variant.batch * variant.tokens, backbone.hidden_size
    ffn = backbone.intermediate_size
    if variant.shape == "gpt2":
        outs = [3 * hidden, hidden, ffn]
    else:
        head_dim = backbone.head_dim
        outs = [backbone.num_attention_heads * head_dim, backbone.num_key_value_heads * head_dim]
        outs.append(ffn)
    shapes = [(rows, hidden, out) for out in outs] + [(rows, out, hidden) for out in outs]
    return sorted(set(shapes))


def jax_matmul_rates(shapes, repeats: int = 7) -> dict[str, dict[str, float]]:
    """GFLOP/s of jitted `x @ w` per kind and shape ('m x k x n')."""
    import jax
    import jax.numpy as jnp

    rates: dict[str, dict[str, float]] = {kind: {} for kind in MATMUL_KINDS}
    for m, k, n in shapes:
        for kind in MATMUL_KINDS:
            dtype = jnp.float32 if kind == "float32" else jnp.bfloat16
            accumulate = jnp.float32 if kind.endswith("accumulate") else None
            x = jax.random.normal(jax.random.key(0), (m, k)).astype(dtype)
            w = jax.random.normal(jax.random.key(1), (k, n)).astype(dtype)
            dot = jax.jit(lambda x, w, a=accumulate: jnp.dot(x, w, preferred_element_type=a))
            seconds = _best_seconds(
                lambda dot=dot, x=x, w=w: dot(x, w).block_until_ready(), repeats
            )
            rates[kind][f"{m}x{k}x{n}"] = 2 * m * k * n / seconds / 1e9
    return rates


def torch_matmul_rates(shapes, repeats: int = 7) -> dict[str, dict[str, float]]:
    import torch

    torch.set_num_threads(common.num_cores())
    rates: dict[str, dict[str, float]] = {"float32": {}, "bfloat16": {}}
    for m, k, n in shapes:
        for kind, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            x, w = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
            seconds = _best_seconds(lambda x=x, w=w: x @ w, repeats)
            rates[kind][f"{m}x{k}x{n}"] = 2 * m * k * n / seconds / 1e9
    return rates


def _probe_in_child(mode: str, shapes, xla_flags: str = "") -> dict:
    env = dict(os.environ, XLA_FLAGS=xla_flags, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "bench.roofline", mode, json.dumps(shapes)]
    result = subprocess.run(
        command, cwd=common.REPO, env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def flag_survey(shapes) -> list[dict]:
    """The jax matmul probe under each XLA flag set, each in a fresh process."""
    out = []
    for flags in XLA_FLAG_SETS:
        try:
            out.append({"flags": flags, "rates": _probe_in_child("--probe", shapes, flags)})
        except RuntimeError as error:
            out.append({"flags": flags, "error": str(error).strip().splitlines()[-1:]})
            continue
        print(f"  {flags or '(default)'}: {_summary(out[-1]['rates'])}", flush=True)
    return out


def _summary(rates: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{kind} {max(r.values()):.0f}" for kind, r in rates.items())


def step_times(variant: Variant, repeats: int) -> dict:
    """Median step time and FLOP counts of the library's train step for `variant`."""
    built = common.build_harjax(variant)
    step = built["step"]
    step()
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "times": times,
        "analytic": common.matmul_flops(variant),
        "xla_flops": common.xla_flops(built["step_fn"], built["args"]()),
    }


def run(shape: str, layers: int, repeats: int, with_flags: bool) -> dict:
    base = Variant("roofline", shape=shape, layers=layers)
    shapes = [(2048, 2048, 2048), *gemm_shapes(base)]
    print(f"matmul rates (GFLOP/s, best of 7) at {len(shapes)} shapes ...", flush=True)
    jax_rates = jax_matmul_rates(shapes)
    steps = {}
    for dtype in ("float32", "bfloat16"):
        variant = Variant(f"harjax-{dtype}", shape=shape, layers=layers, dtype=dtype)
        steps[dtype] = step_times(variant, repeats)
    torch_rates = _probe_in_child("--probe-torch", shapes)  # own process: no JAX threads
    rows = []
    for name, rates in [
        *(("jax " + k, v) for k, v in jax_rates.items()),
        *(("torch " + k, v) for k, v in torch_rates.items()),
    ]:
        rows.append([name, *(f"{rates[f'{m}x{k}x{n}']:.0f}" for m, k, n in shapes)])
    print(common.markdown_table(["GFLOP/s", *(f"{m}x{k}x{n}" for m, k, n in shapes)], rows))
    # The rate a step in `dtype` can hope for: the best jax matmul of that dtype at any shape
    # (bf16 steps use the f32-accumulating bf16 matmul, see harjax.models.matmul).
    best = {
        "float32": max(jax_rates["float32"].values()),
        "bfloat16": max(jax_rates["bf16->f32 accumulate"].values()),
    }
    mfu_rows = []
    for dtype, s in steps.items():
        analytic = s["analytic"]["total"]
        achieved = analytic / s["median_s"] / 1e9
        mfu_rows.append(
            [
                dtype,
                f"{analytic / 1e9:.1f}",
                f"{s['xla_flops'] / 1e9:.1f}",
                f"{s['xla_flops'] / analytic:.2f}",
                f"{1000 * s['median_s']:.0f}",
                f"{achieved:.0f}",
                f"{best[dtype]:.0f}",
                f"{100 * achieved / best[dtype]:.0f} %",
            ]
        )
    headers = [
        "step dtype",
        "GFLOP analytic",
        "GFLOP XLA",
        "XLA/analytic",
        "step ms",
        "GFLOP/s achieved",
        "best matmul GFLOP/s",
        "MFU",
    ]
    print(common.markdown_table(headers, mfu_rows), flush=True)
    result = {
        "shape": shape,
        "layers": layers,
        "shapes": shapes,
        "jax_rates": jax_rates,
        "torch_rates": torch_rates,
        "steps": steps,
        "best": best,
        "mfu_table": {"headers": headers, "rows": mfu_rows},
        "rates_table": {
            "headers": ["GFLOP/s", *(f"{m}x{k}x{n}" for m, k, n in shapes)],
            "rows": rows,
        },
    }
    if with_flags:
        print("XLA flag survey (best GFLOP/s per kind over the same shapes):", flush=True)
        result["flags"] = flag_survey(shapes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", default="smollm2")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--xla-flags", action="store_true", help="also survey XLA flag sets")
    parser.add_argument("--probe", default="", help=argparse.SUPPRESS)  # child: jax rates
    parser.add_argument("--probe-torch", default="", help=argparse.SUPPRESS)  # child: torch
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.probe_torch:
        print(json.dumps(torch_matmul_rates([tuple(s) for s in json.loads(args.probe_torch)])))
        return
    if args.probe:
        print(json.dumps(jax_matmul_rates([tuple(s) for s in json.loads(args.probe)], 5)))
        return
    common.write_json(args.json, run(args.shape, args.layers, args.repeats, args.xla_flags))


if __name__ == "__main__":
    main()
