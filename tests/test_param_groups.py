"""The LoRA parameter group (`optim.lora_learning_rate`): separate peaks, default unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from harjax import batched, train
from tests.test_batched import build, dropout_key, max_difference, model_batches

SETTINGS = dict(num_steps=10, warmup_steps=2, weight_decay=0.01)


def _old_make_optimizer(*, learning_rate, num_steps, warmup_steps=0, weight_decay=0.0):
    """`train.make_optimizer` as it was before parameter groups (grad_clip 1, alpha 0)."""
    warmup_steps = min(warmup_steps, max(num_steps - 1, 0))
    decay_steps = max(num_steps, warmup_steps + 1)
    schedule = optax.join_schedules(
        [
            optax.linear_schedule(
                init_value=0.0 if warmup_steps else learning_rate,
                end_value=learning_rate,
                transition_steps=warmup_steps,
            ),
            optax.cosine_decay_schedule(
                init_value=learning_rate, decay_steps=decay_steps - warmup_steps, alpha=0.0
            ),
        ],
        [warmup_steps],
    )
    mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, weight_decay=weight_decay, mask=mask),
    )


def _train(built, optimizer, steps=4):
    step = train.make_train_step(built.model, optimizer, built.lora_config)
    state = train.create_train_state(
        dropout_key(0), jax.tree.map(jnp.copy, built.trainable), optimizer
    )
    for batch in model_batches(1, num_steps=steps):
        state, _ = step(state, built.frozen, {k: v[0] for k, v in batch.items()})
    return jax.tree.map(np.asarray, state.params)


def _moved(before, after, lora: bool) -> dict[str, bool]:
    """Per group ('lora' or 'other'), whether any of its leaves changed."""
    labels = jax.tree.leaves(train.lora_labels(before))
    pairs = zip(labels, jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    changed = {"lora": False, "other": False}
    for label, old, new in pairs:
        changed[label] |= not np.array_equal(np.asarray(old), new)
    return changed


def test_lora_labels_name_exactly_the_adapters():
    built = build(0)
    flat = jax.tree_util.tree_flatten_with_path(train.lora_labels(built.trainable))[0]
    lora = sorted(
        jax.tree_util.keystr(p, simple=True, separator="/") for p, v in flat if v == "lora"
    )
    assert lora and all("/lora/" in path for path in lora)
    others = [jax.tree_util.keystr(p, simple=True, separator="/") for p, v in flat if v != "lora"]
    assert others and not any("lora" in path for path in others)


def test_default_optimizer_is_bit_identical_to_the_old_formula():
    built = build(0)
    old = _train(built, _old_make_optimizer(learning_rate=1e-2, **SETTINGS))
    new = _train(built, train.make_optimizer(learning_rate=1e-2, **SETTINGS))
    for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)


def test_equal_group_rates_match_the_single_group():
    built = build(0)
    one = _train(built, train.make_optimizer(learning_rate=1e-2, **SETTINGS))
    two = _train(
        built, train.make_optimizer(learning_rate=1e-2, lora_learning_rate=1e-2, **SETTINGS)
    )
    assert max_difference(one, two) < 1e-6


def test_each_group_trains_at_its_own_rate():
    built = build(0)
    before = jax.tree.map(np.asarray, built.trainable)
    frozen_lora = _train(
        built, train.make_optimizer(learning_rate=1e-2, lora_learning_rate=0.0, **SETTINGS)
    )
    assert _moved(before, frozen_lora, True) == {"lora": False, "other": True}
    only_lora = _train(
        built, train.make_optimizer(learning_rate=0.0, lora_learning_rate=1e-2, **SETTINGS)
    )
    assert _moved(before, only_lora, True) == {"lora": True, "other": False}


def test_batched_equals_sequential_with_param_groups():
    models = [build(seed) for seed in range(2)]
    rates, lora_rate = (1e-2, 3e-3), 5e-2
    optimizer = batched.make_batched_optimizer(lora_learning_rate=lora_rate, **SETTINGS)
    step = batched.make_batched_train_step(models[0].model, optimizer, models[0].lora_config)
    state = batched.create_batched_train_state(
        [dropout_key(i) for i in range(2)], [m.trainable for m in models], optimizer, rates
    )
    batches = model_batches(2)
    for batch in batches:
        state, _ = step(state, models[0].frozen, batch, np.ones(2, bool))
    for index, (built, rate) in enumerate(zip(models, rates, strict=True)):
        optimizer = train.make_optimizer(
            learning_rate=rate, lora_learning_rate=lora_rate, **SETTINGS
        )
        alone = train.make_train_step(built.model, optimizer, built.lora_config)
        single = train.create_train_state(
            dropout_key(index), jax.tree.map(jnp.copy, built.trainable), optimizer
        )
        for batch in batches:
            single, _ = alone(single, built.frozen, {k: v[index] for k, v in batch.items()})
        assert max_difference(batched.unstack_tree(state.params, index), single.params) < 1e-5


def test_the_config_becomes_optimizer_arguments_in_one_place():
    """One model (`optimizer_from_config`) and a batched program (`run.compiled`, learning rate
    in the state) read the same `optimizer_arguments`: every optimizer setting reaches both."""
    import inspect

    from tests.helpers import tiny_config

    config = tiny_config()
    config.optim.update(learning_rate=3e-3, lora_learning_rate=1e-3, grad_clip=0.0)
    arguments = train.optimizer_arguments(config)
    assert arguments == {
        "learning_rate": 3e-3,
        "num_steps": config.train.num_steps,
        "warmup_steps": config.optim.warmup_steps,
        "weight_decay": config.optim.weight_decay,
        "grad_clip": None,  # 0 = no clipping
        "lora_learning_rate": 1e-3,
    }
    assert set(arguments) <= set(inspect.signature(train.make_optimizer).parameters)
    # The batched optimizer forwards every argument but the learning rate (per model, state).
    per_model = {key: value for key, value in arguments.items() if key != "learning_rate"}
    batched.make_batched_optimizer(**per_model)
    config.optim.lora_learning_rate = 0.0
    assert train.optimizer_arguments(config)["lora_learning_rate"] is None  # one group
