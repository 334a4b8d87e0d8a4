"""Low-precision matmuls that accumulate in float32, forward *and* backward.

Why this exists: on XLA:CPU a bfloat16 x bfloat16 -> bfloat16 `dot` runs no faster than float32
(measured ~75 GFLOP/s for both on a 2-core AVX512_BF16 Zen4, see docs/performance.md), while the
same dot with `preferred_element_type=float32` reaches the CPU's native bf16 dot-product path
(~2x). Asking for float32 accumulation only in the forward is not enough: autodiff transposes the
dot into bf16 -> bf16 dots again, so the backward stays slow. `low_precision_dot_general` is a
`custom_vjp` whose forward and both backward products accumulate in float32 and round the result
to the input dtype, which is also what GPUs/TPUs do with bf16 matmuls (and PyTorch autocast).

Use it as `nn.Dense(..., dot_general=dot_general_for(dtype))`; for float32 it is plain
`lax.dot_general`, so float32 models are untouched.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_LOW_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


@jax.custom_vjp
def _matmul_f32_accumulate(x: jax.Array, w: jax.Array) -> jax.Array:
    """x (..., D) @ w (D, F) -> (..., F) in x.dtype, accumulated in float32."""
    y = lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return y.astype(x.dtype)


def _forward(x, w):
    return _matmul_f32_accumulate(x, w), (x, w)


def _backward(residuals, grad):
    x, w = residuals
    grad = grad.astype(x.dtype)
    # dx = grad @ w.T; for a frozen w, XLA drops the unused dw below.
    dx = lax.dot_general(
        grad, w, (((grad.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32
    )
    x2, g2 = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
    dw = lax.dot_general(x2, g2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_matmul_f32_accumulate.defvjp(_forward, _backward)


def low_precision_dot_general(
    lhs: jax.Array,
    rhs: jax.Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """`lax.dot_general` that routes bf16/f16 `Dense`-shaped products to f32 accumulation.

    Anything that is not `x (..., D) . w (D, F)` in one low-precision dtype falls back to
    `lax.dot_general` unchanged.
    """
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    dense_shaped = (
        tuple(lhs_contract) == (lhs.ndim - 1,)
        and tuple(rhs_contract) == (0,)
        and rhs.ndim == 2
        and not lhs_batch
        and not rhs_batch
    )
    if (
        dense_shaped
        and lhs.dtype == rhs.dtype
        and lhs.dtype in _LOW_PRECISION
        and preferred_element_type is None
    ):
        return _matmul_f32_accumulate(lhs, rhs)
    return lax.dot_general(
        lhs,
        rhs,
        dimension_numbers,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )


def dot_general_for(dtype: Any):
    """The `dot_general` for an `nn.Dense` computing in `dtype` (None = flax's default)."""
    if dtype is not None and jnp.dtype(dtype) in _LOW_PRECISION:
        return low_precision_dot_general
    return None


#: GPT-2 / LLaMA initialisation (random-weight variants and tests; real weights are loaded).
KERNEL_INIT = nn.initializers.normal(stddev=0.02)


def dense(
    features: int,
    name: str,
    dtype: Any,
    param_dtype: Any,
    *,
    use_bias: bool = True,
    accumulate_in_float32: bool = True,
):
    """The backbones' `nn.Dense` (HF names, kernel (in, out)); bf16 matmuls accumulate in f32.

    `accumulate_in_float32=False` gives flax's plain low-precision dot (bf16 -> bf16), the
    baseline `bench` compares against. Still a plain `nn.Dense`, so the LoRA transform
    intercepts it by module path.
    """
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=param_dtype,
        kernel_init=KERNEL_INIT,
        dot_general=dot_general_for(dtype) if accumulate_in_float32 else None,
        name=name,
    )


def precision(module: nn.Module) -> dict[str, Any]:
    """A backbone module's `dtype`, `param_dtype` and `accumulate_in_float32`, for its children."""
    return {
        "dtype": module.dtype,
        "param_dtype": module.param_dtype,
        "accumulate_in_float32": module.accumulate_in_float32,
    }


def dense_for(module: nn.Module):
    """`dense` with a backbone module's precision bound: `dense_for(self)(features, name)`."""
    return functools.partial(dense, **precision(module))
