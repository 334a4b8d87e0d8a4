"""Hugging Face checkpoints -> flat Flax parameter dicts: safetensors, Flax msgpack, the hub.

The conversion is an explicit rename table (``torch_key_map`` / ``flax_key_map``: checkpoint
name -> our Flax path and whether to transpose) plus shape checks against the module. Every
checkpoint tensor is either mapped, or ignorable for a stated reason (``_ignore_reason``), or an
error; nothing is dropped silently. Safetensors are read shard by shard, and only the tensors
the kept layers need.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from harjax.models.gpt2 import GPT2Config
from harjax.models.llama import MODEL_TYPES as LLAMA_MODEL_TYPES
from harjax.models.llama import LlamaConfig
from harjax.weights.common import CheckpointError, expected_shapes, flatten_params, format_problems

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
FLAX_FILE = "flax_model.msgpack"

# Files fetched from the hub: config, weights and the tokenizer (for verification with text).
HUB_PATTERNS = (
    CONFIG_FILE,
    "*.safetensors",
    SAFETENSORS_INDEX_FILE,
    "tokenizer*",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "generation_config.json",
)

# Checkpoint name prefixes of the *ForCausalLM / *LMHeadModel wrappers; base models have none.
_PREFIXES = {"gpt2": "transformer", "llama": "model", "qwen2": "model"}


class Target(NamedTuple):
    """Where a checkpoint tensor goes: our flat Flax path, and whether to transpose it."""

    path: str
    transpose: bool


def read_config(directory: Path, *, num_layers: int | None) -> tuple[str, GPT2Config | LlamaConfig]:
    """``config.json`` -> (architecture name, config with ``num_layers`` applied)."""
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG_FILE}; not a Hugging Face model directory.")
    try:
        raw = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: invalid JSON ({error}).") from error
    model_type = raw.get("model_type")
    if model_type == "gpt2":
        config_class, layers_key = GPT2Config, "n_layer"
    elif model_type in LLAMA_MODEL_TYPES:
        config_class, layers_key = LlamaConfig, "num_hidden_layers"
    else:
        # e.g. mistral (sliding windows) differs from LLaMA in ways that would silently change
        # the numerics, so it is refused rather than approximated.
        raise CheckpointError(
            f"{config_path}: model_type {model_type!r} is not supported "
            f"(supported: {('gpt2', *LLAMA_MODEL_TYPES)})."
        )
    total = raw.get(layers_key)
    if num_layers is not None and not (isinstance(total, int) and 1 <= num_layers <= total):
        raise CheckpointError(
            f"{config_path}: num_layers={num_layers} requested but the checkpoint has "
            f"{layers_key}={total} (allowed: 1..{total})."
        )
    try:
        return model_type, config_class.from_hf(raw, num_layers=num_layers)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{config_path}: {error}") from error


def torch_key_map(config: GPT2Config | LlamaConfig, *, with_embeddings: bool) -> dict[str, Target]:
    """PyTorch checkpoint name (wrapper prefix removed) -> ``Target``, for the kept layers."""
    if isinstance(config, GPT2Config):
        return _gpt2_torch_key_map(config, with_embeddings=with_embeddings)
    return _llama_torch_key_map(config, with_embeddings=with_embeddings)


def _gpt2_torch_key_map(config: GPT2Config, *, with_embeddings: bool) -> dict[str, Target]:
    # GPT-2's Conv1D stores its weight as (in, out) -- already the layout of a Flax Dense kernel,
    # the transpose of a torch Linear -- so c_attn/c_proj/c_fc are copied as they are.
    table = {"wpe.weight": Target("wpe/embedding", False)}
    for i in range(config.num_layers):
        for norm in ("ln_1", "ln_2"):
            table[f"h.{i}.{norm}.weight"] = Target(f"h/{i}/{norm}/scale", False)
            table[f"h.{i}.{norm}.bias"] = Target(f"h/{i}/{norm}/bias", False)
        for conv in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            flax_conv = conv.replace(".", "/")
            table[f"h.{i}.{conv}.weight"] = Target(f"h/{i}/{flax_conv}/kernel", False)
            table[f"h.{i}.{conv}.bias"] = Target(f"h/{i}/{flax_conv}/bias", False)
    table["ln_f.weight"] = Target("ln_f/scale", False)
    table["ln_f.bias"] = Target("ln_f/bias", False)
    if with_embeddings:
        table["wte.weight"] = Target("wte/embedding", False)
        if not config.tie_word_embeddings:
            table["lm_head.weight"] = Target("lm_head/kernel", True)  # a torch Linear
    return table


def _llama_torch_key_map(config: LlamaConfig, *, with_embeddings: bool) -> dict[str, Target]:
    # torch Linear weights are (out, in); Flax Dense kernels are (in, out): transpose all of them.
    # Qwen2 is this table with q/k/v biases (`qkv_bias`) and none on o_proj.
    table = {}
    qkv_bias = config.attention_bias or config.qkv_bias
    for i in range(config.num_layers):
        for norm in ("input_layernorm", "post_attention_layernorm"):
            table[f"layers.{i}.{norm}.weight"] = Target(f"layers/{i}/{norm}/weight", False)
        projections = [("self_attn", p, qkv_bias) for p in "qkv"]
        projections.append(("self_attn", "o", config.attention_bias))
        projections += [("mlp", p, config.mlp_bias) for p in ("gate", "up", "down")]
        for block, proj, has_bias in projections:
            name = f"{proj}_proj"
            table[f"layers.{i}.{block}.{name}.weight"] = Target(
                f"layers/{i}/{block}/{name}/kernel", True
            )
            if has_bias:
                table[f"layers.{i}.{block}.{name}.bias"] = Target(
                    f"layers/{i}/{block}/{name}/bias", False
                )
    table["norm.weight"] = Target("norm/weight", False)
    if with_embeddings:
        table["embed_tokens.weight"] = Target("embed_tokens/embedding", False)
        if not config.tie_word_embeddings:
            table["lm_head.weight"] = Target("lm_head/kernel", True)
    return table


def flax_key_map(config: GPT2Config | LlamaConfig, *, with_embeddings: bool) -> dict[str, Target]:
    """HF Flax msgpack path (wrapper prefix removed) -> ``Target``.

    The old HF Flax models use our names already. Their GPT-2 ``FlaxConv1D`` however declares
    its kernel as ``(features, in)`` = (out, in) and transposes it at call time, so those kernels
    are transposed here; HF Flax ``nn.Dense`` kernels (all of LLaMA, GPT-2's ``lm_head``) are
    ``(in, out)`` like ours.
    """
    table = {}
    for path in expected_shapes(config, with_embeddings=with_embeddings):
        is_conv1d = isinstance(config, GPT2Config) and re.fullmatch(
            r"h/\d+/(attn/c_attn|attn/c_proj|mlp/c_fc|mlp/c_proj)/kernel", path
        )
        table[path] = Target(path, bool(is_conv1d))
    return table


def _ignore_reason(name: str, config: GPT2Config | LlamaConfig, sep: str) -> str | None:
    """Why a checkpoint tensor not in the key map may be skipped, or None if it is unexpected."""
    layer = re.match(rf"^(?:h|layers){re.escape(sep)}(\d+){re.escape(sep)}", name)
    if layer and config.num_layers <= int(layer.group(1)) < config.num_hidden_layers:
        return "layer beyond num_layers"
    if isinstance(config, GPT2Config) and re.search(r"\.attn\.(masked_)?bias$", name):
        return "causal-mask buffer"
    if name.endswith("rotary_emb.inv_freq"):
        return "rotary buffer (recomputed from rope_theta)"
    if name.split(sep)[0] in ("wte", "embed_tokens"):
        return "token embedding (with_embeddings=False)"
    if name.split(sep)[0] == "lm_head":
        return "output head (tied or with_embeddings=False)"
    return None


def _strip_prefix(name: str, architecture: str, sep: str) -> str:
    prefix = _PREFIXES[architecture] + sep
    return name[len(prefix) :] if name.startswith(prefix) else name


def _plan(
    names: Iterable[str],
    table: dict[str, Target],
    config: GPT2Config | LlamaConfig,
    architecture: str,
    *,
    sep: str,
    source: str,
) -> dict[str, tuple[str, Target]]:
    """Matches checkpoint names to the key map: {stripped name: (original name, target)}.

    Raises one error for missing and unexpected names; a checkpoint sharing no name with the
    map is reported as an architecture mismatch.
    """
    matched, unexpected, duplicated = {}, [], []
    for original in names:
        name = _strip_prefix(original, architecture, sep)
        if name in matched:
            duplicated.append(f"tensor {name!r} appears twice ({matched[name][0]!r}, {original!r})")
        elif name in table:
            matched[name] = (original, table[name])
        elif _ignore_reason(name, config, sep) is None:
            unexpected.append(original)
    if not matched and table:
        raise CheckpointError(
            f"{source}: config.json says model_type {architecture!r} but none of the expected "
            f"tensors (e.g. {next(iter(table))!r}) are present; found e.g. "
            f"{sorted(unexpected)[:3]}. Is config.json from a different architecture?"
        )
    # Report missing names the way this file spells the others (with or without the prefix).
    prefix = _PREFIXES[architecture] + sep
    uses_prefix = any(original.startswith(prefix) for original, _ in matched.values())
    problems = [
        f"missing tensor {spelled!r}"
        for name in table
        if name not in matched
        for spelled in [prefix + name if uses_prefix and name != "lm_head.weight" else name]
    ]
    problems += [f"unexpected tensor {name!r}" for name in sorted(unexpected)] + duplicated
    if problems:
        raise CheckpointError(
            f"{source}: checkpoint does not match the {architecture} key map:\n  "
            + format_problems(problems)
        )
    return matched


def _convert(
    array: np.ndarray, target: Target, expected: tuple[int, ...], where: str
) -> np.ndarray:
    """Transposes if the table says so and asserts the result has the module's shape."""
    stored = tuple(expected[::-1]) if target.transpose else tuple(expected)
    if tuple(array.shape) != stored:
        layout = " (transposed on load)" if target.transpose else ""
        raise CheckpointError(
            f"{where}: expected shape {stored}{layout} for {target.path!r}, found {array.shape}."
        )
    return array.T if target.transpose else array


@contextlib.contextmanager
def _open_safetensors(file: Path, framework: str = "numpy"):
    """`safe_open`, with a damaged file (truncated, bad header) reported as one error naming it."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(file, framework=framework)
    except (SafetensorError, OSError, ValueError) as error:
        size = file.stat().st_size if file.exists() else 0
        raise CheckpointError(
            f"{file} is not a readable safetensors file ({size} bytes; truncated or damaged? "
            f"{error}); expected a complete safetensors file as saved by transformers."
        ) from None
    with handle:
        yield handle


def _read_index(index_path: Path) -> dict[str, str]:
    """The `weight_map` of a sharded checkpoint's index: tensor name -> shard file name."""
    try:
        index = json.loads(index_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{index_path}: not valid JSON ({error}); truncated or damaged? Expected the index "
            "written by transformers with a 'weight_map' object."
        ) from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index_path}: no 'weight_map' object.")
    bad = [name for name, shard in weight_map.items() if not isinstance(shard, str)]
    if bad:
        raise CheckpointError(
            f"{index_path}: 'weight_map' must map tensor names to shard file names; "
            f"{bad[0]!r} maps to {weight_map[bad[0]]!r}."
        )
    return weight_map


