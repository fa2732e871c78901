"""The paper's inference pipeline, rebuilt for timing: the baseline `genspot bench` compares against.

NAU-QMUL's public code runs transformers' ``CLIPVisionModel`` (ViT-B/32, pooled output at
224 px) and ``BertModel`` (bert-base-uncased, [CLS] of "Caption: {caption}" padded to 128
tokens), concatenates them, and applies Linear(1536, 512) -> ReLU -> two heads, in fp32 eager
mode, one image at a time. Weights are random (built from configs, never downloaded): only
the speed matters here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from genspot.text import format_caption

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PAPER_MAX_TOKENS = 128


class ReferencePipeline(nn.Module):
    """CLIPVisionModel ViT-B/32 + BertModel bert-base + concat fusion, random weights, fp32 eager."""

    def __init__(self, tokenizer: Tokenizer, num_classes: int = 5):
        super().__init__()
        from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

        self.vision = CLIPVisionModel(CLIPVisionConfig())  # defaults = ViT-B/32, 224 px
        self.text = BertModel(BertConfig(), add_pooling_layer=False)  # defaults = bert-base
        self.fusion = nn.Sequential(nn.Linear(768 + 768, 512), nn.ReLU())
        self.head_a = nn.Linear(512, 1)
        self.head_b = nn.Linear(512, num_classes)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]", length=PAPER_MAX_TOKENS)
        self.tokenizer.enable_truncation(max_length=PAPER_MAX_TOKENS)
        self.eval()

    def forward(self, image: torch.Tensor, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One preprocessed image [3, S, S] in [0, 1] and its caption -> (p_ai [1], p_source [1, K])."""
        pixels = F.interpolate(image.unsqueeze(0), size=(224, 224), mode="bicubic", align_corners=False)
        pooled_image = self.vision(pixel_values=(pixels - self.mean) / self.std).pooler_output
        encoding = self.tokenizer.encode(format_caption(caption))
        input_ids = torch.tensor([encoding.ids])
        attention_mask = torch.tensor([encoding.attention_mask])
        cls = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        hidden = self.fusion(torch.cat([pooled_image, cls], dim=1))
        return torch.sigmoid(self.head_a(hidden)).squeeze(1), torch.softmax(self.head_b(hidden), dim=1)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, captions: list[str]) -> None:
        """The paper's loop: every image through the whole model on its own."""
        for image, caption in zip(images, captions):
            self(image, caption)
