"""Peak resident memory of LoRA training on the real embedded `smollm2-135m` backbone.

A fresh child process loads the backbone with `harjax.weights.load_backbone` (through
`assemble`, as training does), builds the default config's train step and runs a few steps at
the default batch; it reports peak RSS (`getrusage` ru_maxrss) and current RSS after each phase,
so a regression points at its phase. Target: peak <= 2 GB.

    python -m bench.memory [--layers 4] [--steps 5] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

from bench import common


def _rss_mb() -> tuple[float, float]:
    import psutil

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak_kb / 1024, psutil.Process().memory_info().rss / 2**20


def child(layers: int | None, steps: int, batch: int) -> dict:
    phases = [("start", *_rss_mb())]
    import jax
    import numpy as np

    from configs.default import get_config
    from harjax import train
    from harjax.variants.assemble import assemble

    phases.append(("import jax + harjax", *_rss_mb()))
    config = get_config()
    if layers:
        config.backbone.num_layers = layers
    config.train.batch_size = batch
    assembled = assemble(config, num_classes=7, num_channels=6, rng=jax.random.key(0))
    phases.append((f"load {config.backbone.spec} + assemble", *_rss_mb()))
    optimizer = train.optimizer_from_config(config)
    step = train.make_train_step(assembled.model, optimizer, assembled.lora_config)
    state = train.create_train_state(jax.random.key(1), assembled.trainable, optimizer)
    rng = np.random.default_rng(0)
    batch_arrays = {
        "signal": rng.standard_normal((batch, config.data.window_length, 6), np.float32),
        "label": rng.integers(0, 7, batch).astype(np.int32),
    }
    state, metrics = step(state, assembled.frozen, batch_arrays)
    jax.block_until_ready(metrics)
    phases.append(("compile + first step", *_rss_mb()))
    for _ in range(steps - 1):
        state, metrics = step(state, assembled.frozen, batch_arrays)
    jax.block_until_ready(metrics)
    phases.append((f"{steps} steps", *_rss_mb()))
    return {
        "spec": config.backbone.spec,
        "layers": int(config.backbone.num_layers),
        "batch": batch,
        "window_length": int(config.data.window_length),
        "params": assembled.param_counts(),
        "phases": phases,
        "peak_mb": phases[-1][1],
    }


def run(layers: int | None, steps: int, batch: int) -> dict:
    command = [sys.executable, "-m", "bench.memory", "--child", "--steps", str(steps)]
    command += ["--batch", str(batch)] + (["--layers", str(layers)] if layers else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        command, cwd=common.REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode:
        raise RuntimeError(f"bench.memory child failed ({result.returncode}):\n{result.stderr}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [[name, f"{peak:.0f}", f"{now:.0f}"] for name, peak, now in report["phases"]]
    print(
        f"{report['spec']}, {report['layers']} layers, batch {report['batch']} x "
        f"{report['window_length']} samples, {report['params']['total']:,} params"
    )
    report["table"] = {"headers": ["phase", "peak RSS MB", "RSS MB"], "rows": rows}
    print(common.markdown_table(report["table"]["headers"], rows), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=0, help="0: the default config's layers")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.layers or None, args.steps, args.batch)))
        return
    common.write_json(args.json, run(args.layers or None, args.steps, args.batch))


if __name__ == "__main__":
    main()
