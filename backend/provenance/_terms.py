"""Vocabulary shared by the readers: IPTC digital source types and generator names."""

from __future__ import annotations

import re

AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})
"""Exact IPTC terms for generative AI. ``algorithmicMedia`` (a non-trained algorithm, e.g.
procedural graphics) is deliberately absent: matching by substring would be wrong."""

NOT_AI_SOURCE_TYPES = frozenset(
    {
        "digitalCapture",
        "computationalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "minorHumanEdits",
        "digitalArt",
        "digitalCreation",
    }
)
"""Captures (camera, film, scan) and human-made digital art."""


def source_type_term(value: str) -> str:
    """The term of an IPTC digital source type, from its URI or bare (whitespace tolerated)."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


def classify_source_type(value: str) -> str | None:
    """"ai", "not-ai", or None for other terms (composite, algorithmicMedia, screenCapture...)."""
    term = source_type_term(value)
    if term in AI_SOURCE_TYPES:
        return "ai"
    if term in NOT_AI_SOURCE_TYPES:
        return "not-ai"
    return None


_GENERATOR_NAMES = [
    (r"\bmidjourney\b", "Midjourney"),
    (r"\bdall[\s\-\u00b7.]?e[\s\-]?2\b", "OpenAI DALL-E 2"),
    (r"\bopenai labs\b|\bopenai--imagegeneration--", "OpenAI DALL-E 2"),  # labs.openai.com, DALL-E 2's app
    (r"\bdall[\s\-\u00b7.]?e[\s\-]?3\b", "OpenAI DALL-E 3"),
    (r"\bdall[\s\-\u00b7.]?e\b", "OpenAI DALL-E"),
    (r"\bgpt-image\b|\bchatgpt\b", "OpenAI ChatGPT"),
    (r"\bopenai\b", "OpenAI"),
    (r"\bstable[\s\-]?diffusion\b", "Stable Diffusion"),
    (r"\bnovelai\b", "NovelAI"),
    (r"\bfirefly\b", "Adobe Firefly"),
    (r"\bimagen\b", "Google Imagen"),
    (r"\bgemini\b", "Google Gemini"),
    (r"\bmade with google ai\b", "Google AI"),
    (r"\bimage creator\b", "Microsoft Image Creator"),
    (r"\bimagined with ai\b|\bimagine with meta\b|\bmeta ai\b", "Meta AI"),
    (r"\bdoubao\b|\bjimeng\b|\bdreamina\b|\bseedream\b", "ByteDance Doubao / Dreamina"),
    (r"\bmicrosoft[_\s]responsible[_\s]ai\b", "Microsoft (Responsible AI)"),
    (r"\bleonardo\.?ai\b", "Leonardo.Ai"),
    (r"\bideogram\b", "Ideogram"),
    (r"\bstability\.?ai\b", "Stability AI"),
    (r"\bflux\.1\b|\bblack forest labs\b", "FLUX"),
    (r"\bcomfyui\b", "ComfyUI"),
    (r"\bautomatic1111\b|\bstable-diffusion-webui\b", "AUTOMATIC1111"),
    (r"\binvokeai\b", "InvokeAI"),
    (r"\bfooocus\b", "Fooocus"),
    (r"\bdreamstudio\b", "DreamStudio"),
    (r"\bcraiyon\b", "Craiyon"),
    (r"\bai[\s\-]generated\b", None),
]
_GENERATOR_PATTERNS = [(re.compile(pattern, re.IGNORECASE), name) for pattern, name in _GENERATOR_NAMES]


CLAIM_PREFIX = r"^\W*(?:made|generated|created|produced|imagined|edited)\s+(?:with|by|using|in|on)\s+"
"""The start of a text that claims who made a file: "Created by ...", "made with ..."."""
_MAKER_CLAIM = re.compile(CLAIM_PREFIX + r"(.{2,60}?)\s*(?:[,;(]|\.(?:\s|$)|$)", re.IGNORECASE)
_GENERIC_WORDS = frozenset({"a", "an", "the", "ai", "genai", "generative", "artificial", "intelligence", "model", "models", "tool", "tools"})


def maker_claimed_in(text: str | None) -> str | None:
    """Who a label's own words say made the picture, as written there: "Created by Google
    Generative AI" -> "Google Generative AI". None when the words claim no maker, a long one
    (over 60 characters before the sentence goes on), or only generic words ("Made with AI")."""
    claim = _MAKER_CLAIM.match(text) if text else None
    if claim is None:
        return None
    maker = claim.group(1).strip()
    return maker if set(re.findall(r"\w+", maker.lower())) - _GENERIC_WORDS else None


def generator_named_in(text: str) -> tuple[bool, str | None]:
    """Whether free text (a Software tag, a C2PA softwareAgent...) names an AI generator,
    and which one (None for generic phrases like "AI generated image")."""
    for pattern, name in _GENERATOR_PATTERNS:
        if pattern.search(text):
            return True, name
    return False, None
