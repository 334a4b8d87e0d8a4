"""Train M small models in one compiled step: `jax.vmap` of the train step over a model axis.

A sweep (seeds x learning rates x controls x k) trains many small models that share one frozen
backbone and one batch shape. One model per compiled step leaves the hardware idle; stacking the
M trainable trees, optimizer states and batches on a leading *model axis* and vmapping
`train.train_step_fn` runs them as one program with M-times larger matmuls. The per-model body
is the very function `train.make_train_step` jits, so a batched model trains like a sequential
one to float32 rounding (tests/test_batched.py checks every parameter).

The run loop does not use it (issue 30): XLA compiles the vmapped step into other kernels than
the one-model step (batched matmuls, reductions, fusions), so a model's bits depend on M and on
its companions — ~1e-7 in float32 parameters, and in bfloat16 whole runs (docs/performance.md,
Findings). The loop runs each model in the program of its own config (`harjax.run.program`);
this module stays as the alternative `bench/batched_throughput.py` measures that against.

Per model, each of these lives on the model axis:
  batch           {'signal': (M, B, T, C), 'label': (M, B)}: each model its own data
  learning rate   `opt_state.hyperparams['learning_rate']`, shape (M,) (`optax.inject_hyperparams`
                  over `train.make_optimizer`: one optimizer definition, the peak of its schedule
                  becomes state)
  dropout key     `state.rng`, shape (M,) keys; folded with the model's own step, as sequentially
  active flag     (M,) bool: a stopped model's params, opt_state and step are carried unchanged
                  (bit-identical), so the program runs on until every model has stopped.
The frozen backbone is either shared (one tree, vmap in_axes None: pretrained-only groups) or
stacked (M, ...) when the models differ in frozen weights (pretrained vs random vs shuffled).

Sharding: as in `harjax.train`, the mesh has one axis 'data'. The model axis is replicated;
each model's batch axis B is sharded over 'data' (`P(None, 'data')`), states and frozen trees
are replicated, and XLA inserts the per-model gradient all-reduce. B must divide by the mesh size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from harjax import lora, train

Params = dict[str, Any]

# `train.make_optimizer` arguments that shape the program; only the learning rate is state.
_STATIC_OPTIMIZER_ARGS = (
    "num_steps",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "end_lr_fraction",
    "lora_learning_rate",  # one value per program (in `group_key`), baked into the chain
)


# ----------------------------------------------------------------------------- stacking


def _path(key_path) -> str:
    return jax.tree_util.keystr(key_path, simple=True, separator="/") or "<root>"


def _flat(tree: Any) -> dict[str, Any]:
    return {_path(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _signature(leaf) -> tuple[tuple[int, ...], str]:
    return tuple(np.shape(leaf)), str(getattr(leaf, "dtype", type(leaf).__name__))


def stack_trees(trees: Sequence[Any], *, what: str = "tree") -> Any:
    """Stacks M pytrees of one structure into one pytree whose leaves gain a leading axis M.

    Raises ValueError naming the first path where tree i differs from tree 0 (missing or extra
    leaf, other shape or dtype): a silent broadcast would train the wrong model.
    """
    if not trees:
        raise ValueError(f"stack_trees: no {what}s to stack")
    reference = _flat(trees[0])
    reference_def = jax.tree.structure(trees[0])
    for index, tree in enumerate(trees[1:], start=1):
        flat = _flat(tree)
        missing, extra = sorted(reference.keys() - flat.keys()), sorted(flat.keys() - reference)
        if missing or extra:
            raise ValueError(
                f"{what} {index} does not have the structure of {what} 0: "
                f"missing {missing[:4]}, unexpected {extra[:4]}"
            )
        for path, leaf in flat.items():
            want, found = _signature(reference[path]), _signature(leaf)
            if want != found:
                raise ValueError(
                    f"{what} {index} at {path!r}: expected {want[0]} {want[1]} "
                    f"(as in {what} 0), found {found[0]} {found[1]}"
                )
        if jax.tree.structure(tree) != reference_def:  # same paths, other node types
            raise ValueError(f"{what} {index}: node types differ from {what} 0 at equal paths")
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack_tree(stacked: Any, index: int) -> Any:
    """Model `index`'s tree from a stacked tree (works for TrainStates and optimizer states)."""
    return jax.tree.map(lambda leaf: leaf[index], stacked)


def num_models(stacked: Any) -> int:
    """The length of the model axis (the leading axis of every leaf)."""
    sizes = {leaf.shape[0] for leaf in jax.tree.leaves(stacked)}
    if len(sizes) != 1:
        raise ValueError(f"leaves disagree on the model axis length: {sorted(sizes)}")
    return sizes.pop()


# ----------------------------------------------------------------------------- optimizer


def make_batched_optimizer(**arguments) -> optax.GradientTransformation:
    """`train.make_optimizer(**arguments)` with its peak learning rate as optimizer *state*.

    `arguments` are `make_optimizer`'s but `learning_rate` (e.g. `train.optimizer_arguments`
    without it). The LoRA group's own peak (`lora_learning_rate`, None: it shares the per-model
    rate) is static: one value for every model of the program.

    `optax.inject_hyperparams` rebuilds the same warmup+cosine/clip/AdamW chain at every update
    from `opt_state.hyperparams['learning_rate']`, so after `create_batched_train_state` each
    model carries its own learning rate. The weight-decay mask (ndim >= 2) is evaluated on the
    per-model tree because init and update run inside `jax.vmap`, where leaves have no model axis.
    """
    factory = optax.inject_hyperparams(train.make_optimizer, static_args=_STATIC_OPTIMIZER_ARGS)
    # The learning rate is a placeholder: the real one is per model, in the state.
    return factory(learning_rate=0.0, **arguments)