def _read_safetensor(handle, name: str, file: Path) -> np.ndarray:
    """One tensor as numpy; bfloat16 (which plain numpy lacks) is read through JAX on the CPU."""
    if handle.get_slice(name).get_dtype() in ("BF16", "F8_E4M3", "F8_E5M2"):
        with jax.default_device(jax.devices("cpu")[0]):
            with _open_safetensors(file, framework="flax") as flax_handle:
                return np.asarray(flax_handle.get_tensor(name))
    return handle.get_tensor(name)


def load_safetensors(
    directory: Path, config: GPT2Config | LlamaConfig, architecture: str, *, with_embeddings: bool
) -> dict[str, np.ndarray]:
    """Reads ``model.safetensors`` or the shards of ``model.safetensors.index.json``.

    A truncated or damaged file (index, shard or single file) is one `CheckpointError` naming it.
    """
    index_path = directory / SAFETENSORS_INDEX_FILE
    if index_path.is_file():
        weight_map = _read_index(index_path)
        source = str(index_path)
    else:
        single = directory / SAFETENSORS_FILE
        with _open_safetensors(single) as handle:
            weight_map = {name: SAFETENSORS_FILE for name in handle.keys()}
        source = str(single)
    table = torch_key_map(config, with_embeddings=with_embeddings)
    plan = _plan(weight_map, table, config, architecture, sep=".", source=source)
    expected = expected_shapes(config, with_embeddings=with_embeddings)
    by_shard = defaultdict(list)
    for original, target in plan.values():
        by_shard[weight_map[original]].append((original, target))
    flat = {}
    for shard_name, entries in sorted(by_shard.items()):
        shard = directory / shard_name
        if not shard.is_file():
            raise CheckpointError(
                f"{source}: shard {shard_name!r} is listed but {shard} is missing."
            )
        with _open_safetensors(shard) as handle:
            available = set(handle.keys())
            for original, target in entries:
                where = f"{shard}: tensor {original!r}"
                if original not in available:
                    raise CheckpointError(
                        f"{where} is listed in {source} but absent from the shard."
                    )
                array = _read_safetensor(handle, original, shard)
                flat[target.path] = _convert(array, target, expected[target.path], where)
    return flat


