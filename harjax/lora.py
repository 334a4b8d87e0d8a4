"""LoRA as a transform over an unmodified Flax model.

The backbone modules contain no LoRA code. LoRA parameters sit in the parameter tree *beside*
the kernel they adapt, and an `nn.intercept_methods` interceptor adds the low-rank path to every
`nn.Dense` call whose scope holds such an entry:

    before `add_lora`                           after `add_lora`
    backbone/layers/0/self_attn/q_proj/         backbone/layers/0/self_attn/q_proj/
        kernel (576, 576)                           kernel (576, 576)        frozen
                                                    lora/a (576, r)          trainable, random
                                                    lora/b (r, 576)          trainable, zero

    y = x @ kernel (+ bias) + (dropout(x) @ a @ b) * (alpha / rank)

The low-rank path is computed as x·a·b next to the frozen kernel; gradients are taken with
respect to the trainable tree only (`split_params` / `merge_params`), so no gradient of a frozen
d x d matrix is ever formed. `b` starts at zero, so the adapted model equals the base at init.
`merge_lora` folds the adapters into dense kernels for export and inference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from harjax.models.matmul import low_precision_dot_general
from harjax.tree import flatten_params, unflatten_params

Params = dict[str, Any]

#: Attention projections adapted by default, as regexes over '/'-joined parameter-scope paths.
DEFAULT_TARGETS = {
    "gpt2": r"(^|/)h/\d+/attn/(c_attn|c_proj)$",
    "llama": r"(^|/)layers/\d+/self_attn/(q_proj|k_proj|v_proj|o_proj)$",
}
#: Named target presets (`lora.targets`): '' or 'attention' = DEFAULT_TARGETS; any other value
#: is a regex.
TARGET_PRESETS = {
    "attention": DEFAULT_TARGETS,
    "attention+mlp": {
        "gpt2": r"(^|/)h/\d+/(attn/(c_attn|c_proj)|mlp/(c_fc|c_proj))$",
        "llama": (
            r"(^|/)layers/\d+/(self_attn/(q_proj|k_proj|v_proj|o_proj)"
            r"|mlp/(gate_proj|up_proj|down_proj))$"
        ),
    },
}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Adapter hyper-parameters (their defaults live in configs/default.py, `config.lora`).

    `accumulate_in_float32=False` runs the low-rank products as plain bf16 -> bf16 dots (the
    baseline `bench` measures `harjax.models.matmul` against); it changes nothing in float32.
    """

    rank: int
    alpha: float
    dropout: float
    targets: str | None = None  # a TARGET_PRESETS name or a regex; None -> DEFAULT_TARGETS
    accumulate_in_float32: bool = True

    @property
    def scale(self) -> float:
        return self.alpha / self.rank if self.rank else 0.0

    def target_regex(self, family: str) -> str:
        if self.targets and self.targets not in TARGET_PRESETS:
            return self.targets
        preset = TARGET_PRESETS[self.targets or "attention"]
        if family not in preset:
            raise ValueError(f"no LoRA target preset for backbone family {family!r}")
        return preset[family]


def _iter_dense_scopes(tree: Mapping, prefix: str = "") -> Iterator[tuple[str, Mapping]]:
    """Yields ('a/b/c', scope_dict) for every dict that holds a 2-D `kernel`."""
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            if "kernel" in value and getattr(value["kernel"], "ndim", 0) == 2:
                yield path, value
            yield from _iter_dense_scopes(value, path)


def add_lora(rng: jax.Array, params: Params, config: LoraConfig, targets: str) -> Params:
    """Returns a copy of `params` with `lora/{a,b}` added beside every kernel matching `targets`.

    `a` ~ N(0, 1/in_features) (Kaiming-like, as in the LoRA paper's reference code), `b` = 0.
    Raises if the regex matches no kernel: a silent no-op adapter is a wasted experiment.
    """
    if config.rank <= 0:
        return params
    pattern = re.compile(targets)
    matches = [path for path, _ in _iter_dense_scopes(params) if pattern.search(path)]
    if not matches:
        paths = [p for p, _ in _iter_dense_scopes(params)][:8]
        raise ValueError(
            f"LoRA target regex {targets!r} matches no kernel; kernels look like {paths}"
        )

    def rebuild(tree: Mapping, prefix: str) -> Params:
        out = {}
        for key, value in tree.items():
            path = f"{prefix}/{key}" if prefix else str(key)
            out[key] = rebuild(value, path) if isinstance(value, Mapping) else value
        if prefix in matches:
            in_features, out_features = tree["kernel"].shape
            key_a = jax.random.fold_in(rng, matches.index(prefix))
            a = jax.random.normal(key_a, (in_features, config.rank), jnp.float32)
            a = a / jnp.sqrt(in_features)
            out["lora"] = {"a": a, "b": jnp.zeros((config.rank, out_features), jnp.float32)}
        return out

    return rebuild(params, "")


