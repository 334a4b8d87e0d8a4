"""What the GPT-2 and LLaMA backbones share around their decoders: token ids in, logits out.

Both ``__call__`` take input embeddings and never touch the token table, so ``init`` with
``__call__`` yields exactly the tree ``load_backbone(..., with_embeddings=False)`` returns.
``embed``/``logits`` (and ``lm_logits`` to initialise everything) exist for verification and
``harjax.lm`` only; they live here once.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from harjax.models.matmul import KERNEL_INIT


def token_embedding(num_embeddings: int, features: int, dtypes: dict[str, Any]) -> nn.Embed:
    """An ``nn.Embed`` initialised like the backbones (token table, GPT-2's positions)."""
    return nn.Embed(num_embeddings, features, embedding_init=KERNEL_INIT, **dtypes)


def untied_lm_head(config: Any, dtypes: dict[str, Any]) -> nn.Dense | None:
    """The output projection ``lm_head``, or None when the logits reuse the token embedding."""
    if config.tie_word_embeddings:
        return None
    return nn.Dense(config.vocab_size, use_bias=False, kernel_init=KERNEL_INIT, **dtypes)


class CausalLM(nn.Module):
    """Base of ``GPT2Model`` / ``LlamaModel``: ``embed``, ``logits`` and ``lm_logits``.

    A subclass's ``setup`` assigns its token ``nn.Embed`` under its HF name (which is also the
    parameter path) and names that attribute in ``TOKEN_EMBEDDING``, and assigns
    ``self.lm_head = untied_lm_head(config, dtypes)``.
    """

    TOKEN_EMBEDDING = ""  # the attribute (and parameter name) of the token table

    def embed(self, input_ids: jax.Array) -> jax.Array:
        """Token embeddings only; GPT-2 adds its positions in ``__call__``."""
        return getattr(self, self.TOKEN_EMBEDDING)(input_ids)

    def logits(self, hidden: jax.Array) -> jax.Array:
        """``hidden (B, T, D) -> (B, T, vocab)``: the tied table's ``attend``, or ``lm_head``."""
        if self.lm_head is None:
            return getattr(self, self.TOKEN_EMBEDDING).attend(hidden)
        return self.lm_head(hidden)

    def lm_logits(self, input_ids: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """Token ids -> next-token logits; touches every parameter (use it to ``init`` all)."""
        return self.logits(self(self.embed(input_ids), deterministic=deterministic))
