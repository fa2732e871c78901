"""The committed default checkpoint exports as `make serve` exports it, the bundle answers, and `make serve` serves it as its model card says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genspot.bundle import load_bundle
from genspot.export.cli import main as export_main
from genspot.export.parity import TOLERANCES
from genspot.training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _makefile_variable(name: str) -> str:
    match = re.search(rf"^{name} \?= (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match, f"Makefile has no {name}"
    return match.group(1)


def test_default_checkpoint_exports_with_the_makefile_dtype_and_predicts(tmp_path: Path):
    checkpoint = REPO / _makefile_variable("CHECKPOINT")
    out = tmp_path / "default"
    dtype = _makefile_variable("BUNDLE_DTYPE")
    assert export_main(["torchscript", "--checkpoint", str(checkpoint), "--out", str(out), "--dtype", dtype]) == 0
    bundle = load_bundle(out)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    image = bundle.preprocess(picture)[None]
    p_ai, p_source = bundle.predict(image, [""])
    assert p_ai.shape == (1,) and p_source.shape == (1, len(bundle.labels))
    # the bundle answers what the eager checkpoint says: calibrated sigmoid(logit / T), softmax over generators
    model, meta = load_checkpoint(checkpoint)
    with torch.no_grad():
        logit_a, logits_b = model(image, *model.tokenizer([""]))
    tolerance = TOLERANCES[bundle.manifest["dtype"]]
    np.testing.assert_allclose(p_ai, torch.sigmoid(logit_a / meta["temperature"]).numpy(), rtol=0, atol=tolerance)
    np.testing.assert_allclose(p_source, torch.softmax(logits_b, dim=-1).numpy(), rtol=0, atol=tolerance)


def test_make_serve_judges_the_default_model_without_alt_text():
    """The default model learned its training captions' style (model card), so `make serve` turns alt-text off."""
    from genspot.backend.serve import build_parser, settings_from_args

    args = build_parser().parse_args(_makefile_variable("SERVE_ARGS").split())
    assert settings_from_args(args).use_alt_text is False
