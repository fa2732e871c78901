"""Animated images (GIF, APNG, animated WebP) are judged on the frames a browser shows, within a
fixed budget, and reading their metadata never walks their frames."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image, PngImagePlugin

from genspot.backend.api.app import create_app
from genspot.backend.model.decode import decode_picture
from genspot.backend.model.frames import Animation, FrameBudget, shown_frames
from genspot.backend.provenance import read_provenance

from backend_helpers import b64


def _apng(frames: list[Image.Image], **options) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


@pytest.fixture
def decoded_png_frames(monkeypatch) -> list[int]:
    """The APNG frames Pillow decodes, in order (a spy on the real decoder; nothing is replaced)."""
    frames: list[int] = []
    seek = PngImagePlugin.PngImageFile._seek

    def counting_seek(image, frame: int, rewind: bool = False) -> None:
        if frame > 0:
            frames.append(frame)
        seek(image, frame, rewind)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "_seek", counting_seek)
    return frames


def test_reading_an_apngs_metadata_decodes_none_of_its_later_frames(decoded_png_frames):
    """Pillow's ``PngImageFile.text`` seeks to the last frame (decoding every frame on the way);
    a 2048 x 2048 APNG of 1,000 frames cost about 10 s of a decode thread that way."""
    frames = [Image.new("RGB", (64, 64), (n * 9 % 256, 80, 160)) for n in range(40)]
    assert read_provenance(_apng(frames)).verdict == "unknown"
    assert decoded_png_frames == []
    tagged = _apng(frames, pnginfo=_text_chunk("parameters", "a lighthouse\nSteps: 20, Sampler: Euler a, Seed: 1"))
    provenance = read_provenance(tagged)  # text before the frames (where tools write it) is still read
    assert provenance.verdict == "ai" and "AUTOMATIC1111" in provenance.generator
    assert decoded_png_frames == []


def _text_chunk(key: str, value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


# --- which frames are judged ---------------------------------------------------------------


def _picture(seed: int, size=(64, 64), sigma: float | None = None) -> Image.Image:
    """A distinct picture: uniform noise, or grey with noise of ``sigma`` (the tiny test model's AI
    probability climbs from near 0 to near 1 as sigma goes from 15 to 35)."""
    generator = np.random.default_rng(seed)
    if sigma is None:
        return Image.fromarray(generator.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return Image.fromarray(np.clip(128 + generator.normal(0, sigma, (size[1], size[0], 3)), 0, 255).astype(np.uint8))


def _save(frames: list[Image.Image], kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, kind, save_all=len(frames) > 1, append_images=frames[1:], **options)
    return buffer.getvalue()


def _pixels(picture: Image.Image) -> bytes:
    return picture.convert("RGB").tobytes()


def test_an_apng_whose_default_image_is_not_shown_is_judged_on_its_animation():
    """The issue's repro: a photo as the default image, the AI picture as the only shown frame."""
    photo, ai = _picture(1), _picture(2)
    animation, frames = shown_frames(_save([photo, ai], "PNG", default_image=True), FrameBudget())
    assert animation == Animation(shown_frames=1, judged_frames=[0])
    assert [_pixels(frame) for frame in frames] == [_pixels(ai)]
    animation, frames = shown_frames(_save([photo, ai], "PNG"), FrameBudget())  # default image shown first
    assert animation.judged_frames == [0, 1] and [_pixels(f) for f in frames] == [_pixels(photo), _pixels(ai)]


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP"])
def test_frames_are_sampled_across_the_animation_within_the_frame_budget(kind):
    pictures = [_picture(seed, (32, 32)) for seed in range(30)]
    data = _save(pictures, kind, duration=20, **({"lossless": True} if kind == "WEBP" else {}))
    animation, frames = shown_frames(data, FrameBudget(max_frames=4))
    assert animation == Animation(shown_frames=30, judged_frames=[0, 10, 19, 29])
    decoded = list(frames)
    assert len(decoded) == 4 and all(frame.mode == "RGB" and frame.size == (32, 32) for frame in decoded)
    if kind != "GIF":  # GIF quantises to 256 colours
        assert [_pixels(f) for f in decoded] == [_pixels(pictures[i]) for i in (0, 10, 19, 29)]


