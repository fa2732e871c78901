"""The paper's way of running a detector, rebuilt for timing: the baselines `genspot bench` compares against.

NAU-QMUL's public code runs transformers' ``CLIPVisionModel`` (ViT-B/32, pooled output at
224 px) and ``BertModel`` (bert-base-uncased, [CLS] of "Caption: {caption}" padded to 128
tokens), concatenates them, and applies Linear(1536, 512) -> ReLU -> two heads, in fp32 eager
mode, one image at a time. :class:`ReferencePipeline` is that network with random weights
(built from configs, never downloaded: only the speed matters); :class:`EagerCheckpoint` runs a
training checkpoint, i.e. a bundle's own encoders, the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from genspot.probability import calibrated_probability
from genspot.text import CaptionTokenizer, format_caption

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PAPER_MAX_TOKENS = 128


def fixed_length(tokenizer_json: str, length: int) -> Tokenizer:
    """The tokenizer of ``tokenizer_json``, set to pad and truncates every caption to ``length`` tokens, as the
    paper's code does (genspot pads a batch to its longest caption instead)."""
    fixed = Tokenizer.from_str(tokenizer_json)
    pad_token = "[PAD]" if fixed.token_to_id("[PAD]") is not None else "<pad>"
    fixed.enable_padding(pad_id=fixed.token_to_id(pad_token) or 0, pad_token=pad_token, length=length)
    fixed.enable_truncation(max_length=length)
    return fixed


def _encode(tokenizer: Tokenizer, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
    encoding = tokenizer.encode(format_caption(caption))
    return torch.tensor([encoding.ids]), torch.tensor([encoding.attention_mask])


class ReferencePipeline(nn.Module):
    """CLIPVisionModel ViT-B/32 + BertModel bert-base + concat fusion, random weights, fp32 eager."""

    def __init__(self, tokenizer: CaptionTokenizer, num_classes: int = 5):
        super().__init__()
        from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

        self.vision = CLIPVisionModel(CLIPVisionConfig())  # defaults = ViT-B/32, 224 px
        self.text = BertModel(BertConfig(), add_pooling_layer=False)  # defaults = bert-base
        self.fusion = nn.Sequential(nn.Linear(768 + 768, 512), nn.ReLU())
        self.head_a = nn.Linear(512, 1)
        self.head_b = nn.Linear(512, num_classes)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.tokenizer = fixed_length(tokenizer.to_str(), PAPER_MAX_TOKENS)
        self.eval()

    def forward(self, image: torch.Tensor, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One preprocessed image [3, S, S] in [0, 1] and its caption -> (p_ai [1], p_source [1, K])."""
        pixels = F.interpolate(image.unsqueeze(0), size=(224, 224), mode="bicubic", align_corners=False)
        pooled_image = self.vision(pixel_values=(pixels - self.mean) / self.std).pooler_output
        input_ids, attention_mask = _encode(self.tokenizer, caption)
        cls = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        hidden = self.fusion(torch.cat([pooled_image, cls], dim=1))
        return torch.sigmoid(self.head_a(hidden)).squeeze(1), torch.softmax(self.head_b(hidden), dim=1)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, captions: list[str]) -> None:
        """The paper's loop: every image through the whole model on its own."""
        for image, caption in zip(images, captions):
            self(image, caption)


class EagerCheckpoint:
    """A training checkpoint run the paper's way: the eager model in fp32, one image per call,
    each caption padded to the model's ``max_tokens``, probabilities as the bundle computes them.
    Given the checkpoint a bundle was exported from, it is the same encoders and the same work
    as the bundle, without export's batching, bf16 or padding to the longest caption."""

    def __init__(self, checkpoint: str | Path):
        from genspot.training.model.checkpoint import load_checkpoint

        self.model, meta = load_checkpoint(checkpoint)
        self.model.float().eval()
        self.temperature = meta.temperature
        self.tokenizer = fixed_length(self.model.tokenizer.to_str(), self.model.tokenizer.max_tokens)

    def __call__(self, image: torch.Tensor, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        logit_a, logits_b = self.model(image.unsqueeze(0), *_encode(self.tokenizer, caption))
        return calibrated_probability(logit_a, self.temperature), torch.softmax(logits_b, dim=1)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, captions: list[str]) -> None:
        for image, caption in zip(images, captions):
            self(image, caption)
