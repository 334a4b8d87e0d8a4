"""load_backbone on Hugging Face formats: shards, Flax msgpack, bf16, hashes, errors, hub, GGUF."""

import json
import sys
import time
import types

import huggingface_hub
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors
import torch
import transformers
from flax import serialization
from safetensors.torch import load_file, save_file

import harjax.weights
from harjax.weights import CheckpointError, load_backbone
from harjax.weights.common import flatten_params
from tests.models.parity import random_embeds, reference_hidden
from tests.models.test_gpt2 import save_tiny_gpt2, tiny_gpt2_config
from tests.models.test_llama import save_tiny_llama

TOLERANCE = 1e-4


def apply(backbone, embeds):
    return np.asarray(backbone.module.apply({"params": backbone.params}, embeds))


def write_hf_flax_checkpoint(model, directory):
    """Writes ``model`` (torch) as the old HF Flax ``flax_model.msgpack`` + ``config.json``.

    Layout of transformers' Flax models (modeling_flax_gpt2.py / modeling_flax_llama.py): a
    nested dict under the wrapper module's name (``transformer`` for GPT-2, ``model`` for LLaMA)
    plus ``lm_head`` when it is a separate weight. Norms: GPT-2 ``nn.LayerNorm`` -> ``scale`` /
    ``bias``; LLaMA RMSNorm -> ``weight``. Embeddings -> ``embedding``. ``nn.Dense`` kernels are
    ``(in, out)``, i.e. torch Linear weights transposed. GPT-2's ``FlaxConv1D`` declares its
    kernel ``(features, in)`` = (out, in) and transposes at call time, so it holds the torch
    Conv1D weight (in, out) transposed.
    """
    tree = {}
    for name, tensor in model.state_dict().items():
        array = tensor.detach().float().numpy()
        parts = name.split(".")
        leaf = parts[-1]
        if parts[-2] == "attn" and leaf in ("bias", "masked_bias"):
            continue  # causal-mask buffers are not parameters in Flax
        if parts[-2] in ("wte", "wpe", "embed_tokens"):
            leaf = "embedding"
        elif parts[-2].startswith("ln_"):
            leaf = "scale" if leaf == "weight" else "bias"
        elif leaf == "weight" and array.ndim == 2:  # Linear (out, in) or Conv1D (in, out)
            leaf, array = "kernel", array.T
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[leaf] = array
    if getattr(model.config, "tie_word_embeddings", False):
        tree.pop("lm_head", None)  # tied: the Flax LM head reuses the embedding, stores nothing
    directory.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(directory / "config.json")
    (directory / "flax_model.msgpack").write_bytes(serialization.msgpack_serialize(tree))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    return save_tiny_gpt2(directory), directory


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama")
    return save_tiny_llama(directory), directory


def copy_checkpoint(source, target, *, edit_tensors=None, edit_config=None):
    """Copies a single-file HF checkpoint, optionally editing its tensors or config."""
    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(source / "model.safetensors")
    if edit_tensors:
        edit_tensors(tensors)
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((source / "config.json").read_text())
    if edit_config:
        edit_config(config)
    (target / "config.json").write_text(json.dumps(config))
    return target


# ---- formats ------------------------------------------------------------------------------


def test_sharded_llama_reads_only_the_kept_layers(tmp_path, monkeypatch):
    model = save_tiny_llama(tmp_path, save_kwargs={"max_shard_size": "20KB"})
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    read = []
    real_open = safetensors.safe_open

    class RecordingHandle:
        def __init__(self, path, framework):
            self._handle = real_open(path, framework=framework)

        def __enter__(self):
            self._inner = self._handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

        def keys(self):
            return self._inner.keys()

        def get_slice(self, name):
            return self._inner.get_slice(name)

        def get_tensor(self, name):
            read.append(name)
            return self._inner.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", RecordingHandle)
    backbone = load_backbone(tmp_path, num_layers=2)
    assert read and not [name for name in read if name.startswith("model.layers.2.")]
    assert "model.embed_tokens.weight" not in read
    embeds = random_embeds(48)
    np.testing.assert_allclose(
        apply(backbone, embeds), reference_hidden(model, embeds, 2), atol=TOLERANCE
    )


def test_gpt2_base_model_without_prefix(tmp_path):
    torch.manual_seed(3)
    model = transformers.GPT2Model(tiny_gpt2_config()).eval()
    model.save_pretrained(tmp_path)
    backbone = load_backbone(tmp_path)
    embeds = random_embeds(48)
    with torch.no_grad():
        expected = model(inputs_embeds=torch.from_numpy(embeds)).last_hidden_state.numpy()
    np.testing.assert_allclose(apply(backbone, embeds), expected, atol=TOLERANCE)


def test_gpt2_flax_msgpack(tmp_path, gpt2):
    model, _ = gpt2
    write_hf_flax_checkpoint(model, tmp_path)
    backbone = load_backbone(tmp_path, with_embeddings=True)
    embeds = random_embeds(48)
    np.testing.assert_allclose(
        apply(backbone, embeds), reference_hidden(model, embeds), atol=TOLERANCE
    )
    ids = np.arange(10).reshape(2, 5)
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    logits = backbone.module.apply({"params": backbone.params}, ids, method="lm_logits")
    np.testing.assert_allclose(np.asarray(logits), expected, atol=TOLERANCE)


