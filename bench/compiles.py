"""Compilations in a k-shot sweep: the train step must compile once per model config, not per k.

Runs `harjax.run.loop.train_and_evaluate` for several k (k-shot subsets of the embedded
smartwatch training split, sampled by `harjax.data.sampling.k_shot`) with one backbone, and
counts XLA compilations per jitted function through `jax.monitoring` (the backend-compile event
carries the function's name). The pipeline repeats small sets to a fixed batch and
the runs share one `StepCache` (as a sweep does), so `step` and `eval_step` should compile once.

    python -m bench.compiles [--shots 1,2,5,10] [--layers 1] [--steps 4]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from bench import common

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts backend compilations per function name while installed (process-wide listener)."""

    def __init__(self):
        import jax

        self.counts: collections.Counter[str] = collections.Counter()
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if self.active and event == BACKEND_COMPILE_EVENT:
            name = str(kwargs.get("fun_name", "?"))  # e.g. 'jit(step)'
            if name.startswith("jit(") and name.endswith(")"):
                name = name[4:-1]
            self.counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


def run(shots: list[int], layers: int, steps: int) -> dict:
    import numpy as np

    from configs.fewshot import get_config
    from harjax.data import sampling
    from harjax.data.bundle import load_data
    from harjax.run.compiled import StepCache
    from harjax.run.loop import train_and_evaluate

    config = get_config()
    config.backbone.num_layers = layers
    config.train.num_steps = steps
    config.train.epochs, config.train.min_steps, config.train.patience = 0.0, 0, 0  # fixed steps
    config.train.eval_every = steps
    config.train.checkpoint_every = steps
    config.train.max_eval_windows = 64
    config.optim.warmup_steps = 0
    data = load_data(config)
    steps_cache = StepCache()
    backbone = common.random_backbone("smollm2", layers)
    targets = data.targets(np.arange(len(data.dataset)))
    counter = CompileCounter()
    rows, per_run = [], []
    with tempfile.TemporaryDirectory(prefix="harjax-compiles-") as workdir:
        for k in shots:
            train_idx = sampling.k_shot(targets, data.split.train, k, 0, data.class_names)
            before = counter.snapshot()
            counter.active = True
            start = time.perf_counter()
            train_and_evaluate(
                config,
                Path(workdir) / f"k{k}",
                data=data,
                train_indices=train_idx,
                backbone=backbone,
                progress=False,
                steps=steps_cache,
            )
            counter.active = False
            after = counter.snapshot()
            new = {name: after[name] - before.get(name, 0) for name in after}
            new = {name: n for name, n in new.items() if n}
            per_run.append({"k": k, "windows": len(train_idx), "compiles": new})
            rows.append(
                [
                    k,
                    len(train_idx),
                    new.get("step", 0),
                    new.get("eval_step", 0),
                    sum(new.values()),
                    f"{time.perf_counter() - start:.1f}",
                ]
            )
    totals = counter.snapshot()
    headers = ["k", "train windows", "step compiles", "eval_step compiles", "all compiles", "s"]
    print(common.markdown_table(headers, rows))
    print(f"totals per function: {totals}", flush=True)
    return {
        "runs": per_run,
        "totals": totals,
        "table": {"headers": headers, "rows": rows},
        "step_compiles": totals.get("step", 0),
        "eval_compiles": totals.get("eval_step", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", default="1,2,5,10")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    shots = [int(k) for k in args.shots.split(",")]
    common.write_json(args.json, run(shots, args.layers, args.steps))


if __name__ == "__main__":
    main()
