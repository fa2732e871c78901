"""Caption handling shared by training, export and serving.

The text branch reads "Caption: {caption}" (the paper's template). Captions and alt-texts
are often empty on the web; an empty caption is a valid input everywhere. Tokenisation uses
the `tokenizers` package only (no transformers import), from a ``tokenizer.json`` that
travels inside checkpoints and bundles.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from tokenizers import Tokenizer

CAPTION_TEMPLATE = "Caption: {caption}"
DEFAULT_MAX_TOKENS = 128
_WHITESPACE = re.compile(r"\s+")


def normalize_caption(caption: str | None) -> str:
    """Collapse whitespace and strip; ``None`` becomes the empty caption."""
    return _WHITESPACE.sub(" ", caption or "").strip()


def format_caption(caption: str | None) -> str:
    """The exact text the text encoder reads for ``caption``."""
    return CAPTION_TEMPLATE.format(caption=normalize_caption(caption))


def caption_hash(caption: str | None) -> str:
    """Stable short hash of the normalised caption (cache keys)."""
    return hashlib.sha256(normalize_caption(caption).encode("utf-8")).hexdigest()[:32]


class CaptionTokenizer:
    """Turns captions into ``(input_ids, attention_mask)`` padded to the longest in the batch."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.max_tokens = max_tokens
        self._tokenizer = tokenizer
        pad_token = "[PAD]" if tokenizer.token_to_id("[PAD]") is not None else "<pad>"
        pad_id = tokenizer.token_to_id(pad_token)
        self._tokenizer.no_padding()
        self._tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token=pad_token)
        self._tokenizer.enable_truncation(max_length=max_tokens)

    @classmethod
    def from_file(cls, path: str | Path, max_tokens: int = DEFAULT_MAX_TOKENS) -> "CaptionTokenizer":
        return cls(Tokenizer.from_file(str(path)), max_tokens)

    @classmethod
    def from_str(cls, json_text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> "CaptionTokenizer":
        return cls(Tokenizer.from_str(json_text), max_tokens)

    def to_str(self) -> str:
        return self._tokenizer.to_str()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_str(), encoding="utf-8")

    def __call__(self, captions: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        if not captions:
            empty = torch.zeros(0, 1, dtype=torch.long)
            return empty, empty.clone()
        encodings = self._tokenizer.encode_batch([format_caption(c) for c in captions])
        input_ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        attention_mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return input_ids, attention_mask
