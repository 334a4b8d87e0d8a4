"""Shared pieces of the parity tests against the transformers reference (GPT-2 and LLaMA)."""

import numpy as np
import torch


def random_embeds(hidden_size, *, batch=2, length=12, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, hidden_size)).astype(np.float32)


def reference_hidden(model, embeds, num_layers=None):
    """HF hidden states after `num_layers` blocks (GPT-2 adds its positions), then HF's final norm.

    `model` is an HF LM (`GPT2LMHeadModel` / `LlamaForCausalLM`); its `base_model` is the decoder.
    """
    decoder = model.base_model
    with torch.no_grad():
        out = decoder(inputs_embeds=torch.from_numpy(embeds), output_hidden_states=True)
        if num_layers is None:
            return out.last_hidden_state.numpy()
        final_norm = decoder.ln_f if hasattr(decoder, "ln_f") else decoder.norm
        return final_norm(out.hidden_states[num_layers]).numpy()


def ours(backbone, embeds, **kwargs):
    return np.asarray(backbone.module.apply({"params": backbone.params}, embeds, **kwargs))
