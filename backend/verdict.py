"""Turn probabilities and metadata into the answer a user reads: verdict and likely source.

Results are cached as raw probabilities (:class:`Detection`), and verdicts are derived here on
every answer, so changing the thresholds never needs a cache flush.
"""

from __future__ import annotations

import re

import numpy as np

from genspot.backend.schemas import Detection, Source, Thresholds, Verdict

TOP_SOURCES = 3
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def top_sources(p_source: np.ndarray, labels: list[str], k: int = TOP_SOURCES) -> list[Source]:
    """The ``k`` most likely generators, most likely first."""
    order = np.argsort(-np.asarray(p_source, dtype=np.float64), kind="stable")[:k]
    return [Source(labels[i], round(float(p_source[i]), 6)) for i in order]


def model_verdict(p_ai: float, thresholds: Thresholds) -> Verdict:
    if p_ai >= thresholds.threshold + thresholds.uncertain_band:
        return "ai"
    if p_ai < thresholds.threshold - thresholds.uncertain_band:
        return "real"
    return "uncertain"


def decide(detection: Detection, thresholds: Thresholds, labels: list[str]) -> tuple[Verdict, Source]:
    """Verdict and source: metadata that proves AI wins over the model, and names the source if it can."""
    provenance = detection.provenance
    if provenance is not None and provenance.verdict == "ai":
        if provenance.generator:
            return "ai", Source(_match_label(provenance.generator, labels), 1.0)
        return "ai", detection.sources[0] if detection.sources else Source("unknown", 1.0)
    verdict = model_verdict(detection.ai_probability, thresholds)
    if verdict == "real" or not detection.sources:
        return verdict, Source("real", round(1.0 - detection.ai_probability, 6))
    return verdict, detection.sources[0]


def _match_label(generator: str, labels: list[str]) -> str:
    """The model's label for a generator named in metadata when one matches, else the name as written."""
    wanted = _NON_ALNUM.sub("", generator.lower())
    for label in labels:
        if _NON_ALNUM.sub("", label.lower()) == wanted:
            return label
    return generator
