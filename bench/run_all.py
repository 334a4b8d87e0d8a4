"""Runs every benchmark and regenerates docs/performance.md (one command).

    python -m bench.run_all [--quick] [--out docs/performance.md]

Each benchmark runs as its own process (as a user would run it) and hands back JSON; this script
only collects and formats. `--quick` shrinks repeats and models for a smoke run (its numbers are
not the report's). Takes ~20 min on a 2-core CPU; measure when the machine is otherwise idle
(the load average is recorded in the report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

COMMAND = "python -m bench.run_all"


def _run(module: str, args: list[str], tmp: Path) -> dict:
    out = tmp / f"{module.split('.')[-1]}.json"
    command = [sys.executable, "-m", module, *args, "--json", str(out)]
    print(f"$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(command, cwd=common.REPO, env=env, check=True)
    result = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - start
    return result


def _pipeline(step_ms: float) -> str:
    command = [sys.executable, "bench/pipeline_throughput.py", "--batch-size", "32"]
    command += ["--step-ms", f"{step_ms:.1f}"]
    print(f"$ {' '.join(command[1:])}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(common.REPO), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        command, cwd=common.REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode:
        return f"failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}"
    lines = [line for line in result.stdout.splitlines() if "windows/s" in line]
    print("\n".join(lines), flush=True)
    return "\n".join(lines) or result.stdout.strip()


def _table(entry: dict) -> str:
    return common.markdown_table(entry["headers"], entry["rows"])


def _vs_table(vs: dict) -> tuple[str, dict[str, dict[str, float]]]:
    rows, ratios = [], {}
    for shape, data in vs["shapes"].items():
        timed = data["timed"]
        pt32 = timed["pytorch-float32"]["median"]
        pt16 = timed["pytorch-bf16-autocast"]["median"]
        for name, entry in timed.items():
            m = entry["median"]
            rows.append(
                [
                    f"{shape} ({data['layers']} layers)",
                    name,
                    f"{1000 * m:.0f}",
                    f"{1000 * min(entry['times']):.0f}",
                    len(entry["times"]),
                    f"{pt32 / m:.2f}x",
                    f"{pt16 / m:.2f}x",
                ]
            )
            if name.startswith("harjax"):
                ratios.setdefault(shape, {})[name] = {"f32": pt32 / m, "bf16": pt16 / m}
    headers = ["model", "variant", "median ms", "min ms", "n", "vs PT f32", "vs PT bf16"]
    return common.markdown_table(headers, rows), ratios


def _flags_table(flags: list[dict]) -> str:
    rows = []
    for entry in flags:
        name = f"`{entry['flags']}`" if entry["flags"] else "(default)"
        if "error" in entry:
            rows.append([name, "error", str(entry["error"]), "", ""])
            continue
        best = {kind: max(r.values()) for kind, r in entry["rates"].items()}
        at_model = {kind: r for kind, r in entry["rates"].items()}
        model_key = [k for k in next(iter(at_model.values())) if not k.startswith("2048")]
        rows.append(
            [
                name,
                *(f"{best[k]:.0f}" for k in ("float32", "bfloat16", "bf16->f32 accumulate")),
                f"{max(at_model['bf16->f32 accumulate'][k] for k in model_key):.0f}",
            ]
        )
    headers = ["XLA_FLAGS", "f32 best", "bf16 best", "bf16->f32 best", "bf16->f32 @ model"]
    return common.markdown_table(headers, rows)


def write_report(results: dict, out: Path, quick: bool) -> None:
    from bench.sweep_throughput import render  # imports harjax: only when writing the report

    sweep = results.get("sweep_throughput")
    sweep_section = render(sweep) if sweep else "(not run)"
    machine = results["machine"]
    vs_table, ratios = _vs_table(results["vs_pytorch"])
    roof, lo, mem, comp = (results[k] for k in ("roofline", "lora", "memory", "compiles"))
    headline = []
    for shape, by_variant in ratios.items():
        best_name = max(by_variant, key=lambda n: by_variant[n]["bf16"])
        f32 = by_variant.get("harjax-float32", {}).get("f32", float("nan"))
        headline.append(
            f"- **{shape}**: harjax float32 = **{f32:.2f}x** PyTorch+PEFT float32 "
            f"(target >= 1.2x); best harjax ({best_name}) = **{by_variant[best_name]['bf16']:.2f}x"
            f"** PyTorch+PEFT bf16-autocast (target >= 1.0x)."
        )
    mfu = {row[0]: row[-1] for row in roof["mfu_table"]["rows"]}
    headline.append(
        f"- Model-FLOPs utilisation (smollm2 shape, {roof['layers']} layers): float32 "
        f"{mfu.get('float32')}, bfloat16 {mfu.get('bfloat16')} of the best measured matmul rate "
        "(target >= 80 %)."
    )
    overhead = {row[0]: row[3] for row in lo["table"]["rows"]}
    headline.append(
        "- LoRA overhead over frozen forward+backward: "
        + ", ".join(f"{k} {v}" for k, v in overhead.items())
        + " (target <= 5 %)."
    )
    headline.append(
        f"- Peak RSS, `{mem['spec']}` {mem['layers']} layers, batch {mem['batch']}: "
        f"**{mem['peak_mb']:.0f} MB** (target <= 2048 MB)."
    )
    headline.append(
        f"- Compilations over a {len(comp['runs'])}-run k-shot sweep: train step "
        f"**{comp['step_compiles']}**, eval step {comp['eval_compiles']} (target 1 each)."
    )
    text = f"""# Performance

