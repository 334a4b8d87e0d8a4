"""Runs 3 train steps of the tiny pretrained-variant model and saves loss + params to an .npz.

Run as a subprocess with different XLA_FLAGS (device counts) and compared by tests/test_train.py.
"""

import sys

import jax
import numpy as np

from harjax import train
from harjax.tree import flatten_params
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config


def main(out_path: str) -> None:
    config = tiny_config("pretrained")
    config.lora.dropout = 0.0
    built = assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(0), backbone=tiny_llama_backbone()
    )
    optimizer = train.make_optimizer(
        learning_rate=1e-2, num_steps=10, warmup_steps=2, weight_decay=0.01
    )
    mesh = train.data_mesh()
    step = train.make_train_step(built.model, optimizer, built.lora_config, mesh=mesh)
    state = train.create_train_state(jax.random.key(1), built.trainable, optimizer)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(3):
        batch = {
            "signal": rng.normal(size=(8, 32, 6)).astype(np.float32),
            "label": rng.integers(0, 3, size=8).astype(np.int32),
        }
        batch = jax.device_put(batch, train.batch_sharding(mesh))
        state, metrics = step(state, built.frozen, batch)
        losses.append(float(metrics["loss"]))
    flat = {p: np.asarray(v) for p, v in flatten_params(state.params).items()}
    np.savez(out_path, losses=np.asarray(losses), num_devices=len(jax.devices()), **flat)


if __name__ == "__main__":
    main(sys.argv[1])
