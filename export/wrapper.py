"""The module that becomes ``model.ts``: the eager detector turned into calibrated probabilities.

Three entry points, all traced:

- ``forward(image, input_ids, attention_mask) -> (p_ai [N], p_source [N, K])``;
- ``encode_text(input_ids, attention_mask) -> text features [N, D]`` (float32);
- ``forward_with_text(image, text_features) -> (p_ai, p_source)``,

so a server can cache the text branch's output per alt-text (pages repeat them) and skip
the text encoder on a hit. The pretrained transformer backbones (image, text) run in
``compute_dtype`` (bf16/fp16 where asked): that is where the FLOPs are. Everything else
stays float32: input resizing and normalisation (bicubic has no bf16 kernel), fusion and
heads (keeps the probabilities close to the eager model).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from genspot.probability import calibrated_probability

TEXT = "text"
LOW_PRECISION_BRANCHES = ("image", TEXT)


class Int8Linear(nn.Module):
    """A dynamically quantised int8 Linear inside a bf16/fp32 network (casts in and out)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from torch.ao.quantization import quantize_dynamic

        float_linear = copy.deepcopy(linear).float()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch.ao's deprecation notice for quantized tensors
            self.linear = quantize_dynamic(nn.Sequential(float_linear), {nn.Linear}, dtype=torch.qint8)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.float()).to(x.dtype)


def quantize_linears(module: nn.Module) -> int:
    """Replace every plain ``nn.Linear`` under ``module`` by an :class:`Int8Linear`; returns how many."""
    replaced = 0
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:
            setattr(module, name, Int8Linear(child))
            replaced += 1
        else:
            replaced += quantize_linears(child)
    return replaced


def _cast_floating_inputs(dtype: torch.dtype):
    def hook(module: nn.Module, args: tuple) -> tuple:
        return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    return hook


def to_compute_dtype(branch: nn.Module, dtype: torch.dtype) -> None:
    """Run a branch's network in ``dtype`` while it keeps taking float32 input.

    An open_clip image branch keeps its resize and normalisation in float32 and converts only
    its tower (``visual``); other branches convert whole. A pre-hook casts floating inputs.
    """
    if dtype == torch.float32:
        return
    network = getattr(branch, "visual", branch)
    network.to(dtype)
    network.register_forward_pre_hook(_cast_floating_inputs(dtype))


def use_fused_attention(text_branch: nn.Module) -> None:
    """Switch a transformers encoder to PyTorch's fused SDPA kernel (faster on CPU, bf16 most).

    Training builds it with eager attention; both trace with a dynamic sequence length as
    long as the traced example has padding (see ``trace_inputs``), and the parity check
    compares the result against the eager model.
    """
    encoder = getattr(text_branch, "encoder", None)
    if hasattr(encoder, "set_attn_implementation"):
        encoder.set_attn_implementation("sdpa")


class ProbabilityModel(nn.Module):
    """Detector -> ``(sigmoid(logit_a / T), softmax(logits_b))`` with the text branch separable."""

    def __init__(self, detector: nn.Module, temperature: float, compute_dtype: torch.dtype = torch.float32):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.detector = copy.deepcopy(detector).eval()  # the caller's eager model stays fp32 for parity checks
        self.compute_dtype = compute_dtype
        self.has_text = TEXT in detector.branch_names
        self.pixel_branches = [name for name in detector.branch_names if name != TEXT]
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        if self.has_text:
            use_fused_attention(self.detector.branches[TEXT])
        self.backbones = [name for name in detector.branch_names if name in LOW_PRECISION_BRANCHES]
        for name in self.backbones:
            to_compute_dtype(self.detector.branches[name], compute_dtype)

    def quantize_backbones(self) -> int:
        """int8 dynamic quantisation of the backbones' Linear layers (fusion and heads stay float)."""
        return sum(quantize_linears(self.detector.branches[name]) for name in self.backbones)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.detector.branches[TEXT](input_ids, attention_mask).float()

    def forward_with_text(self, image: torch.Tensor, text_features: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities from the image and the text branch's features (unused without a text branch)."""
        features = {name: self.detector.branches[name](image) for name in self.pixel_branches}
        if self.has_text:
            features[TEXT] = text_features
        logit_a, logits_b = self.detector.forward_head(features)
        p_ai = calibrated_probability(logit_a.float(), self.temperature)
        return p_ai, torch.softmax(logits_b.float(), dim=-1)

    def forward(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        text_features = self.encode_text(input_ids, attention_mask) if self.has_text else image.new_zeros(0)
        return self.forward_with_text(image, text_features)

    def traced_methods(self) -> list[str]:
        """Methods besides ``forward`` the bundle carries (text caching needs a text branch)."""
        return ["encode_text", "forward_with_text"] if self.has_text else []
