"""`genspot pseudo-label`: the keep rule, the labels.csv it writes, and a second training round."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genspot.training.data import IMAGE_STORE_ENV, load_samples
from genspot.training.predict import Predictions
from genspot.training.pseudo_label import main, pseudo_label_confidence


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_confidence_needs_both_heads_only_for_ai():
    p_ai = np.array([0.95, 0.95, 0.1, 0.6])
    probs_b = np.array([[0.9, 0.1], [0.55, 0.45], [0.5, 0.5], [0.99, 0.01]])
    predictions = Predictions(logit_a=np.zeros(4), logits_b=np.zeros((4, 2)), p_ai=p_ai, probs_b=probs_b)
    # AI & B sure -> min(.95, .9); AI & B unsure -> .55; real -> A only (.9); A unsure -> .6
    assert pseudo_label_confidence(predictions) == pytest.approx([0.9, 0.55, 0.9, 0.6])


@pytest.fixture(scope="module")
def evaluated(tiny_checkpoint, synthetic_dataset, tmp_path_factory) -> dict[str, dict]:
    """Per image, the evaluate command's predictions (to cross-check pseudo-label's choices)."""
    from genspot.training.evaluate import main as evaluate

    out = tmp_path_factory.mktemp("eval")
    assert evaluate(["--checkpoint", str(tiny_checkpoint), "--data", str(synthetic_dataset), "--out", str(out), "--quiet"]) == 0
    return {row["image"]: row for row in read_rows(out / "predictions.csv")}


def expected_confidence(row: dict) -> float:
    p_ai = float(row["p_ai"])
    confidence_a = max(p_ai, 1 - p_ai)
    return confidence_a if row["pred_label_b"] == "real" else min(confidence_a, float(row["p_label_b"]))


def test_labelled_folder_keeps_confident_and_reports_accuracy(tiny_checkpoint, synthetic_dataset, evaluated, tmp_path):
    # threshold in the widest gap between confidences, so the CSV's 6-digit rounding cannot matter
    confidences = np.unique([expected_confidence(row) for row in evaluated.values()])
    widest = int(np.argmax(np.diff(confidences)))
    assert confidences[widest + 1] - confidences[widest] > 1e-5, "tiny checkpoint gives (nearly) equal confidences"
    threshold = float(confidences[widest:widest + 2].mean())
    out = tmp_path / "round1"
    args = ["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(synthetic_dataset), "--threshold", str(threshold), "--out", str(out), "--quiet"]
    assert main(args) == 0
    rows = read_rows(out / "labels.csv")
    expected = {key for key, row in evaluated.items() if expected_confidence(row) >= threshold}
    assert 0 < len(expected) < len(evaluated)
    assert {str(Path(r["image"]).relative_to(synthetic_dataset)) for r in rows} == expected
    for row in rows:
        assert Path(row["image"]).is_absolute() and Path(row["image"]).is_file()
        assert (row["split"], row["source"]) == ("train", "pseudo")
        assert row["label_b"] == evaluated[str(Path(row["image"]).relative_to(synthetic_dataset))]["pred_label_b"]
        assert row["label_a"] == str(int(row["label_b"] != "real"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 24 and summary["n_kept"] == len(rows)
    assert sum(summary["kept_per_class"].values()) == len(rows)
    correct = sum(evaluated[str(Path(r["image"]).relative_to(synthetic_dataset))]["label_b"] == r["label_b"] for r in rows)
    assert summary["accuracy"]["task_b_accuracy"] == pytest.approx(correct / len(rows))
    # the output is valid training data for the next round
    samples = load_samples(out, progress=False)
    assert len(samples) == len(rows) and all(s.split == "train" for s in samples)


def test_image_folder_round_trip_into_training(tiny_checkpoint, synthetic_dataset, tmp_path):
    from genspot.training.train import main as train

    images = tmp_path / "web"
    for i, path in enumerate(sorted((synthetic_dataset / "images").glob("*_0[0-3].png"))):
        target = images / f"page{i % 2}" / path.name  # nested folders, no labels
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    out = tmp_path / "pseudo"
    assert main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(images), "--threshold", "0", "--out", str(out), "--quiet"]) == 0
    rows = read_rows(out / "labels.csv")
    assert len(rows) == 12 and all(r["caption"] == "" for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] is None and summary["n_kept"] == 12
    run = tmp_path / "round2"
    code = train(["--data", str(synthetic_dataset), "--out", str(run), "--config", "tiny", "--epochs", "1", "--quiet", "--pseudo-labels", str(out)])
    assert code == 0 and (run / "model.pt").is_file()
    assert main(["--checkpoint", str(run / "model.pt"), "--unlabelled", str(images), "--out", str(tmp_path / "pseudo2"), "--quiet"]) == 0


def test_bad_threshold_and_missing_folder(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error
        main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(tmp_path), "--threshold", "1.5", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "--threshold: must be in [0, 1]" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(empty), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "no readable samples" in capsys.readouterr().err


def test_parquet_images_are_written_out(tiny_checkpoint, ct2_parquet, tmp_path, monkeypatch):
    store = tmp_path / "store"  # where loading puts parquet images: a cache, deleted below
    monkeypatch.setenv(IMAGE_STORE_ENV, str(store))
    out = tmp_path / "pseudo"
    assert main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(ct2_parquet), "--threshold", "0", "--out", str(out), "--quiet"]) == 0
    rows = read_rows(out / "labels.csv")
    assert len(rows) == 18  # 2 wide rows x 6 + 6 long rows
    for row in rows:
        path = Path(row["image"])
        assert path.is_absolute() and path.parent == (out / "images").resolve() and path.is_file()
    summary = json.loads((out / "summary.json").read_text())
    # CT2's generator names are unknown to the tiny model: only "real" can be right for task B
    assert summary["accuracy"]["n_labelled"] == 18
    assert summary["accuracy"]["task_b_accuracy"] <= 3 / 18  # 3 real images
    shutil.rmtree(store)
    assert len(load_samples(out, progress=False)) == 18  # the pseudo-labels do not depend on the cache
    # --split keeps one split (taken from the parquet file names here)
    out_val = tmp_path / "pseudo-val"
    assert main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(ct2_parquet), "--split", "val", "--threshold", "0", "--out", str(out_val), "--quiet"]) == 0
    assert len(read_rows(out_val / "labels.csv")) == 6
