"""A sweep's runs trained one model per program vs batched (`train.models_per_program`).

    python -m bench.sweep_throughput [--quick] [--json out.json]

The same runs — `pretrained`, 3 seeds x 3 learning rates, k = 5, at the default few-shot
sweep's shapes (`configs/fewshot.py`) on a random-weight smollm2-shaped backbone — go through
`Sweep.run` twice in one process: with `models_per_program` 1 (one run at a time) and with
all of them in one group (`loop.train_group`; each model in the program of its own config since
issue 30, so the results agree to the bit; the former vmapped program of all of them is
compared step by step in `bench/batched_throughput.py`). Printed: the CPU flags,
models per second of each, their ratio, achieved matmul GFLOP/s (analytic,
`bench.common.matmul_flops`), peak RSS, the largest per-model difference in final validation
macro-F1, and the fraction of models whose best step agrees. `--quick`: 2 seeds x 2 rates on
the tiny test backbone, 4 steps. Wall times include compiling and evaluation: that is what a
sweep pays.
"""

from __future__ import annotations

import argparse
import copy
import math
import resource
import tempfile
import time
from pathlib import Path

from bench import common
from harjax import precision
from harjax.data import sampling
from harjax.data.bundle import load_data
from harjax.run.result import read_result
from harjax.sweeps import core

RATES = (1e-3, 2e-3, 5e-3)


class _OneBackbone:
    """A `BackboneCache` stand-in that hands every run the same (random) backbone."""

    def __init__(self, backbone):
        self.backbone = backbone

    def get(self, config):
        return self.backbone


def _config(quick: bool):
    from configs.fewshot import get_config

    config = get_config()
    if quick:
        from tests.helpers import tiny_config

        config = tiny_config("pretrained", window_length=128)
        config.projection.strides = (4, 4)
        config.backbone.num_layers = 1
        config.train.update(
            batch_size=8, num_steps=4, eval_every=2, checkpoint_every=4, max_eval_windows=64
        )
        config.train.eval_batch_size = 64
    return config


def _plan(config, workdir: Path, data, seeds: int, rates) -> list[core.PlannedRun]:
    planned = []
    for seed in range(seeds):
        for rate in rates:
            run_config = copy.deepcopy(config)
            run_config.seed = int(config.seed) + seed
            run_config.optim.learning_rate = rate
            planned.append(
                core.PlannedRun(
                    directory=workdir / f"lr{rate}_seed{seed}",
                    config=run_config,
                    data=data,
                    train_indices=sampling.training_windows(data, 5, seed),
                    tags={"variant": "pretrained", "shots": 5, "seed": seed, "lr": rate},
                    label=f"lr={rate} seed={seed}",
                )
            )
    return planned


def _sweep(planned, workdir: Path, backbone, models_per_program: int) -> tuple[float, list]:
    for run in planned:
        run.config.train.models_per_program = models_per_program
    sweep = core.Sweep(workdir, progress=False)
    sweep.backbones = _OneBackbone(backbone)
    start = time.perf_counter()
    sweep.run(planned, after_each=lambda: None)
    return time.perf_counter() - start, [read_result(run.directory) for run in planned]


def run(quick: bool = False, dtype: str = "") -> dict:
    config = _config(quick)
    if dtype:
        config.backbone.dtype = dtype
    if quick:
        from tests.fakes import tiny_llama_backbone

        backbone, shape = tiny_llama_backbone(), None
        seeds, rates = 2, RATES[:2]
    else:
        shape = "smollm2"
        backbone = common.random_backbone(shape, int(config.backbone.num_layers))
        seeds, rates = 3, RATES
    data = load_data(config)
    results = {"cpu": precision.cpu_info(), "quick": quick}
    results["compute_dtype"] = precision.resolve_compute_dtype(str(config.backbone.dtype))[0]
    with tempfile.TemporaryDirectory(prefix="harjax-sweep-bench-") as tmp:
        measured = {}
        for name, per_program in (("sequential", 1), ("batched", seeds * len(rates))):
            planned = _plan(config, Path(tmp) / name, data, seeds, rates)
            measured[name] = _sweep(planned, Path(tmp) / name, backbone, per_program)
    num_models = seeds * len(rates)
    for name, (seconds, _) in measured.items():
        results[name] = {"seconds": seconds, "models_per_second": num_models / seconds}
    results["speedup"] = measured["sequential"][0] / measured["batched"][0]
    if shape is not None:
        tokens = int(config.data.window_length) // math.prod(config.projection.strides)
        variant = common.Variant(
            name="sweep",
            shape=shape,
            layers=int(config.backbone.num_layers),
            batch=int(config.train.batch_size),
            tokens=tokens,
            rank=int(config.lora.rank),
        )
        flops = common.matmul_flops(variant)
        per_step = flops.get("total", sum(flops.values()))
        total = per_step * int(config.train.num_steps) * num_models
        for name in ("sequential", "batched"):
            results[name]["train_gflops"] = total / measured[name][0] / 1e9
    sequential, batched = measured["sequential"][1], measured["batched"][1]
    final = lambda result: result["val_curve"]["macro_f1"][-1]
    results["max_final_val_f1_difference"] = max(
        abs(final(a) - final(b)) for a, b in zip(sequential, batched, strict=True)
    )
    results["same_best_step_fraction"] = sum(
        a["best_step"] == b["best_step"] for a, b in zip(sequential, batched, strict=True)
    ) / len(sequential)
    results["num_models"] = num_models
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def render(results: dict) -> str:
    """The docs/performance.md section for one or more runs of this benchmark (by dtype)."""
    runs = results if isinstance(results, list) else [results]
    lines = [
        "| compute dtype | models | sequential models/s | batched models/s | batched/sequential "
        "| matmul GFLOP/s seq / batched | max final val macro-F1 diff | same best step "
        "| peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        gflops = " / ".join(f"{run[name].get('train_gflops', float('nan')):.0f}"
                            for name in ("sequential", "batched"))  # fmt: skip
        lines.append(
            f"| {run.get('compute_dtype', '?')} | {run['num_models']} "
            f"| {run['sequential']['models_per_second']:.3f} "
            f"| {run['batched']['models_per_second']:.3f} | {run['speedup']:.2f}x | {gflops} "
            f"| {run['max_final_val_f1_difference']:.3f} "
            f"| {100 * run['same_best_step_fraction']:.0f} % | {run['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--dtype", default="", help="backbone.dtype (default: the config's)")
    args = parser.parse_args()
    results = run(quick=args.quick, dtype=args.dtype)
    flags = ", ".join(f"{k}={'y' if v else 'n'}" for k, v in results["cpu"]["flags"].items())
    print(f"cpu: {results['cpu']['model_name']} ({results['cpu']['num_cores']} cores) {flags}")
    print(f"compute dtype: {results['compute_dtype']}")
    for name in ("sequential", "batched"):
        entry = results[name]
        gflops = f", {entry['train_gflops']:.1f} matmul GFLOP/s" if "train_gflops" in entry else ""
        print(
            f"{name:>10}: {results['num_models']} models in {entry['seconds']:.1f} s = "
            f"{entry['models_per_second']:.3f} models/s{gflops}"
        )
    print(f"batched / sequential speed: {results['speedup']:.2f}x")
    print(f"peak RSS: {results['peak_rss_mib']:.0f} MiB")
    print(
        f"largest final val macro-F1 difference: {results['max_final_val_f1_difference']:.2e}; "
        f"same best step: {100 * results['same_best_step_fraction']:.0f} % of models"
    )
    common.write_json(args.json, results)


if __name__ == "__main__":
    main()
