"""Provenance signals from image metadata: near-certain when present, no model needed.

``read_provenance(data) -> Provenance(verdict, generator, signals, c2pa)`` reads C2PA manifests
(offline), IPTC digital source type in XMP, EXIF (camera or generator tags), Stable
Diffusion tool parameters (PNG text chunks, EXIF UserComment) and A1111 stealth metadata.
"""

from ._limits import stated_text
from ._model import C2paStatus, C2paValidity, Provenance, Signal, Statement, Verdict
from ._reader import read_provenance

__all__ = ["C2paStatus", "C2paValidity", "Provenance", "Signal", "Statement", "Verdict", "read_provenance", "stated_text"]
