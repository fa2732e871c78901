"""Animated images (GIF, APNG, animated WebP) are judged on the frames a browser shows, within a
fixed budget, and reading their metadata never walks their frames."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from genspot.backend.provenance import read_provenance


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
