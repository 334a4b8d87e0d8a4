import os
import subprocess
import sys

import jax
import numpy as np

from harjax import train
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup(variant="pretrained", lr=1e-2):
    config = tiny_config(variant)
    backbone = tiny_llama_backbone() if variant in ("pretrained", "random") else None
    built = assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(0), backbone=backbone
    )
    optimizer = train.make_optimizer(learning_rate=lr, num_steps=50, warmup_steps=0)
    step = train.make_train_step(built.model, optimizer, built.lora_config)
    state = train.create_train_state(jax.random.key(1), built.trainable, optimizer)
    return built, step, state


def _separable_batch(rng, n=8):
    """Class c has a constant offset of 2 on channel c: learnable in a few steps."""
    labels = rng.integers(0, 3, size=n).astype(np.int32)
    signal = rng.normal(size=(n, 32, 6)).astype(np.float32) * 0.1
    signal[np.arange(n), :, labels] += 2.0
    return {"signal": signal, "label": labels}


def test_one_step_end_to_end_and_frozen_weights_bit_identical():
    built, step, state = _setup()
    frozen_before = jax.tree.map(lambda x: np.array(x, copy=True), built.frozen)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(30):
        state, metrics = step(state, built.frozen, _separable_batch(rng))
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 30
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])  # it learns
    for before, after in zip(jax.tree.leaves(frozen_before), jax.tree.leaves(built.frozen)):
        np.testing.assert_array_equal(before, np.asarray(after))
    # LoRA B moved away from zero: adapters receive gradients.
    b = state.params["backbone"]["layers"]["0"]["self_attn"]["q_proj"]["lora"]["b"]
    assert np.abs(np.asarray(b)).max() > 0


def test_every_variant_takes_a_step():
    for variant in ("random", "none", "scratch"):
        built, step, state = _setup(variant)
        state, metrics = step(state, built.frozen, _separable_batch(np.random.default_rng(0)))
        assert np.isfinite(float(metrics["loss"])), variant


def test_eval_step_returns_logits_and_predictions():
    built, _, state = _setup()
    eval_step = train.make_eval_step(built.model, built.lora_config)
    out = eval_step(state.params, built.frozen, _separable_batch(np.random.default_rng(1)))
    assert out["logits"].shape == (8, 3)
    np.testing.assert_array_equal(
        np.asarray(out["prediction"]), np.argmax(np.asarray(out["logits"]), -1)
    )


def test_same_seed_gives_identical_results():
    results = []
    for _ in range(2):
        built, step, state = _setup()
        state, metrics = step(state, built.frozen, _separable_batch(np.random.default_rng(0)))
        results.append(float(metrics["loss"]))
    assert results[0] == results[1]


def _run_steps(tmp_path, devices: int):
    out = tmp_path / f"steps_{devices}.npz"
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
    )
    subprocess.run(
        [sys.executable, "-m", "tests.scripts.train_steps", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return dict(np.load(out))


def test_two_devices_equal_one_device(tmp_path):
    one, two = _run_steps(tmp_path, 1), _run_steps(tmp_path, 2)
    assert int(one.pop("num_devices")) == 1 and int(two.pop("num_devices")) == 2
    np.testing.assert_allclose(one.pop("losses"), two.pop("losses"), atol=1e-5)
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_allclose(one[key], two[key], atol=1e-5, err_msg=key)


def test_the_step_compiles_once_over_many_calls():
    """An unplaced initial state used to trigger a second compilation on the second call."""
    built, step, state = _setup()
    for seed in range(3):
        state, _ = step(state, built.frozen, _separable_batch(np.random.default_rng(seed)))
    assert step._cache_size() == 1
