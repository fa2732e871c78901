"""Turn probabilities and metadata into the answer a user reads: verdict, likely source, and
which evidence decided.

Results are cached as raw probabilities (:class:`Detection`), and verdicts are derived here on
every answer, so changing the thresholds never needs a cache flush.

The policy (docs/backend.md, "How evidence combines", a table with a test per row), strongest
evidence first:

1. Metadata that proves AI generation (a C2PA or IPTC AI source type, an AI tool's
   C2PA creation, Stable Diffusion parameters, a generator's name or claim in EXIF / PNG
   text, a TC260 AIGC label) -> ``ai``, decided by provenance, whatever the model says.
   Nobody gains by forging an AI label onto a photo as often as by stripping one, and the
   label is shown with where it was found. A C2PA manifest that fails validation proves
   nothing: the reader shows its claims as tampered and they count for neither side.
2. An intact C2PA manifest (its hashes and signature check out) that declares a capture or
   an edit history without any AI source -> ``real``, decided by provenance, when its signer
   is on a trust list (``valid``), or when the model does not say ``ai``. A signer on no trust
   list (``untrusted``: offline, anyone can sign a manifest with a certificate they made)
   never overrides a model ``ai``.
3. Claims of a camera that anyone can write (camera EXIF Make/Model, an XMP capture source
   type, an intact manifest of an untrusted signer against a model ``ai``) are shown, in
   ``conflict`` when the model says ``ai``, and never move the model's verdict.
4. Otherwise the model decides, by the thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
import numpy as np

from genspot.backend.provenance import Provenance, stated_text
from genspot.backend.schemas import DecidedBy, Detection, Generator, Source, Thresholds, Verdict
from genspot.formats import VerdictBand

TOP_SOURCES = 3
# For bundles whose manifest has no measured source_name_min_confidence: the source head names a
# generator only when it is this sure, and otherwise the answer says nothing (generator unknown).
DEFAULT_SOURCE_NAME_MIN_CONFIDENCE = 0.8
# For bundles whose manifest has no verdict_band.
DEFAULT_BAND = VerdictBand(threshold=0.5, uncertain_band=0.15)
# The longest generator name a label gives that is passed on (as long as a bundle's display names).
GENERATOR_NAME_CHARS = 80
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_INTACT = ("valid", "untrusted")


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    source: Source
    decided_by: DecidedBy
    model_verdict: Verdict
    conflict: str | None = None


def display_names(names: Mapping[str, str]) -> dict[str, str]:
    """The bundle's ``display_names`` (label -> name) as shown: trimmed, at most 80 characters, blanks dropped."""
    return {label: name.strip()[:80] for label, name in names.items() if name.strip()}


def named(sources: list[Source], names: Mapping[str, str]) -> list[Source]:
    """``sources`` with their display names filled in where the manifest gives one."""
    return [Source(s.label, s.probability, names.get(s.label, s.name)) for s in sources]


def top_sources(p_source: np.ndarray, labels: list[str], k: int = TOP_SOURCES) -> list[Source]:
    """The ``k`` most likely generators, most likely first."""
    order = np.argsort(-np.asarray(p_source, dtype=np.float64), kind="stable")[:k]
    return [Source(labels[i], round(float(p_source[i]), 6)) for i in order]


def verdict_thresholds(threshold: float | None, uncertain_band: float | None, bundle_band: VerdictBand | None) -> Thresholds:
    """The band in force: each of the settings' values where given, else the bundle's own (chosen
    with the detector), else the defaults."""
    band = bundle_band or DEFAULT_BAND
    return Thresholds(
        band.threshold if threshold is None else threshold,
        band.uncertain_band if uncertain_band is None else uncertain_band,
    )


def model_verdict(p_ai: float, thresholds: Thresholds) -> Verdict:
    if p_ai >= thresholds.threshold + thresholds.uncertain_band:
        return "ai"
    if p_ai < thresholds.threshold - thresholds.uncertain_band:
        return "real"
    return "uncertain"


