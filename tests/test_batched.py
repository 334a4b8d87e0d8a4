"""The batched trainer trains each of M models exactly like `train.make_train_step` would.

Dropout is ON (LoRA dropout and head dropout 0.1) in the parity tests: each batched model
carries the rng the sequential run would have, so the dropout masks match exactly.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harjax import batched, train
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = dict(num_steps=10, warmup_steps=2, weight_decay=0.01)
LEARNING_RATES = (1e-2, 3e-3, 2e-2)
NUM_STEPS = 4


def build(seed: int, backbone_seed: int = 0) -> assemble.Assembled:
    config = tiny_config("pretrained")
    config.lora.dropout = 0.1
    config.model.head_dropout = 0.1
    backbone = tiny_llama_backbone(backbone_seed)
    return assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(seed), backbone=backbone
    )


def model_batches(num_models: int, num_steps: int = NUM_STEPS, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "signal": rng.normal(size=(num_models, 8, 32, 6)).astype(np.float32),
            "label": rng.integers(0, 3, size=(num_models, 8)).astype(np.int32),
        }
        for _ in range(num_steps)
    ]


def dropout_key(index: int) -> jax.Array:
    return jax.random.key(100 + index)


def sequential(built, learning_rate, index, batches):
    """Model `index` trained alone with the library's sequential step."""
    optimizer = train.make_optimizer(learning_rate=learning_rate, **SETTINGS)
    step = train.make_train_step(built.model, optimizer, built.lora_config)
    # A copy: `create_train_state` may keep the caller's buffers, which the step then donates.
    trainable = jax.tree.map(jnp.copy, built.trainable)
    state = train.create_train_state(dropout_key(index), trainable, optimizer)
    losses = []
    for batch in batches:
        state, metrics = step(state, built.frozen, {k: v[index] for k, v in batch.items()})
        losses.append(float(metrics["loss"]))
    return state, np.asarray(losses)


def max_difference(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in pairs)


def snapshot(state: train.TrainState) -> train.TrainState:
    """A host copy of what a step may change (the buffers themselves are donated)."""
    copy = lambda tree: jax.tree.map(lambda x: np.array(x, copy=True), tree)
    return state.replace(
        step=copy(state.step), params=copy(state.params), opt_state=copy(state.opt_state)
    )


@pytest.fixture(scope="module")
def group():
    """Three models of different seeds on one shared backbone, and the shared-frozen step."""
    models = [build(seed) for seed in range(3)]
    optimizer = batched.make_batched_optimizer(**SETTINGS)
    step = batched.make_batched_train_step(models[0].model, optimizer, models[0].lora_config)
    return models, optimizer, step


@pytest.mark.parametrize("stacked_frozen", [False, True], ids=["shared", "stacked"])
def test_batched_equals_sequential(group, stacked_frozen):
    if stacked_frozen:  # the models differ in frozen weights, as pretrained vs random would
        models = [build(seed, backbone_seed=seed) for seed in range(3)]
        optimizer = batched.make_batched_optimizer(**SETTINGS)
        step = batched.make_batched_train_step(
            models[0].model, optimizer, models[0].lora_config, stacked_frozen=True
        )
        frozen = batched.stack_trees([m.frozen for m in models], what="frozen tree")
    else:
        models, optimizer, step = group
        frozen = models[0].frozen
    batches = model_batches(len(models))
    state = batched.create_batched_train_state(
        [dropout_key(i) for i in range(3)], [m.trainable for m in models], optimizer, LEARNING_RATES
    )
    active = np.ones(3, bool)
    losses = []
    for batch in batches:
        state, metrics = step(state, frozen, batch, active)
        assert metrics["loss"].shape == metrics["grad_norm"].shape == (3,)
        losses.append(np.asarray(metrics["loss"]))
    np.testing.assert_array_equal(np.asarray(state.step), [NUM_STEPS] * 3)
    worst = 0.0
    for index, built in enumerate(models):
        alone, alone_losses = sequential(built, LEARNING_RATES[index], index, batches)
        np.testing.assert_allclose(np.asarray(losses)[:, index], alone_losses, atol=1e-5)
        difference = max_difference(batched.unstack_tree(state.params, index), alone.params)
        assert difference < 1e-5, (index, difference)
        worst = max(worst, difference)
    print(f"batched vs sequential ({'stacked' if stacked_frozen else 'shared'}): {worst:.2e}")


