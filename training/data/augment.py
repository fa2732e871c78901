"""Robustness augmentations for training (the CT2 test set was perturbed: JPEG, resizing, ...).

``Augmenter`` works on the decoded RGB picture before the shared preprocessing (crop, resize,
blur, JPEG re-compression, flip) and on the preprocessed tensor after it (aligned random
crop, Gaussian noise rounded back to 8-bit levels),
each step with its own probability. ``drop_caption`` is modality dropout: the caption is
replaced by "" so the model learns to work when a page gives no alt-text.
"""

from __future__ import annotations

import io
import random

import torch
from PIL import Image, ImageFilter

from genspot.training.config import AugmentConfig


def quantized(image: torch.Tensor) -> torch.Tensor:
    """``image`` in [0, 1] rounded to 256 levels. Served pictures are decoded 8-bit images, so a
    noisy training copy should not carry in-between values none of them has."""
    return image.mul(255.0).round_().div_(255.0)


def jpeg_recompressed(image: Image.Image, quality: int) -> Image.Image:
    """``image`` saved as JPEG at ``quality`` and decoded again (what re-uploading to a site does)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


class Augmenter:
    """Image steps run only when ``config.enabled``; caption dropout runs whenever its prob > 0."""

    def __init__(self, config: AugmentConfig, rng: random.Random | None = None):
        self.config = config
        self.rng = rng or random.Random()

    def _happens(self, prob: float) -> bool:
        return prob > 0 and self.rng.random() < prob

    def picture(self, image: Image.Image) -> Image.Image:
        """Randomly perturbed copy of an RGB picture (same object when nothing fires)."""
        c, rng = self.config, self.rng
        if not c.enabled:
            return image
        if self._happens(c.flip_prob):
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self._happens(c.crop_prob):
            scale = rng.uniform(*c.crop_scale)
            width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
            left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
            image = image.crop((left, top, left + width, top + height))
        if self._happens(c.resize_prob):
            scale = rng.uniform(*c.resize_scale)
            size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
            resample = rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS])
            image = image.resize(size, resample)
        if self._happens(c.blur_prob):
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(*c.blur_sigma)))
        if self._happens(c.jpeg_prob):
            image = jpeg_recompressed(image, rng.randint(*c.jpeg_quality))
        return image

    def tensor(self, image: torch.Tensor) -> torch.Tensor:
        """Random ``train_crop`` crop and Gaussian noise on a preprocessed [3, S, S] tensor in [0, 1].

        The crop starts at even offsets and never resamples, so the picture's 2x2 pixel-cell
        structure (a trace of upsampling) is kept."""
        if not self.config.enabled:
            return image
        crop = self.config.train_crop
        if crop and crop < min(image.shape[-2:]):
            top = 2 * self.rng.randint(0, (image.shape[-2] - crop) // 2)
            left = 2 * self.rng.randint(0, (image.shape[-1] - crop) // 2)
            image = image[:, top : top + crop, left : left + crop]
        if self._happens(self.config.noise_prob):
            std = self.rng.uniform(*self.config.noise_std)
            generator = torch.Generator().manual_seed(self.rng.getrandbits(63))
            image = (image + torch.randn(image.shape, generator=generator) * std).clamp_(0.0, 1.0)
            image = quantized(image)
        return image

    def drop_caption(self, caption: str) -> str:
        return "" if self._happens(self.config.caption_dropout) else caption
