"""`mean_nll` / `greedy_continue` against plain, unpadded, step-by-step references."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_softmax

from harjax.lm.generate import greedy_continue, mean_nll, token_nll
from harjax.models.gpt2 import GPT2Config, GPT2Model
from harjax.models.llama import LlamaConfig, LlamaModel

VOCAB = 50


def tiny_llama() -> LlamaModel:
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_layers=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    return LlamaModel(config)


def tiny_gpt2() -> GPT2Model:
    config = GPT2Config(
        vocab_size=VOCAB,
        max_position_embeddings=70,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_layers=2,
    )
    return GPT2Model(config)


def init(module):
    """Random weights scaled up so logits are decisive (greedy ties would make tests flaky)."""
    init_fn = jax.jit(partial(module.init, method="lm_logits"))
    params = init_fn(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    return jax.tree.map(lambda x: x * 10 if x.ndim == 2 else x, params["params"])


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request):
    module = tiny_llama() if request.param == "llama" else tiny_gpt2()
    return module, init(module)


def full_logits(module, params, ids) -> np.ndarray:
    """Unpadded logits of the whole sequence (no buckets, no loop)."""
    logits = jax.jit(partial(module.apply, method="lm_logits"))(
        {"params": params}, jnp.asarray([ids])
    )
    return np.asarray(logits[0], dtype=np.float64)


def reference_nll(module, params, ids) -> np.ndarray:
    log_probs = log_softmax(full_logits(module, params, ids)[:-1], axis=-1)
    return -log_probs[np.arange(len(ids) - 1), ids[1:]]


def assert_greedy(module, params, prompt, continuation):
    """Each new token is the argmax after its prefix. The model is causal, so one unpadded
    forward pass over prompt + continuation gives every prefix's next-token logits at once."""
    logits = full_logits(module, params, list(prompt) + list(continuation))
    chosen = np.argmax(logits[len(prompt) - 1 : -1], axis=-1)
    assert list(continuation) == chosen.tolist()


@pytest.mark.parametrize("length", [2, 9, 65])  # 65 crosses a padding bucket
def test_nll_matches_unpadded_reference(model, length):
    module, params = model
    ids = np.random.default_rng(length).integers(0, VOCAB, size=length)
    expected = reference_nll(module, params, ids)
    np.testing.assert_allclose(token_nll(module, params, ids), expected, rtol=1e-4, atol=1e-4)
    assert mean_nll(module, params, ids) == pytest.approx(expected.mean(), rel=1e-4)
    # Random weights are not uniform, but the mean is within a sane band of log(vocab).
    assert 0.0 < expected.mean() < 40.0


def test_greedy_picks_the_argmax_after_each_prefix(model):
    module, params = model
    prompt = [3, 17, 5, 42, 8]
    continuation = greedy_continue(module, params, prompt, 7)
    assert len(continuation) == 7
    assert_greedy(module, params, prompt, continuation)
    # Another prompt length reuses the compiled bucket and is still right.
    longer = prompt + [1, 2, 3]
    assert_greedy(module, params, longer, greedy_continue(module, params, longer, 4))


def test_greedy_stops_at_eos(model):
    module, params = model
    prompt = [7, 7, 1]
    free = greedy_continue(module, params, prompt, 8)
    eos = free[2]
    stopped = greedy_continue(module, params, prompt, 8, eos_id=eos)
    assert stopped == free[: free.index(eos)]
    assert eos not in stopped


def test_bad_inputs_are_rejected(model):
    module, params = model
    with pytest.raises(ValueError, match=r"\[50, -1\] are outside the vocabulary \[0, 50\)"):
        mean_nll(module, params, [1, 50, 2, -1])
    with pytest.raises(ValueError, match="at least 2 token"):
        mean_nll(module, params, [4])
    with pytest.raises(ValueError, match="at least 1 token"):
        greedy_continue(module, params, [], 3)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        greedy_continue(module, params, [1], 0)
    with pytest.raises(ValueError, match="must be integers"):
        mean_nll(module, params, [1.5, 2.0])
    with pytest.raises(ValueError, match="300 tokens exceed the model's max_position"):
        mean_nll(module, params, [1] * 300)
