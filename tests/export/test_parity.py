"""The parity check must fail when the exported model drifts, and say by how much."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import genspot.export.torchscript as torchscript
from genspot.export.cli import main as export_main
from genspot.export.parity import ParityError, check_parity, eager_probabilities


@pytest.fixture(scope="module")
def eager(tiny_checkpoint):
    from genspot.training.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


def _shifted(model, temperature, shift: float):
    def predict(images, captions):
        p_ai, p_source = eager_probabilities(model, temperature, model.tokenizer, images, captions)
        return np.clip(p_ai + shift, 0, 1), p_source

    return predict


def test_check_parity_measures_the_largest_difference(eager):
    model, meta = eager
    size = meta.config["image_size"]
    exact = check_parity(model, meta.temperature, model.tokenizer, [_shifted(model, meta.temperature, 0.0)], size, 1e-4)
    assert exact.ok and exact.max_delta_p_ai == 0.0 and exact.samples == 10
    off = check_parity(model, meta.temperature, model.tokenizer, [_shifted(model, meta.temperature, 0.001)], size, 1e-4)
    assert not off.ok and off.max_delta_p_ai == pytest.approx(0.001, rel=0.05)
    assert "FAILED" in off.describe() and "1.00e-03" in off.describe()


def _corrupting_trace(monkeypatch):
    """Make the exporter trace a wrapper whose head biases are off (a broken export). Head B's too:
    a saturated p_ai on the probe images would hide a head-A offset."""
    original = torchscript.trace_model

    def corrupt_then_trace(wrapper, example):
        with torch.no_grad():
            wrapper.detector.head_a.bias.add_(0.5)
            wrapper.detector.head_b.bias[0].add_(2.0)
        return original(wrapper, example)

    monkeypatch.setattr(torchscript, "trace_model", corrupt_then_trace)


def test_corrupted_export_is_rejected_and_keeps_the_old_bundle(tiny_checkpoint: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "bundle"
    assert export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 0
    before = (out / "manifest.json").read_text()
    _corrupting_trace(monkeypatch)
    assert export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "export rejected, parity FAILED: max |delta p_ai| = " in err
    assert (out / "manifest.json").read_text() == before  # the working bundle was not replaced
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no staging folder left behind


def test_bf16_export_fails_a_float32_tolerance(tiny_checkpoint: Path, tmp_path: Path):
    with pytest.raises(ParityError, match=r"max \|delta p_ai\| = \d\.\d\de-\d\d, .*tolerance 1e-09"):
        torchscript.export_torchscript(tiny_checkpoint, tmp_path / "b", torch.bfloat16, tolerance=1e-9)
    assert not (tmp_path / "b").exists()


def test_recorded_parity_is_what_was_measured(tiny_bundle: Path):
    parity = json.loads((tiny_bundle / "manifest.json").read_text())["parity"]
    assert parity["tolerance"] == 1e-4 and 0 <= parity["max_delta_p_ai"] <= 1e-4


def _picture_folder(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (90 + 10 * index, 120, 3), dtype=np.uint8)).save(folder / f"{index}.jpg", quality=85)
    (folder / "notes.txt").write_text("not a picture")
    return folder


def test_export_checks_parity_on_real_pictures_when_given(tiny_checkpoint: Path, tmp_path: Path, capsys):
    pictures = _picture_folder(tmp_path / "pictures", 3)
    out = tmp_path / "bundle"
    assert export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--parity-images", str(pictures)]) == 0
    parity = json.loads((out / "manifest.json").read_text())["parity"]
    assert parity["pictures"] == 3 and parity["samples"] == 13  # the 10 probes, then the 3 pictures (the .txt skipped)
    assert "13 samples, 3 of them real pictures" in capsys.readouterr().err


def test_a_drift_seen_only_on_the_pictures_fails_the_check(eager, tmp_path: Path):
    """The probes are not enough: a predictor that drifts only on the pictures is caught."""
    from genspot.export.parity import picture_batches
    from genspot.imaging import preprocess

    model, meta = eager
    size = meta.config["image_size"]
    pictures = picture_batches(_picture_folder(tmp_path / "pictures", 2), lambda picture: preprocess(picture, size))
    marked = {tuple(images.shape) for images, _ in pictures}
    exact = _shifted(model, meta.temperature, 0.0)

    def drifts_on_pictures(images, captions):
        p_ai, p_source = exact(images, captions)
        return (p_ai + 0.01 * np.sign(0.5 - p_ai) if tuple(images.shape) in marked else p_ai), p_source  # toward 0.5: never clipped

    assert check_parity(model, meta.temperature, model.tokenizer, [drifts_on_pictures], size, 1e-4).ok
    report = check_parity(model, meta.temperature, model.tokenizer, [drifts_on_pictures], size, 1e-4, pictures)
    assert not report.ok and report.pictures == 2 and report.max_delta_p_ai == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("content", ["nothing", "only-text"])
def test_parity_images_must_be_a_folder_of_pictures(tiny_checkpoint: Path, tmp_path: Path, content: str, capsys):
    folder = tmp_path / "folder"
    if content == "only-text":
        folder.mkdir()
        (folder / "a.txt").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--parity-images", str(folder)])
    assert exit_info.value.code == 2
    assert ("is not a folder" if content == "nothing" else "holds no pictures") in capsys.readouterr().err
