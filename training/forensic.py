"""Forensic branch: a small CNN, trained from scratch, that reads pixel-level generator traces.

Generators upsample; upsampling leaves correlations between neighbouring pixels that camera
images do not have. The branch therefore never looks at the image itself but at
high-frequency residuals of it:

- ``npr``: Neighbouring Pixel Relationships (Tan et al., CVPR 2024),
  ``x - nearest_upsample(nearest_downsample(x))``: each pixel minus the top-left pixel of its
  2x2 cell. Exactly zero for an image that was itself made by 2x nearest upsampling.
- ``highpass``: fixed derivative filters (first- and second-order, SRM-like) per channel.

A shallow residual CNN (few downsamplings, so local traces are not averaged away early) turns
the residual into a feature map, pooled globally (mean and max) and projected to
``output_dim``. It needs no pretrained weights, which is why it carries the offline model.

Input: float ``[N, 3, S, S]`` RGB in ``[0, 1]`` (``genspot.imaging.preprocess``); S even.
Output: ``[N, output_dim]``. TorchScript-traceable with a dynamic batch; runs under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESIDUAL_KINDS = ("npr", "highpass", "npr+highpass")


def npr_residual(image: torch.Tensor) -> torch.Tensor:
    """``image - nearest_up(nearest_down(image))`` for even H, W: each pixel minus its 2x2 cell's top-left pixel."""
    anchors = image[:, :, 0::2, 0::2]
    upsampled = anchors.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return image - upsampled


def _highpass_kernels() -> torch.Tensor:
    """Fixed high-pass filters [4, 1, 3, 3]: horizontal/vertical first differences, Laplacian, diagonal."""
    kernels = [
        [[0, 0, 0], [0, -1, 1], [0, 0, 0]],
        [[0, 0, 0], [0, -1, 0], [0, 1, 0]],
        [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        [[1, 0, 0], [0, -2, 0], [0, 0, 1]],
    ]
    return torch.tensor(kernels, dtype=torch.float32).unsqueeze(1)


class HighPass(nn.Module):
    """Per-channel fixed high-pass filtering: [N, 3, H, W] -> [N, 3 * 4, H, W] (not trained)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernels", _highpass_kernels().repeat(3, 1, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, self.kernels.to(image.dtype), padding=1, groups=3)


class ResidualBlock(nn.Module):
    """Pre-activation-free basic block (conv-BN-ReLU-conv-BN + shortcut), optional stride 2."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ForensicBranch(nn.Module):
    """Residual extractor -> shallow ResNet -> global mean+max pooling -> Linear to ``output_dim``.

    ``channels`` is the stem width; stage ``i`` of ``depth`` has ``channels * 2**i`` channels and
    halves the resolution. ``residual_gain`` rescales the (small) residual to unit-ish range.
    """

    def __init__(
        self,
        *,
        residual: str = "npr",
        channels: int = 32,
        depth: int = 3,
        output_dim: int = 256,
        residual_gain: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if residual not in RESIDUAL_KINDS:
            raise ValueError(f"unknown residual kind {residual!r}; known: {', '.join(RESIDUAL_KINDS)}")
        if depth < 1 or channels < 1 or output_dim < 1:
            raise ValueError("depth, channels and output_dim must be positive")
        self.residual = residual
        self.residual_gain = float(residual_gain)
        self.output_dim = int(output_dim)
        self.highpass = HighPass() if "highpass" in residual else None
        in_channels = (3 if "npr" in residual else 0) + (12 if self.highpass is not None else 0)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        widths = [channels * 2**i for i in range(depth)]
        self.stages = nn.Sequential(
            *[ResidualBlock(w_in, w_out, 2) for w_in, w_out in zip([channels] + widths[:-1], widths)]
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(2 * widths[-1], self.output_dim)

    def residuals(self, image: torch.Tensor) -> torch.Tensor:
        """The high-frequency input the CNN sees: [N, C_res, S, S]."""
        parts = []
        if "npr" in self.residual:
            parts.append(npr_residual(image))
        if self.highpass is not None:
            parts.append(self.highpass(image))
        return torch.cat(parts, dim=1) * self.residual_gain

    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        """Feature map [N, C, S / 2**depth, S / 2**depth]."""
        return self.stages(self.stem(self.residuals(image)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(image)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return self.proj(self.dropout(pooled))
