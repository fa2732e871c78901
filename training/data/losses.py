"""Multi-task loss: BCE for task A plus cross-entropy for task B on AI-generated samples only.

``sum`` is the paper's ``L = L_A + L_B`` (optionally weighted). ``uncertainty`` learns one
log-variance ``s_i`` per task (Kendall, Gal & Cipolla, CVPR 2018):
``L = sum_i exp(-s_i) * L_i + s_i``, so neither task has to be hand-balanced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genspot.training.config import LossConfig

IGNORE_INDEX = -100  # label_b of real samples (and of generators outside labels_b)


class MultiTaskLoss(nn.Module):
    def __init__(self, config: LossConfig, pos_weight: float | None = None):
        super().__init__()
        self.config = config
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(float(pos_weight)))
        self.log_vars = nn.Parameter(torch.zeros(2)) if config.weighting == "uncertainty" else None

    def task_losses(
        self, logit_a: torch.Tensor, logits_b: torch.Tensor, label_a: torch.Tensor, label_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss_a = F.binary_cross_entropy_with_logits(logit_a.float(), label_a.float(), pos_weight=self.pos_weight)
        is_ai = (label_a == 1) & (label_b != IGNORE_INDEX)
        if is_ai.any():
            loss_b = F.cross_entropy(logits_b[is_ai].float(), label_b[is_ai])
        else:
            loss_b = logits_b.sum() * 0.0  # keeps the graph (DDP needs every head parameter used)
        return loss_a, loss_b

    def forward(
        self, logit_a: torch.Tensor, logits_b: torch.Tensor, label_a: torch.Tensor, label_b: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its parts (floats, for logging)."""
        loss_a, loss_b = self.task_losses(logit_a, logits_b, label_a, label_b)
        if self.log_vars is None:
            total = self.config.weight_a * loss_a + self.config.weight_b * loss_b
        else:
            losses = torch.stack([loss_a, loss_b])
            total = (torch.exp(-self.log_vars) * losses + self.log_vars).sum()
        return total, {"loss": float(total.detach()), "loss_a": float(loss_a.detach()), "loss_b": float(loss_b.detach())}
