"""Fusion of per-branch feature vectors into one shared representation for both heads.

``concat`` is the paper's: concatenate -> Linear -> ReLU. ``attention`` treats each branch's
feature as one token: project each to a common width, let the tokens attend to one another
(so, e.g., the image evidence can be read in the light of the caption), then pool them
with learned, input-dependent gates, so a branch that carries nothing for a sample (an empty
caption) can be down-weighted per sample rather than globally.
"""

from __future__ import annotations

import torch
from torch import nn

from genspot.training.config import FusionConfig


class ConcatFusion(nn.Module):
    def __init__(self, input_dims: list[int], config: FusionConfig):
        super().__init__()
        self.proj = nn.Linear(sum(input_dims), config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.dropout(torch.relu(self.proj(torch.cat(features, dim=1))))


class AttentionFusion(nn.Module):
    """Per-branch projection -> one pre-norm self-attention block over branch tokens -> gated pooling."""

    def __init__(self, input_dims: list[int], config: FusionConfig):
        super().__init__()
        width = config.width
        self.inputs = nn.ModuleList(nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width)) for d in input_dims)
        self.branch_embedding = nn.Parameter(torch.zeros(len(input_dims), width))
        self.attn_norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, config.num_heads, dropout=config.dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.gate = nn.Linear(width, 1)
        self.out = nn.Linear(width, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([proj(f) for proj, f in zip(self.inputs, features)], dim=1) + self.branch_embedding
        normed = self.attn_norm(tokens)
        tokens = tokens + self.attention(normed, normed, normed, need_weights=False)[0]
        tokens = tokens + self.mlp(self.mlp_norm(tokens))
        gates = torch.softmax(self.gate(tokens), dim=1)  # [N, branches, 1]
        pooled = (gates * tokens).sum(dim=1)
        return self.dropout(torch.relu(self.out(pooled)))


FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion}


def create_fusion(input_dims: list[int], config: FusionConfig) -> nn.Module:
    return FUSIONS[config.kind](input_dims, config)
