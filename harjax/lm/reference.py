"""The reference a loaded backbone is checked against: transformers' own loader and model.

`reference_nll` loads the same checkpoint with transformers (its GGUF loader for a `.gguf` file,
`from_pretrained` for an HF directory) and scores the same token ids in float32, so
`launch/backbone.py --reference` prints both numbers side by side. transformers and torch are
test dependencies, imported here only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["reference_nll"]


def _load_reference(spec: str):
    import torch
    import transformers

    if spec == "smollm2-135m":
        from harjax.weights.gguf import smollm2_path

        spec = str(smollm2_path())
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        # transformers dequantizes the whole file to float32 itself (its `gguf` integration).
        return transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
    if path.is_dir():
        return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    raise ValueError(
        f"reference_nll: {spec!r} is neither a .gguf file nor a Hugging Face model directory."
    )


def reference_nll(spec: str, token_ids: Sequence[int], *, num_layers: int | None = None) -> float:
    """transformers' mean next-token NLL (nats/token) of `token_ids` under the checkpoint `spec`.

    With `num_layers`, only the first layers run, then the final norm and LM head, as in harjax.
    """
    import torch

    model = _load_reference(spec).eval()
    if num_layers is not None:
        decoder = model.base_model
        decoder.layers = decoder.layers[:num_layers]
        decoder.config.num_hidden_layers = num_layers
    ids = torch.tensor([list(token_ids)], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(1, ids[0, 1:, None])[:, 0]
    return float(np.mean(nll.numpy()))
