"""Text tags: a camera's EXIF Make/Model (capture evidence) and tool names of AI generators
in EXIF or PNG text tags (Software, Source, Title, ...). Free-text fields that usually hold
a prompt (ImageDescription aside, PNG Description/Comment) are not searched for names: a
prompt that mentions "stable diffusion" says nothing about the tool that made the file."""

from __future__ import annotations

from PIL import Image

from ._limits import MAX_DECODED_PIXELS
from ._model import Signal
from ._terms import generator_named_in

_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_TAGS = {0x0131: "Software", 0x010E: "ImageDescription", 0x013B: "Artist", _MAKE: "Make", _MODEL: "Model"}
_PNG_TEXT_KEYS = ("Software", "Source", "Title", "Author")


def read_tags(image: Image.Image) -> list[Signal]:
    exif = _exif(image)
    exif_values = {name: _text(exif.get(tag)) for tag, name in _EXIF_TAGS.items()}
    png_values = {key: _text(image.info.get(key)) for key in _PNG_TEXT_KEYS} if image.format == "PNG" else {}
    signals = _generator_signals("exif", "EXIF", exif_values) + _generator_signals("png_text", "PNG text", png_values)
    make, model = exif_values["Make"], exif_values["Model"]
    if make and model and not signals:
        device = model if model.lower().startswith(make.lower()) else f"{make} {model}"
        signals.append(Signal("exif", f"camera EXIF Make/Model: {device}", "not-ai", device))
    return signals


def _generator_signals(kind: str, where: str, values: dict[str, str]) -> list[Signal]:
    signals = []
    for name, value in values.items():
        named, generator = generator_named_in(value) if value else (False, None)
        if named:
            signals.append(Signal(kind, f"{where} {name} {value[:100]!r} names an AI generator", "ai", generator or value[:100]))
    return signals


def _exif(image: Image.Image) -> Image.Exif:
    """EXIF without decoding a large PNG (Pillow decodes one to look for an eXIf chunk
    after the image data when none came before it)."""
    pixels = image.width * image.height
    if image.format == "PNG" and "exif" not in image.info and pixels > MAX_DECODED_PIXELS:
        return Image.Exif()
    return image.getexif()


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.strip(" \0") if isinstance(value, str) else ""
