"""`genspot aligned-fakes`: a seeded share of the real train photos, each reconstructed beside
its original's group, saved as the shared sets' JPEGs are."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from PIL import Image, JpegImagePlugin

from genspot.cli import main as genspot
from genspot.training.data.aligned import choose_photos, crop_to_multiple
from genspot.training.data.data import Sample, group_key, load_samples
from genspot.training.data.taef2 import DECODER_FILE, ENCODER_FILE, Autoencoder


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A TAEF2 weights folder with random weights (the layout, not the published values)."""
    folder = tmp_path_factory.mktemp("taef2")
    torch.manual_seed(0)
    model = Autoencoder()
    torch.save(model.encoder.state_dict(), folder / ENCODER_FILE)
    torch.save(model.decoder.state_dict(), folder / DECODER_FILE)
    return folder


def photo(key: str, source: str, label_a: int = 0) -> Sample:
    return Sample(key=key, caption="", label_a=label_a, label_b="real" if label_a == 0 else "gan", source=source)


def test_choice_is_seeded_per_source_real_only_and_grows_by_fraction():
    samples = [photo(f"a{i:02d}", "a") for i in range(10)] + [photo(f"b{i}", "b") for i in range(4)]
    samples += [photo(f"f{i}", "a", label_a=1) for i in range(6)]
    half = choose_photos(samples, 0.5, seed=0)
    assert [s.key for s in half] == [s.key for s in choose_photos(list(reversed(samples)), 0.5, seed=0)]
    assert sum(s.source == "a" for s in half) == 5 and sum(s.source == "b" for s in half) == 2
    assert all(s.label_a == 0 for s in half)
    assert {s.key for s in half} < {s.key for s in choose_photos(samples, 0.8, seed=0)}
    assert [s.key for s in half] != [s.key for s in choose_photos(samples, 0.5, seed=1)]


def test_crop_keeps_the_centre_at_a_multiple_of_eight():
    picture = Image.new("RGB", (37, 20))
    picture.putpixel((2, 2), (255, 0, 0))  # inside the kept centre (2 px cut on the left, 2 on top)
    cropped = crop_to_multiple(picture)
    assert cropped.size == (32, 16) and cropped.getpixel((0, 0)) == (255, 0, 0)
    with pytest.raises(ValueError, match="smaller than 8"):
        crop_to_multiple(Image.new("RGB", (7, 30)))


def test_command_writes_grouped_jpeg_fakes_and_resumes(tmp_path, synthetic_dataset, random_weights, capsys):
    out = tmp_path / "aligned"
    argv = ["aligned-fakes", "--data", str(synthetic_dataset), "--out", str(out), "--weights", str(random_weights),
            "--fraction", "0.5", "--seed", "3", "--quiet"]
    assert genspot(argv) == 0
    originals = {s.key: s for s in load_samples(synthetic_dataset, progress=False)}
    with (out / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3, "half of the 6 real train photos (8 real, 2 of them val)"
    for row in rows:
        original = originals[row["origin"]]
        assert original.label_a == 0 and original.split == "train"
        assert row["group"] == group_key(original), "a fake keeps its twin's group"
        assert (row["label_a"], row["label_b"], row["split"], row["source"]) == ("1", "", "train", "synthetic:taef2")
        with Image.open(out / row["image"]) as fake, Image.open(synthetic_dataset / "images" / "real_00.png") as real:
            assert fake.format == "JPEG" and fake.size == real.size  # 64 px: already a multiple of 8
            assert fake.quantization == reference_q92().quantization and JpegImagePlugin.get_sampling(fake) == 2  # 4:2:0
    fakes = load_samples(out, progress=False)
    assert {(s.label_a, s.label_b) for s in fakes} == {(1, "")}, "head B never learns the autoencoder as a generator"
    written = {path: path.stat().st_mtime_ns for path in (out / "images").iterdir()}
    assert genspot(argv) == 0
    assert {path: path.stat().st_mtime_ns for path in (out / "images").iterdir()} == written, "a rerun keeps what is done"
    assert "3 aligned fakes of 6 real train photos" in capsys.readouterr().out


def reference_q92() -> Image.Image:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="JPEG", quality=92)
    return Image.open(buffer)


def test_missing_weights_is_a_one_line_error(tmp_path, synthetic_dataset, capsys):
    code = genspot(["aligned-fakes", "--data", str(synthetic_dataset), "--out", str(tmp_path / "a"), "--weights", str(tmp_path)])
    assert code == 2
    assert "TAEF2 weights not found" in capsys.readouterr().err
