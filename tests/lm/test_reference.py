"""`reference_nll`: transformers' NLL of the same ids, on an HF directory, all or first layers."""

import numpy as np
import pytest

from harjax.lm.generate import mean_nll
from harjax.lm.reference import reference_nll
from harjax.weights import load_backbone
from tests.models.test_qwen2 import save_tiny_qwen2


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference_qwen2")
    save_tiny_qwen2(directory, seed=3)
    return directory


@pytest.mark.parametrize("num_layers", [None, 1])
def test_reference_nll_equals_ours(qwen2_dir, num_layers):
    ids = np.random.default_rng(0).integers(0, 97, size=12).tolist()
    backbone = load_backbone(qwen2_dir, num_layers=num_layers, with_embeddings=True)
    ours = mean_nll(backbone.module, backbone.params, ids)
    expected = reference_nll(str(qwen2_dir), ids, num_layers=num_layers)
    assert expected == pytest.approx(ours, abs=1e-4)


def test_full_and_truncated_differ(qwen2_dir):
    """The truncation is real: one layer scores the ids differently from all three."""
    ids = np.random.default_rng(1).integers(0, 97, size=12).tolist()
    full = reference_nll(str(qwen2_dir), ids)
    assert abs(full - reference_nll(str(qwen2_dir), ids, num_layers=1)) > 1e-3


def test_reference_of_something_else_is_named(tmp_path):
    with pytest.raises(ValueError, match="neither a .gguf file nor a Hugging Face"):
        reference_nll(str(tmp_path / "nothing.bin"), [1, 2])
