"""What a provenance read returns: a verdict, the named generator, and the evidence."""

from __future__ import annotations

from typing import Literal

import msgspec

Verdict = Literal["ai", "not-ai", "unknown"]


class Signal(msgspec.Struct, frozen=True):
    """One piece of evidence found in the file's metadata.

    ``kind`` says where it was found (``c2pa``, ``iptc_xmp``, ``exif``, ``png_text``,
    ``stealth_png``); ``verdict`` is what this piece alone says (None: informative only,
    e.g. a validation failure or a remote manifest reference); ``generator`` is the tool,
    model or device it names, if any.
    """

    kind: str
    detail: str
    verdict: Literal["ai", "not-ai"] | None = None
    generator: str | None = None


C2paValidity = Literal["valid", "untrusted", "invalid"]


class C2paStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the active C2PA manifest holds up, and who signed it.

    ``valid``: hashes and signature check out and the signer is on a trust list;
    ``untrusted``: hashes and signature check out but the signer is on no trust list this
    reader knows (offline, with no trust list loaded, the best any manifest can get: anyone
    can sign a manifest with a certificate they made); ``invalid``: the signature, the
    certificate or the hash binding to the image fails (``codes`` says which).
    """

    validity: C2paValidity
    signer: str | None = None
    issuer: str | None = None
    codes: list[str] = []


class Provenance(msgspec.Struct, frozen=True):
    """The conclusion from metadata alone.

    ``ai`` when any signal proves AI generation (it outranks camera metadata, which is
    easy to keep or forge); ``not-ai`` when signals declare a capture or an AI-free history
    and none says AI; ``unknown`` otherwise. ``generator`` is named by the first signal
    behind the verdict (C2PA first, then XMP, text chunks, EXIF), None when unknown.
    """

    verdict: Verdict
    generator: str | None
    signals: list[Signal]
    c2pa: C2paStatus | None = None


def conclude(signals: list[Signal], c2pa: C2paStatus | None = None) -> Provenance:
    """Combine signals (in priority order) into one verdict."""
    for verdict in ("ai", "not-ai"):
        backing = [signal for signal in signals if signal.verdict == verdict]
        if backing:
            generator = next((signal.generator for signal in backing if signal.generator), None)
            return Provenance(verdict=verdict, generator=generator, signals=signals, c2pa=c2pa)
    return Provenance(verdict="unknown", generator=None, signals=signals, c2pa=c2pa)
