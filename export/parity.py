"""Parity check: the exported bundle must give the eager checkpoint's probabilities.

Every export runs the eager float32 model and the freshly written bundle (loaded exactly as
the backend loads it) on the same probe batches: several batch sizes, captions from empty to
longer than the token limit, noise, smooth and upsampled images. The export fails when
``max |delta p_ai|`` (or ``p_source``) exceeds the dtype's tolerance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from genspot.probability import calibrated_probability
from genspot.text import CaptionTokenizer

# Tolerance on max |delta p| by bundle precision (int8 quantisation counts as low precision).
TOLERANCES = {"float32": 1e-4, "bfloat16": 0.02, "float16": 0.02, "int8": 0.02}
PROBE_BATCH_SIZES = (1, 3, 6)
PROBE_CAPTIONS = (
    "",
    "A cat sleeping on a red sofa",
    "portrait of an astronaut, highly detailed, 8k, trending on artstation, volumetric lighting",
    "   ",
    "Photo: Reuters / J. Smith — Nürnberg, 2019 ✓ 日本語のキャプション",
    " ".join(["a very long alt-text that keeps going"] * 40),
)

Predict = Callable[[torch.Tensor, list[str]], tuple[np.ndarray, np.ndarray]]


class ParityError(RuntimeError):
    """The exported model's outputs differ from the eager checkpoint's beyond tolerance."""


@dataclass(frozen=True)
class ParityReport:
    max_delta_p_ai: float
    max_delta_p_source: float
    tolerance: float
    samples: int

    @property
    def ok(self) -> bool:
        return self.max_delta_p_ai <= self.tolerance and self.max_delta_p_source <= self.tolerance

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"parity {verdict}: max |delta p_ai| = {self.max_delta_p_ai:.2e}, "
            f"max |delta p_source| = {self.max_delta_p_source:.2e} (tolerance {self.tolerance:g}, {self.samples} samples)"
        )

    def to_dict(self) -> dict:
        return {
            "max_delta_p_ai": self.max_delta_p_ai,
            "max_delta_p_source": self.max_delta_p_source,
            "tolerance": self.tolerance,
            "samples": self.samples,
        }


def probe_images(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` images [count, 3, size, size] in [0, 1], cycling noise / smooth / 2x-upsampled."""
    images = []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            image = torch.rand(3, size, size, generator=generator)
        elif kind == 1:
            coarse = torch.rand(1, 3, 4, 4, generator=generator)
            image = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
        else:
            half = torch.rand(1, 3, size // 2, size // 2, generator=generator)
            image = F.interpolate(half, size=(size, size), mode="nearest")[0]
        images.append(image.clamp(0, 1))
    return torch.stack(images)


def probe_batches(image_size: int, seed: int = 0) -> list[tuple[torch.Tensor, list[str]]]:
    """The probe set: one batch per size in ``PROBE_BATCH_SIZES``, captions rotating through the probes."""
    generator = torch.Generator().manual_seed(seed)
    batches, offset = [], 0
    for size in PROBE_BATCH_SIZES:
        captions = [PROBE_CAPTIONS[(offset + i) % len(PROBE_CAPTIONS)] for i in range(size)]
        batches.append((probe_images(size, image_size, generator), captions))
        offset += size
    return batches


@torch.inference_mode()
def eager_probabilities(
    model: torch.nn.Module, temperature: float, tokenizer: CaptionTokenizer, images: torch.Tensor, captions: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: the float32 eager detector's calibrated probabilities."""
    input_ids, attention_mask = tokenizer(captions)
    logit_a, logits_b = model.eval()(images, input_ids, attention_mask)
    p_ai = calibrated_probability(logit_a.float(), temperature)
    return p_ai.numpy(), torch.softmax(logits_b.float(), dim=-1).numpy()


def compare(
    reference: Predict, predictors: list[Predict], batches: list[tuple[torch.Tensor, list[str]]], tolerance: float
) -> ParityReport:
    """Largest |delta p_ai| and |delta p_source| of every predictor against ``reference`` over ``batches``."""
    delta_ai = delta_source = 0.0
    samples = 0
    for images, captions in batches:
        expected_ai, expected_source = reference(images, captions)
        for predict in predictors:
            p_ai, p_source = predict(images, captions)
            delta_ai = max(delta_ai, float(np.abs(p_ai - expected_ai).max()))
            delta_source = max(delta_source, float(np.abs(p_source - expected_source).max()))
        samples += len(captions)
    return ParityReport(delta_ai, delta_source, tolerance, samples)


def check_parity(
    model: torch.nn.Module,
    temperature: float,
    tokenizer: CaptionTokenizer,
    predictors: list[Predict],
    image_size: int,
    tolerance: float,
) -> ParityReport:
    """Compare every predictor (bundle entry points) against the eager model on the probe batches."""
    reference = functools.partial(eager_probabilities, model, temperature, tokenizer)
    return compare(reference, predictors, probe_batches(image_size), tolerance)
