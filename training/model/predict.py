"""Batched inference of the eager model over samples (validation, evaluation, pseudo-labels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from genspot.probability import calibrated_probability
from genspot.training.data.data import DetectorDataset, Sample, collate
from genspot.training.model.features import FrozenFeatures, autocast
from genspot.training.model.model import GenspotDetector


@dataclass(frozen=True)
class Predictions:
    logit_a: np.ndarray  # [N] raw head-A logits (before temperature)
    logits_b: np.ndarray  # [N, K]
    p_ai: np.ndarray  # [N] sigmoid(logit_a / temperature)
    probs_b: np.ndarray  # [N, K] softmax over generators

    @classmethod
    def from_logits(cls, logit_a: torch.Tensor, logits_b: torch.Tensor, temperature: float = 1.0) -> "Predictions":
        return cls(
            logit_a=logit_a.numpy(),
            logits_b=logits_b.numpy(),
            p_ai=calibrated_probability(logit_a, temperature).numpy(),
            probs_b=torch.softmax(logits_b, dim=1).numpy(),
        )

    def with_temperature(self, temperature: float) -> "Predictions":
        return Predictions.from_logits(torch.from_numpy(self.logit_a), torch.from_numpy(self.logits_b), temperature)

    def pred_label_b(self, labels_b: list[str], threshold: float = 0.5) -> list[str]:
        """Generator names, "real" wherever task A says real (the paper's inference rule)."""
        best = self.probs_b.argmax(axis=1) if len(self.probs_b) else np.zeros(0, dtype=int)
        return [labels_b[b] if p >= threshold else "real" for p, b in zip(self.p_ai, best)]


@torch.no_grad()
def predict(
    model: GenspotDetector,
    samples: list[Sample],
    *,
    batch_size: int = 32,
    temperature: float = 1.0,
    blank_captions: bool = False,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    frozen: FrozenFeatures | None = None,
    progress: bool = True,
    jpeg_quality: int | None = None,
) -> Predictions:
    """Predictions for ``samples`` in order. ``frozen``: cached backbone features of these samples
    (of the clean pictures, so not with ``jpeg_quality``, which re-encodes each picture first)."""
    if frozen is not None and jpeg_quality is not None:
        raise ValueError("cached features are of the clean pictures: re-encoded ones need the full model")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    dataset = DetectorDataset.for_model(model, samples, blank_captions=blank_captions, jpeg_quality=jpeg_quality,
                                        pixels=frozen is None or model.reads_pixels_when_cached())
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    logits_a, logits_b = [], []
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress, leave=False):
        input_ids, attention_mask = model.tokenizer(batch["caption"])
        cached = frozen.lookup(batch, device) if frozen is not None else None
        with autocast(device, bf16):
            logit_a, logit_b = model(
                batch["image"].to(device), input_ids.to(device), attention_mask.to(device), cached
            )
        logits_a.append(logit_a.float().cpu())
        logits_b.append(logit_b.float().cpu())
    model.train(was_training)
    logit_a = torch.cat(logits_a) if logits_a else torch.zeros(0)
    logit_b = torch.cat(logits_b) if logits_b else torch.zeros(0, len(model.labels_b))
    return Predictions.from_logits(logit_a, logit_b, temperature)