def test_learning_rates_per_model_and_inactive_models_frozen(group):
    models, optimizer, step = group
    state = batched.create_batched_train_state(
        [dropout_key(i) for i in range(3)],
        [m.trainable for m in models],
        optimizer,
        [1e-2, 0.0, 1e-2],
    )
    rates = np.asarray(state.opt_state.hyperparams["learning_rate"])
    np.testing.assert_allclose(rates, [1e-2, 0.0, 1e-2])
    before = snapshot(state)
    active = np.array([True, True, False])
    for batch in model_batches(3, num_steps=3):
        state, _ = step(state, models[0].frozen, batch, active)
    after = snapshot(state)
    model = lambda tree, i: batched.unstack_tree(tree, i)
    assert max_difference(model(after.params, 0), model(before.params, 0)) > 1e-4
    # Learning rate 0: AdamW's update is scaled to exactly zero; Adam moments still move.
    jax.tree.map(np.testing.assert_array_equal, model(after.params, 1), model(before.params, 1))
    # Inactive: params, optimizer state and step are bit-identical.
    jax.tree.map(np.testing.assert_array_equal, model(after.params, 2), model(before.params, 2))
    jax.tree.map(
        np.testing.assert_array_equal, model(after.opt_state, 2), model(before.opt_state, 2)
    )
    np.testing.assert_array_equal(after.step, [3, 3, 0])
    # Reactivating a model does not recompile: `active` is data, not structure.
    state, _ = step(state, models[0].frozen, model_batches(3, 1)[0], np.ones(3, bool))
    assert step._cache_size() == 1


@pytest.mark.parametrize("shared_batch", [True, False], ids=["shared_batch", "per_model_batch"])
def test_eval_step_matches_sequential_eval(group, shared_batch):
    models, _, _ = group
    stacked = batched.stack_trees([m.trainable for m in models])
    eval_step = batched.make_batched_eval_step(
        models[0].model, models[0].lora_config, shared_batch=shared_batch
    )
    batch = model_batches(3, num_steps=1, seed=5)[0]
    if shared_batch:
        batch = {k: v[0] for k, v in batch.items()}
    out = eval_step(stacked, models[0].frozen, batch)
    assert out["prediction"].shape == (3, 8) and out["logits"].shape == (3, 8, 3)
    alone_step = train.make_eval_step(models[0].model, models[0].lora_config)
    for index, built in enumerate(models):
        own = batch if shared_batch else {k: v[index] for k, v in batch.items()}
        alone = alone_step(built.trainable, built.frozen, own)
        np.testing.assert_allclose(out["logits"][index], alone["logits"], atol=1e-5)
        np.testing.assert_array_equal(out["prediction"][index], alone["prediction"])


def test_stacking_round_trips_and_errors_name_the_path():
    trees = [{"a": {"b": np.full(2, i, np.float32)}, "c": np.int32(i)} for i in range(3)]
    stacked = batched.stack_trees(trees)
    assert stacked["a"]["b"].shape == (3, 2) and batched.num_models(stacked) == 3
    np.testing.assert_array_equal(batched.unstack_tree(stacked, 2)["a"]["b"], [2, 2])
    with pytest.raises(ValueError, match=r"trainable 1 at 'a/b': expected \(2,\) float32.*\(3,\)"):
        batched.stack_trees(
            [trees[0], {"a": {"b": np.zeros(3, np.float32)}, "c": np.int32(0)}], what="trainable"
        )
    with pytest.raises(ValueError, match=r"'a/b': .*float32.*float16"):
        batched.stack_trees([trees[0], {"a": {"b": np.zeros(2, np.float16)}, "c": np.int32(0)}])
    with pytest.raises(ValueError, match=r"missing \['a/b'\], unexpected \['a/d'\]"):
        batched.stack_trees([trees[0], {"a": {"d": np.zeros(2, np.float32)}, "c": np.int32(0)}])


def test_two_devices_batched_equals_sequential(tmp_path):
    """The per-model batch axis sharded over a 2-device 'data' mesh (P(None, 'data'))."""
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
    )
    out = subprocess.run(
        [sys.executable, "-m", "tests.scripts.batched_steps"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    ).stdout
    assert "devices=2" in out and "batch spec=P(None, 'data')" in out, out
    difference = float(out.split("max difference=")[1].split()[0])
    assert difference < 1e-5, out


def test_keep_best_takes_the_improved_models_only():
    best = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.float32)}
    current = {"w": np.ones((3, 2), np.float32), "b": np.ones(3, np.float32)}
    kept = batched.keep_best(best, current, np.array([True, False, True]))
    np.testing.assert_array_equal(kept["w"], [[1, 1], [0, 0], [1, 1]])
    np.testing.assert_array_equal(kept["b"], [1, 0, 1])