def test_llama_flax_msgpack_untied_and_truncated(tmp_path, llama):
    model, _ = llama
    write_hf_flax_checkpoint(model, tmp_path)
    backbone = load_backbone(tmp_path, num_layers=2, with_embeddings=True)
    assert backbone.params["lm_head"]["kernel"].shape == (48, 97)
    embeds = random_embeds(48)
    np.testing.assert_allclose(
        apply(backbone, embeds), reference_hidden(model, embeds, 2), atol=TOLERANCE
    )


def test_msgpack_and_safetensors_give_the_same_weights(tmp_path, gpt2):
    model, directory = gpt2
    write_hf_flax_checkpoint(model, tmp_path)
    assert load_backbone(tmp_path).content_hash == load_backbone(directory).content_hash


def test_bfloat16_checkpoint_is_read_exactly(tmp_path):
    model = save_tiny_llama(tmp_path / "f32", num_hidden_layers=1)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    backbone = load_backbone(tmp_path / "bf16", with_embeddings=True)
    expected = model.model.embed_tokens.weight.detach().float().numpy()
    np.testing.assert_array_equal(
        np.asarray(backbone.params["embed_tokens"]["embedding"]), expected
    )
    q_proj = model.model.layers[0].self_attn.q_proj.weight.detach().float().numpy()
    kernel = backbone.params["layers"]["0"]["self_attn"]["q_proj"]["kernel"]
    np.testing.assert_array_equal(np.asarray(kernel), q_proj.T)
    assert kernel.dtype == jnp.float32


def test_params_are_plain_dicts_of_arrays(llama):
    _, directory = llama
    backbone = load_backbone(directory, dtype=jnp.bfloat16)
    assert type(backbone.params) is dict
    leaves = flatten_params(backbone.params).values()
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    assert {leaf.dtype for leaf in leaves} == {jnp.dtype(jnp.bfloat16)}


# ---- content hash -------------------------------------------------------------------------


def test_content_hash_is_stable_and_sensitive(tmp_path, gpt2):
    _, directory = gpt2
    first = load_backbone(directory).content_hash
    assert first == load_backbone(directory).content_hash and len(first) == 64
    assert first != load_backbone(directory, num_layers=2).content_hash
    assert first != load_backbone(directory, dtype=jnp.bfloat16).content_hash

    def nudge(tensors):
        tensors["transformer.h.1.ln_2.bias"][3] += 1e-3

    changed = copy_checkpoint(directory, tmp_path / "changed", edit_tensors=nudge)
    assert load_backbone(changed).content_hash != first


# ---- errors -------------------------------------------------------------------------------


def test_missing_tensor_names_key_and_file(tmp_path, gpt2):
    _, directory = gpt2
    broken = copy_checkpoint(
        directory, tmp_path, edit_tensors=lambda t: t.pop("transformer.h.1.mlp.c_fc.bias")
    )
    with pytest.raises(
        CheckpointError, match="missing tensor 'transformer.h.1.mlp.c_fc.bias'"
    ) as error:
        load_backbone(broken)
    assert str(broken / "model.safetensors") in str(error.value)


def test_unexpected_tensor_names_key_and_file(tmp_path, llama):
    _, directory = llama

    def add(tensors):
        tensors["model.layers.0.self_attn.extra.weight"] = torch.zeros(2)

    broken = copy_checkpoint(directory, tmp_path, edit_tensors=add)
    with pytest.raises(CheckpointError, match="unexpected tensor 'model.layers.0.self_attn.extra"):
        load_backbone(broken)


def test_layers_beyond_the_config_are_unexpected(tmp_path, gpt2):
    _, directory = gpt2
    broken = copy_checkpoint(directory, tmp_path, edit_config=lambda c: c.update(n_layer=2))
    with pytest.raises(CheckpointError, match="unexpected tensor 'transformer.h.2.attn.c_attn"):
        load_backbone(broken)


def test_wrong_shape_names_key_file_and_shapes(tmp_path, llama):
    _, directory = llama

    def transpose(tensors):
        name = "model.layers.1.mlp.down_proj.weight"
        tensors[name] = tensors[name].T.contiguous()

    broken = copy_checkpoint(directory, tmp_path, edit_tensors=transpose)
    with pytest.raises(CheckpointError) as error:
        load_backbone(broken)
    message = str(error.value)
    assert "'model.layers.1.mlp.down_proj.weight'" in message
    assert str(broken / "model.safetensors") in message
    assert "expected shape (48, 80)" in message and "found (80, 48)" in message


def test_unsupported_model_type_names_it_and_the_file(tmp_path, gpt2):
    _, directory = gpt2
    broken = copy_checkpoint(
        directory, tmp_path, edit_config=lambda c: c.update(model_type="mistral")
    )
    with pytest.raises(CheckpointError, match="model_type 'mistral' is not supported") as error:
        load_backbone(broken)
    assert str(broken / "config.json") in str(error.value)


