"""Work limits shared by the readers, so that a huge or hostile file costs bounded time."""

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Files above this are not examined at all."""

MAX_DECODED_PIXELS = 4_200_000
"""Readers that need decoded pixels (stealth bits, PNG text chunks after the image data)
skip images larger than this (2048 x 2048 and a little more): decoding a 16-megapixel PNG
costs about half a second here, more than all other readers together."""
