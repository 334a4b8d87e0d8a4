"""Batched vs sequential training of 2 tiny models on the current device mesh; prints the result.

Run as a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=2 by
tests/test_batched.py: the per-model batch axis is then split over two devices.
"""

import jax
import numpy as np

from harjax import batched, train
from tests.test_batched import (
    LEARNING_RATES,
    SETTINGS,
    build,
    dropout_key,
    max_difference,
    model_batches,
    sequential,
)


def main() -> None:
    mesh = train.data_mesh()
    models = [build(seed, backbone_seed=seed) for seed in range(2)]
    optimizer = batched.make_batched_optimizer(**SETTINGS)
    step = batched.make_batched_train_step(
        models[0].model, optimizer, models[0].lora_config, mesh=mesh, stacked_frozen=True
    )
    frozen = batched.stack_trees([m.frozen for m in models])
    state = batched.create_batched_train_state(
        [dropout_key(i) for i in range(2)],
        [m.trainable for m in models],
        optimizer,
        LEARNING_RATES[:2],
        mesh=mesh,
    )
    batches = model_batches(2)
    for batch in batches:
        batch = jax.device_put(batch, batched.model_batch_sharding(mesh))
        state, _ = step(state, frozen, batch, np.ones(2, bool))
    worst = max(
        max_difference(
            batched.unstack_tree(state.params, i),
            sequential(built, LEARNING_RATES[i], i, batches)[0].params,
        )
        for i, built in enumerate(models)
    )
    print(f"devices={len(mesh.devices.flat)} batch spec={batch['signal'].sharding.spec}")
    print(f"max difference={worst:.3e}")


if __name__ == "__main__":
    main()