def decide(detection: Detection, thresholds: Thresholds, labels: list[str]) -> Decision:
    """Verdict, source and deciding evidence, by the policy in this module's docstring."""
    provenance = detection.provenance
    p_ai = detection.ai_probability
    by_model = model_verdict(p_ai, thresholds)
    model_says = f"the model alone says {by_model} (AI probability {p_ai:.0%})"
    if provenance is not None and provenance.verdict == "ai":
        generator = _label_names(provenance)
        source = Source(_match_label(generator, labels), 1.0) if generator else _first_source(detection)
        return Decision(verdict="ai", source=source, decided_by="provenance", model_verdict=by_model,
                        conflict=None if by_model == "ai" else model_says)
    if provenance is not None and provenance.verdict == "not-ai":
        signed = _signed_capture(provenance)
        if signed and (provenance.c2pa.validity == "valid" or by_model != "ai"):
            return Decision(verdict="real", source=Source("real", 1.0), decided_by="provenance", model_verdict=by_model,
                            conflict=model_says if by_model == "ai" else None)
        if by_model == "ai":
            claim = signed or _unsigned_capture(provenance)
            return Decision(verdict="ai", source=_first_source(detection), decided_by="model", model_verdict=by_model,
                            conflict=f"{claim}; anyone can write such a claim, so it does not move the model's verdict")
    if by_model == "real" or not detection.sources:
        return Decision(verdict=by_model, source=Source("real", round(1.0 - p_ai, 6)), decided_by="model", model_verdict=by_model)
    return Decision(verdict=by_model, source=detection.sources[0], decided_by="model", model_verdict=by_model)


def named_generator(decision: Decision, detection: Detection, min_confidence: float) -> Generator | None:
    """The generator to name, only for an ``ai`` verdict. When the file's label decided, the one
    the label names or none: a guess of the model's next to a label would read as the label's
    (the guesses stay in ``sources``). Otherwise the model's top source when its probability
    reaches ``min_confidence``. None: unknown. A verdict other than ``ai`` names none (the
    source head only ever saw AI images)."""
    if decision.verdict != "ai":
        return None
    if decision.decided_by == "provenance":
        named = detection.provenance is not None and _label_names(detection.provenance)
        return Generator(decision.source.label, 1.0, named_by="provenance") if named else None
    top = detection.sources[0] if detection.sources else None
    if top is not None and top.probability >= min_confidence:
        return Generator(top.label, top.probability, named_by="model")
    return None


def _label_names(provenance: Provenance) -> str | None:
    """The generator the file's label names, as it may be shown on a badge: without control or
    text-direction characters, at most ``GENERATOR_NAME_CHARS``; None when it names none."""
    return stated_text(provenance.generator, GENERATOR_NAME_CHARS)


def _first_source(detection: Detection) -> Source:
    return detection.sources[0] if detection.sources else Source("unknown", 1.0)


def _signed_capture(provenance: Provenance) -> str | None:
    """What an intact C2PA manifest declaring a capture or an AI-free history says, else None."""
    status = provenance.c2pa
    if status is None or status.validity not in _INTACT:
        return None
    signal = next((s for s in provenance.signals if s.kind == "c2pa" and s.verdict == "not-ai"), None)
    if signal is None:
        return None
    if status.validity == "valid":
        trust = "a signer on a trust list"
    else:
        trust = "a signer not on the trust list checked" if status.trust_list_checked else "no trust list was checked"
    return f"a C2PA manifest signed by {status.signer or 'an unnamed signer'} ({trust}) says: {signal.detail}"


def _unsigned_capture(provenance: Provenance) -> str:
    signal = next(s for s in provenance.signals if s.verdict == "not-ai")
    what = "camera EXIF" if signal.kind == "exif" else f"{signal.kind} metadata without an intact signature"
    return f"{signal.detail} (unverified {what})"


def _match_label(generator: str, labels: list[str]) -> str:
    """The model's label for a generator named in metadata when one matches, else the name as written."""
    wanted = _NON_ALNUM.sub("", generator.lower())
    for label in labels:
        if _NON_ALNUM.sub("", label.lower()) == wanted:
            return label
    return generator
