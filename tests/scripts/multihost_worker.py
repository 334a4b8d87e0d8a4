"""One process of a (possibly) multi-process run of the tiny model; writes what it saw to an .npz.

Started by tests/test_multihost.py, once alone (the reference) and as 2 processes on 127.0.0.1
(HARJAX_COORDINATOR / HARJAX_NUM_PROCESSES / HARJAX_PROCESS_ID set). Every process builds the
same global batches from a fixed seed and feeds only its own rows, so a correct multi-process
run reproduces the single-process numbers. Three checks in one start-up (jax import and
compilation dominate the cost):
  manual    numpy shards placed with `jax.make_array_from_process_local_data`, 3 train steps,
            then eval logits gathered from all processes (proves which rows each process fed)
  pipeline  the same through `harjax.data.pipeline.train_batches(..., sharding=...)`, which
            picks each process's shard by `jax.process_index()`
  ckpt      orbax save of the train state from every process, restore, compare; the same
            through harjax.run.checkpoint.RunCheckpointer (what train_and_evaluate uses)
Usage: python -m tests.scripts.multihost_worker OUT_DIR CHECKPOINT_DIR
"""

from __future__ import annotations

import os
import sys

import jax

from harjax import cli
from harjax.run.environment import is_main_process

# Before anything touches a backend: joining the run must come first.
cli.initialize_from_env(initialization_timeout=60)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from harjax import train  # noqa: E402
from harjax.data import pipeline  # noqa: E402
from harjax.run.checkpoint import RunCheckpointer  # noqa: E402
from harjax.tree import flatten_params  # noqa: E402
from harjax.variants import assemble  # noqa: E402
from tests.fakes import tiny_llama_backbone  # noqa: E402
from tests.helpers import tiny_config  # noqa: E402

GLOBAL_BATCH = 8
NUM_STEPS = 3
WINDOW, CHANNELS, CLASSES = 32, 6, 3


def global_batches(seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "signal": rng.normal(size=(GLOBAL_BATCH, WINDOW, CHANNELS)).astype(np.float32),
            "label": rng.integers(0, CLASSES, size=GLOBAL_BATCH).astype(np.int32),
        }
        for _ in range(NUM_STEPS)
    ]


def local_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This process's contiguous block of rows of a global batch."""
    per_process = GLOBAL_BATCH // jax.process_count()
    start = jax.process_index() * per_process
    return {k: v[start : start + per_process] for k, v in batch.items()}


class ArrayDataset:
    """The two attributes of `source.HARDataset` that `train_batches` reads, from memory."""

    def __init__(self, num_windows: int = 40, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.name = "in-memory"
        self.signals = rng.normal(size=(num_windows, WINDOW, CHANNELS)).astype(np.float32)
        self.labels = rng.integers(0, CLASSES, size=num_windows).astype(np.int64)

    def read_signals(self, indices) -> np.ndarray:
        return self.signals[np.asarray(indices, dtype=np.int64)]


def flat_params(params) -> dict[str, np.ndarray]:
    # Replicated arrays: every process holds the full value.
    return {p: np.asarray(v) for p, v in flatten_params(params).items()}


def main(out_dir: str, checkpoint_dir: str) -> None:
    config = tiny_config("pretrained")
    # Dropout on: the global batch is the same rows in the same order for any process count
    # (pipeline._ShuffledStream) and the masks come from fold_in(rng, step), so they match too.
    config.lora.dropout = 0.1
    config.model.head_dropout = 0.1
    built = assemble.assemble(
        config,
        num_classes=CLASSES,
        num_channels=CHANNELS,
        rng=jax.random.key(0),
        backbone=tiny_llama_backbone(),
    )
    optimizer = train.make_optimizer(
        learning_rate=1e-2, num_steps=10, warmup_steps=2, weight_decay=0.01
    )
    mesh = train.data_mesh()
    data = train.batch_sharding(mesh)
    step = train.make_train_step(built.model, optimizer, built.lora_config, mesh=mesh)
    eval_step = train.make_eval_step(built.model, built.lora_config, mesh=mesh)
    # A fresh copy each run: the step donates the state, and with it these very buffers.
    # Raw key data, as harjax.run.loop keeps it (checkpoints hold plain arrays).
    new_state = lambda: train.create_train_state(
        jax.random.key_data(jax.random.key(1)), jax.tree.map(jnp.copy, built.trainable), optimizer
    )
    record: dict[str, np.ndarray] = {}

    def run(name: str, batches) -> train.TrainState:
        state, metrics = new_state(), []
        for batch in batches:
            record[f"{name}/global_batch_shape"] = np.asarray(batch["signal"].shape)
            state, m = step(state, built.frozen, batch)
            metrics.append([float(m["loss"]), float(m["accuracy"]), float(m["grad_norm"])])
        record[f"{name}/metrics"] = np.asarray(metrics)  # (steps, [loss, accuracy, grad_norm])
        record.update({f"{name}/params/{p}": v for p, v in flat_params(state.params).items()})
        return state

    # manual: each process places its own rows of fixed global batches.
    batches = global_batches()
    state = run(
        "manual",
        (
            {k: jax.make_array_from_process_local_data(data, v) for k, v in local_rows(b).items()}
            for b in batches
        ),
    )
    eval_batch = {
        k: jax.make_array_from_process_local_data(data, v)
        for k, v in local_rows(global_batches(seed=7)[0]).items()
    }
    logits = eval_step(state.params, built.frozen, eval_batch)["logits"]
    record["manual/eval_logits"] = np.asarray(multihost_utils.process_allgather(logits, tiled=True))

    # pipeline: train_batches reads only this process's shard of each global batch.
    stream = pipeline.train_batches(
        ArrayDataset(),
        np.arange(40),
        batch_size=GLOBAL_BATCH,
        seed=3,
        stats=None,
        sharding=data,
        num_threads=1,
    )
    run("pipeline", (next(stream) for _ in range(NUM_STEPS)))

    # ckpt: every process calls save and restore; orbax decides who writes which bytes.
    manager = ocp.CheckpointManager(checkpoint_dir)
    manager.save(NUM_STEPS, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
    manager.close()
    for (path, saved), loaded in zip(
        jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(restored)
    ):
        where = f"checkpoint leaf {jax.tree_util.keystr(path)}"
        if loaded.sharding != saved.sharding:
            raise AssertionError(f"{where}: sharding {loaded.sharding} != {saved.sharding}")
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(saved), err_msg=where)
    record["ckpt/restored_step"] = np.asarray(int(restored.step))

    # The library's own checkpoint path (what train_and_evaluate saves), also from every process.
    run_checkpointer = RunCheckpointer(os.path.join(checkpoint_dir, "run"))
    meta = {"backbone_hash": built.backbone_hash, "step": NUM_STEPS}
    run_checkpointer.save(NUM_STEPS, state, state.params, meta)
    run_state, run_best, run_meta = run_checkpointer.restore(
        state, state.params, backbone_hash=built.backbone_hash
    )
    run_checkpointer.close()
    if run_meta != meta:
        raise AssertionError(f"RunCheckpointer meta: restored {run_meta}, saved {meta}")
    record.update(
        {f"ckpt/run_state/{p}": v for p, v in flat_params(run_state.params).items()},
        **{f"ckpt/run_best/{p}": v for p, v in flat_params(run_best).items()},
    )

    record["process_count"] = np.asarray(jax.process_count())
    record["is_main_process"] = np.asarray(is_main_process())
    record["device_count"] = np.asarray(jax.device_count())
    record["local_device_count"] = np.asarray(jax.local_device_count())
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, f"process_{jax.process_index()}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
