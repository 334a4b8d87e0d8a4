"""M models per step: one vmapped program (`harjax.batched`) vs one program per model (the loop).

    nice python -m bench.batched_throughput [--num_models 8] [--timed_steps 5] [--quick]

Until issue 30 the run loop trained a group of M runs as one vmapped program; now each model
steps through the compiled program of its own config (`harjax.run.program`), so a run's result
does not depend on its companions. This measures what that costs, side by side in one process
(steps alternating vmapped, per-model, vmapped, ...) at the default few-shot sweep's shapes
(`configs/fewshot.py`: 3 smollm2-shaped layers, random weights, batch 16 x 16 tokens, LoRA),
M models of other seeds and learning rates, in float32 and in the `auto` dtype, and prints
beside it the CPU flags, the dtype, the median time of one step of all M models each way, their
ratio, and how far model 0's parameters after the timed steps are from where one model alone
gets them (the per-model programs are that model's own: 0 by construction; the vmapped
program's differ, and differ between M = 2 and M). `--quick`: the tiny test backbone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from harjax import batched, precision, train
from harjax.variants import assemble

RATES = (1e-3, 3e-3)
NUM_CLASSES, NUM_CHANNELS = 7, 6


def _config(quick: bool, dtype: str):
    if quick:
        from tests.helpers import tiny_config

        config = tiny_config("pretrained")
        config.train.batch_size = 8
    else:
        from configs.fewshot import get_config

        config = get_config()
    config.backbone.dtype = dtype
    return config


def _backbone(quick: bool, config):
    if quick:
        from tests.fakes import tiny_llama_backbone

        return tiny_llama_backbone()
    from bench import common

    return common.random_backbone("smollm2", int(config.backbone.num_layers))


def _max_difference(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.abs(np.float64(x) - np.float64(y)).max()) for x, y in pairs)


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def measure(dtype: str, num_models: int, timed_steps: int, quick: bool) -> dict:
    """One dtype: both ways of stepping M models, alternating, then model 0's parameters."""
    config = _config(quick, dtype)
    backbone = _backbone(quick, config)
    models = [
        assemble.assemble(
            config,
            num_classes=NUM_CLASSES,
            num_channels=NUM_CHANNELS,
            rng=jax.random.key(seed),
            backbone=backbone,
        )
        for seed in range(num_models)
    ]
    model, adapters, frozen = models[0].model, models[0].lora_config, models[0].frozen
    rates = [RATES[i % len(RATES)] for i in range(num_models)]
    settings = dict(num_steps=1000, warmup_steps=0, weight_decay=0.01)
    rng = np.random.default_rng(0)
    shape = (num_models, int(config.train.batch_size), int(config.data.window_length))
    batches = [
        {
            "signal": rng.normal(size=shape + (NUM_CHANNELS,)).astype(np.float32),
            "label": rng.integers(0, NUM_CLASSES, size=shape[:2]).astype(np.int32),
        }
        for _ in range(timed_steps + 1)
    ]
    # Fresh buffers for every state: the steps donate them.
    keys = lambda width: [jax.random.key_data(jax.random.key(100 + i)) for i in range(width)]
    copy = lambda tree: jax.tree.map(jnp.copy, tree)

    def vmapped(width: int):
        """(step function, state holder) of main's vmapped program of `width` models."""
        optimizer = batched.make_batched_optimizer(**settings)
        step = batched.make_batched_train_step(model, optimizer, adapters)
        holder = {
            "state": batched.create_batched_train_state(
                keys(width), [copy(m.trainable) for m in models[:width]], optimizer, rates[:width]
            )
        }
        active = np.ones(width, bool)

        def run(batch):
            sliced = {name: value[:width] for name, value in batch.items()}
            holder["state"], metrics = step(holder["state"], frozen, sliced, active)
            return metrics

        return run, holder

    # One program per model: its own learning rate is a constant of it, as in the run loop.
    steps = {}
    for rate in sorted(set(rates)):
        optimizer = train.make_optimizer(learning_rate=rate, **settings)
        steps[rate] = train.make_train_step(model, optimizer, adapters)
    states = [
        train.create_train_state(
            key, copy(m.trainable), train.make_optimizer(learning_rate=rate, **settings)
        )
        for key, m, rate in zip(keys(num_models), models, rates, strict=True)
    ]

    def per_model(batch):
        out = []
        for i, rate in enumerate(rates):
            own = {name: value[i] for name, value in batch.items()}
            states[i], metrics = steps[rate](states[i], frozen, own)
            out.append(metrics)
        return out

    vmapped_step, vmapped_state = vmapped(num_models)
    times = {"vmapped": [], "per_model": []}
    for index, batch in enumerate(batches):  # the first step of each compiles: not timed
        for name, fn in (("vmapped", vmapped_step), ("per_model", per_model)):
            start = time.perf_counter()
            jax.block_until_ready(fn(batch))
            if index:
                times[name].append(time.perf_counter() - start)
    pair_step, pair_state = vmapped(2)
    for batch in batches:
        jax.block_until_ready(pair_step(batch))
    alone = states[0].params  # model 0's own program: exactly what it gets trained alone
    vmapped_ms, per_model_ms = _median_ms(times["vmapped"]), _median_ms(times["per_model"])
    return {
        "dtype": precision.resolve_compute_dtype(dtype)[0],
        "asked": dtype,
        "num_models": num_models,
        "batch": list(shape[1:]),
        "vmapped_ms": vmapped_ms,
        "per_model_ms": per_model_ms,
        "cost": per_model_ms / vmapped_ms,
        "vmapped_vs_alone": _max_difference(
            batched.unstack_tree(vmapped_state["state"].params, 0), alone
        ),
        "vmapped_2_vs_alone": _max_difference(
            batched.unstack_tree(pair_state["state"].params, 0), alone
        ),
        "steps": len(batches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_models", type=int, default=8)
    parser.add_argument("--timed_steps", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,auto")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cpu = precision.cpu_info()
    flags = " ".join(f"{k}={'y' if v else 'n'}" for k, v in cpu["flags"].items())
    print(f"cpu: {cpu['model_name']}, {cpu['num_cores']} cores, {flags}; jax {jax.__version__}")
    for dtype in args.dtypes.split(","):
        r = measure(dtype, args.num_models, args.timed_steps, args.quick)
        print(
            f"{r['dtype']} ({r['asked']}), M={r['num_models']}, batch {r['batch'][0]} windows x "
            f"{r['batch'][1]} samples: "
            f"one step of all M models: vmapped {r['vmapped_ms']:.0f} ms, one program per model "
            f"{r['per_model_ms']:.0f} ms, per-model/vmapped {r['cost']:.2f}x | model 0 after "
            f"{r['steps']} steps, max |param - alone|: vmapped M={r['num_models']} "
            f"{r['vmapped_vs_alone']:.2e}, vmapped M=2 {r['vmapped_2_vs_alone']:.2e}, "
            "per-model 0 (its own program)",
            flush=True,
        )


if __name__ == "__main__":
    main()
