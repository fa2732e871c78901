"""Image preprocessing shared by training, export and serving.

The detector takes a batch of RGB images as float tensors in [0, 1], shape [N, 3, S, S];
each branch normalises (and, for the CLIP branch, resizes) inside the model. This module is
the single definition of how a decoded picture becomes that tensor, so the training data
pipeline and the backend produce identical inputs for identical pictures.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from PIL import Image, ImageOps

DEFAULT_IMAGE_SIZE = 256
RESIZE_POLICY = "shorter_side_bicubic_center_crop"
RESIZE_POLICIES = (RESIZE_POLICY,)


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
    so the pixel-level traces the forensic branch reads survive untouched.
    """
    width, height = image.size
    if min(width, height) != size:
        scale = size / min(width, height)
        new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new_size, Image.Resampling.BICUBIC)
        width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    if (width, height) != (size, size):
        image = image.crop((left, top, left + size, top + size))
    return image


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor [3, H, W] in [0, 1]."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def preprocess(image: Image.Image, size: int = DEFAULT_IMAGE_SIZE, policy: str = RESIZE_POLICY) -> torch.Tensor:
    """One decoded picture -> the model's input tensor [3, size, size]."""
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; known: {', '.join(RESIZE_POLICIES)}")
    return to_tensor(resize_and_crop(to_rgb(image), size))


def preprocess_batch(
    images: Iterable[Image.Image], size: int = DEFAULT_IMAGE_SIZE, policy: str = RESIZE_POLICY
) -> torch.Tensor:
    """Pictures -> batch tensor [N, 3, size, size]."""
    tensors = [preprocess(image, size, policy) for image in images]
    if not tensors:
        return torch.empty(0, 3, size, size)
    return torch.stack(tensors)
