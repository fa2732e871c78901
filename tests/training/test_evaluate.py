"""`genspot evaluate` end to end on the tiny checkpoint and the synthetic dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genspot.training.evaluation.evaluate import main

CONTRACT_COLUMNS = ["image", "p_ai", "pred_label_a", "pred_label_b"]


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def val_report(tiny_checkpoint, synthetic_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dataset), "--out", str(out), "--split", "val", "--quiet"]) == 0
    return out


def test_writes_report_files(val_report, tiny_checkpoint):
    import torch

    for name in ("confusion_matrix.png", "reliability.png"):
        with Image.open(val_report / name) as image:
            assert image.format == "PNG" and image.width > 200
    rows = read_rows(val_report / "predictions.csv")
    assert list(rows[0])[:4] == CONTRACT_COLUMNS
    assert len(rows) == 6 and all(r["image"].startswith("images/") and "_0" in r["image"] for r in rows)  # val split only
    labels_b = torch.load(tiny_checkpoint, weights_only=True)["labels_b"]
    for row in rows:
        p_ai = float(row["p_ai"])
        assert 0.0 <= p_ai <= 1.0
        assert int(row["pred_label_a"]) == int(p_ai >= 0.5)
        # inference rule: B is "real" exactly when A says real
        assert (row["pred_label_b"] == "real") == (row["pred_label_a"] == "0")
        assert row["pred_label_b"] in ["real", *labels_b]


def test_metrics_json_matches_predictions(val_report):
    report = json.loads((val_report / "metrics.json").read_text())
    rows = read_rows(val_report / "predictions.csv")
    truth = np.array([int(r["label_a"]) for r in rows])
    pred = np.array([int(r["pred_label_a"]) for r in rows])
    assert report["n_samples"] == 6 and report["split"] == "val" and report["blank_captions"] is False
    assert report["task_a"]["accuracy"] == pytest.approx(np.mean(truth == pred))
    assert report["task_b"]["accuracy"] == pytest.approx(np.mean([r["label_b"] == r["pred_label_b"] for r in rows]))
    for key in ("f1_ai", "macro_f1", "auroc", "ece", "recall"):
        assert key in report["task_a"]
    for key in ("macro_f1", "weighted_f1", "per_class", "unseen"):
        assert key in report["task_b"]
    assert report["task_b"]["unseen"]["n"] == 0
    point = report["operating_point"]  # the tiny config ships the default band: ai from 0.65, real below 0.35
    assert (point["ai_from"], point["real_below"]) == pytest.approx((0.65, 0.35))
    for row in point["outcomes"]:
        chosen = [r for r in rows if r["label_a"] == ("1" if row["class"] == "ai" else "0")]
        scores = np.array([float(r["p_ai"]) for r in chosen])
        right = (scores >= 0.65) if row["class"] == "ai" else (scores < 0.35)
        assert row["n"] == len(chosen) and row["right"] == pytest.approx(right.mean(), abs=1e-6)
        assert row["right"] + row["uncertain"] + row["wrong"] == pytest.approx(1.0)
    interval = report["task_a"]["interval"]
    low, high = interval["macro_f1"]
    assert low <= report["task_a"]["macro_f1"] <= high and interval["level"] == 0.95


def test_unseen_generator_and_blank_captions(tiny_checkpoint, synthetic_dataset, tmp_path, capsys):
    # the same images (absolute paths) with one generator renamed to one the model never saw
    data = tmp_path / "data"
    data.mkdir()
    rows = read_rows(synthetic_dataset / "labels.csv")
    for row in rows:
        row["image"] = str(synthetic_dataset / row["image"])
        row["label_b"] = row["label_b"].replace("stripe_diffusion", "brand_new_model")
    with (data / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    assert main(["--checkpoint", str(tiny_checkpoint), "--data", str(data), "--out", str(out), "--blank-captions", "--quiet"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["blank_captions"] is True and report["split"] is None
    assert report["n_samples"] == 24  # corrupt file skipped
    unseen = report["task_b"]["unseen"]
    assert unseen["n"] == 8 and unseen["labels"] == ["brand_new_model"]
    assert sum(unseen["per_class"]["brand_new_model"]["predicted_as"].values()) == 8
    assert report["task_b"]["n"] == 16 and "brand_new_model" not in report["task_b"]["per_class"]
    printed = capsys.readouterr().out
    assert "macro-F1" in printed and "brand_new_model" in printed


def test_bad_input_is_a_one_line_error(tiny_checkpoint, synthetic_dataset, tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--data", str(synthetic_dataset), "--out", str(tmp_path / "r")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    args = ["--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dataset), "--out", str(tmp_path / "r"), "--split", "test", "--quiet"]
    assert main(args) == 2
    assert "no samples in split 'test'" in capsys.readouterr().err


def test_jpeg_quality_re_encodes_the_images_first(tiny_checkpoint, synthetic_dataset, tmp_path, capsys):
    argv = ["--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dataset), "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "clean")]) == 0
    assert main([*argv, "--out", str(tmp_path / "q1"), "--jpeg-quality", "1"]) == 0
    assert json.loads((tmp_path / "q1" / "metrics.json").read_text())["jpeg_quality"] == 1
    assert "re-encoded as JPEG q1" in capsys.readouterr().out
    clean = [float(r["p_ai"]) for r in read_rows(tmp_path / "clean" / "predictions.csv")]
    degraded = [float(r["p_ai"]) for r in read_rows(tmp_path / "q1" / "predictions.csv")]
    assert clean != degraded, "the tiny model reads pixels, so re-encoded images score differently"


def test_cached_features_give_the_same_predictions(tiny_checkpoint, synthetic_dataset, tmp_path, val_report):
    """``--cache-dir``: the frozen backbones' features come from the training cache (filled here first)."""
    cache = tmp_path / "features"
    out = tmp_path / "cached"
    argv = ["--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dataset), "--split", "val", "--quiet"]
    assert main([*argv, "--out", str(out), "--cache-dir", str(cache)]) == 0
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.pt")) == ["image", "text"]
    cached, direct = read_rows(out / "predictions.csv"), read_rows(val_report / "predictions.csv")
    assert [r["image"] for r in cached] == [r["image"] for r in direct]
    np.testing.assert_allclose([float(r["p_ai"]) for r in cached], [float(r["p_ai"]) for r in direct], atol=1e-5)
