"""Head A's calibrated probability, written once for training, export and its parity check."""

from __future__ import annotations

import torch


def calibrated_probability(logit: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """``p_ai = sigmoid(logit / temperature)``: the checkpoint's temperature
    (:attr:`genspot.formats.CheckpointMeta.temperature`) applied to head A's raw logit."""
    return torch.sigmoid(logit / temperature)