Generated by `{COMMAND}{" --quick" if quick else ""}` — do not edit by hand; the analysis
below the tables lives in `bench/run_all.py` (NOTES) and is regenerated with the numbers.
{"**QUICK RUN: smoke-test sizes, not the reference numbers.**" if quick else ""}

| machine | |
|---|---|
| CPU | {machine["cpu"]} ({machine["isa"]}) |
| cores used | {machine["cores"]} |
| jax / python | {machine["jax"]} / {machine["python"]} |
| date | {machine["date"]} |
| load average (1/5/15 min) at start | {machine["load"]} |
| load average at end | {results.get("load_end", "?")} |

Machines here are shared and noisy: every comparison below is measured side by side in one run
(variants in separate processes, steps alternating A B C A B C), so ratios are more trustworthy
than absolute times.

## Headline
{chr(10).join(headline)}

## 1. harjax vs PyTorch + PEFT (full LoRA train steps)
Batch 32 windows x 32 tokens, LoRA rank 8 (alpha 16) on the attention projections, AdamW +
global-norm clipping, same conv projection and head; PyTorch threads = {machine["cores"]}. PyTorch
runs HF `LlamaModel`/`GPT2Model` (`inputs_embeds`) + PEFT `get_peft_model`, in float32 and in
`torch.autocast("cpu", dtype=torch.bfloat16)`. "vs PT" = PyTorch median / harjax median
(> 1: harjax faster).

{vs_table}

## 2. Roofline and model-FLOPs utilisation
Matmul rates (GFLOP/s, best of 7):

{_table(roof["rates_table"])}

FLOPs per step: analytic matmul count (frozen matrices: backward = dX only = 1x forward; LoRA,
projection and head: 2x; attention products: 2x) vs XLA `cost_analysis()` (which also counts
elementwise work). MFU = analytic FLOPs / step time / best matmul rate of the step's dtype
(bf16 steps: the bf16 x bf16 -> f32-accumulate matmul, which is what they run).

{_table(roof["mfu_table"])}

### XLA:CPU flags surveyed for a faster bf16 matmul (GFLOP/s, best over the shapes above)
{_flags_table(roof.get("flags", [])) if roof.get("flags") else "(not run)"}

## 3. LoRA overhead
{_table(lo["table"])}

## 4. Peak memory (`{mem["spec"]}`, {mem["layers"]} layers, batch {mem["batch"]})
{_table(mem["table"])}

## 5. Input pipeline (`bench/pipeline_throughput.py`, batch 32, step = fastest harjax step above)
```
{results["pipeline"]}
```

## 6. Compilations in a k-shot sweep
{_table(comp["table"])}