def test_llama_weights_with_a_gpt2_config_is_an_architecture_error(tmp_path, llama, gpt2):
    _, llama_dir = llama
    gpt2_config = json.loads((gpt2[1] / "config.json").read_text())
    broken = copy_checkpoint(llama_dir, tmp_path, edit_config=lambda c: c.update(gpt2_config))
    with pytest.raises(CheckpointError, match="model_type 'gpt2' but none of the expected"):
        load_backbone(broken)


def test_num_layers_too_large_names_the_config(gpt2):
    _, directory = gpt2
    with pytest.raises(
        CheckpointError, match="num_layers=7 requested but the checkpoint has n_layer=3"
    ):
        load_backbone(directory, num_layers=7)


def test_requested_architecture_must_match(gpt2):
    _, directory = gpt2
    with pytest.raises(CheckpointError, match="is a gpt2 checkpoint .* but a llama backbone"):
        load_backbone(directory, architecture="llama")
    assert load_backbone(directory, architecture="gpt2", num_layers=1).name == "gpt2"


def test_bad_paths_are_clear(tmp_path, gpt2):
    _, directory = gpt2
    with pytest.raises(CheckpointError, match="is a file; pass the Hugging Face model directory"):
        load_backbone(directory / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="neither an existing directory"):
        load_backbone(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(FileNotFoundError, match="GGUF file .* does not exist"):
        load_backbone(tmp_path / "absent.gguf")
    (tmp_path / "config.json").write_text(json.dumps(tiny_gpt2_config().to_dict()))
    with pytest.raises(CheckpointError, match="no weights found; expected model.safetensors"):
        load_backbone(tmp_path)


def _damaged_checkpoint(kind, gpt2, directory):
    """A copy of the tiny GPT-2 checkpoint with one file cut short or broken; (dir, file)."""
    model, source = gpt2
    if kind == "msgpack":
        write_hf_flax_checkpoint(model, directory)
        path = directory / "flax_model.msgpack"
    else:
        copy_checkpoint(source, directory)
        path = directory / "model.safetensors"
        if kind in ("shard", "index"):
            shard = path.rename(directory / "model-00001-of-00001.safetensors")
            with safetensors.safe_open(shard, framework="numpy") as handle:
                weight_map = {name: shard.name for name in handle.keys()}
            index = directory / "model.safetensors.index.json"
            index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
            path = shard if kind == "shard" else index
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a cut download
    return directory, path


@pytest.mark.parametrize("kind", ["safetensors", "shard", "index", "msgpack"])
def test_a_truncated_checkpoint_file_is_one_error_naming_it(tmp_path, gpt2, kind):
    directory, path = _damaged_checkpoint(kind, gpt2, tmp_path / kind)
    with pytest.raises(CheckpointError, match="truncated or damaged") as error:
        load_backbone(directory)
    assert str(path) in str(error.value)


def test_offline_hub_id_says_what_to_do_instead(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(CheckpointError) as error:
        load_backbone("harjax-test/no-such-model-xyz")
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert "'harjax-test/no-such-model-xyz'" in message and "hub" in message
    assert "smollm2-135m" in message and ".gguf" in message


# ---- GGUF dispatch ------------------------------------------------------------------------


def test_gguf_specs_dispatch_to_the_gguf_reader(tmp_path, monkeypatch, llama):
    """The GGUF reader returns (LlamaConfig, params); load_backbone checks and wraps them."""
    _, directory = llama
    reference = load_backbone(directory, num_layers=1)
    calls = []

    def load_gguf(path, *, num_layers, dtype, with_embeddings):
        calls.append(("file", path.name, num_layers, with_embeddings))
        return reference.config, reference.params

    def load_smollm2(*, num_layers, dtype, with_embeddings):
        calls.append(("embedded", num_layers, with_embeddings))
        return reference.config, reference.params

    embedded_file = tmp_path / "smollm2.gguf"  # where load_backbone records the hash against
    embedded_file.write_bytes(b"GGUF")
    fake = types.SimpleNamespace(
        load_gguf=load_gguf, load_smollm2=load_smollm2, smollm2_path=lambda: embedded_file
    )
    monkeypatch.setitem(sys.modules, "harjax.weights.gguf", fake)
    monkeypatch.setattr(harjax.weights, "gguf", fake, raising=False)
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF")
    from_file = load_backbone(tmp_path / "tiny.gguf", num_layers=1)
    embedded = load_backbone("smollm2-135m", num_layers=1)
    assert calls == [("file", "tiny.gguf", 1, False), ("embedded", 1, False)]
    assert from_file.name == embedded.name == "llama"
    assert from_file.content_hash == embedded.content_hash == reference.content_hash
    with pytest.raises(CheckpointError, match="missing parameter 'embed_tokens/embedding'"):
        load_backbone(tmp_path / "tiny.gguf", num_layers=1, with_embeddings=True)
