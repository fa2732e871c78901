"""Generation parameters written by Stable Diffusion tools, read by the sd-parsers package:
A1111 ``parameters`` (PNG text or JPEG EXIF UserComment), ComfyUI ``prompt``/``workflow``,
Fooocus, InvokeAI (``invokeai_metadata``, ``Dream``, ``sd-metadata``), NovelAI."""

from __future__ import annotations

from PIL import Image
from sd_parsers import ParserManager
from sd_parsers.data.generators import Generators
from sd_parsers.extractors import Eagerness

from ._limits import MAX_DECODED_PIXELS
from ._model import Signal

_NAMES = {
    Generators.AUTOMATIC1111: "AUTOMATIC1111 stable-diffusion-webui",
    Generators.COMFYUI: "ComfyUI",
    Generators.FOOOCUS: "Fooocus",
    Generators.INVOKEAI: "InvokeAI",
    Generators.NOVELAI: "NovelAI",
}
_THOROUGH = ParserManager(eagerness=Eagerness.DEFAULT)
"""Text chunks anywhere in a PNG (Pillow decodes the image to reach those after it) and EXIF.
EAGER would add sd-parsers' stealth reader, which caches by ``id(image)`` in a module global
(not thread-safe) and copies every pixel into Python lists; ``_stealth`` reads that instead."""
_QUICK = ParserManager(eagerness=Eagerness.FAST)
"""Only metadata met before the image data (where SD tools write it): for large images, and for
animated ones, whose text after the image data Pillow reaches only by decoding every frame."""


def read_sd_parameters(image: Image.Image) -> list[Signal]:
    small = image.width * image.height <= MAX_DECODED_PIXELS
    parsers = _THOROUGH if small and not getattr(image, "is_animated", False) else _QUICK
    info = parsers.parse(image)
    if info is None or info.generator is None:
        return []
    generator = _NAMES.get(info.generator, str(getattr(info.generator, "value", info.generator)))
    models = ", ".join(dict.fromkeys(model.name for model in info.models if getattr(model, "name", None)))
    kind = "png_text" if image.format == "PNG" else "exif"
    detail = f"{generator} generation parameters" + (f" (model {models})" if models else "")
    return [Signal(kind, detail, "ai", generator)]