Totals per jitted function: `{comp["totals"]}`.

## 7. Many models per program (`bench/sweep_throughput.py`)
{sweep_section}
Since issue 30 a group of runs trains each model in the compiled program of its own config, so
both columns run the same programs and give the same results, in every dtype; what the former
vmapped program of M models was worth, and why it went, is in Findings
(`bench/batched_throughput.py` measures it against the per-model programs step by step).

## Findings
{NOTES}
"""
    out.write_text(text)
    print(f"wrote {out}")


NOTES = """\
Investigation notes (measured 2026-11-26 on the machine above; the tables are regenerated, these
notes are not — re-check them against fresh tables).

- **A run's result is a function of its own configuration (issue 30, 2026-12-07).** Cause of
  the bf16 swings of whole runs (one run's test macro-F1: 0.72 alone, 0.87 beside one other;
  2026-12-01 note) and of ~1e-7 float32 differences: the run loop trained a
  group of runs as one vmapped program (`harjax.batched`), and XLA compiles a vmapped step into
  other kernels than the one-model step (e.g. the per-model products of LoRA, projection, head and
  the dW contraction of `models/matmul.py` become batched dot_generals; reductions and fusions
  change), so a model's bits depended on M and on its companions. On the tiny test model (4
  steps, dropout on), model 0's parameters against the same model trained by
  `train.make_train_step`: float32 up to 2.7e-7 / 1.5e-7 / 1.9e-7 at M = 1 / 2 / 8, bfloat16
  1.5e-3 / 1.5e-3 / 1.6e-3 — already at M = 1: the program differs, not only its width.
  `jax.lax.map` over the model axis (one per-model loop body) made M = 1, 2 and 8 agree with
  each other bit for bit, but not with the one-model program (learning rate as state, the step
  as a loop body). The fix: each model of a group steps through the compiled program of its own
  config, the very program it compiles alone (its learning rate a constant of it), on its own
  batches, one model after another (`run/program.py`; `StepCache` shares a compilation between
  runs of one structure and rate, `random`/`shuffled` with `pretrained`, and the eval step
  between rates). `tests/run/test_program_numerics.py` trains one run alone, in a group of 2
  and in a group of 8 (other seeds, rates, k-shot draws, `random`/`shuffled` frozen weights) and
  asserts the same validation curve, test scores and last and best parameters, in float32 and
  bfloat16; on the code before the fix it fails in both (float32: parameters 1.5e-8 apart;
  bfloat16: validation macro-F1 0.068 vs 0.059 at step 4). A float32 tiny sweep
  (`launch/fewshot.py`, pretrained + random, k = 1, 5, all, 2 seeds, groups of up to 8) writes
  the same results.csv as before the fix, every column but train_seconds. Cost, side by side in
  one process (`nice python -m bench.batched_throughput`: smollm2-shaped, 3 layers, batch 16 x
  16 tokens, M = 8 models of 2 learning rates, steps alternating; 2-core AMD EPYC, avx512f +
  avx512_bf16, no amx_bf16; two runs at load ~4 and ~2): one step of all 8 models, vmapped vs
  one program per model, float32 768 vs 748 ms and 391 vs 410 ms (0.97x, 1.05x), bfloat16
  (`auto`) 551 vs 645 ms and 280 vs 352 ms (1.17x, 1.26x slower); model 0's parameters after
  6-9 steps were 2.7e-5 (float32) and 3.1e-3 (bfloat16) from its own program's in the vmapped
  program of 8, 1.5e-5 and 2.8e-3 in that of 2. So bfloat16 sweeps give back the vmapped
  program's ~1.2x (§7, measured with it), float32 ones nothing; each learning rate compiles
  its own train step (3.3 s float32, 3.6 s bfloat16 at this shape; the vmapped 8-model step:
  3.7 / 4.8 s, once per group). On an accelerator, where one small model leaves the device idle, the
  vmapped program would gain more (unmeasured: no GPU lent); it stays in `harjax/batched.py`
  for that comparison. Runs recorded before the fix keep `models_in_program` > 1, and
  results.md notes the bfloat16 ones (`sweeps.core.precision_lines`).
