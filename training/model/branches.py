"""Pretrained-backbone branches: the open_clip image encoder and the BERT-family text encoder.

Each branch takes the model's raw inputs (image in [0, 1] at any size; token ids + mask) and
returns one feature vector per sample, doing its own normalisation and resizing inside
``forward`` so the exported model needs nothing but the preprocessed tensor. Both trace
with a dynamic batch size and (text) a dynamic sequence length.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genspot.text import CaptionTokenizer
from genspot.training.model import onnx_clip
from genspot.training.config import ImageBranchConfig, TextBranchConfig

PACKAGE_PREFIX = onnx_clip.PACKAGE_PREFIX


class BranchBuildError(RuntimeError):
    """A backbone that cannot be built (unknown name, weights not available offline, ...)."""


def backbone_key(config: ImageBranchConfig | TextBranchConfig) -> str:
    """Stable id of a backbone's weights and behaviour (feature-cache keys)."""
    text = json.dumps(config.__dict__, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def feature_store_config(config: ImageBranchConfig) -> ImageBranchConfig:
    """The config whose features a cache file holds: for pooled "layers", every block with its
    token statistics, so one pass over the pictures serves every choice of blocks."""
    if config.pooled != "layers":
        return config
    return dataclasses.replace(config, blocks=(), token_stats=True)


class ImageBranch(nn.Module):
    """An open_clip image tower; output = pooled (optionally projected) embedding, or with
    ``pooled="layers"`` the class token of each chosen block (every block by default), each through
    the tower's final LayerNorm, concatenated ([N, blocks * width]): earlier blocks keep low-level
    traces that the last one, trained for semantics, has let go (cf. RINE, Koutlis & Papadopoulos,
    2024). ``token_stats`` adds each block's patch-token mean and standard deviation after the
    LayerNorm ([N, blocks * 3 * width]); the tower runs only up to the last chosen block, and without
    token statistics that block computes its class token alone. An input of several views stacked on
    the channel axis ([N, 3 * views, S, S], ``genspot.imaging.preprocess``) runs the tower on each
    and concatenates their features in view order."""

    def __init__(self, config: ImageBranchConfig, load_weights: bool = True, views: int = 1):
        super().__init__()
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self.visual = _build_visual(config, load_weights)
        self.every_layer = config.pooled == "layers"
        if config.pooled in ("pre_projection", "layers"):
            self.visual.proj = None
        self.depth = len(self.visual.transformer.resblocks)
        self.width = int(self.visual.ln_post.normalized_shape[0])
        if any(b >= self.depth for b in config.blocks):
            raise BranchBuildError(f"image.blocks {list(config.blocks)}: the tower has blocks 0-{self.depth - 1}")
        self.blocks = list(config.blocks) or list(range(self.depth))
        self.token_stats = config.token_stats
        if self.every_layer and not getattr(self.visual.transformer, "batch_first", True):
            raise BranchBuildError("pooled \"layers\" needs a batch-first open_clip tower")
        size = self.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        preprocess_cfg = getattr(self.visual, "preprocess_cfg", None) or {}
        mean = preprocess_cfg.get("mean", OPENAI_DATASET_MEAN)
        std = preprocess_cfg.get("std", OPENAI_DATASET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.views = views
        with torch.no_grad():
            self.output_dim = int(self(torch.zeros(1, 3 * views, self.input_size, self.input_size)).shape[-1])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.views == 1:
            return self.features(image, self.blocks, self.token_stats)
        n, _, height, width = image.shape  # one tower pass over every view of every picture
        features = self.features(image.reshape(n * self.views, 3, height, width), self.blocks, self.token_stats)
        return features.reshape(n, -1)

    def features(self, image: torch.Tensor, blocks: list[int], token_stats: bool) -> torch.Tensor:
        """The branch's output on one view ([N, 3, S, S]) for any choice of blocks (feature caches ask
        for all of them; other poolings ignore the choice)."""
        if image.shape[-1] != self.input_size or image.shape[-2] != self.input_size:
            image = F.interpolate(
                image, size=(self.input_size, self.input_size), mode="bicubic", align_corners=False, antialias=True
            )
        image = (image - self.mean) / self.std
        if self.every_layer:  # the tower's own forward is bypassed: cast to its dtype here (bf16 bundles)
            return self._block_tokens(image.to(self.visual.conv1.weight.dtype), blocks, token_stats)
        return self.visual(image)

    def store_features(self, image: torch.Tensor) -> torch.Tensor:
        """What a feature cache holds for ``image`` (``feature_store_config``): every block with its
        token statistics for pooled "layers", else the branch's own output."""
        return self.features(image, list(range(self.depth)), self.every_layer)

    def store_columns(self) -> list[int] | None:
        """Where this branch's features sit in a row of ``feature_store_config``'s features (None: all)."""
        if not self.every_layer:
            return None
        parts = 3 if self.token_stats else 1
        return [3 * self.width * b + i for b in self.blocks for i in range(parts * self.width)]

    def _block_tokens(self, image: torch.Tensor, blocks: list[int], token_stats: bool) -> torch.Tensor:
        visual, last = self.visual, blocks[-1]
        if token_stats or last == 0:
            taken = blocks
        else:  # the last block's patch tokens are never read: only its class token is computed
            taken = sorted({*blocks[:-1], last - 1})
        found = visual.forward_intermediates(
            image, indices=taken, stop_early=True, intermediates_only=True, output_fmt="NLC", output_extra_tokens=True
        )
        tokens = dict(zip(taken, zip(found["image_intermediates_prefix"], found["image_intermediates"])))
        if last not in tokens:
            before = torch.cat(tokens[last - 1], dim=1)
            tokens[last] = (class_token_of_block(visual.transformer.resblocks[last], before), None)
        parts = []
        for block in blocks:
            prefix, patches = tokens[block]
            parts.append(visual.ln_post(prefix[:, 0]))
            if token_stats:
                normed = visual.ln_post(patches)
                parts += [normed.mean(dim=1), normed.std(dim=1, unbiased=False)]
        return torch.cat(parts, dim=1)


def class_token_of_block(block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The class token ([N, 1, D]) that open_clip's ``ResidualAttentionBlock`` outputs for ``tokens``
    ([N, L, D], batch first), computed for that token alone: its query against every token's keys
    and values, then its MLP. Same arithmetic as the whole block, about a sixth of its work."""
    normed = block.ln_1(tokens)
    cls = tokens[:, :1] + block.ls_1(block.attention(q_x=normed[:, :1], k_x=normed, v_x=normed))
    return cls + block.ls_2(block.mlp(block.ln_2(cls)))


def _build_visual(config: ImageBranchConfig, load_weights: bool) -> nn.Module:
    """The tower as open_clip's ``VisionTransformer``, whichever way its weights come: from the
    hub by tag, a local checkpoint, or an ONNX export converted once into the user's cache."""
    import open_clip
    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    local = bool(config.pretrained) and config.pretrained.startswith(onnx_clip.ONNX_PREFIX)
    if config.model_cfg is not None or local or not (load_weights and config.pretrained):
        model_cfg = config.model_cfg or open_clip.get_model_config(config.model_name)
        if model_cfg is None:
            raise BranchBuildError(f"unknown open_clip model {config.model_name!r} (and no model_cfg given)")
        vision_cfg = dict(model_cfg["vision_cfg"])
        if config.tower_size is not None:
            _check_tower_size(config.tower_size, vision_cfg["patch_size"])
            vision_cfg["image_size"] = config.tower_size
        visual = _build_vision_tower(
            model_cfg["embed_dim"], CLIPVisionCfg(**vision_cfg), quick_gelu=model_cfg.get("quick_gelu", False)
        )
        if config.pretrained and load_weights:
            _load_visual_weights(visual, config.pretrained)
        return visual
    try:
        model = open_clip.create_model(
            config.model_name, pretrained=config.pretrained, require_pretrained=True, force_image_size=config.tower_size
        )
    except Exception as exc:  # open_clip raises RuntimeError/HF errors; offline shows up as many kinds
        raise BranchBuildError(
            f"cannot load open_clip {config.model_name!r} weights {config.pretrained!r}: {exc}"
        ) from exc
    return model.visual


def _check_tower_size(size: int, patch_size) -> None:
    patch = int(patch_size[0] if isinstance(patch_size, (tuple, list)) else patch_size)
    if size % patch:
        raise BranchBuildError(f"image.tower_size {size} is not a multiple of the tower's patch size {patch}")


def _load_visual_weights(visual: nn.Module, path: str) -> None:
    """Load an ONNX export (``onnx:...``), or a local checkpoint of a whole CLIP model
    (``visual.*`` keys) or of the tower alone; a positional embedding pretrained for another
    input size is resampled to the tower's grid (``tower_size``)."""
    if path.startswith(onnx_clip.ONNX_PREFIX):
        try:
            state = onnx_clip.load_state_dict(path)
        except onnx_clip.OnnxClipError as exc:
            raise BranchBuildError(str(exc)) from exc
    elif not Path(path).is_file():
        raise BranchBuildError(f"image weights {path!r}: no such file (a custom model_cfg needs a local path)")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")} or state
    visual.load_state_dict(_fit_positional_embedding(state, visual))


def _fit_positional_embedding(state: dict[str, torch.Tensor], visual: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` with its positional embedding resampled (bicubic, open_clip's own resize) to ``visual``'s grid."""
    from types import SimpleNamespace

    from open_clip.model import resize_pos_embed

    prefixed = {"visual.positional_embedding": state["positional_embedding"]}
    resize_pos_embed(prefixed, SimpleNamespace(visual=visual))
    return {**state, "positional_embedding": prefixed["visual.positional_embedding"]}


def resolve_text_source(source: str) -> str:
    """``package:MODULE/SUBDIR`` -> that folder; other sources (folders, hub names) unchanged."""
    if not source.startswith(PACKAGE_PREFIX):
        return source
    module, folder = onnx_clip.package_path(source)
    if folder is None:
        raise BranchBuildError(f"text encoder {source!r}: Python package {module!r} is not installed")
    if not (folder / "config.json").is_file():
        raise BranchBuildError(f"text encoder {source!r}: {folder} has no config.json")
    return str(folder)


def load_caption_tokenizer(config: TextBranchConfig) -> CaptionTokenizer:
    """The text encoder's tokenizer as a ``CaptionTokenizer`` (tokenizer.json of a folder, or hub)."""
    source = resolve_text_source(config.source)
    tokenizer_file = Path(source) / "tokenizer.json"
    if tokenizer_file.is_file():
        return CaptionTokenizer.from_file(tokenizer_file, config.max_tokens)
    try:
        from transformers import AutoTokenizer

        backend = AutoTokenizer.from_pretrained(source).backend_tokenizer
    except Exception as exc:  # hub/network/format errors
        raise BranchBuildError(f"cannot load the tokenizer of text encoder {config.source!r}: {exc}") from exc
    return CaptionTokenizer(backend, config.max_tokens)


class TextBranch(nn.Module):
    """A BERT-family encoder; output = [CLS] hidden state (paper) or masked mean of the last layer."""

    def __init__(self, config: TextBranchConfig, load_weights: bool = True):
        super().__init__()
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging

        source = resolve_text_source(config.source)
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # hides the "pooler weights unused" load report
        hf_logging.disable_progress_bar()  # and the per-tensor loading bar of a ~1 s load
        try:
            hf_config = AutoConfig.from_pretrained(source, **config.config_overrides)
            hf_config._attn_implementation = "eager"  # traces with a dynamic sequence length
            if config.random_init or not load_weights:
                self.encoder = AutoModel.from_config(hf_config, add_pooling_layer=False)
            else:
                self.encoder = AutoModel.from_pretrained(source, config=hf_config, add_pooling_layer=False)
        except Exception as exc:  # hub/network/format errors
            raise BranchBuildError(f"cannot load text encoder {config.source!r}: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.pooling = config.pooling
        self.output_dim = int(hf_config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