def load_flax_msgpack(
    directory: Path, config: GPT2Config | LlamaConfig, architecture: str, *, with_embeddings: bool
) -> dict[str, np.ndarray]:
    """Reads an old HF Flax ``flax_model.msgpack`` (nested dict, maybe under the model prefix)."""
    from flax import serialization

    path = directory / FLAX_FILE
    try:
        tree = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises ValueError, ExtraData, TypeError...: all damage
        raise CheckpointError(
            f"{path} is not a readable Flax msgpack file ({path.stat().st_size} bytes; truncated "
            f"or damaged? {type(error).__name__}: {error})."
        ) from None
    if not isinstance(tree, dict):
        raise CheckpointError(
            f"{path}: expected a nested dict of parameters, found {type(tree).__name__}."
        )
    stored = flatten_params(tree)
    table = flax_key_map(config, with_embeddings=with_embeddings)
    plan = _plan(stored, table, config, architecture, sep="/", source=str(path))
    expected = expected_shapes(config, with_embeddings=with_embeddings)
    return {
        target.path: _convert(
            np.asarray(stored[original]), target, expected[target.path], f"{path}: {original!r}"
        )
        for original, target in plan.values()
    }


def load_hf_directory(
    directory: str | Path, *, num_layers: int | None = None, with_embeddings: bool = False
) -> tuple[GPT2Config | LlamaConfig, dict[str, np.ndarray], str]:
    """A local HF model directory -> (config, flat numpy params, weights file read)."""
    directory = Path(directory)
    architecture, config = read_config(directory, num_layers=num_layers)
    if (directory / SAFETENSORS_INDEX_FILE).is_file() or (directory / SAFETENSORS_FILE).is_file():
        reader, weights = load_safetensors, SAFETENSORS_FILE
    elif (directory / FLAX_FILE).is_file():
        reader, weights = load_flax_msgpack, FLAX_FILE
    else:
        present = sorted(p.name for p in directory.iterdir())
        raise CheckpointError(
            f"{directory}: no weights found; expected {SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} "
            f"or {FLAX_FILE} (PyTorch .bin files are not read), found {present}."
        )
    flat = reader(directory, config, architecture, with_embeddings=with_embeddings)
    return config, flat, str(directory / weights)


def download_from_hub(repo_id: str) -> Path:
    """Fetches config, safetensors and tokenizer files of ``repo_id`` into the HF cache."""
    try:
        from huggingface_hub import snapshot_download

        directory = Path(snapshot_download(repo_id, allow_patterns=list(HUB_PATTERNS)))
        if not any(directory.glob("*.safetensors")):
            directory = Path(snapshot_download(repo_id, allow_patterns=[CONFIG_FILE, FLAX_FILE]))
    except Exception as error:  # offline mode, no network, unknown repo: all end the same way
        raise CheckpointError(
            f"Could not fetch {repo_id!r} from the Hugging Face hub "
            f"({type(error).__name__}: {error}). The hub may be unreachable from this machine. "
            "Pass a local Hugging Face directory (config.json + model.safetensors or "
            "flax_model.msgpack), a .gguf file, or 'smollm2-135m' (works offline) instead."
        ) from error
    return directory