@contextlib.contextmanager
def apply_lora(config: LoraConfig, *, deterministic: bool = True):
    """Within this context, `nn.Dense` calls add the low-rank path where `lora` params exist.

    LoRA dropout draws from the module's 'dropout' rng stream (pass `rngs={'dropout': ...}`).
    """
    scale = config.scale

    def interceptor(next_fun: Callable, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, nn.Dense):
            return next_fun(*args, **kwargs)
        if not module.has_variable("params", "lora"):
            return next_fun(*args, **kwargs)
        y = next_fun(*args, **kwargs)
        (x,) = args
        lora = module.get_variable("params", "lora")
        a, b = lora["a"], lora["b"]
        if config.dropout > 0 and not deterministic:
            keep = jax.random.bernoulli(module.make_rng("dropout"), 1 - config.dropout, x.shape)
            x = jnp.where(keep, x / (1 - config.dropout), 0)
        # As 2-D products: with the (batch, tokens) axes kept, the gradient of `a` contracts two
        # axes at once, which XLA:CPU runs ~3x slower than one (LoRA overhead 13 % -> see
        # docs/performance.md). bf16 products accumulate in f32 (harjax.models.matmul).
        dot_general = low_precision_dot_general if config.accumulate_in_float32 else lax.dot_general
        dot = lambda lhs, rhs: dot_general(lhs, rhs, (((1,), (0,)), ((), ())))
        x2 = x.astype(y.dtype).reshape(-1, x.shape[-1])
        low_rank = dot(dot(x2, a.astype(y.dtype)), b.astype(y.dtype)).reshape(y.shape)
        return y + low_rank * jnp.asarray(scale, y.dtype)

    with nn.intercept_methods(interceptor):
        yield


def merge_lora(params: Params, config: LoraConfig) -> Params:
    """Folds every adapter into its kernel (kernel + scale * a @ b) and drops the `lora` entries."""

    def rebuild(tree: Mapping) -> Params:
        out = {
            k: rebuild(v) if isinstance(v, Mapping) else v for k, v in tree.items() if k != "lora"
        }
        if "lora" in tree:
            a, b = tree["lora"]["a"], tree["lora"]["b"]
            kernel = tree["kernel"]
            delta = (a.astype(jnp.float32) @ b.astype(jnp.float32)) * config.scale
            out["kernel"] = (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)
        return out

    return rebuild(params)


def split_params(params: Params, is_trainable: Callable[[str], bool]) -> tuple[Params, Params]:
    """Splits a parameter tree into (trainable, frozen) by a predicate on '/'-joined paths.

        params = {'projection': {...}, 'backbone': {'layers': {'0': {'self_attn': {'q_proj':
                  {'kernel': K, 'lora': {'a': A, 'b': B}}}}}}, 'head': {...}}
        trainable = {'projection': {...}, 'backbone': {... 'q_proj': {'lora': {'a': A, 'b': B}}},
                     'head': {...}}
        frozen    = {'backbone': {... 'q_proj': {'kernel': K}}}

    `merge_params(trainable, frozen)` rebuilds `params` exactly.
    """
    trainable, frozen = {}, {}
    for path, value in flatten_params(params).items():
        (trainable if is_trainable(path) else frozen)[path] = value
    return unflatten_params(trainable), unflatten_params(frozen)


def merge_params(trainable: Params, frozen: Params) -> Params:
    """Inverse of `split_params`; raises on a leaf present in both (it would be ambiguous)."""
    flat_t, flat_f = flatten_params(trainable), flatten_params(frozen)
    overlap = flat_t.keys() & flat_f.keys()
    if overlap:
        raise ValueError(f"parameters both trainable and frozen: {sorted(overlap)[:5]}")
    return unflatten_params({**flat_f, **flat_t})


def trainable_predicate(patterns: list[str]) -> Callable[[str], bool]:
    """A path predicate that is true when any regex in `patterns` matches (re.search)."""
    compiled = [re.compile(p) for p in patterns]
    return lambda path: any(p.search(path) for p in compiled)


def param_paths(tree: Params) -> list[str]:
    return sorted(flatten_params(tree))


def count_params(tree: Params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(tree)))
