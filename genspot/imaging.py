"""Image preprocessing shared by training, export and serving.

The detector takes a batch of RGB images as float tensors in [0, 1], shape [N, 3, S, S] (three
channels per view where its resize policy stacks several views of each picture);
each branch normalises (and, for the CLIP branch, resizes) inside the model. This module is
the single definition of how a decoded picture becomes that tensor, so the training data
pipeline and the backend produce identical inputs for identical pictures.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageOps

DEFAULT_IMAGE_SIZE = 256
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"})
"""File endings read as pictures when a folder is given (training's image folders, ``genspot scan``):
formats Pillow opens here. The service judges only web formats; a scanned TIFF is answered ``not_an_image``."""
RESIZE_POLICY = "shorter_side_bicubic_center_crop"
NATIVE_VIEW = "native_center_crop"
# A policy names the views of a picture the model reads, joined by "+", stacked on the channel axis:
# [3 * views, S, S]. The whole picture resized, and a centre crop near its own resolution.
RESIZE_POLICIES = (RESIZE_POLICY, NATIVE_VIEW, f"{RESIZE_POLICY}+{NATIVE_VIEW}")
# The native view first scales pictures down to this shorter side, as the training sets were
# prepared, so a crop covers a like share of a phone photo and of a training picture.
NATIVE_SHORTER_SIDE = 512
# Up to this many times the crop (a few MB), a resize is done whole: exactly Pillow's own output.
_WHOLE_RESIZE_LIMIT = 8
_BICUBIC_SUPPORT = 2.0  # source pixels Pillow's bicubic kernel reaches on each side at scale 1


def to_rgb(image: Image.Image) -> Image.Image:
    """First frame, EXIF orientation applied, transparency flattened onto white, as RGB."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize_and_crop(image: Image.Image, size: int = DEFAULT_IMAGE_SIZE) -> Image.Image:
    """Scale the shorter side to ``size`` (bicubic) and take the centre ``size`` x ``size``.

    Images whose shorter side already equals ``size`` are only cropped, never resampled,
    so pixel-level traces of generation survive untouched. Long strips are
    not scaled whole: a 4,000,000 x 1 PNG is a tiny file, but 256 rows of it scaled are gigabytes.
    """
    width, height = image.size
    if min(width, height) != size:
        scale = size / min(width, height)
        new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
        if max(new_size) > _WHOLE_RESIZE_LIMIT * size:
            return _resize_centre(image, new_size, size)
        image = image.resize(new_size, Image.Resampling.BICUBIC)
        width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    if (width, height) != (size, size):
        image = image.crop((left, top, left + size, top + size))
    return image


def _resize_centre(image: Image.Image, new_size: tuple[int, int], size: int) -> Image.Image:
    """The centre ``size`` x ``size`` of ``image`` resized to ``new_size``, resampling only the
    source pixels its bicubic taps read; equal to resizing everything up to float rounding (the
    crop's fractional edges reach Pillow as 32-bit floats: now and then a pixel is 1 or 2 off)."""
    (width, height), (new_width, new_height) = image.size, new_size
    x_lo, x_hi, x0, x1 = _crop_source(width, new_width, size)
    y_lo, y_hi, y0, y1 = _crop_source(height, new_height, size)
    window = image.crop((x_lo, y_lo, x_hi, y_hi))
    # One axis at a time, in the order Pillow 13 takes for the whole picture (vertical first when
    # the height loses over twice as many pixels as the width): passes round to 8 bits in between.
    bicubic = Image.Resampling.BICUBIC
    if height - new_height > max(0, 2 * (width - new_width)):
        window = window.resize((window.width, size), bicubic, box=(0, y0, window.width, y1))
        return window.resize((size, size), bicubic, box=(x0, 0, x1, size))
    window = window.resize((size, window.height), bicubic, box=(x0, 0, x1, window.height))
    return window.resize((size, size), bicubic, box=(0, y0, size, y1))


def _crop_source(length: int, new_length: int, size: int) -> tuple[int, int, float, float]:
    """Along one axis resized from ``length`` to ``new_length``: the source pixels [lo, hi) that the
    centre ``size`` pixels' bicubic taps read, and those pixels' span in source coordinates from lo."""
    ratio = length / new_length
    start = (new_length - size) // 2 * ratio
    end = min(length, start + size * ratio)
    reach = _BICUBIC_SUPPORT * max(ratio, 1.0) + 1  # the kernel widens when shrinking; +1 for rounding
    lo, hi = max(0, math.floor(start - reach)), min(length, math.ceil(end + reach))
    return lo, hi, start - lo, end - lo


def native_centre_crop(image: Image.Image, size: int = DEFAULT_IMAGE_SIZE) -> Image.Image:
    """The centre ``size`` x ``size`` pixels at the picture's own resolution, where pixel-level traces
    of generation survive that a whole-picture resize erases. Pictures whose shorter side exceeds
    ``NATIVE_SHORTER_SIDE`` are first scaled down to it; ones smaller than ``size`` are scaled up."""
    shorter = min(image.size)
    if shorter < size:
        return resize_and_crop(image, size)
    if shorter > NATIVE_SHORTER_SIDE:
        image = resize_and_crop(image, NATIVE_SHORTER_SIDE)
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


VIEWS = {RESIZE_POLICY: resize_and_crop, NATIVE_VIEW: native_centre_crop}


def policy_views(policy: str) -> list[str]:
    """The views a resize policy stacks, in channel order."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; known: {', '.join(RESIZE_POLICIES)}")
    return policy.split("+")


def input_channels(policy: str) -> int:
    """Channels of the model's input tensor under ``policy``: three per view."""
    return 3 * len(policy_views(policy))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor [3, H, W] in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def preprocess(image: Image.Image, size: int = DEFAULT_IMAGE_SIZE, policy: str = RESIZE_POLICY) -> torch.Tensor:
    """One decoded picture -> the model's input tensor [3 * views, size, size]."""
    views = policy_views(policy)
    picture = to_rgb(image)
    return torch.cat([to_tensor(VIEWS[view](picture, size)) for view in views])

