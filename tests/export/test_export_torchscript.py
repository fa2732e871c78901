"""`genspot export torchscript`: bundle contents, manifest, dynamic shapes, bf16, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.bundle import load_bundle
from genspot.export.cli import main as export_main
from genspot.export.parity import eager_probabilities, probe_images


@pytest.fixture(scope="module")
def eager(tiny_checkpoint):
    from genspot.training.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


def test_bundle_has_its_three_files_and_a_complete_manifest(tiny_bundle: Path, eager):
    model, meta = eager
    assert sorted(p.name for p in tiny_bundle.iterdir()) == ["manifest.json", "model.ts", "tokenizer.json"]
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["format"] == "genspot-bundle/1"
    assert manifest["kind"] == "torchscript" and manifest["device"] == "cpu" and manifest["dtype"] == "float32"
    assert manifest["labels"] == meta.labels_b
    assert manifest["display_names"] == {}, "the synthetic generators have no known names"
    assert manifest["image_size"] == meta.config["image_size"]
    assert manifest["resize_policy"] == "shorter_side_bicubic_center_crop"
    assert manifest["max_text_tokens"] == meta.config["text"]["max_tokens"]
    assert manifest["temperature"] == pytest.approx(meta.temperature)
    assert manifest["metrics"] == json.loads(json.dumps(meta.metrics))
    assert set(manifest["backbones"]) == {"image", "text", "fusion"}
    assert len(manifest["normalization"]["image"]["mean"]) == 3
    assert manifest["model_version"].endswith("-float32") and len(manifest["weights_sha256"]) == 64
    assert manifest["parity"]["max_delta_p_ai"] <= 1e-4 and manifest["parity"]["samples"] > 0
    assert manifest["created"] and manifest["exported_with"]["torch"] == torch.__version__
    assert (tiny_bundle / "tokenizer.json").read_text() == meta.tokenizer_json


@pytest.mark.parametrize("batch", [1, 4, 9])
def test_dynamic_batch_and_sequence_length_match_the_eager_model(tiny_bundle: Path, eager, batch: int):
    model, meta = eager
    bundle = load_bundle(tiny_bundle, text_cache=False)
    images = probe_images(batch, bundle.image_size, torch.Generator().manual_seed(batch))
    captions = [("word " * (3 * i)).strip() for i in range(batch)]  # 0 .. many tokens, some truncated
    p_ai, p_source = bundle.predict(images, captions)
    expected_ai, expected_source = eager_probabilities(model, meta.temperature, model.tokenizer, images, captions)
    assert p_ai.shape == (batch,) and p_source.shape == (batch, len(meta.labels_b))
    np.testing.assert_allclose(p_ai, expected_ai, atol=1e-4)
    np.testing.assert_allclose(p_source, expected_source, atol=1e-4)
    np.testing.assert_allclose(p_source.sum(axis=1), 1.0, atol=1e-5)


def test_text_cache_gives_the_same_answers_and_is_reused(tiny_bundle: Path):
    plain = load_bundle(tiny_bundle, text_cache=False)
    cached = load_bundle(tiny_bundle)
    assert cached.text_cache is not None
    images = probe_images(5, plain.image_size, torch.Generator().manual_seed(0))
    captions = ["same alt", "", "same alt", "other", None]
    for _ in range(2):  # second round: every caption served from the cache
        np.testing.assert_allclose(cached.predict(images, captions)[0], plain.predict(images, captions)[0], atol=1e-5)
    assert len(cached.text_cache._entries) == 3  # "same alt", "" (None normalises to it), "other"


def test_bf16_bundle_is_bf16_and_within_tolerance(tiny_bundle_bf16: Path, eager):
    model, meta = eager
    bundle = load_bundle(tiny_bundle_bf16)
    assert bundle.manifest["dtype"] == "bfloat16" and bundle.dtype == torch.bfloat16
    assert bundle.manifest["model_version"].endswith("-bfloat16")
    assert 0 < bundle.manifest["parity"]["max_delta_p_ai"] <= 0.02  # not bit-identical: it really runs in bf16
    images = probe_images(3, bundle.image_size, torch.Generator().manual_seed(7))
    captions = ["a cat", "", "a photo of a mountain lake at dawn"]
    expected_ai, _ = eager_probabilities(model, meta.temperature, model.tokenizer, images, captions)
    assert np.abs(bundle.predict(images, captions)[0] - expected_ai).max() <= 0.02


def test_cli_exports_int8_bundle_and_reports_parity(tiny_checkpoint: Path, tmp_path: Path, capsys):
    out = tmp_path / "int8"
    assert export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--int8"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"] == "int8-dynamic-linear"
    assert manifest["model_version"].endswith("-float32+int8-dynamic-linear")
    assert "parity ok" in capsys.readouterr().err
    assert load_bundle(out).predict(probe_images(2, manifest["image_size"], torch.Generator()), ["", "x"])[0].shape == (2,)


def test_cli_bad_checkpoint_is_one_line_exit_1(tmp_path: Path, capsys):
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert export_main(["torchscript", "--checkpoint", str(bogus), "--out", str(tmp_path / "b")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("genspot export:") and "model.pt" in last
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_only_the_transformer_backbones_run_in_low_precision(eager):
    from genspot.export.wrapper import ProbabilityModel

    model, meta = eager
    wrapper = ProbabilityModel(model, meta.temperature, torch.bfloat16)
    dtypes = {name: {p.dtype for p in module.parameters()} for name, module in wrapper.detector.branches.items()}
    assert dtypes["image"] == {torch.bfloat16} and dtypes["text"] == {torch.bfloat16}
    assert {p.dtype for p in wrapper.detector.fusion.parameters()} == {torch.float32}
    assert wrapper.detector.branches["image"].mean.dtype == torch.float32  # normalisation stays float32
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the eager model is untouched


def test_known_generators_get_display_names_and_others_keep_their_id():
    from genspot.export.manifest import display_names

    assert display_names(["sdxl", "blocky_gan", "gpt_4o"]) == {"sdxl": "Stable Diffusion XL", "gpt_4o": "GPT-4o"}


def test_every_generator_of_the_default_model_has_a_display_name():
    """Badges name the generator for people: no label of the shipped model may show as its id."""
    from genspot.export.manifest import display_names
    from genspot.training.model.checkpoint import read_checkpoint
    from tests.fixtures.default_model import REPO, makefile_variable

    labels = read_checkpoint(REPO / makefile_variable("CHECKPOINT"))["labels_b"]
    assert sorted(set(labels) - set(display_names(labels))) == []


def test_a_two_view_checkpoint_exports_its_resize_policy_and_answers_as_its_eager_model(synthetic_dataset, tmp_path: Path):
    """The input tensor stacks the views (whole picture resized, native centre crop): the manifest
    names the policy, the bundle preprocesses by it, and the graph reads both views."""
    from PIL import Image

    from genspot.imaging import NATIVE_VIEW, RESIZE_POLICY
    from genspot.training.loop.train import main as train
    from genspot.training.model.checkpoint import load_checkpoint
    from tests.fixtures.models import write_config

    policy = f"{RESIZE_POLICY}+{NATIVE_VIEW}"
    config = write_config(tmp_path / "views.json", image_size=48, resize_policy=policy)
    assert train(["--data", str(synthetic_dataset), "--out", str(tmp_path / "run"), "--config", str(config), "--epochs", "1", "--quiet"]) == 0
    out = tmp_path / "bundle"
    assert export_main(["torchscript", "--checkpoint", str(tmp_path / "run" / "model.pt"), "--out", str(out)]) == 0
    bundle = load_bundle(out, text_cache=False)
    assert bundle.manifest["resize_policy"] == policy and bundle.input_channels == 6
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)) for _ in range(3)]
    images = torch.stack([bundle.preprocess(p) for p in pictures])
    assert images.shape == (3, 6, 48, 48)
    model, meta = load_checkpoint(tmp_path / "run" / "model.pt")
    expected_ai, _ = eager_probabilities(model, meta.temperature, model.tokenizer, images, ["", "a", "b"])
    np.testing.assert_allclose(bundle.predict(images, ["", "a", "b"])[0], expected_ai, atol=1e-4)
    crops_swapped = torch.cat([images[:, 3:], images[:, :3]], dim=1)
    assert np.abs(bundle.predict(crops_swapped, ["", "a", "b"])[0] - expected_ai).max() > 1e-4, "both views reach the head"
