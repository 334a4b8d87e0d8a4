"""Shared pieces of the benchmarks: model shapes, the harjax step under test, FLOP counts,
side-by-side timing in worker processes, and table formatting.

Why worker processes: JAX (Eigen/XNNPACK thread pool) and PyTorch (OpenMP) each keep their own
threads, and XLA flags are fixed per process. Each variant therefore lives in its own process,
built and warmed up once; the controller asks them in turn (A B C A B C ...) for one timed step,
so slow drifts of a shared, noisy machine hit every variant alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: Hugging Face config.json dicts of the two benchmark shapes (random weights are fine for timing).
HF_CONFIGS: dict[str, dict[str, Any]] = {
    "smollm2": {  # SmolLM2-135M
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
    "gpt2": {  # GPT-2 small
        "model_type": "gpt2",
        "vocab_size": 50257,
        "n_positions": 1024,
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.1,
        "embd_pdrop": 0.1,
        "attn_pdrop": 0.1,
        "layer_norm_epsilon": 1e-5,
    },
}
DEFAULT_LAYERS = {"smollm2": 8, "gpt2": 6}
#: The LoRA targets of harjax's defaults, spelled for PEFT (regex full-matched on module names).
PEFT_TARGETS = {
    "smollm2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gpt2": r".*\.attn\.(c_attn|c_proj)",
}
NUM_CLASSES, NUM_CHANNELS = 7, 6  # the benchmark's label and channel counts (smartwatch-like)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One thing to time: a framework, a model shape and the knobs that change its speed."""

    name: str
    framework: str = "harjax"  # 'harjax' | 'torch'
    shape: str = "smollm2"
    layers: int = 8
    batch: int = 32
    tokens: int = 32
    rank: int = 8
    dtype: str = "float32"  # harjax: compute (and frozen-weight) dtype; torch: autocast dtype
    xla_flags: str = ""  # extra XLA_FLAGS for this worker (harjax only)
    threads: int = 0  # 0: every core this process may use
    # harjax bf16 only: 'plain' = bf16 -> bf16 dots, as before harjax.models.matmul (for the
    # before/after comparison); the default is the library's f32-accumulating matmul.
    matmul: str = "library"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def num_cores() -> int:
    return len(os.sched_getaffinity(0))


# --------------------------------------------------------------------------- harjax side


def backbone_config(shape: str, layers: int):
    """The harjax config dataclass (LlamaConfig / GPT2Config) of `shape`, first `layers` kept."""
    from harjax.models.gpt2 import GPT2Config
    from harjax.models.llama import LlamaConfig

    if shape not in HF_CONFIGS:
        raise ValueError(f"unknown benchmark shape {shape!r}; expected one of {list(HF_CONFIGS)}")
    cls = LlamaConfig if HF_CONFIGS[shape]["model_type"] == "llama" else GPT2Config
    return cls.from_hf(HF_CONFIGS[shape], num_layers=layers)


def random_backbone(
    shape: str,
    layers: int,
    dtype: str = "float32",
    seed: int = 0,
    *,
    accumulate_in_float32: bool = True,
):
    """A `harjax.weights.Backbone` with random weights of the real architecture.

    `accumulate_in_float32=False`: bf16 matmuls as plain bf16 dots (see `Variant.matmul`).
    """
    import jax
    import jax.numpy as jnp

    from harjax.weights.common import Backbone, architecture_name, build_module

    config = backbone_config(shape, layers)
    compute_dtype = jnp.dtype(dtype)
    module = build_module(config, compute_dtype).clone(accumulate_in_float32=accumulate_in_float32)
    dummy = jnp.zeros((1, 4, config.hidden_size), compute_dtype)
    params = jax.jit(module.init)(jax.random.key(seed), dummy)["params"]
    return Backbone(
        name=architecture_name(config),
        spec=f"random-{shape}-{layers}",
        config=config,
        module=module,
        params=params,
        content_hash=f"random-{shape}-{layers}-{seed}",
    )


