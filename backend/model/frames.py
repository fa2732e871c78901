"""Animated images (GIF, APNG, animated WebP): the frames a browser shows, sampled within a budget.

A still image's first frame is all anyone sees, but an animation can open on a real photo for
20 ms and then show an AI picture, and an APNG's default image (what Pillow decodes first) is
not shown at all by browsers when it is not part of the animation. So an animation is judged on
its shown frames: up to ``max_frames`` of them, spread evenly over those reachable by decoding at
most ``max_pixels`` pixels (frames are composited in order, so reaching frame *k* decodes every
frame before it). The service lets the most AI-looking judged frame decide.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
from PIL import Image

from genspot.backend.errors import GenspotError, ImageDecodeError, ImageTooLarge
from genspot.backend.model.decode import DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, open_image
from genspot.imaging import to_rgb

ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
"""Formats whose frames browsers play. A phone's JPEG opens as MPO with a second "frame" (a gain
map or depth image) that nobody sees: it stays a still image."""
DEFAULT_MAX_FRAMES = 8
DEFAULT_MAX_WALK_PIXELS = 48_000_000
"""Decoded pixels one animation may cost: 11 frames of 2048 x 2048, 183 of 512 x 512."""


class Animation(msgspec.Struct, frozen=True, kw_only=True):
    """Which frames of an animated image were judged (frame numbers count shown frames from 0)."""

    shown_frames: int
    judged_frames: list[int]
    deciding_frame: int | None = None


@dataclass(frozen=True)
class FrameBudget:
    max_frames: int = DEFAULT_MAX_FRAMES
    max_pixels: int = DEFAULT_MAX_WALK_PIXELS


def shown_frames(
    data: bytes, budget: FrameBudget, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int = DEFAULT_MAX_SIDE
) -> tuple[Animation, Iterator[Image.Image]] | None:
    """None for a still image (its one frame is :func:`~genspot.backend.model.decode.decode_picture`'s);
    for an animation, which shown frames are sampled, and those frames as RGB pictures, one at a
    time (a caller keeps only what it needs of each). Decoding stops at the last sampled frame; a
    frame that fails to decode ends the animation there (the first shown frame failing raises)."""
    image = open_image(data, max_pixels, max_side)
    if image.format not in ANIMATED_FORMATS or not image.is_animated:  # from headers and frame markers: no pixels
        image.close()
        return None
    first = 1 if image.format == "PNG" and image.info.get("default_image") else 0  # APNG default image: not shown
    shown = max(1, image.n_frames - first)
    reachable = max(1, min(shown, budget.max_pixels // (image.width * image.height) - first))
    picks = _spread(reachable, budget.max_frames)
    return Animation(shown_frames=shown, judged_frames=picks), _decode(image, [first + pick for pick in picks])


def _spread(count: int, most: int) -> list[int]:
    """Up to ``most`` indices in ``range(count)``, evenly spaced, first and last included."""
    if count <= most:
        return list(range(count))
    if most == 1:
        return [0]
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _decode(image: Image.Image, frames: list[int]) -> Iterator[Image.Image]:
    try:
        for number, frame in enumerate(frames):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    image.seek(frame)
                    picture = to_rgb(image.copy())
            except GenspotError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageTooLarge(f"image is too large to decode: {exc}") from exc
            except Exception as exc:  # truncated/corrupt frames raise OSError, SyntaxError, EOFError...
                if number == 0:
                    raise ImageDecodeError(f"cannot decode {image.format} frame {frame}: {exc}") from exc
                return
            yield picture
    finally:
        image.close()
