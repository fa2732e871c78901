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

from genspot.text import CaptionTokenizer
from genspot.training.branches import ImageBranch, TextBranch, load_caption_tokenizer
from genspot.training.config import ModelConfig
from genspot.training.forensic import ForensicBranch
from genspot.training.fusion import create_fusion
from genspot.training.trees import BLANK_CAPTION_SIMILARITY, MultiScaleStatistics, TreeEnsemble, TreeHead

# Branch order is fixed: fusion inputs and feature dicts follow it.
BRANCH_NAMES = ("image", "text", "forensic")


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
        if not (config.image.enabled or config.text.enabled or config.forensic.enabled):
            raise ValueError("config enables no branch (image, text and forensic are all disabled)")
        self.config = config
        self.labels_b = list(labels_b)
        self.branches = nn.ModuleDict()
        if config.image.enabled:
            self.branches["image"] = ImageBranch(config.image, load_weights)
        if config.text.enabled:
            self.branches["text"] = TextBranch(config.text, load_weights)
        if config.forensic.enabled:
            self.branches["forensic"] = ForensicBranch(**config.forensic.params)
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
        self.tree_head: TreeHead | None = None  # attached after training (``attach_trees``)
        self._freeze_backbones()
        self._tokenizer: CaptionTokenizer | None = None

    # -- pretrained backbones -------------------------------------------------------------
    def frozen_branches(self) -> list[str]:
        return frozen_branches(self.config)

    def rebuildable_branches(self) -> list[str]:
        return rebuildable_branches(self.config)

    def reads_pixels_when_cached(self) -> bool:
        """Whether a forward pass with the frozen backbones' features cached still reads the image
        (a trainable pixel branch, a tree head); when not, cached runs need not decode pictures."""
        frozen = set(self.frozen_branches())
        return self.tree_head is not None or any(n != "text" and n not in frozen for n in self.branch_names)

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

    # -- boosted trees ---------------------------------------------------------------------------
    def tree_statistics(self) -> MultiScaleStatistics:
        """The fixed statistics the boosted-trees head reads (``config.trees``)."""
        trees = self.config.trees
        return MultiScaleStatistics(trees.scales, trees.gradient_scales, trees.tone_scales)

    def attach_trees(self, ensemble: TreeEnsemble, scale_without_caption: float = 1.0) -> None:
        """Mix a fitted boosted-trees ensemble into task A's logit from now on
        (``scale_without_caption``: see ``TreeHead``)."""
        trees = self.config.trees
        blank = self.caption_features([""])[0] if "text" in self.fused_branches else None
        head = TreeHead(
            self.tree_statistics(), ensemble, trees.weight, trees.weight_without_caption, trees.patch_size, blank,
            scale_without_caption,
        )
        if head.separates_captions:
            self._check_blank_captions_stand_out(head.blank_text)
        self.tree_head = head

    @torch.no_grad()
    def caption_features(self, captions: list[str]) -> torch.Tensor:
        """The text branch's features [N, D] (float32, eval mode) of ``captions``."""
        branch = self.branches["text"]
        device = next(branch.parameters()).device
        input_ids, attention_mask = self.tokenizer(captions)
        was_training = branch.training
        features = branch.eval()(input_ids.to(device), attention_mask.to(device)).float()
        branch.train(was_training)
        return features

    def _check_blank_captions_stand_out(self, blank: torch.Tensor) -> None:
        """A caption-dependent tree share needs a text encoder whose features tell a blank caption
        from short real ones (some encoders map every text to nearly one direction)."""
        probes = ["a", "photo", "image.jpg", "a dog"]
        similarity = torch.nn.functional.cosine_similarity(self.caption_features(probes), blank.unsqueeze(0), dim=1)
        if float(similarity.max()) >= BLANK_CAPTION_SIMILARITY:
            raise ValueError(
                f"the text encoder's features of short captions are within cosine {BLANK_CAPTION_SIMILARITY} of a "
                "blank caption's, so the tree head cannot tell captioned images apart: set "
                "trees.weight_without_caption to null"
            )

    def shared_statistics(self, image: torch.Tensor) -> torch.Tensor | None:
        """``GlobalStatistics`` of the full-size image when both the pixel branch and the tree head
        read the same ones, computed once for both; else None (each computes what it needs)."""
        forensic = self.branches["forensic"] if "forensic" in self.branches else None
        if self.tree_head is None or forensic is None or forensic.stats is None:
            return None
        trees = self.tree_head.statistics
        same = self.tree_head.patch_size <= 0 and 1 in trees.scales and forensic.stats.dct is not None and forensic.stats.truncation == trees.statistics.truncation
        return forensic.stats(image) if same else None

    def final_logits(
        self, image: torch.Tensor, features: dict[str, torch.Tensor], statistics: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward_head``, then task A's logit mixed with the tree head's when one is attached (the
        share depends on whether ``features["text"]`` come from a caption). The one place the
        eager model and the exported bundle both take their logits from. ``statistics``:
        ``shared_statistics(image)``."""
        logit_a, logits_b = self.forward_head(features)
        if self.tree_head is not None:
            logit_a = self.tree_head.mix(logit_a, image, features.get("text"), statistics)
        return logit_a, logits_b

    # -- forward ----------------------------------------------------------------------------
    def pixel_feature(self, name: str, image: torch.Tensor, statistics: torch.Tensor | None = None) -> torch.Tensor:
        """Feature of an image-reading branch; ``statistics``: ``shared_statistics(image)``."""
        if name == "forensic":
            return self.branches["forensic"](image, statistics)
        return self.branches[name](image)

    def branch_feature(
        self, name: str, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        statistics: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if name == "text":
            return self.branches["text"](input_ids, attention_mask)
        return self.pixel_feature(name, image, statistics)

    def forward_features(
        self,
        image: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cached: dict[str, torch.Tensor] | None = None,
        statistics: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """One feature vector per branch; branches present in ``cached`` are not run."""
        cached = cached or {}
        return {
            n: cached[n] if n in cached else self.branch_feature(n, image, input_ids, attention_mask, statistics)
            for n in self.branch_names
        }

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
        (training only; going through ``forward`` keeps DDP's gradient sync). With a tree head
        attached, ``logit_a`` is its mix with the neural head's."""
        statistics = self.shared_statistics(image)
        return self.final_logits(image, self.forward_features(image, input_ids, attention_mask, cached, statistics), statistics)

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
