"""The committed default checkpoint exports as `make serve` exports it, the bundle answers as the
checkpoint does, alt-texts cannot move its verdicts, and `make serve` serves it as its model card says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genspot.backend.pipeline.alt_text_check import main as alt_text_check
from genspot.bundle import load_bundle
from genspot.export.parity import TOLERANCES
from genspot.training.model.checkpoint import load_checkpoint
from tests.fixtures.default_model import makefile_variable

# The default model is CLIP-sized (its export converts and traces a ViT-B/16): not in `make test-fast`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def eager(default_checkpoint: Path):
    """The default checkpoint's eager model and metadata, built once for the module."""
    return load_checkpoint(default_checkpoint)


def test_default_checkpoint_exports_with_the_makefile_dtype_and_predicts(default_bundle: Path, eager):
    bundle = load_bundle(default_bundle)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    image = bundle.preprocess(picture)[None]
    p_ai, p_source = bundle.predict(image, [""])
    assert p_ai.shape == (1,) and p_source.shape == (1, len(bundle.labels))
    # the bundle answers what the eager checkpoint says: calibrated sigmoid(logit / T), softmax over generators
    model, meta = eager
    with torch.no_grad():
        logit_a, logits_b = model(image, *model.tokenizer([""]))
    tolerance = TOLERANCES[bundle.manifest["dtype"]]
    np.testing.assert_allclose(p_ai, torch.sigmoid(logit_a / meta.temperature).numpy(), rtol=0, atol=tolerance.p_ai)
    np.testing.assert_allclose(p_source, torch.softmax(logits_b, dim=-1).numpy(), rtol=0, atol=tolerance.p_source)


def test_make_serve_sends_alt_texts_only_where_they_cannot_decide(default_bundle: Path):
    """`make serve` leaves the alt-text policy on auto; the default bundle's p_ai cannot read them."""
    from genspot.backend.api.serve import build_parser, settings_from_args

    args = build_parser().parse_args(makefile_variable("SERVE_ARGS").split())
    assert settings_from_args(args).use_alt_text is None
    assert load_bundle(default_bundle).alt_text_is_safe


def test_alt_texts_change_no_verdict_on_a_dev_slice(default_bundle: Path, dev_data_dir: Path, tmp_path: Path):
    """The issue's four probe alt-texts through the service pipeline: no verdict moves, no ai<->real flip."""
    report_path = tmp_path / "alt-text.json"
    argv = ["--bundle", str(default_bundle), "--data", str(dev_data_dir), "--split", "val", "--limit", "48", "--out", str(report_path)]
    assert alt_text_check(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["images"] == 48 and len(report["probes"]) == 3
    for probe, row in report["probes"].items():
        assert row["share"] <= 0.02 and row["ai_real_flips"] == 0, probe


def test_bundle_stays_within_its_tolerance_on_real_pictures(default_bundle: Path, dev_data_dir: Path, eager):
    """64 dev val pictures (the synthetic probes are all called AI with p_ai near 0.99, where a
    precision loss barely shows): the bundle keeps within its dtype's tolerance of the eager
    checkpoint and no verdict crosses from ai to real or back (default band: 0.35 / 0.65)."""
    import csv

    from genspot.export.parity import eager_probabilities

    with open(dev_data_dir / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["split"] == "val"][:64]
    bundle = load_bundle(default_bundle)
    model, meta = eager
    tolerance = TOLERANCES[bundle.manifest["dtype"]]
    for start in range(0, len(rows), 16):
        chunk = rows[start : start + 16]
        images = torch.stack([bundle.preprocess(Image.open(dev_data_dir / row["image"]).convert("RGB")) for row in chunk])
        captions = [row["caption"] for row in chunk]
        expected_ai, expected_source = eager_probabilities(model, meta.temperature, model.tokenizer, images, captions)
        p_ai, p_source = bundle.predict(images, captions)
        np.testing.assert_allclose(p_ai, expected_ai, rtol=0, atol=tolerance.p_ai)
        np.testing.assert_allclose(p_source, expected_source, rtol=0, atol=tolerance.p_source)
        assert not np.any((p_ai >= 0.65) & (expected_ai <= 0.35) | (p_ai <= 0.35) & (expected_ai >= 0.65))