def create_batched_train_state(
    rngs: Sequence[jax.Array],
    trainables: Sequence[Params],
    optimizer: optax.GradientTransformation,
    learning_rates: Sequence[float],
    *,
    mesh: Mesh | None = None,
) -> train.TrainState:
    """M models' initial states stacked on the model axis, replicated over `mesh`.

    `optimizer` comes from `make_batched_optimizer`; model i trains with `learning_rates[i]`.
    """
    params = stack_trees(list(trainables), what="trainable tree")
    rng = stack_trees(list(rngs), what="rng")
    rates = jnp.asarray(learning_rates, jnp.float32)
    if rates.shape != (num_models(params),):
        raise ValueError(f"expected {num_models(params)} learning rates, found {rates.shape}")
    opt_state = jax.vmap(optimizer.init)(params)
    if not isinstance(opt_state, optax.InjectStatefulHyperparamsState):
        raise TypeError("optimizer must come from make_batched_optimizer (inject_hyperparams)")
    opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": rates})
    state = train.TrainState(
        step=jnp.zeros(rates.shape, jnp.int32), params=params, opt_state=opt_state, rng=rng
    )
    return jax.device_put(state, train.replicated(train.data_mesh() if mesh is None else mesh))


# ----------------------------------------------------------------------------- steps


def model_batch_sharding(mesh: Mesh) -> NamedSharding:
    """Per-model batch arrays (M, B, ...): model axis replicated, B over 'data'."""
    return NamedSharding(mesh, P(None, "data"))


def make_batched_train_step(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    lora_config: lora.LoraConfig,
    *,
    mesh: Mesh | None = None,
    label_smoothing: float = 0.0,
    stacked_frozen: bool = False,
) -> Callable[[train.TrainState, Params, dict, jax.Array], tuple[train.TrainState, dict]]:
    """Returns `step(state, frozen, batch, active) -> (state, metrics)`, jitted, state donated.

    `state` is stacked (`create_batched_train_state`); `batch` = {'signal': (M, B, T, C),
    'label': (M, B)}, sharded `P(None, 'data')`; `active` (M,) bool; `frozen` one shared tree, or
    with `stacked_frozen=True` one tree per model stacked on axis 0. Inactive models come back
    bit-identical. Metrics {'loss', 'accuracy', 'grad_norm'} have shape (M,) (inactive models
    report what the step would have done).
    """
    mesh = train.data_mesh() if mesh is None else mesh
    step = train.train_step_fn(model, optimizer, lora_config, label_smoothing=label_smoothing)

    def one_model(state, frozen, batch, active):
        new, metrics = step(state, frozen, batch)
        keep = lambda updated, old: jnp.where(active, updated, old)
        new = state.replace(
            step=keep(new.step, state.step),
            params=jax.tree.map(keep, new.params, state.params),
            opt_state=jax.tree.map(keep, new.opt_state, state.opt_state),
        )
        return new, metrics

    batched = jax.vmap(one_model, in_axes=(0, 0 if stacked_frozen else None, 0, 0))
    rep = train.replicated(mesh)
    return jax.jit(
        batched,
        in_shardings=(rep, rep, model_batch_sharding(mesh), rep),
        out_shardings=(rep, rep),
        donate_argnums=(0,),
    )


def make_batched_eval_step(
    model: nn.Module,
    lora_config: lora.LoraConfig,
    *,
    mesh: Mesh | None = None,
    stacked_frozen: bool = False,
    shared_batch: bool = True,
) -> Callable[[Params, Params, dict], dict]:
    """Returns `eval_step(trainables, frozen, batch) -> {'logits' (M, B, K), 'prediction' (M, B)}`.

    `trainables` is stacked (`state.params`). With `shared_batch` (the common case: a group
    validates on one set) `batch` is one (B, T, C) batch sharded `P('data')`; otherwise
    per-model (M, B, T, C) batches sharded `P(None, 'data')`.
    """
    mesh = train.data_mesh() if mesh is None else mesh
    batched = jax.vmap(
        train.eval_step_fn(model, lora_config),
        in_axes=(0, 0 if stacked_frozen else None, None if shared_batch else 0),
    )
    rep = train.replicated(mesh)
    data = train.batch_sharding(mesh) if shared_batch else model_batch_sharding(mesh)
    return jax.jit(batched, in_shardings=(rep, rep, data), out_shardings=model_batch_sharding(mesh))


@jax.jit
def keep_best(best: Params, current: Params, improved: jax.Array) -> Params:
    """Per model, `current` where `improved` else `best` (stacked trees, on device).

    Returns new buffers, so `best` survives the train step donating `current`.
    """

    def select(old, new):
        mask = jnp.reshape(improved, improved.shape + (1,) * (new.ndim - 1))
        return jnp.where(mask, new, old)

    return jax.tree.map(select, best, current)
