"""What a provenance read returns: a verdict, the named generator, and the evidence."""

from __future__ import annotations

from typing import Literal

import msgspec

Verdict = Literal["ai", "not-ai", "unknown"]


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """What a label in the file states, field by field, as written there: nobody vouches for
    it (``Provenance.c2pa`` says whether a C2PA manifest's signature holds). Each text is at
    most 200 characters, without control or text-direction characters."""

    source_type: str | None = None
    """The IPTC digital source type's term: ``trainedAlgorithmicMedia``, ``digitalCapture``..."""
    action: str | None = None
    """The C2PA action that states it: ``c2pa.created``."""
    description: str | None = None
    """The action's own words: "Created by Google Generative AI"."""
    software_agent: str | None = None
    """Who the action says performed it: "Adobe Firefly"."""
    claim_generator: str | None = None
    """The software that wrote the C2PA manifest: "Adobe Photoshop 26.9.0"."""
    earlier_step: bool = False
    """Stated in an ingredient's manifest (an earlier version of the image), not the active one."""
    history: list[str] = []
    """An edit history without any AI source: its C2PA actions, in order (at most 16)."""
    credit: str | None = None
    """The XMP photoshop:Credit line: "Made with Google AI"."""


class Signal(msgspec.Struct, frozen=True):
    """One piece of evidence found in the file's metadata.

    ``kind`` says where it was found (``c2pa``, ``iptc_xmp``, ``exif``, ``png_text``,
    ``stealth_png``); ``verdict`` is what this piece alone says (None: informative only,
    e.g. a validation failure or a remote manifest reference); ``generator`` is the tool,
    model or device it names, if any; ``statement`` what a C2PA manifest or an IPTC
    photo-metadata label states, field by field (None for other evidence).
    """

    kind: str
    detail: str
    verdict: Literal["ai", "not-ai"] | None = None
    generator: str | None = None
    statement: Statement | None = None


C2paValidity = Literal["valid", "untrusted", "invalid"]


class C2paStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the active C2PA manifest holds up, and who signed it.

    ``valid``: hashes and signature check out and the signer is on a trust list;
    ``untrusted``: hashes and signature check out but no trust list vouches for the signer
    (offline, with no trust list loaded, the best any manifest can get: anyone can sign a
    manifest with a certificate they made); ``invalid``: the signature, the certificate or
    the hash binding to the image fails (``codes`` says which).

    The names come from the signer's certificate: with no trust list checked they are what
    that certificate states, unconfirmed.
    """

    validity: C2paValidity
    signer: str | None = None
    """The certificate's common name: "Adobe Firefly C2PA"."""
    issuer: str | None = None
    """The signer's organisation as c2pa reports it, None when it repeats ``signer``
    (``signer_organization`` always gives it)."""
    codes: list[str] = []
    signer_organization: str | None = None
    """The organisation the signer's certificate names: "Adobe Inc."."""
    certificate_issuer: str | None = None
    """The organisation that issued the signer's certificate: "Adobe Systems Incorporated"."""
    validation_passed: bool | None = None
    """The hashes and the signature check out: the file has not changed since it was signed
    (``validity`` is not ``invalid``). None: not reported."""
    trust_list_checked: bool | None = None
    """A trust list was consulted for the signer. No trust list is configured, so this is false
    unless c2pa reports the signer trusted. None: not reported."""


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
