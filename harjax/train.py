"""Train state, the fused data-parallel train step and the eval step.

One `jax.jit`-compiled step does projection -> backbone -> head -> loss -> gradients of the
*trainable* tree only -> AdamW update. The frozen backbone is an argument, never differentiated,
so no gradient of a frozen matrix is formed (see `harjax.lora`).

Data parallelism is `jax.jit` over a 1-D device `Mesh` with axis 'data' — the current successor
to `pmap`: the batch is sharded `P('data')`, parameters and optimizer state are replicated, and
XLA inserts the gradient all-reduce. The same code runs on one CPU, 8 TPU cores or several hosts
(after `jax.distributed.initialize()`; each process feeds its own shard of the global batch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from harjax import lora

Params = dict[str, Any]


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Params  # trainable parameters only
    opt_state: optax.OptState
    rng: jax.Array


def lora_labels(params: Params) -> Params:
    """'lora' for the LoRA adapters (a path through a `lora` scope, `.../q_proj/lora/a`), else
    'other' (projection, head, tuned norms): the two parameter groups of `make_optimizer`."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "lora" if "lora" in (getattr(k, "key", None) for k in path) else "other",
        params,
    )


def make_optimizer(
    *,
    learning_rate: float,
    num_steps: int,
    warmup_steps: int = 0,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    end_lr_fraction: float = 0.0,
    lora_learning_rate: float | None = None,
) -> optax.GradientTransformation:
    """AdamW with linear warm-up then cosine decay, global-norm clipping.

    Weight decay applies to matrices only (ndim >= 2): decaying norms, biases and scalar scales
    only shrinks them towards values that mean nothing.

    The schedule is `optax.warmup_cosine_decay_schedule(0, learning_rate, ...)` assembled from
    its parts (linear warm-up joined to a cosine decay with `alpha = end_lr_fraction`), which
    is the same arithmetic — bit for bit — but never branches on the peak in Python, so the
    peak may be a traced per-model array (`harjax.batched`).

    `lora_learning_rate` (None: the LoRA adapters train at `learning_rate`, one AdamW) gives the
    adapters their own peak: two parameter groups (`lora_labels`) via `optax.multi_transform`,
    each an AdamW with the same schedule shape and its own peak; clipping stays global. 0.0
    freezes the adapters (their updates are zero).
    """
    warmup_steps = min(warmup_steps, max(num_steps - 1, 0))
    decay_steps = max(num_steps, warmup_steps + 1)

    def adamw(peak):
        schedule = optax.join_schedules(
            [
                optax.linear_schedule(
                    init_value=0.0 if warmup_steps else peak,
                    end_value=peak,
                    transition_steps=warmup_steps,
                ),
                optax.cosine_decay_schedule(
                    init_value=peak,
                    decay_steps=decay_steps - warmup_steps,
                    alpha=end_lr_fraction,
                ),
            ],
            [warmup_steps],
        )
        decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)
        return optax.adamw(schedule, weight_decay=weight_decay, mask=decay_mask)

    chain = []
    if grad_clip:
        chain.append(optax.clip_by_global_norm(grad_clip))
    if lora_learning_rate is None:
        chain.append(adamw(learning_rate))
    else:
        groups = {"other": adamw(learning_rate), "lora": adamw(lora_learning_rate)}
        chain.append(optax.multi_transform(groups, lora_labels))
    return optax.chain(*chain)


def optimizer_arguments(config) -> dict[str, Any]:
    """`make_optimizer`'s keyword arguments from a config: the one place the `optim` section
    (and `train.num_steps`) becomes an optimizer, for one model and for M batched models
    (`harjax.run.compiled`, which moves `learning_rate` into the per-model state).

    `config.train.num_steps` is the run's resolved budget (`harjax.run.budget.resolve`), so
    the schedule spans the steps the run may take. `optim.lora_learning_rate` 0 (the default)
    means the adapters share `optim.learning_rate` (one AdamW, as before it existed).
    """
    o = config.optim
    return {
        "learning_rate": float(o.learning_rate),
        "num_steps": int(config.train.num_steps),
        "warmup_steps": int(o.warmup_steps),
        "weight_decay": float(o.weight_decay),
        "grad_clip": float(o.grad_clip) or None,
        "lora_learning_rate": float(o.get("lora_learning_rate", 0.0)) or None,
    }


