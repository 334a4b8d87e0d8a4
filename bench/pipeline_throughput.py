"""Windows/second delivered by `train_batches` vs. windows/second a train step consumes.

The pipeline must never be the bottleneck (goal: ratio >= 10). Pass the real step time with
`--step-ms`; without it a tiny jitted conv+dense SGD step stands in (a lower bound on what any
real model costs, so the ratio printed is pessimistic).

  python bench/pipeline_throughput.py [--dataset smartwatch] [--csv DIR] [--step-ms 25]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from harjax.data import pipeline, source, splits
from harjax.data.normalization import compute_stats


def delivered_rate(ds, indices, *, batch_size: int, num_batches: int, stats) -> float:
    """Windows/s from `train_batches`, after a short warm-up (thread start, first reads)."""
    iterator = pipeline.train_batches(ds, indices, batch_size=batch_size, seed=0, stats=stats)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return num_batches * batch_size / (time.perf_counter() - start)


def tiny_step_seconds(batch_size: int, length: int, channels: int, num_classes: int) -> float:
    """Seconds per jitted SGD step of a 1-conv + dense classifier (a stand-in for the model)."""
    keys = jax.random.split(jax.random.key(0), 2)
    params = {
        "conv": 0.1 * jax.random.normal(keys[0], (8, channels, 64)),
        "head": 0.1 * jax.random.normal(keys[1], (64, num_classes)),
    }

    def loss(params, signal, label):
        hidden = jax.lax.conv_general_dilated(
            signal, params["conv"], (4,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
        )
        logits = jax.nn.relu(hidden).mean(1) @ params["head"]
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), label[:, None], 1).mean()

    @jax.jit
    def step(params, signal, label):
        grads = jax.grad(loss)(params, signal, label)
        return jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)

    signal = jnp.ones((batch_size, length, channels))
    label = jnp.zeros((batch_size,), jnp.int32)
    params = jax.block_until_ready(step(params, signal, label))  # compile
    start, steps = time.perf_counter(), 20
    for _ in range(steps):
        params = step(params, signal, label)
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / steps


def report(name: str, ds, args) -> None:
    data = default.get_config().data
    split = splits.dataset_split(
        ds,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        seed=data.split_seed,
        official=data.split == "official",
    )
    stats = compute_stats(ds, split.train)
    delivered = delivered_rate(
        ds, split.train, batch_size=args.batch_size, num_batches=args.num_batches, stats=stats
    )
    if args.step_ms is not None:
        step_s, what = args.step_ms / 1000, f"given step {args.step_ms:g} ms"
    else:
        step_s = tiny_step_seconds(args.batch_size, ds.window_length, ds.num_channels, 8)
        what = f"tiny jitted step {1000 * step_s:.2f} ms"
    consumed = args.batch_size / step_s
    print(
        f"{name}: pipeline {delivered:,.0f} windows/s | train step ({what}) "
        f"{consumed:,.0f} windows/s | ratio {delivered / consumed:.1f}x "
        f"({'ok' if delivered >= 10 * consumed else 'BELOW the 10x goal'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="smartwatch")
    parser.add_argument("--csv", default=None, help="also measure a CSV folder")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-batches", type=int, default=100)
    parser.add_argument("--step-ms", type=float, default=None, help="the real train step time")
    args = parser.parse_args()
    specs = [args.dataset] + ([f"csv:{args.csv}"] if args.csv else [])
    data = default.get_config().data
    options = dict(
        sample_rate=data.sample_rate,
        window_length=data.window_length,
        window_stride=data.window_stride,
        max_gap_s=data.max_gap_s,
        channels=data.channels,
    )
    for spec in specs:
        report(spec, source.load_dataset(spec, data_dir=args.data_dir, **options), args)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
