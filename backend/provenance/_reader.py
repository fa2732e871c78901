"""read_provenance: run every reader on one file, never raising, and conclude."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from PIL import Image

from genspot.backend.errors import GenspotError
from genspot.backend.model.decode import open_image

from ._c2pa import read_c2pa
from ._limits import MAX_INPUT_BYTES
from ._tags import read_tags
from ._model import Provenance, Signal, conclude
from ._sd import read_sd_parameters
from ._stealth import read_stealth
from ._xmp import read_xmp

log = logging.getLogger(__name__)
T = TypeVar("T")

IMAGE_READERS: tuple[Callable[[Image.Image], list[Signal]], ...] = (read_xmp, read_sd_parameters, read_tags, read_stealth)
"""In priority order: the first signal behind the verdict names the generator."""


def read_provenance(data: bytes) -> Provenance:
    """What the file's metadata says about its origin. Never raises: a reader that fails
    is skipped (logged at debug level), and inputs over 64 MiB are not examined."""
    if len(data) > MAX_INPUT_BYTES:
        return conclude([Signal("skipped", f"{len(data)} bytes is over the {MAX_INPUT_BYTES}-byte provenance limit")])
    signals, c2pa_status = _run(read_c2pa, data, ([], None))
    try:
        image = open_image(data)
    except GenspotError as exc:
        log.debug("provenance: image metadata not read: %s", exc)
        return conclude(signals, c2pa_status)
    with image:
        for reader in IMAGE_READERS:
            signals += _run(reader, image, [])
    return conclude(signals, c2pa_status)


def _run(reader: Callable[[object], T], source: object, empty: T) -> T:
    try:
        return reader(source)
    except Exception as exc:  # a hostile file must cost one signal, never the request
        log.debug("provenance reader %s failed: %r", reader.__name__, exc)
        return empty
