"""`launch/backbone.py`: run as a subprocess on a tiny GGUF written here, plus its flag errors."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from harjax.lm.generate import mean_nll
from harjax.lm.tokenizer import tokenizer_from_gguf
from harjax.models.llama import LlamaModel
from harjax.weights.gguf import load_gguf

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "backbone.py"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Byte-level symbols for printable ASCII, then one merge; enough to tokenize plain text.
SYMBOLS = [chr(c) for c in range(33, 127)] + ["Ġ", "Ġt"]
TOKENS = SPECIALS + SYMBOLS
HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 32, 64, 2, 4, 2


def write_tiny_gguf(path: Path) -> Path:
    """A random 2-layer llama GGUF with a byte-level tokenizer (weights need not be trained)."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(LAYERS)
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3] * len(SPECIALS) + [1] * len(SYMBOLS))
    writer.add_token_merges(["Ġ t"])
    writer.add_eos_token_id(2)
    head_dim = HIDDEN // HEADS
    shapes = {
        "attn_norm": (HIDDEN,),
        "attn_q": (HEADS * head_dim, HIDDEN),
        "attn_k": (KV_HEADS * head_dim, HIDDEN),
        "attn_v": (KV_HEADS * head_dim, HIDDEN),
        "attn_output": (HIDDEN, HEADS * head_dim),
        "ffn_norm": (HIDDEN,),
        "ffn_gate": (FFN, HIDDEN),
        "ffn_up": (FFN, HIDDEN),
        "ffn_down": (HIDDEN, FFN),
    }
    tensors = {"token_embd.weight": (len(TOKENS), HIDDEN), "output_norm.weight": (HIDDEN,)}
    for layer in range(LAYERS):
        tensors.update({f"blk.{layer}.{name}.weight": shape for name, shape in shapes.items()})
    for name, shape in tensors.items():
        values = 1.0 + 0.1 * rng.normal(size=shape) if len(shape) == 1 else rng.normal(size=shape)
        writer.add_tensor(name, values.astype(np.float32) * (1.0 if len(shape) == 1 else 0.2))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("cli") / "tiny.gguf")


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def cli_main():
    """The script's `main`, imported from its file, for the flag errors (no process start-up)."""
    spec = importlib.util.spec_from_file_location("launch_backbone", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_text_on_tiny_gguf_reports_config_params_nll_and_continuation(tiny_gguf):
    text = "the tea is hot"
    result = run_cli("--backbone", str(tiny_gguf), "--text", text, "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"backbone: {tiny_gguf} (llama, LlamaConfig)" in out
    assert "  num_hidden_layers: 2" in out and "  num_key_value_heads: 2" in out
    head_dim = HIDDEN // HEADS
    layer = 2 * HIDDEN + HIDDEN * head_dim * (2 * HEADS + 2 * KV_HEADS) + 3 * HIDDEN * FFN
    assert f"parameters: {len(TOKENS) * HIDDEN + HIDDEN + LAYERS * layer:,} " in out
    # The printed NLL is the library's, on the tokenizer's ids.
    config, params = load_gguf(tiny_gguf, with_embeddings=True)
    ids = tokenizer_from_gguf(tiny_gguf).encode(text)
    expected = mean_nll(LlamaModel(config), params, ids)
    printed = float(re.search(r"mean NLL: ([\d.]+) nats/token", out).group(1))
    assert printed == pytest.approx(expected, abs=1e-3)
    assert f"tokens: {len(ids)}" in out
    continuation = re.search(r"continuation ids: \[([\d, ]*)\]", out).group(1)
    assert 1 <= len(continuation.split(",")) <= 5
    assert "continuation: '" in out


def test_token_ids_with_fewer_layers(tiny_gguf):
    result = run_cli("--backbone", str(tiny_gguf), "--token-ids", "5,6,7,8", "--num-layers", "1")
    assert result.returncode == 0, result.stderr
    assert "  num_layers: 1" in result.stdout and "tokens: 4" in result.stdout


def test_bad_backbone_is_one_error_line_without_traceback(tmp_path):
    result = run_cli("--backbone", str(tmp_path / "missing.gguf"), "--token-ids", "1,2")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "missing.gguf" in errors[0]
    assert "Traceback" not in result.stderr


def test_reference_prints_transformers_nll_beside_ours(cli_main, tiny_gguf, capsys):
    """`--reference`: transformers' GGUF loader scores the same ids; the two agree."""
    assert cli_main(["--backbone", str(tiny_gguf), "--text", "the tea", "--reference"]) == 0
    out = capsys.readouterr().out
    ours = float(re.search(r"mean NLL: ([\d.]+) nats/token", out).group(1))
    found = re.search(r"transformers NLL: ([\d.]+) nats/token; harjax ([\d.]+)", out)
    assert float(found.group(2)) == pytest.approx(ours, abs=1e-3)
    assert float(found.group(1)) == pytest.approx(float(found.group(2)), abs=1e-4)
    assert re.search(r"loaded in [\d.]+ s \(float32\), peak memory [\d.]+ GiB", out)


def test_unknown_architecture_is_one_error_naming_it(cli_main, tmp_path, capsys):
    writer = gguf.GGUFWriter(str(tmp_path / "mamba.gguf"), "mamba")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(SystemExit):
        cli_main(["--backbone", str(tmp_path / "mamba.gguf"), "--token-ids", "1,2"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "general.architecture is 'mamba'" in error and "['llama', 'qwen2']" in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "hi", "--token-ids", "1,2"], "not allowed with argument"),
        (
            ["--token-ids", "1,2,999"],
            rf"token ids \[999\] are outside the vocabulary \[0, {len(TOKENS)}\)",
        ),
        (["--token-ids", "1,x"], "expected comma-separated integers"),
        (["--text", "   "], "--text is empty"),
        (["--token-ids", "7"], "need at least 2 tokens"),
        (["--num-layers", "3", "--token-ids", "1,2"], "num_layers=3.*block_count=2"),
        (["--chat", "--text", "hi"], "--chat: .*has no chat template"),
    ],
)
def test_flag_errors_exit_2_with_one_message(cli_main, tiny_gguf, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--backbone", str(tiny_gguf), *args])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in error
    assert re.search(message, error), error


@pytest.mark.slow
def test_no_flags_runs_the_embedded_smollm2():
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert "backbone: smollm2-135m (llama, LlamaConfig)" in result.stdout
    nll = float(re.search(r"mean NLL: ([\d.]+)", result.stdout).group(1))
    assert nll < 3.0
