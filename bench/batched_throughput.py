"""M models in one batched step vs M sequential steps, at a small shape, beside the CPU flags.

    python -m bench.batched_throughput --num_models 3 --timed_steps 20

Not a benchmark of record (see bench/run_all.py for those): a quick look at whether batching
pays on this machine. Each side is compiled and warmed up first; the timing is the median of
`timed_steps` steps (one batched step = M model-steps, one sequential "step" = M calls).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from harjax import batched, precision, train
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config

SETTINGS = dict(num_steps=1000, warmup_steps=0, weight_decay=0.01)


def _median_seconds(fn, timed_steps: int) -> float:
    times = []
    for _ in range(timed_steps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(num_models: int = 3, timed_steps: int = 10, batch_size: int = 16) -> dict:
    config = tiny_config("pretrained")
    backbone = tiny_llama_backbone()
    models = [
        assemble.assemble(
            config, num_classes=3, num_channels=6, rng=jax.random.key(seed), backbone=backbone
        )
        for seed in range(num_models)
    ]
    model, lora_config, frozen = models[0].model, models[0].lora_config, models[0].frozen
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(num_models, batch_size, 32, 6)).astype(np.float32)
    label = rng.integers(0, 3, size=(num_models, batch_size)).astype(np.int32)
    batch = {"signal": signal, "label": label}

    optimizer = batched.make_batched_optimizer(**SETTINGS)
    step = batched.make_batched_train_step(model, optimizer, lora_config)
    keys = [jax.random.key(i) for i in range(num_models)]
    holder = {
        "state": batched.create_batched_train_state(
            keys, [m.trainable for m in models], optimizer, [1e-3] * num_models
        )
    }
    active = np.ones(num_models, bool)

    def batched_step():
        holder["state"], metrics = step(holder["state"], frozen, batch, active)
        return metrics

    alone = train.make_optimizer(learning_rate=1e-3, **SETTINGS)
    alone_step = train.make_train_step(model, alone, lora_config)
    states = [train.create_train_state(k, m.trainable, alone) for k, m in zip(keys, models)]

    def sequential_steps():
        out = []
        for i in range(num_models):
            states[i], metrics = alone_step(
                states[i], frozen, {"signal": signal[i], "label": label[i]}
            )
            out.append(metrics)
        return out

    batched_step(), sequential_steps()  # compile and warm up
    batched_seconds = _median_seconds(batched_step, timed_steps)
    sequential_seconds = _median_seconds(sequential_steps, timed_steps)
    return {
        "num_models": num_models,
        "batch_size": batch_size,
        "batched_steps_per_second": num_models / batched_seconds,
        "sequential_steps_per_second": num_models / sequential_seconds,
        "speedup": sequential_seconds / batched_seconds,
        "cpu": precision.cpu_info(),
        "device": str(jax.devices()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_models", type=int, default=3)
    parser.add_argument("--timed_steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    result = run(args.num_models, args.timed_steps, args.batch_size)
    cpu = result.pop("cpu")
    flags = " ".join(f"{k}={'y' if v else 'n'}" for k, v in cpu["flags"].items())
    print(f"cpu: {cpu['model_name']}, {cpu['num_cores']} cores, {flags}")
    for key, value in result.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