def optimizer_from_config(config) -> optax.GradientTransformation:
    """`make_optimizer(**optimizer_arguments(config))`: one model's optimizer."""
    return make_optimizer(**optimizer_arguments(config))


def create_train_state(
    rng: jax.Array,
    trainable: Params,
    optimizer: optax.GradientTransformation,
    *,
    mesh: Mesh | None = None,
) -> TrainState:
    """The initial state, replicated over `mesh` (default: every device).

    Placing it with the same sharding the step returns means the step compiles once: an
    unplaced state has a different abstract type than the step's output and would trigger a
    second compilation on the second call.
    """
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=trainable,
        opt_state=optimizer.init(trainable),
        rng=rng,
    )
    return jax.device_put(state, replicated(data_mesh() if mesh is None else mesh))


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over all (global) devices with the axis name 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Per-example cross-entropy with optional label smoothing; computed in float32."""
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def train_step_fn(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    lora_config: lora.LoraConfig,
    *,
    label_smoothing: float = 0.0,
) -> Callable[[TrainState, Params, dict], tuple[TrainState, dict]]:
    """The un-jitted body of one train step; `make_train_step` jits it over a data mesh and
    `harjax.batched` vmaps it over a model axis, so both train with exactly the same code."""

    def loss_fn(trainable, frozen, batch, rng):
        params = lora.merge_params(trainable, frozen)
        with lora.apply_lora(lora_config, deterministic=False):
            logits = model.apply(
                {"params": params}, batch["signal"], deterministic=False, rngs={"dropout": rng}
            )
        losses = cross_entropy(logits, batch["label"], label_smoothing)
        accuracy = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
        return losses.mean(), {"loss": losses.mean(), "accuracy": accuracy.mean()}

    def step(state: TrainState, frozen: Params, batch: dict) -> tuple[TrainState, dict]:
        rng = jax.random.fold_in(state.rng, state.step)
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, frozen, batch, rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.tree.norm(grads)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return step


def make_train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    lora_config: lora.LoraConfig,
    *,
    mesh: Mesh | None = None,
    label_smoothing: float = 0.0,
) -> Callable[[TrainState, Params, dict], tuple[TrainState, dict]]:
    """Returns `step(state, frozen, batch) -> (state, metrics)`, jitted, state donated.

    `batch` = {'signal': (B, T, C) float32, 'label': (B,) int32}, B divisible by the mesh size.
    Metrics are global means over the batch (the loss is a mean over the *global* batch, so
    the result does not depend on how the batch is split over devices).
    """
    mesh = data_mesh() if mesh is None else mesh
    step = train_step_fn(model, optimizer, lora_config, label_smoothing=label_smoothing)
    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(
        step,
        in_shardings=(rep, rep, data),
        out_shardings=(rep, rep),
        donate_argnums=(0,),
    )


def eval_step_fn(
    model: nn.Module, lora_config: lora.LoraConfig
) -> Callable[[Params, Params, dict], dict]:
    """The un-jitted eval body (shared by `make_eval_step` and `harjax.batched`)."""

    def eval_step(trainable: Params, frozen: Params, batch: dict) -> dict:
        params = lora.merge_params(trainable, frozen)
        with lora.apply_lora(lora_config, deterministic=True):
            logits = model.apply({"params": params}, batch["signal"], deterministic=True)
        return {"logits": logits, "prediction": jnp.argmax(logits, -1)}

    return eval_step


def make_eval_step(
    model: nn.Module, lora_config: lora.LoraConfig, *, mesh: Mesh | None = None
) -> Callable[[Params, Params, dict], dict]:
    """Returns `eval_step(trainable, frozen, batch) -> {'logits', 'prediction'}`, jitted."""
    mesh = data_mesh() if mesh is None else mesh
    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(
        eval_step_fn(model, lora_config), in_shardings=(rep, rep, data), out_shardings=data
    )
