import os
import sys

# Tests import configs/ and tests/helpers.py as top-level modules.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A tiny random LLaMA checkpoint in the Hugging Face layout (config.json + safetensors)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("tiny_llama")
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def harjax_env(tmp_path_factory):
    """Environment for subprocess runs: shared wheel cache and tfds data dir for the session."""
    base = tmp_path_factory.getbasetemp()
    env = dict(os.environ)
    env.setdefault("HARJAX_CACHE", str(base / "harjax_cache"))
    env["HARJAX_DATA_DIR"] = str(base / "harjax_tfds")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    return env