- **bf16 matmul on XLA:CPU: the fix is dtype placement, not a flag.** A `bf16 x bf16 -> bf16`
  dot runs at about the float32 rate (rates table: `jax bfloat16` ~100-180 vs `jax float32`
  ~170-210 GFLOP/s), but the same dot with `preferred_element_type=float32` uses the CPU's native
  bf16 dot product (`jax bf16->f32 accumulate` ~260-420 GFLOP/s, on par with PyTorch/oneDNN bf16
  at ~430-445). Asking for f32 accumulation in the forward only does not help a train step:
  autodiff transposes it into bf16 -> bf16 dots and the backward stays slow (8-layer MLP
  fwd+bwd: 820 ms forward-only-f32-accumulate vs 383 ms with a custom VJP, same process).
  `harjax/models/matmul.py` is that custom VJP (forward, dX and dW all accumulate in f32 and
  round to bf16, as autocast and accelerators do); llama.py and gpt2.py give it to every
  `nn.Dense` when the compute dtype is bf16/f16, LoRA's products use it too; float32 is
  untouched. Effect on the 8-layer SmolLM2-shaped step, side by side in one run
  (`python -m bench.vs_pytorch --shapes smollm2 --harjax-dtypes
  float32,bfloat16,bfloat16-plain`, load ~4): float32 1533 ms, bf16 before the fix 1542 ms,
  bf16 with it 968 ms (1.59x); at load ~2 it is ~1.05x PyTorch+PEFT bf16-autocast. Enable it with
  `--config.backbone.dtype bfloat16 --config.backbone.param_dtype bfloat16`.
- **XLA flags** (survey table): XNNPACK is already the default dot path in jax 0.10;
  `--xla_cpu_use_xnnpack=false`, the XNN/oneDNN `*_fusion_type=dot` flags and the oneDNN custom
  call change rates by a few percent at most (within noise); YNNPACK's dot fusion halves the
  f32-accumulating bf16 rate; fast math is slightly slower. None makes a plain bf16 -> bf16 dot
  fast. `--xla_cpu_use_thunk_runtime` is deprecated and a no-op (always on).
  `jax.default_matmul_precision("bfloat16")` on f32 operands gave 108-151 vs 96-104 GFLOP/s
  at 2048^3 (two noisy runs): below the explicit f32-accumulating bf16 path; not pursued.
- **float32 vs PyTorch float32 (target 1.2x, reached ~1.03-1.06x).** Both frameworks spend most of
  a step in the same f32 GEMMs: at the model's shapes XLA's f32 matmul runs 170-207 GFLOP/s and
  oneDNN's 203-207 GFLOP/s. Summed at those rates, the backbone's dense GEMMs take 588 ms of
  harjax's 788 ms f32 step (75 %); the other ~200 ms is attention, norms, RoPE, the LoRA path,
  AdamW and the projection. 1.2x PyTorch (801 ms) means <= 667 ms: with GEMMs no faster than
  oneDNN's, the non-GEMM part would have to shrink from ~200 ms to ~80 ms. Merging q/k/v (and
  gate/up) into wider GEMMs would lift the slower N=192 k/v products; estimated gain ~5-10 %.
  On CPU, use bf16 compute instead (above): 1.6x PyTorch float32.
