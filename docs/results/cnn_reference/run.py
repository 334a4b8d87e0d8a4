"""A plain 3-layer CNN on the study's splits, seeds and k-shot draws: the bar a HAR network meets.

    python docs/results/cnn_reference/run.py [--steps 300] [--out docs/results/cnn_reference]

The issue that asked for the fair test (issue 10) judges the neural variants against "a plain
3-layer CNN trained 300 steps". This script trains exactly that (three Conv1D(64, kernel 5) +
ReLU, global mean pool, Dense; Adam 1e-3, batch 32, a fixed 300 steps, no validation choice) on
the same windows the study's runs see: `configs/study.py`'s data, split seeds 0-2, seeds 0-2,
the library's k-shot draw (`data.sampling.training_windows`) and normalisation statistics from
the training windows only (`data.normalization.compute_stats`), scored on the test subjects.
It is a reference row, not a protocol variant: it gets no learning-rate grid and no early
stopping, so it can only be flattered by being compared with the study's validation-chosen
rows, never the other way round. Writes results.md (mean ± std per k) and results.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import optax

from configs.study import get_config
from harjax.data import pipeline, sampling
from harjax.data.bundle import load_data
from harjax.data.normalization import compute_stats
from harjax.reporting import tables
from harjax.reporting.metrics import classification_metrics
from harjax.run.environment import describe, environment

SHOTS = (1, 5, 10, "all")
SPLIT_SEEDS = (0, 1, 2)
SEEDS = (0, 1, 2)


class PlainCNN(nn.Module):
    num_classes: int
    width: int = 64
    kernel_size: int = 5

    @nn.compact
    def __call__(self, signal):  # (B, T, C) -> (B, num_classes)
        x = signal
        for _ in range(3):
            x = nn.relu(nn.Conv(self.width, (self.kernel_size,))(x))
        return nn.Dense(self.num_classes)(x.mean(axis=1))


def train_and_test(data, shots, seed: int, steps: int) -> dict:
    train_idx = data.split.train if shots == "all" else sampling.training_windows(data, shots, seed)
    stats = compute_stats(data.dataset, train_idx)
    x_train, y_train = pipeline.load_arrays(data.dataset, train_idx, stats)
    x_test, y_test = pipeline.load_arrays(data.dataset, data.split.test, stats)
    model = PlainCNN(len(data.class_names))
    params = model.init(jax.random.key(seed), x_train[:1])
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, opt_state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    rng = np.random.default_rng(seed)
    batch_size = min(32, len(x_train))
    start = time.perf_counter()
    for _ in range(steps):
        batch = rng.choice(len(x_train), batch_size, replace=False)
        params, opt_state = step(params, opt_state, x_train[batch], y_train[batch])
    jax.block_until_ready(params)
    train_s = time.perf_counter() - start
    predict = jax.jit(model.apply)
    chunks = range(0, len(x_test), 512)
    predictions = np.concatenate(
        [np.asarray(predict(params, x_test[i : i + 512]).argmax(-1)) for i in chunks]
    )
    test = classification_metrics(y_test, predictions, data.class_names)
    return {
        "accuracy": test["accuracy"],
        "macro_f1": test["macro_f1"],
        "train_windows": len(train_idx),
        "train_s": round(train_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    config = get_config()
    rows = []
    for split_seed in SPLIT_SEEDS:
        config.data.split_seed = split_seed
        data = load_data(config)
        for shots in SHOTS:
            for seed in SEEDS:
                row = {"shots": shots, "split_seed": split_seed, "seed": seed}
                row.update(train_and_test(data, shots, seed, args.steps))
                rows.append(row)
                print(row, flush=True)
    out = Path(args.out)
    tables.write_csv(rows, out / "results.csv")
    lines = []
    for shots in SHOTS:
        group = [r for r in rows if r["shots"] == shots]
        seconds = np.mean([r["train_s"] for r in group])
        lines.append(
            [
                shots,
                len(group),
                tables.format_mean_std([r["accuracy"] for r in group]),
                tables.format_mean_std([r["macro_f1"] for r in group]),
                f"{seconds:.1f}",
            ]
        )
    header = ["k", "runs", "accuracy", "macro-F1", "train s"]
    text = (
        f"# Plain 3-layer CNN, {args.steps} steps (test, mean ± std over "
        f"{len(SPLIT_SEEDS) * len(SEEDS)} runs per k)\n\n"
        + tables.markdown_table(header, lines, "lrrrr")
        + f"\nMachine: {describe(environment())}\n"
    )
    (out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
