"""genspot.imaging.resize_and_crop: Pillow's whole-picture resize, without its cost on long strips."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from genspot.imaging import DEFAULT_IMAGE_SIZE, preprocess, resize_and_crop


def _whole_resize_then_crop(image: Image.Image, size: int = DEFAULT_IMAGE_SIZE) -> Image.Image:
    """The algorithm before strips were handled: scale the whole picture, then crop its centre."""
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


def _smooth_picture(width: int, height: int, seed: int) -> Image.Image:
    """Random colours on a coarse grid, upscaled: smooth like a photo, different everywhere."""
    coarse = np.random.default_rng(seed).integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def _noise_picture(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize("size", [(300, 200), (1024, 768), (640, 480), (200, 1000), (1000, 200), (300, 600), (255, 300)])
def test_ordinary_pictures_come_out_exactly_as_before(size):
    for seed, make in enumerate((_smooth_picture, _noise_picture)):
        picture = make(*size, seed)
        assert np.array_equal(_pixels(resize_and_crop(picture)), _pixels(_whole_resize_then_crop(picture)))


@pytest.mark.parametrize(
    "size",
    # strips up and down scaled, wide and tall (tall downscales run the vertical pass first). The
    # reference scales the whole strip, so the strip bounds this test's memory: (4000, 2) gives
    # 512,000 x 256 pixels (393 MB), a 100,000 x 2 strip 9.8 GB (longer strips: the next test, in
    # a process of its own).
    [(5000, 20), (20, 5000), (7000, 3), (3, 7000), (3000, 300), (300, 3000), (10000, 255), (255, 10000), (263, 4000), (4000, 2)],
)
def test_strips_match_the_whole_resize_to_rounding(size):
    for seed, make in enumerate((_smooth_picture, _noise_picture)):
        picture = make(*size, seed)
        ours, whole = _pixels(resize_and_crop(picture)), _pixels(_whole_resize_then_crop(picture))
        assert ours.shape == whole.shape == (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE, 3)
        difference = np.abs(ours - whole)
        assert difference.max() <= 2, size  # float rounding of the crop's edges, not a shifted or blurred crop
        assert np.count_nonzero(difference) < difference.size / 100, size


@pytest.mark.parametrize("size", [(256, 3000), (3000, 256), (256, 256)])
def test_a_shorter_side_of_the_model_size_is_only_cropped(size):
    picture = _noise_picture(*size, seed=1)
    left, top = (size[0] - 256) // 2, (size[1] - 256) // 2
    assert np.array_equal(_pixels(resize_and_crop(picture)), _pixels(picture)[top : top + 256, left : left + 256])


_PEAK_GROWTH = """
import io, resource, sys
from PIL import Image
from genspot.imaging import preprocess
width, height = int(sys.argv[1]), int(sys.argv[2])
encoded = io.BytesIO()
Image.new("RGB", (width, height), (120, 30, 200)).save(encoded, "PNG")
picture = Image.open(io.BytesIO(encoded.getvalue()))
picture.load()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tensor = preprocess(picture)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(tuple(tensor.shape), round(float(tensor[0].mean()) * 255), (after - before) // 1024, sep=";")
"""


@pytest.mark.parametrize("size", [(1_000_000, 1), (4_000_000, 1), (1, 4_000_000)])
def test_a_long_strip_preprocesses_in_little_memory(size):
    """Scaled whole, 256 rows of a 4,000,000 x 1 strip are 4 GB; the centre alone is 256 KB.
    Pillow allocates outside Python's allocator, so the peak resident size of a fresh process is
    what is measured (its growth from just before preprocessing, in MiB). to_rgb's copy of the
    strip is expected: 16 MB of pixels, and for 4,000,000 rows 32 MB more of row pointers."""
    run = subprocess.run([sys.executable, "-c", _PEAK_GROWTH, *map(str, size)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    shape, red, growth_mib = run.stdout.strip().split(";")
    assert shape == "(3, 256, 256)"
    assert int(red) == 120  # a flat colour stays that colour
    assert int(growth_mib) < 128, run.stdout


def test_preprocess_of_a_strip_is_the_centre_of_the_strip():
    """Scaled 256 times, the centre crop of a 200,000 x 1 strip is its middle pixel: a white mark
    there (black everywhere else) must fill the whole input, taps included."""
    strip = np.zeros((1, 200_000, 3), dtype=np.uint8)
    strip[:, 99_990:100_010] = 255
    tensor = preprocess(Image.fromarray(strip))
    assert tensor.shape == (3, 256, 256) and bool((tensor == 1.0).all())


def test_the_native_view_crops_without_resampling_up_to_its_shorter_side_limit():
    from genspot.imaging import NATIVE_SHORTER_SIDE, native_centre_crop

    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    crop = np.asarray(native_centre_crop(picture, 176))
    assert crop.shape == (176, 176, 3)
    assert np.array_equal(crop, np.asarray(picture)[62:238, 112:288]), "the centre pixels, untouched"
    large = Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8))
    scaled = resize_and_crop(large, NATIVE_SHORTER_SIDE)
    offset = (NATIVE_SHORTER_SIDE - 176) // 2
    assert np.array_equal(np.asarray(native_centre_crop(large, 176)), np.asarray(scaled)[offset:offset + 176, offset:offset + 176])
    small = Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(native_centre_crop(small, 176)), np.asarray(resize_and_crop(small, 176)))


def test_a_two_view_policy_stacks_the_views_on_the_channel_axis():
    from genspot.imaging import NATIVE_VIEW, RESIZE_POLICY

    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    both = preprocess(picture, 176, f"{RESIZE_POLICY}+{NATIVE_VIEW}")
    assert both.shape == (6, 176, 176)
    assert torch.equal(both[:3], preprocess(picture, 176)) and torch.equal(both[3:], preprocess(picture, 176, NATIVE_VIEW))
    assert not torch.equal(both[:3], both[3:])
    with pytest.raises(ValueError, match="unknown resize policy"):
        preprocess(picture, 176, f"{NATIVE_VIEW}+{RESIZE_POLICY}")