- **GPT-2 bf16 (0.74x PyTorch bf16) is limited by dropout RNG.** GPT-2 trains with dropout 0.1
  (embeddings, residuals, attention probabilities); JAX draws the masks with threefry, which on
  CPU costs ~130 ms of an ~870 ms bf16 step (same step without dropout: 733 ms ~ PyTorch bf16's
  751 ms *with* dropout; PyTorch's bernoulli is native code). `rbg`/`unsafe_rbg` keys are slower
  on CPU (252 vs 128 ms for the same masks). Next step: cheaper mask bits (e.g. 8-bit draws) in
  the models' dropout, or `--config` dropout 0 for GPT-2 runs where regularisation is not needed.
- **MFU (target 80 %): f32 ~74 %, bf16 ~57 %** of the best matmul rate at any shape. In f32 the
  dense GEMMs run at 170-207 GFLOP/s (their shapes' ceiling) and are 75 % of the step; in bf16
  they are only 58 % (291 of 500 ms), because they got 2x faster while the non-GEMM work
  (elementwise ops computed in f32, the memory-bound LoRA path, AdamW) did not.
- **LoRA overhead (target 5 %): f32 ~5 %, bf16 ~10 %; was 12-13 %.** With the (batch, tokens) axes
  kept, grad(a) contracted two axes at once, which XLA:CPU runs ~3x slower than one contraction;
  `harjax/lora.py` now computes the low-rank path on 2-D (rows, features) views (13 % -> 5 % f32,
  12 % -> 6-10 % bf16). What remains is 6 skinny rank-8 GEMMs per adapted matrix per step (32
  adapted matrices in 8 layers), each reading a whole (1024 x 576) activation: memory-bound
  (~0.1-0.2 ms each), so it does not shrink with bf16 while the frozen GEMMs halve. Next step:
  one A-product for q/k/v (they share their input: one read of x instead of three).
- **Memory**: ~1.13 GB peak for `smollm2-135m` (4 layers, batch 32); loading + dequantising the
  GGUF takes ~400 MB, XLA compilation and the first step's buffers ~530 MB.
- **Compiles**: the k-shot sweep compiles `step` and `eval_step` once each; later runs reuse
  the sweep's `StepCache`, and batches are always the configured size.
- **Load**: PyTorch's OpenMP threads spin-wait, so when other processes share the 2 cores its
  step times degrade far more than XLA's (at load ~4-8: PyTorch float32 median 7-11 s vs ~0.8 s
  idle). Ratios from a loaded machine flatter harjax; trust runs whose load average is ~1-2.
- **GPU**: this task was not lent a GPU; the bf16 GPU comparison is not measured yet. It is
  prepared as one script for a session that has one: `python -m bench.gpu` (harjax bf16 vs
  PyTorch + PEFT bf16 autocast on the same GPU, alternating steps, full SmolLM2 and GPT-2 depth,
  batch 256 x 32 tokens; prints step time, windows/s, MFU and the ratio; target >= 1.3x). The
  device image lacks ml_collections, gguf, grain and tensorflow-datasets: carry them as wheels.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--out", default=str(common.REPO / "docs" / "performance.md"))
    parser.add_argument("--render", default="", help="only re-render the report from this JSON")
    args = parser.parse_args()
    if args.render:
        results = json.loads(Path(args.render).read_text())
        write_report(results, Path(args.out), results.get("quick", False))
        return
    results = {"machine": common.machine_info(), "quick": args.quick}
    q = args.quick
    with tempfile.TemporaryDirectory(prefix="harjax-bench-") as tmp_name:
        tmp = Path(tmp_name)
        vs_args = ["--repeats", "3", "--layers", "2"] if q else []
        results["vs_pytorch"] = _run("bench.vs_pytorch", vs_args, tmp)
        roof_args = ["--layers", "2", "--repeats", "3"] if q else ["--xla-flags"]
        results["roofline"] = _run("bench.roofline", roof_args, tmp)
        lo_args = ["--layers", "2", "--repeats", "3"] if q else []
        results["lora"] = _run("bench.lora_overhead", lo_args, tmp)
        results["memory"] = _run("bench.memory", ["--steps", "2"] if q else [], tmp)
        comp_args = ["--shots", "1,5", "--steps", "2"] if q else []
        results["compiles"] = _run("bench.compiles", comp_args, tmp)
        sweep_args = ["--quick"] if q else []
        results["sweep_throughput"] = _run("bench.sweep_throughput", sweep_args, tmp)
        fastest = min(
            entry["median"]
            for data in results["vs_pytorch"]["shapes"].values()
            for name, entry in data["timed"].items()
            if name.startswith("harjax")
        )
        results["pipeline"] = _pipeline(1000 * fastest)
    results["load_end"] = common.load_average()
    raw = common.REPO / "bench" / "results.json"  # every number, for later comparison
    raw.write_text(json.dumps(results, indent=1, default=str))
    write_report(results, Path(args.out), args.quick)


if __name__ == "__main__":
    main()
