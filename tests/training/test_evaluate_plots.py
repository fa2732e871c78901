"""The evaluation plots are real, non-empty PNG images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from genspot.training.loop.metrics import reliability_bins
from genspot.training.evaluation.plots import confusion_counts, plot_confusion_matrix, plot_reliability


def _assert_drawn_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width > 200 and image.height > 200
        colours = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 20  # something was drawn, not a blank canvas


def test_confusion_counts_rows_true_cols_predicted():
    counts = confusion_counts(["real", "sd", "sd", "new"], ["real", "real", "sd", "sd"], ["real", "sd", "new"], ["real", "sd"])
    assert counts.tolist() == [[1, 0], [1, 1], [0, 1]]


def test_confusion_matrix_png_with_unseen_row(tmp_path):
    path = plot_confusion_matrix(
        ["real", "sd", "mj", "newgen", ""], ["real", "sd", "sd", "mj", "sd"], ["real", "sd", "mj"], tmp_path / "sub" / "cm.png"
    )
    _assert_drawn_png(path)


def test_reliability_png(tmp_path):
    rng = np.random.default_rng(0)
    p_ai = rng.random(200)
    labels = (rng.random(200) < p_ai).astype(int)
    _assert_drawn_png(plot_reliability(reliability_bins(p_ai, labels), 0.042, tmp_path / "rel.png"))
