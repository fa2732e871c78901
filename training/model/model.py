"""The genspot detector: branches -> fusion -> head A (AI or real) and head B (which generator).

``create_model(config, labels_b)`` builds it from a ``ModelConfig``. ``forward(image,
input_ids, attention_mask) -> (logit_a [N], logits_b [N, K])`` is the contract with export
and serving (docs/ARCHITECTURE.md); ``forward_features`` returns one feature vector per
enabled branch and ``forward_head`` maps those to the logits, so frozen-backbone training can
feed cached backbone features straight into the head.
"""

from __future__ import annotations

import torch
from torch import nn

from genspot.imaging import policy_views
from genspot.text import CaptionTokenizer
from genspot.training.model.branches import ImageBranch, TextBranch, load_caption_tokenizer
from genspot.training.config import ModelConfig
from genspot.training.model.fusion import create_fusion

# Branch order is fixed: fusion inputs and feature dicts follow it.
BRANCH_NAMES = ("image", "text")


def frozen_branches(config: ModelConfig) -> list[str]:
    """Enabled pretrained backbones (image, text) that the config freezes."""
    return [n for n in ("image", "text") if getattr(config, n).enabled and getattr(config, n).freeze]


def rebuildable_branches(config: ModelConfig) -> list[str]:
    """Frozen backbones whose weights come from their source, so checkpoints need not store them."""
    pretrained = {"image": bool(config.image.pretrained), "text": not config.text.random_init}
    return [n for n in frozen_branches(config) if pretrained[n]]


class GenspotDetector(nn.Module):
    def __init__(self, config: ModelConfig, labels_b: list[str], load_weights: bool = True):
        super().__init__()
        if not labels_b:
            raise ValueError("labels_b is empty: the data has no AI-generated sample with a generator name")
        if not (config.image.enabled or config.text.enabled):
            raise ValueError("config enables no branch (image and text are both disabled)")
        self.config = config
        self.labels_b = list(labels_b)
        self.branches = nn.ModuleDict()
        if config.image.enabled:
            views = len(policy_views(config.resize_policy))
            self.branches["image"] = ImageBranch(config.image, load_weights, views)
        if config.text.enabled:
            self.branches["text"] = TextBranch(config.text, load_weights)
        self.branch_names = [name for name in BRANCH_NAMES if name in self.branches]
        # Branches fused for both heads; a text branch left out of task A reaches head B alone.
        self.fused_branches = [n for n in self.branch_names if n != "text" or config.text.task_a]
        if not self.fused_branches:
            raise ValueError("config gives task A no branch (only a text branch, with text.task_a false)")
        self.text_for_b_only = len(self.fused_branches) < len(self.branch_names)
        self.fusion = create_fusion([self.branches[n].output_dim for n in self.fused_branches], config.fusion)
        self.head_a = nn.Linear(config.fusion.hidden_dim, 1)
        text_dim = self.branches["text"].output_dim if self.text_for_b_only else 0
        self.head_b = nn.Linear(config.fusion.hidden_dim + text_dim, len(self.labels_b))
        self._freeze_backbones()
        self._tokenizer: CaptionTokenizer | None = None

    # -- pretrained backbones -------------------------------------------------------------
    def frozen_branches(self) -> list[str]:
        return frozen_branches(self.config)

    def rebuildable_branches(self) -> list[str]:
        return rebuildable_branches(self.config)

    def reads_pixels_when_cached(self) -> bool:
        """Whether a forward pass with the frozen backbones' features cached still reads the image
        (a trained image branch); when not, cached runs need not decode pictures."""
        frozen = set(self.frozen_branches())
        return any(n != "text" and n not in frozen for n in self.branch_names)

    def _freeze_backbones(self) -> None:
        """No gradients and eval mode for the backbones the config freezes."""
        for name in self.frozen_branches():
            self.branches[name].requires_grad_(False)
            self.branches[name].eval()

    def train(self, mode: bool = True) -> "GenspotDetector":
        super().train(mode)
        for name in self.frozen_branches():
            self.branches[name].eval()  # frozen backbones keep eval behaviour (dropout off)
        return self

    # -- forward ----------------------------------------------------------------------------
    def branch_feature(self, name: str, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if name == "text":
            return self.branches["text"](input_ids, attention_mask)
        return self.branches[name](image)

    def forward_features(
        self,
        image: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cached: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One feature vector per branch; branches present in ``cached`` are not run."""
        cached = cached or {}
        return {n: cached[n] if n in cached else self.branch_feature(n, image, input_ids, attention_mask) for n in self.branch_names}

    def forward_head(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self.fusion([features[n].float() for n in self.fused_branches])
        source_input = torch.cat([fused, features["text"].float()], dim=1) if self.text_for_b_only else fused
        return self.head_a(fused).squeeze(-1), self.head_b(source_input)

    def forward(
        self,
        image: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cached: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logit_a [N], logits_b [N, K])``. ``cached``: precomputed frozen-backbone features
        (training only; going through ``forward`` keeps DDP's gradient sync)."""
        return self.forward_head(self.forward_features(image, input_ids, attention_mask, cached))

    # -- tokenizer ----------------------------------------------------------------------------
    @property
    def tokenizer(self) -> CaptionTokenizer:
        """Tokenizer matching the text branch (the packaged MiniLM one when text is disabled)."""
        if self._tokenizer is None:
            self._tokenizer = load_caption_tokenizer(self.config.text)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: CaptionTokenizer) -> None:
        self._tokenizer = tokenizer


def create_model(config: ModelConfig, labels_b: list[str], load_weights: bool = True) -> GenspotDetector:
    """Build the detector; ``load_weights=False`` skips pretrained backbone weights (checkpoint loading)."""
    return GenspotDetector(config, labels_b, load_weights)
