"""IPTC digital source type (and a few generator hints) from the XMP packet.

The packet is parsed as XML and only named properties are read, in both RDF spellings
(attribute and element). Grepping the raw bytes would be wrong: Lightroom's history has
``stEvt:parameters`` and ``stEvt:softwareAgent`` entries that mean nothing here.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from PIL import Image

from ._limits import stated_text
from ._model import Signal, Statement
from ._terms import classify_source_type, generator_named_in, maker_claimed_in, source_type_term

_MAX_PACKET = 4 * 1024 * 1024
_RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/"
_XMP = "http://ns.adobe.com/xap/1.0/"
_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
_DCTERMS = "http://purl.org/dc/terms/"
_TC260 = "http://www.tc260.org.cn/ns/AIGC/"
"""China's GB 45438-2025 implicit label (ByteDance Doubao / Jimeng and other Chinese services):
``TC260:AIGC`` holds JSON whose ``Label`` is "1" (AI-generated), "2" (possibly) or "3" (suspected)."""
_TC260_LABELS = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}


def xmp_packet(image: Image.Image) -> str | None:
    """The XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP XMP chunk), as text."""
    for key in ("XML:com.adobe.xmp", "xmp"):
        packet = image.info.get(key)
        if isinstance(packet, bytes):
            packet = packet.decode("utf-8", errors="replace")
        if isinstance(packet, str) and packet.strip():
            return packet
    return None


def read_xmp(image: Image.Image) -> list[Signal]:
    packet = xmp_packet(image)
    if packet is None or len(packet) > _MAX_PACKET or "<!DOCTYPE" in packet or "<!ENTITY" in packet:
        return []
    root = ElementTree.fromstring(packet.lstrip("\ufeff"))
    credit = _first(root, _PHOTOSHOP, "Credit")
    creator_tool = _first(root, _XMP, "CreatorTool")
    named_generator = _generator_in(credit) or _generator_in(creator_tool) or maker_claimed_in(stated_text(credit))

    signals = []
    for value in dict.fromkeys(_values(root, _IPTC_EXT, "DigitalSourceType") + _values(root, _IPTC_EXT, "DigitalSourceFileType")):
        verdict = classify_source_type(value)
        term = source_type_term(value)
        detail = f"Iptc4xmpExt digital source type {term}" + (f"; credit {credit!r}" if credit else "")
        statement = Statement(source_type=stated_text(term), credit=stated_text(credit))
        signals.append(Signal("iptc_xmp", detail, verdict, named_generator if verdict == "ai" else None, statement))
    if creator_tool and generator_named_in(creator_tool)[0]:
        signals.append(Signal("iptc_xmp", f"xmp:CreatorTool {creator_tool!r} is an AI generator", "ai", named_generator))
    signals += [_tc260_signal(value) for value in _values(root, _TC260, "AIGC")[:4]]
    if provenance := _first(root, _DCTERMS, "provenance"):
        signals.append(Signal("iptc_xmp", f"dcterms:provenance points to a remote manifest: {provenance}"))
    return signals


def _tc260_signal(value: str) -> Signal:
    try:
        label = json.loads(value)
    except ValueError:
        label = None
    if not isinstance(label, dict):
        return Signal("iptc_xmp", f"TC260:AIGC label that is not JSON: {value[:80]!r}")
    code = str(label.get("Label", ""))
    producer = str(label.get("ContentProducer") or "").strip()[:100] or None
    detail = f"TC260:AIGC label {code} ({_TC260_LABELS.get(code, 'unknown code')})" + (f", producer {producer}" if producer else "")
    return Signal("iptc_xmp", detail, "ai" if code == "1" else None, producer if code == "1" else None)


def _generator_in(text: str | None) -> str | None:
    return generator_named_in(text)[1] if text else None


def _values(root: ElementTree.Element, namespace_prefix: str, local_name: str) -> list[str]:
    """Every value of a property, whether written as an attribute or as an element."""
    values = []
    for element in root.iter():
        for name, value in element.attrib.items():
            if _matches(name, namespace_prefix, local_name):
                values.append(value)
        if _matches(element.tag, namespace_prefix, local_name):
            text = element.get(_RDF_RESOURCE) or "".join(element.itertext())
            if text.strip():
                values.append(text.strip())
    return values


def _first(root: ElementTree.Element, namespace_prefix: str, local_name: str) -> str | None:
    values = _values(root, namespace_prefix, local_name)
    return values[0] if values else None


def _matches(qualified_name: str, namespace_prefix: str, local_name: str) -> bool:
    if not qualified_name.startswith("{"):
        return False
    namespace, _, local = qualified_name[1:].partition("}")
    return local == local_name and namespace.startswith(namespace_prefix)
