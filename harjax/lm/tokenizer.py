"""Text <-> token ids, only to verify a loaded backbone (NLL of a sentence, greedy continuation).

HAR never tokenizes text: the model reads IMU windows through the projection. A tokenizer is
built either from the vocabulary a GGUF file carries (`tokenizer.ggml.*`, llama.cpp's keys) or from
a Hugging Face directory's `tokenizer.json`. Both end up as a `tokenizers.Tokenizer`, so encoding is
the Rust implementation rather than a hand-written BPE.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

__all__ = ["TextTokenizer", "load_tokenizer", "tokenizer_from_gguf", "tokenizer_from_hf_dir"]

# llama.cpp's `tokenizer.ggml.token_type` values for control tokens such as `<|im_start|>` and
# user-defined ones such as Qwen2's `<|fim_prefix|>`: these match whole in the text, never cut
# into byte pieces; control tokens are also dropped by `decode(skip_special_tokens=True)`.
_CONTROL_TOKEN = 3
_USER_DEFINED_TOKEN = 4

# How each `tokenizer.ggml.pre` splits text before BPE (the split its merges were learned with).
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2's (its tokenizer.json; llama.cpp's QWEN2 pre-type): LLaMA-3's, but one digit per piece.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _gpt2_split() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _smollm_split() -> pre_tokenizers.PreTokenizer:
    # llama.cpp's SMOLLM pre-type: every digit on its own, then GPT-2's regex.
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _gpt2_split()])


def _llama3_split() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _qwen2_split() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


_PRE_TOKENIZERS = {
    "default": _gpt2_split,
    "gpt2": _gpt2_split,
    "smollm": _smollm_split,
    "llama-bpe": _llama3_split,
    "llama3": _llama3_split,
    "llama-v3": _llama3_split,
    "qwen2": _qwen2_split,
}
# Pre-types whose tokenizer.json normalizes text to NFC before splitting (Qwen2's does).
_NFC_PRE_TYPES = ("qwen2",)


@dataclasses.dataclass(frozen=True)
class TextTokenizer:
    """A `tokenizers.Tokenizer` plus what a GGUF/HF directory says around it."""

    tokenizer: Tokenizer
    bos_id: int | None
    eos_id: int | None
    chat_template: str | None
    source: str

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with BOS if the tokenizer's own post-processor adds one."""
        return self.tokenizer.encode(text, add_special_tokens=True).ids

    def decode(self, ids, *, skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def chat_prompt(self, user_message: str) -> str:
        """The prompt the model was tuned on, rendered from its own chat template."""
        if self.chat_template is None:
            raise ValueError(f"{self.source} has no chat template; cannot build a chat prompt.")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = environment.from_string(self.chat_template)
        vocab = self.tokenizer.id_to_token
        return template.render(
            messages=[{"role": "user", "content": user_message}],
            add_generation_prompt=True,
            bos_token=vocab(self.bos_id) if self.bos_id is not None else "",
            eos_token=vocab(self.eos_id) if self.eos_id is not None else "",
        )


def tokenizer_from_gguf(path: str | Path) -> TextTokenizer:
    """Byte-level BPE from a GGUF's `tokenizer.ggml.{tokens,merges,model,pre}` metadata."""
    from harjax.weights.gguf import gguf_metadata

    metadata = gguf_metadata(path)
    kind = metadata.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ValueError(
            f"{path}: tokenizer.ggml.model is {kind!r}; only byte-level BPE ('gpt2') is supported."
        )
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        if key not in metadata:
            raise KeyError(f"{path}: missing metadata key {key!r} needed to build the tokenizer.")
    pre = metadata.get("tokenizer.ggml.pre", "default")
    if pre not in _PRE_TOKENIZERS:
        raise ValueError(
            f"{path}: tokenizer.ggml.pre is {pre!r}; supported: {sorted(_PRE_TOKENIZERS)}."
        )
    tokens = list(metadata["tokenizer.ggml.tokens"])
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError(f"{path}: tokenizer.ggml.tokens holds duplicate tokens.")
    merges = [tuple(merge.split(" ")) for merge in metadata["tokenizer.ggml.merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    if pre in _NFC_PRE_TYPES:
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = _PRE_TOKENIZERS[pre]()
    tokenizer.decoder = decoders.ByteLevel()
    token_types = metadata.get("tokenizer.ggml.token_type")
    if token_types is not None:
        kinds = [int(kind) for kind in token_types]
        control = [t for t, kind in zip(tokens, kinds) if kind == _CONTROL_TOKEN]
        tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in control]
        )
        user = [t for t, kind in zip(tokens, kinds) if kind == _USER_DEFINED_TOKEN]
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])

    bos_id = _optional_int(metadata.get("tokenizer.ggml.bos_token_id"))
    eos_id = _optional_int(metadata.get("tokenizer.ggml.eos_token_id"))
    if metadata.get("tokenizer.ggml.add_bos_token", False) and bos_id is not None:
        bos = tokens[bos_id]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return TextTokenizer(
        tokenizer=tokenizer,
        bos_id=bos_id,
        eos_id=eos_id,
        chat_template=metadata.get("tokenizer.chat_template"),
        source=str(path),
    )


def tokenizer_from_hf_dir(directory: str | Path) -> TextTokenizer:
    """`tokenizer.json` (+ `tokenizer_config.json`, `chat_template.jinja`) of an HF directory."""
    directory = Path(directory)
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"No tokenizer.json in {directory}.")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    template_file = directory / "chat_template.jinja"
    chat_template = template_file.read_text() if template_file.is_file() else None
    chat_template = config.get("chat_template", chat_template)
    return TextTokenizer(
        tokenizer=tokenizer,
        bos_id=_special_id(tokenizer, config.get("bos_token")),
        eos_id=_special_id(tokenizer, config.get("eos_token")),
        chat_template=chat_template if isinstance(chat_template, str) else None,
        source=str(directory),
    )


def load_tokenizer(spec: str) -> TextTokenizer | None:
    """The tokenizer that goes with a backbone spec, or None when the spec carries none."""
    if spec == "smollm2-135m":
        from harjax.weights.gguf import smollm2_path

        return tokenizer_from_gguf(smollm2_path())
    path = Path(spec)
    if path.suffix == ".gguf" and path.is_file():
        return tokenizer_from_gguf(path)
    if (path / "tokenizer.json").is_file():
        return tokenizer_from_hf_dir(path)
    return None


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def _special_id(tokenizer: Tokenizer, token) -> int | None:
    if isinstance(token, dict):  # older tokenizer_config.json spell AddedToken as a dict
        token = token.get("content")
    return None if token is None else tokenizer.token_to_id(token)