def experiment_config(variant: Variant):
    """`configs/default.py` with the variant's backbone, LoRA rank, dtype, window and batch.

    Everything else (projection, LoRA alpha, optimizer, head dropout) is the default config's,
    so the benchmarks time the model `launch/train.py` trains; the PyTorch twin reads it too.
    """
    from configs.default import get_config

    config = get_config()
    config.backbone.spec = f"random-{variant.shape}"
    config.backbone.num_layers = variant.layers
    config.backbone.dtype = variant.dtype
    config.backbone.param_dtype = variant.dtype
    config.lora.rank = variant.rank
    config.data.window_length = variant.tokens * math.prod(config.projection.strides)
    config.train.batch_size = variant.batch
    return config


def build_harjax(variant: Variant, backbone=None) -> dict[str, Any]:
    """Assembles the HAR model and returns {'step': () -> None (one blocking train step), ...}.

    This is the library's own path: `assemble` -> `make_optimizer` -> `create_train_state` ->
    `make_train_step`, the way `harjax.run.loop` trains.
    """
    import jax
    import numpy as np

    from harjax import train
    from harjax.variants.assemble import assemble

    config = experiment_config(variant)
    if variant.matmul not in ("library", "plain"):
        raise ValueError(f"Variant.matmul must be 'library' or 'plain', got {variant.matmul!r}")
    accumulate_in_float32 = variant.matmul == "library"
    if backbone is None:
        backbone = random_backbone(variant.shape, variant.layers, variant.dtype)
    # The matmul choice reaches the library through its public fields, backbone and LoRA alike.
    module = backbone.module.clone(accumulate_in_float32=accumulate_in_float32)
    backbone = dataclasses.replace(backbone, module=module)
    assembled = assemble(
        config,
        num_classes=NUM_CLASSES,
        num_channels=NUM_CHANNELS,
        rng=jax.random.key(0),
        backbone=backbone,
    )
    adapters = dataclasses.replace(
        assembled.lora_config, accumulate_in_float32=accumulate_in_float32
    )
    optimizer = train.optimizer_from_config(config)
    step_fn = train.make_train_step(assembled.model, optimizer, adapters)
    state = train.create_train_state(jax.random.key(1), assembled.trainable, optimizer)
    rng = np.random.default_rng(0)
    batch = {
        "signal": rng.standard_normal(
            (variant.batch, config.data.window_length, NUM_CHANNELS), np.float32
        ),
        "label": rng.integers(0, NUM_CLASSES, variant.batch).astype(np.int32),
    }
    batch = jax.device_put(batch)
    holder = {"state": state}

    def step() -> None:
        holder["state"], metrics = step_fn(holder["state"], assembled.frozen, batch)
        jax.block_until_ready(metrics)

    return {
        "step": step,
        "step_fn": step_fn,
        "args": lambda: (holder["state"], assembled.frozen, batch),
        "assembled": assembled,
        "config": config,
    }


# --------------------------------------------------------------------------- FLOP counts


