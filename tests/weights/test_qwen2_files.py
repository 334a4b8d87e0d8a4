"""The real Qwen2.5-Coder GGUF files (Q4_K, Q5_0, Q6_K, Q8_0 blocks), where they are present.

They are not shipped (0.5 GB and 1.1 GB): `bash ../shared/models/fetch.sh DIR` fetches them.
Looked for in `$HARJAX_MODELS`, then `../models` and `../shared/models` beside the repository;
every test here skips when its file is absent (as in CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from harjax.lm.generate import greedy_continue, mean_nll
from harjax.lm.tokenizer import load_tokenizer
from harjax.weights import load_backbone

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = [Path(os.environ["HARJAX_MODELS"])] if os.environ.get("HARJAX_MODELS") else []
SEARCHED += [ROOT.parent / "models", ROOT.parent / "shared" / "models"]
SMALL = "qwen2.5-coder-0.5b-instruct-awq.gguf"
LARGE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
# file -> (blocks, d_model, ffn, query heads, kv heads), as published (../shared/models/README.md)
SHAPES = {SMALL: (24, 896, 4864, 14, 2), LARGE: (28, 1536, 8960, 12, 2)}


def real_file(name: str) -> Path:
    for directory in SEARCHED:
        if (directory / name).is_file():
            return directory / name
    pytest.skip(f"{name} not found in {[str(d) for d in SEARCHED]} (not in CI)")


@pytest.mark.slow
@pytest.mark.parametrize("name", [SMALL, LARGE])
def test_first_block_loads_in_bfloat16_with_the_published_shape(name):
    backbone = load_backbone(real_file(name), num_layers=1, dtype=jnp.bfloat16)
    config = backbone.config
    shape = (
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.num_attention_heads,
        config.num_key_value_heads,
    )
    assert shape == SHAPES[name]
    assert (config.model_type, config.qkv_bias, config.rope_theta) == ("qwen2", True, 1e6)
    assert not config.tie_word_embeddings  # these files store output.weight
    assert {leaf.dtype for leaf in jax.tree.leaves(backbone.params)} == {jnp.dtype(jnp.bfloat16)}
    assert sorted(backbone.params) == ["layers", "norm"]


@pytest.mark.slow
def test_small_file_matches_transformers_gguf_loader_and_answers_paris():
    from harjax.lm.reference import reference_nll

    path = real_file(SMALL)
    backbone = load_backbone(path, with_embeddings=True)
    tokenizer = load_tokenizer(str(path))
    ids = tokenizer.encode("The capital of France is")
    nll = mean_nll(backbone.module, backbone.params, ids)
    answer = greedy_continue(backbone.module, backbone.params, ids, 4, eos_id=tokenizer.eos_id)
    assert tokenizer.decode(answer).startswith(" Paris"), tokenizer.decode(answer)
    del backbone
    # Measured difference 3e-5 nats/token (docs/backbones.md); a wrong Q/K layout costs nats.
    assert nll == pytest.approx(reference_nll(str(path), ids), abs=1e-3)