def test_the_pixel_budget_bounds_how_far_frames_are_decoded(decoded_png_frames):
    pictures = [_picture(seed, (100, 100)) for seed in range(50)]
    animation, frames = shown_frames(_save(pictures, "PNG"), FrameBudget(max_frames=3, max_pixels=20 * 100 * 100))
    assert animation == Animation(shown_frames=50, judged_frames=[0, 10, 19])
    assert len(list(frames)) == 3 and max(decoded_png_frames) == 19  # frames past the budget never decoded


def test_a_still_image_has_no_animation():
    assert shown_frames(_save([_picture(1)], "PNG"), FrameBudget()) is None
    assert shown_frames(_save([_picture(1)], "GIF"), FrameBudget()) is None


def test_a_phone_photo_with_a_gain_map_is_a_still_image():
    """Pillow opens an iPhone JPEG as MPO with two frames; the second (the gain map) is never shown."""
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "provenance" / "camera" / "iphone15pro_cards.jpg"
    if not path.exists():
        pytest.skip(f"provenance test data not found at {path}")
    with Image.open(path) as opened:
        assert (opened.format, opened.n_frames) == ("MPO", 2)
    assert shown_frames(path.read_bytes(), FrameBudget()) is None


def test_broken_metadata_keeps_an_apngs_animation():
    """The fallback that decodes a PNG without its metadata chunks keeps the animation chunks, so
    a broken text chunk cannot bring the hidden default image back."""
    photo, ai = _picture(1), _picture(2)
    data = _save([photo, ai], "PNG", default_image=True)
    at = data.index(b"IDAT") - 4
    broken = data[:at] + _chunk(b"zTXt", b"parameters\x00\x07junk") + data[at:]
    decoded = decode_picture(broken)
    assert decoded.metadata_skipped and decoded.pixels_only is not None
    animation, frames = shown_frames(decoded.pixels_only, FrameBudget())
    assert animation.shown_frames == 1 and [_pixels(f) for f in frames] == [_pixels(ai)]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


# --- the service judges them ---------------------------------------------------------------


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings.replace(animation_max_frames=4))) as test_client:
        yield test_client


def _detect(client, data: bytes) -> dict:
    response = client.post("/v1/detect", json={"items": [{"image_b64": b64(data)}]})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "ok", result
    return result


@pytest.mark.parametrize("kind", ["GIF", "PNG", "WEBP"])
def test_the_most_ai_looking_shown_frame_decides(client, kind):
    """Each picture alone, then as frames of one animation (the first shown for 20 ms): the
    animation's probability is its most AI-looking frame's, never the hidden APNG default image's."""
    pictures = [_picture(seed, sigma=sigma) for seed, sigma in enumerate((10, 22, 27, 31, 36))]
    if kind == "GIF":  # the stills must hold the pixels the GIF's frames will hold
        pictures = [Image.open(io.BytesIO(_save([p], "GIF"))).convert("RGB") for p in pictures]
    alone = [_detect(client, _save([p], "PNG"))["ai_probability"] for p in pictures]
    order = sorted(range(len(pictures)), key=alone.__getitem__)
    gap = min(alone[b] - alone[a] for a, b in zip(order, order[1:]))
    # the tiny test model's probabilities are close together (a few 1e-5 apart) but exact: a model
    # call's batch changes them by about 1e-7, so a third of the smallest gap tells frames apart
    assert gap > 1e-6, f"the pictures must look different to the model: {alone}"
    most, hidden = order[-2], order[-1]  # the default image would be the most AI-looking of all
    shown = [order[0], most, order[1], order[2]]
    frames = ([pictures[hidden]] if kind == "PNG" else []) + [pictures[i] for i in shown]
    options = {"default_image": True} if kind == "PNG" else {"lossless": True} if kind == "WEBP" else {}
    result = _detect(client, _save(frames, kind, duration=[20, 500, 500, 500, 500][: len(frames)], **options))
    assert result["ai_probability"] == pytest.approx(alone[most], abs=gap / 3)
    assert result["ai_probability"] > alone[shown[0]] and result["ai_probability"] < alone[hidden]
    assert result["animation"] == {"shown_frames": 4, "judged_frames": [0, 1, 2, 3], "deciding_frame": 1}
    assert _detect(client, _save([pictures[most]], "PNG"))["animation"] is None