def matmul_flops(variant: Variant) -> dict[str, float]:
    """Analytic matmul FLOPs of one train step (forward + backward), by part.

    Frozen backbone matrices get no weight gradient, so their backward is one matmul (dX), the
    same cost as the forward. LoRA factors, the projection and the head train: backward = dX + dW
    = 2x forward. Attention score/value products act on activations: backward = 2x forward.
    Elementwise work (norms, softmax, RoPE, AdamW) is not counted; it is small next to GEMMs.
    """
    backbone = backbone_config(variant.shape, variant.layers)
    batch, tokens = variant.batch, variant.tokens
    rows = batch * tokens  # every token through every Dense
    hidden, ffn = backbone.hidden_size, backbone.intermediate_size
    heads, head_dim = backbone.num_attention_heads, backbone.head_dim
    if variant.shape == "gpt2":
        dense = [(hidden, 3 * hidden), (hidden, hidden), (hidden, ffn), (ffn, hidden)]
        lora_shapes = [(hidden, 3 * hidden), (hidden, hidden)]
    else:
        query, key_value = heads * head_dim, backbone.num_key_value_heads * head_dim
        dense = [(hidden, query), (hidden, key_value), (hidden, key_value), (query, hidden)]
        dense += [(hidden, ffn), (hidden, ffn), (ffn, hidden)]
        lora_shapes = dense[:4]
    frozen_fwd = variant.layers * sum(2 * rows * fan_in * fan_out for fan_in, fan_out in dense)
    attention_fwd = variant.layers * 2 * (2 * batch * heads * tokens * tokens * head_dim)
    rank = variant.rank
    lora_fwd = (
        variant.layers
        * sum(2 * rows * (fan_in + fan_out) * rank for fan_in, fan_out in lora_shapes)
        if rank
        else 0
    )
    # Projection (its shape from configs/default.py): parallel 'SAME' convs on the window, one
    # strided conv (kernel 2 * stride) per stage, the linear map into the model width; head: tiny.
    projection = experiment_config(variant).projection
    length = variant.tokens * math.prod(projection.strides)  # the window
    width = projection.channels * len(projection.kernel_sizes)
    projection_fwd = 2 * batch * length * sum(projection.kernel_sizes) * NUM_CHANNELS
    projection_fwd *= projection.channels
    for stride in projection.strides:
        if stride == 1:
            continue  # ConvProjection skips stride-1 stages
        length //= stride
        projection_fwd += 2 * batch * length * (2 * stride) * width * width
    projection_fwd += 2 * rows * width * hidden
    head_fwd = 2 * batch * hidden * NUM_CLASSES
    parts = {
        "frozen_dense": 2 * frozen_fwd,
        "attention": 3 * attention_fwd,
        "lora": 3 * lora_fwd,
        "projection_head": 3 * (projection_fwd + head_fwd),
    }
    parts["total"] = sum(parts.values())
    parts["forward"] = frozen_fwd + attention_fwd + lora_fwd + projection_fwd + head_fwd
    return parts


def xla_flops(step_fn, args) -> float:
    """FLOPs of the compiled step as XLA's cost analysis counts them (elementwise ops included)."""
    compiled = step_fn.lower(*args).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax returned one dict per device
        cost = cost[0]
    if not cost or "flops" not in cost:
        raise RuntimeError(f"cost_analysis() of the train step has no 'flops' entry: {cost!r}")
    return float(cost["flops"])


# --------------------------------------------------------------------------- side-by-side timing


class Worker:
    """A variant built in its own process; `step()` returns the seconds of one train step."""

    def __init__(self, variant: Variant, warmup: int = 2):
        env = dict(os.environ)
        flags = " ".join(x for x in (env.get("XLA_FLAGS", ""), variant.xla_flags) if x)
        if flags:
            env["XLA_FLAGS"] = flags
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.variant = variant
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", variant.to_json(), str(warmup)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._reply("READY")

    def _reply(self, tag: str) -> dict[str, Any]:
        while True:
            line = self.process.stdout.readline()
            if not line:
                code = self.process.wait()
                raise RuntimeError(
                    f"benchmark worker {self.variant.name!r} exited with code {code} before "
                    f"answering {tag!r} (its stderr is above)"
                )
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])

    def step(self) -> float:
        self.process.stdin.write("STEP\n")
        self.process.stdin.flush()
        return float(self._reply("TIME")["seconds"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("QUIT\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def alternate(variants: Sequence[Variant], repeats: int, warmup: int = 2) -> dict[str, Any]:
    """Times `repeats` steps of each variant, interleaved A B C A B C; returns per-variant data.

    Workers are started one at a time (compiling while another one is timed would skew it).
    """
    workers = []
    try:
        for variant in variants:
            print(f"  building {variant.name} ...", file=sys.stderr, flush=True)
            workers.append(Worker(variant, warmup))
        times: dict[str, list[float]] = {w.variant.name: [] for w in workers}
        for _ in range(repeats):
            for worker in workers:
                times[worker.variant.name].append(worker.step())
                time.sleep(0.05)  # let the previous framework's spinning threads go idle
        return {
            w.variant.name: {
                "variant": dataclasses.asdict(w.variant),
                "times": times[w.variant.name],
                "median": statistics.median(times[w.variant.name]),
                "info": w.info,
            }
            for w in workers
        }
    finally:
        for worker in workers:
            worker.close()


# --------------------------------------------------------------------------- reporting


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    import jax

    return {
        "cpu": model,
        "cores": str(num_cores()),
        "isa": ", ".join(isa) or "-",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load": load_average(),
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    """Writes the machine-readable result for `run_all` (skipped when `path` is empty)."""
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str))
