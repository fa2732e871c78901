"""Text tags: a camera's EXIF Make/Model (capture evidence) and tool names of AI generators
in EXIF or PNG text tags.

Short tool fields (Software, Artist, Make, PNG Software / Source / Title / Author) are
searched for a generator's name anywhere. Free-text fields (EXIF UserComment, MakerNote,
ImageDescription, Windows XPComment / XPAuthor, PNG Description / Comment) usually hold a
prompt or vendor data: a prompt that mentions "stable diffusion" says nothing about the
tool that made the file. There only a *claim* counts: the whole field is a generator's
name ("DALL-E"), or it says "made / generated / created with <generator>", or it carries
Midjourney's ``Job ID: <uuid>`` trailer; "the whole field" allows three words besides
version numbers ("Stable Diffusion XL 1.0"). MakerNote is vendor binary: its printable runs
are read that way.
"""

from __future__ import annotations

import re

from PIL import Image

from ._limits import MAX_DECODED_PIXELS
from ._model import Signal
from ._terms import CLAIM_PREFIX, generator_named_in

_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD = 0x8769
_TOOL_TAGS = {0x0131: "Software", 0x013B: "Artist", _MAKE: "Make", _MODEL: "Model"}
_FREE_TEXT_TAGS = {0x010E: "ImageDescription", 0x9C9C: "XPComment", 0x9C9D: "XPAuthor", 0x9C9F: "XPSubject"}
_USER_COMMENT, _MAKER_NOTE = 0x9286, 0x927C
_PNG_TOOL_KEYS = ("Software", "Source", "Title", "Author")
_PNG_FREE_TEXT_KEYS = ("Description", "Comment")
_MAX_FIELD = 64 * 1024
_SHORT_FIELD = 80
_CLAIM = re.compile(CLAIM_PREFIX + r"([^,;\n]{2,60})", re.I)
_VERSION = re.compile(r"^v?\d[\w.]*$", re.I)
_NAME_WORDS = 3
_MIDJOURNEY_JOB = re.compile(r"\bJob ID:\s*[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_USER_COMMENT_CODES = {b"ASCII\0\0\0": "ascii", b"JIS\0\0\0\0\0": "shift_jis", b"\0" * 8: "utf-8"}


def read_tags(image: Image.Image) -> list[Signal]:
    exif = _exif(image)
    tool_values = {name: _text(exif.get(tag)) for tag, name in _TOOL_TAGS.items()}
    free_values = {name: _text(exif.get(tag), utf16le=tag >= 0x9C9B) for tag, name in _FREE_TEXT_TAGS.items()}
    exif_ifd = exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}
    for where, block in (("", exif_ifd), ("IFD0 ", exif)):  # DALL-E 2 writes both tags into IFD0
        free_values[f"{where}UserComment"] = _user_comment(block.get(_USER_COMMENT))
        free_values |= _maker_note_runs(f"{where}MakerNote", block.get(_MAKER_NOTE))
    signals = _generator_signals("exif", "EXIF", tool_values) + _claim_signals("exif", "EXIF", free_values)
    if image.format == "PNG":
        signals += _generator_signals("png_text", "PNG text", {key: _text(image.info.get(key)) for key in _PNG_TOOL_KEYS})
        signals += _claim_signals("png_text", "PNG text", {key: _text(image.info.get(key)) for key in _PNG_FREE_TEXT_KEYS})
    make, model = tool_values["Make"], tool_values["Model"]
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


def _claim_signals(kind: str, where: str, values: dict[str, str]) -> list[Signal]:
    signals = []
    for name, value in values.items():
        generator = claimed_generator(value) if value else None
        if generator:
            signals.append(Signal(kind, f"{where} {name} {value[:100]!r} says an AI generator made it", "ai", generator))
    return signals


def claimed_generator(text: str) -> str | None:
    """The generator a free-text field claims made the file, or None when it only mentions one."""
    text = text.strip()
    if _MIDJOURNEY_JOB.search(text):
        return "Midjourney"
    claim = _CLAIM.match(text)
    words = [word for word in text.split() if not _VERSION.match(word)]
    candidate = claim.group(0) if claim else text if len(words) <= _NAME_WORDS else ""
    named, generator = generator_named_in(candidate) if candidate else (False, None)
    if not named:
        return None
    return generator or candidate.split("\n", 1)[0][:_SHORT_FIELD].strip()


def _exif(image: Image.Image) -> Image.Exif:
    """EXIF without decoding a large PNG (Pillow decodes one to look for an eXIf chunk
    after the image data when none came before it)."""
    pixels = image.width * image.height
    if image.format == "PNG" and "exif" not in image.info and pixels > MAX_DECODED_PIXELS:
        return Image.Exif()
    return image.getexif()


def _maker_note_runs(name: str, value: object) -> dict[str, str]:
    """MakerNote is vendor binary: its printable runs, each read as a free-text field."""
    if not isinstance(value, bytes):
        return {}
    return {f"{name}[{i}]": run.decode("ascii") for i, run in enumerate(_PRINTABLE_RUN.findall(value[:_MAX_FIELD]))}


def _user_comment(value: object) -> str:
    """EXIF UserComment: an 8-byte character code, then the text (UNICODE: UTF-16 of either byte
    order); a value without a known code (DALL-E 2 writes bare text) is read whole."""
    if not isinstance(value, bytes):
        return _text(value)
    code, body = value[:8], value[8:_MAX_FIELD]
    if code == b"UNICODE\0":
        big, little = body.decode("utf-16-be", errors="replace"), body.decode("utf-16-le", errors="replace")
        return _text(big if sum(c.isascii() for c in big) >= sum(c.isascii() for c in little) else little)
    if code not in _USER_COMMENT_CODES:
        return _text(value[:_MAX_FIELD].decode("latin-1"))
    return _text(body.decode(_USER_COMMENT_CODES[code], errors="replace"))


def _text(value: object, utf16le: bool = False) -> str:
    if isinstance(value, tuple):  # XP* tags read as BYTE arrays
        value = bytes(v for v in value if isinstance(v, int) and 0 <= v < 256)
    if isinstance(value, bytes):
        value = value[:_MAX_FIELD].decode("utf-16-le" if utf16le else "utf-8", errors="replace")
    return value.strip(" \0") if isinstance(value, str) else ""
