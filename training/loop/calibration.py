"""Temperature scaling for the binary head (Guo et al., 2017).

One scalar ``T`` divides head A's logit so that ``sigmoid(logit / T)`` is calibrated on held-out
data; it never changes which side of 0 a logit falls, so F1 and AUROC are untouched while
the probabilities the extension shows become honest. ``T`` travels in the checkpoint and bundle.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0


def binary_nll(logits: Sequence[float] | torch.Tensor, labels: Sequence[int] | torch.Tensor, temperature: float = 1.0) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits / temperature)`` against ``labels``."""
    logits_t = torch.as_tensor(logits, dtype=torch.float64).reshape(-1)
    labels_t = torch.as_tensor(labels, dtype=torch.float64).reshape(-1)
    return float(F.binary_cross_entropy_with_logits(logits_t / temperature, labels_t))


def fit_temperature(logits: Sequence[float] | torch.Tensor, labels: Sequence[int] | torch.Tensor, max_iter: int = 100) -> float:
    """The ``T`` in ``[MIN_TEMPERATURE, MAX_TEMPERATURE]`` minimising the NLL of ``sigmoid(logits / T)``.

    Optimises ``log T`` with L-BFGS (the objective is smooth and one-dimensional). Returns 1.0
    when there is nothing to fit: no samples, or one class only (the NLL then keeps falling as
    ``T`` shrinks, which would just make every prediction maximally confident).
    """
    logits_t = torch.as_tensor(logits, dtype=torch.float64).detach().reshape(-1)
    labels_t = torch.as_tensor(labels, dtype=torch.float64).detach().reshape(-1)
    if logits_t.numel() != labels_t.numel():
        raise ValueError(f"{logits_t.numel()} logits but {labels_t.numel()} labels")
    if logits_t.numel() == 0 or labels_t.min() == labels_t.max():
        return 1.0
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    return min(max(temperature, MIN_TEMPERATURE), MAX_TEMPERATURE)


def fit_calibration(logits: np.ndarray, blank_logits: np.ndarray, labels: np.ndarray) -> float:
    """One temperature for val logits with captions (``logits``) and with captions blanked (the web
    has both); the inputs are untouched."""
    return fit_temperature(np.concatenate([logits, blank_logits]), np.concatenate([labels, labels]))
