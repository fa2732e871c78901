"""Work limits shared by the readers, so that a huge or hostile file costs bounded time, and
the bounds on the texts they pass on."""

import re

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Files above this are not examined at all."""

MAX_DECODED_PIXELS = 4_200_000
"""Readers that need decoded pixels (stealth bits, PNG text chunks after the image data)
skip images larger than this (2048 x 2048 and a little more): decoding a 16-megapixel PNG
costs about half a second here, more than all other readers together."""

MAX_STATED_CHARS = 200
"""A text a file states (a C2PA action's description, a signer's name) is shown cut to this."""

_UNSHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
"""Control characters, and those that change the direction or joining of the text around them."""


def stated_text(value: object, limit: int = MAX_STATED_CHARS) -> str | None:
    """A text from the file as it may be shown: a string only, control and text-direction
    characters turned into spaces, runs of whitespace into one, cut to ``limit`` characters
    (an ellipsis marks the cut); None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = " ".join(_UNSHOWN.sub(" ", value[: 4 * limit]).split())
    return (text if len(text) <= limit else text[: limit - 1] + "…") or None
