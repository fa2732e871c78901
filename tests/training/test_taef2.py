"""TAEF2: the layout matches the published weights, and real photos survive the round trip."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from genspot.imaging import to_tensor
from genspot.training.data.aligned import crop_to_multiple
from genspot.training.data.data import Sample
from genspot.training.data.taef2 import DECODER_FILE, ENCODER_FILE, Autoencoder, load_autoencoder
from tests.fixtures.data import REPO_ROOT, SHARED_DATA

WEIGHTS = (REPO_ROOT / ".." / "shared" / "weights" / "taef2").resolve()


def test_layout_has_the_published_tensor_and_parameter_counts():
    model = Autoencoder()
    for part, tensors, parameters in ((model.encoder, 79, 1_338_528), (model.decoder, 79, 1_338_499)):
        assert len(part.state_dict()) == tensors
        assert sum(p.numel() for p in part.parameters()) == parameters


def test_random_weights_round_trip_shape_range_and_sides(tmp_path):
    torch.manual_seed(0)
    model = Autoencoder()
    torch.save(model.encoder.state_dict(), tmp_path / ENCODER_FILE)
    torch.save(model.decoder.state_dict(), tmp_path / DECODER_FILE)
    loaded = load_autoencoder(tmp_path)
    image = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        output = loaded(image)
        assert torch.equal(output, model.eval()(image)), "the loader restores every tensor"
    assert output.shape == image.shape and 0 <= output.min() and output.max() <= 1
    with pytest.raises(ValueError, match="multiple of 8"):
        loaded(torch.rand(1, 3, 24, 36))
    (tmp_path / DECODER_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=DECODER_FILE):
        load_autoencoder(tmp_path)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


def test_real_weights_reconstruct_web_photos():
    if not (WEIGHTS / ENCODER_FILE).is_file():
        pytest.skip(f"TAEF2 weights not found at {WEIGHTS} (needs ../shared/weights/taef2 beside the repo)")
    web = (SHARED_DATA / "web").resolve()
    if not (web / "labels.csv").is_file():
        pytest.skip(f"web data not found at {web} (needs ../shared/data/web beside the repo)")
    with (web / "labels.csv").open(newline="", encoding="utf-8") as handle:
        photos = sorted(row["image"] for row in csv.DictReader(handle) if row["label_a"] == "0")[:3]
    model = load_autoencoder(WEIGHTS)
    for name in photos:
        picture = Sample(key=name, caption="", label_a=0, label_b="real", path=web / name).open_image()
        pixels = to_tensor(crop_to_multiple(picture))[None]
        with torch.no_grad():
            assert psnr(model(pixels), pixels) > 24, name
