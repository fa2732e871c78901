"""`genspot pseudo-label`: the keep rule, the labels.csv it writes, and a second training round."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genspot.training.data.data import IMAGE_STORE_ENV, load_samples
from genspot.training.model.predict import Predictions
from genspot.training.ct2.pseudo_label import main, pseudo_labels_b, select_balanced, task_a_confidence


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def make_predictions(p_ai: list[float], probs_b: list[list[float]] | None = None) -> Predictions:
    p = np.asarray(p_ai, dtype=float)
    probs = np.asarray(probs_b if probs_b is not None else [[0.5, 0.5]] * len(p), dtype=float)
    return Predictions(logit_a=np.zeros(len(p)), logits_b=np.zeros(probs.shape), p_ai=p, probs_b=probs)


def test_quota_keeps_the_same_share_of_each_predicted_class():
    # 10 predicted real, all confident; 10 predicted AI, only 2 confident (what the old rule starved)
    p_ai = [0.01 + 0.008 * i for i in range(10)] + [0.85, 0.95] + [0.55 + 0.02 * i for i in range(8)]
    confidence = task_a_confidence(make_predictions(p_ai))
    kept, per_class = select_balanced(confidence, np.asarray(p_ai) >= 0.5, 0.8, "quota")
    assert per_class["ai"] == {"predicted": 10, "candidates": 2, "kept": 2, "min_kept_confidence": pytest.approx(0.85)}
    assert per_class["real"]["candidates"] == 10 and per_class["real"]["kept"] == 2  # the same 20% share
    assert list(kept) == [0, 1, 10, 11]  # the most confident real ones, and both confident AI ones
    kept_all, per_class_all = select_balanced(confidence, np.asarray(p_ai) >= 0.5, 0.8, "none")
    assert len(kept_all) == 12 and per_class_all["real"]["kept"] == 10


def test_quota_keeps_the_predicted_proportions_and_both_classes():
    p_ai = [0.05] * 20 + [0.9] * 5 + [0.6] * 5  # 20 real, 10 AI of which 5 confident
    confidence = task_a_confidence(make_predictions(p_ai))
    _, per_class = select_balanced(confidence, np.asarray(p_ai) >= 0.5, 0.8, "quota")
    assert (per_class["real"]["kept"], per_class["ai"]["kept"]) == (10, 5)
    _, one_class = select_balanced(confidence[:20], np.zeros(20, dtype=bool), 0.8, "quota")  # nothing predicted AI
    assert one_class["real"]["kept"] == 20 and one_class["ai"] == {"predicted": 0, "candidates": 0, "kept": 0, "min_kept_confidence": None}


def test_head_b_names_the_generator_only_when_sure():
    predictions = make_predictions([0.95, 0.95, 0.1], [[0.9, 0.1], [0.55, 0.45], [0.5, 0.5]])
    assert pseudo_labels_b(predictions, ["gan", "diffusion"], 0.6) == ["gan", "", "real"]
    assert pseudo_labels_b(predictions, ["gan", "diffusion"], 0.5) == ["gan", "gan", "real"]


@pytest.fixture(scope="module")
def soft_checkpoint(learned_checkpoint, tmp_path_factory) -> Path:
    """The learned checkpoint with a high temperature: it separates the synthetic classes with
    confidences near 1, and the keep rule needs some spread to be tested."""
    import torch

    from genspot.training.model.checkpoint import read_checkpoint

    payload = read_checkpoint(learned_checkpoint)
    payload["temperature"] = 8.0
    path = tmp_path_factory.mktemp("soft") / "model.pt"
    torch.save(payload, path)
    return path


@pytest.fixture(scope="module")
def evaluated(soft_checkpoint, synthetic_dataset, tmp_path_factory) -> dict[str, dict]:
    """Per image, the evaluate command's predictions (to cross-check pseudo-label's choices)."""
    from genspot.training.evaluation.evaluate import main as evaluate

    out = tmp_path_factory.mktemp("eval")
    assert evaluate(["--checkpoint", str(soft_checkpoint), "--data", str(synthetic_dataset), "--out", str(out), "--quiet"]) == 0
    return {row["image"]: row for row in read_rows(out / "predictions.csv")}


def confidence_a(row: dict) -> float:
    return max(float(row["p_ai"]), 1 - float(row["p_ai"]))


def test_labelled_folder_keeps_confident_and_reports_accuracy(soft_checkpoint, synthetic_dataset, evaluated, tmp_path):
    # threshold in the widest gap between confidences, so the CSV's 6-digit rounding cannot matter
    confidences = np.unique([confidence_a(row) for row in evaluated.values()])
    widest = int(np.argmax(np.diff(confidences)))
    assert confidences[widest + 1] - confidences[widest] > 1e-5, "the checkpoint gives (nearly) equal confidences"
    threshold = float(confidences[widest:widest + 2].mean())
    out = tmp_path / "round1"
    args = ["--checkpoint", str(soft_checkpoint), "--unlabelled", str(synthetic_dataset), "--threshold", str(threshold),
            "--threshold-b", "0", "--balance", "none", "--out", str(out), "--quiet"]
    assert main(args) == 0
    rows = read_rows(out / "labels.csv")
    expected = {key for key, row in evaluated.items() if confidence_a(row) >= threshold}
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
    assert summary["task_a"]["ai"]["kept"] == sum(r["label_a"] == "1" for r in rows)
    correct = sum(evaluated[str(Path(r["image"]).relative_to(synthetic_dataset))]["label_b"] == r["label_b"] for r in rows)
    assert summary["accuracy"]["task_b_accuracy"] == pytest.approx(correct / len(rows))
    # the output is valid training data for the next round
    samples = load_samples(out, progress=False)
    assert len(samples) == len(rows) and all(s.split == "train" for s in samples)


def test_quota_on_a_folder_and_a_val_share_of_whole_caption_groups(soft_checkpoint, synthetic_dataset, evaluated, tmp_path):
    confidences = np.unique([confidence_a(row) for row in evaluated.values()])
    middle = len(confidences) // 2
    threshold = float(confidences[middle - 1:middle + 1].mean())  # between two values: rounding cannot matter
    out = tmp_path / "quota"
    assert main(["--checkpoint", str(soft_checkpoint), "--unlabelled", str(synthetic_dataset), "--threshold", str(threshold),
                 "--val-share", "0.3", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = read_rows(out / "labels.csv")
    predicted = {"ai": [r for r in evaluated.values() if float(r["p_ai"]) >= 0.5],
                 "real": [r for r in evaluated.values() if float(r["p_ai"]) < 0.5]}
    confident = {c: [r for r in group if confidence_a(r) >= threshold] for c, group in predicted.items()}
    assert all(predicted.values()) and all(confident.values()), "the learned model should predict both classes confidently"
    share = min(len(confident[c]) / len(predicted[c]) for c in predicted)
    for name in ("ai", "real"):
        entry = summary["task_a"][name]
        assert (entry["predicted"], entry["candidates"]) == (len(predicted[name]), len(confident[name]))
        assert entry["kept"] == int(np.ceil(share * len(predicted[name]) - 1e-9)) > 0  # the same share of each class
        assert entry["kept"] == sum(r["label_a"] == str(int(name == "ai")) for r in rows)
        assert entry["min_kept_confidence"] >= threshold
    val = [r for r in rows if r["split"] == "val"]
    assert summary["n_val"] == len(val) and 0 < len(val) < len(rows)
    train_captions = {r["caption"] for r in rows if r["split"] == "train" and r["caption"]}
    assert not train_captions & {r["caption"] for r in val if r["caption"]}  # a caption group is on one side only


def test_image_folder_round_trip_into_training(tiny_checkpoint, synthetic_dataset, tmp_path):
    from genspot.training.loop.train import main as train

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


def write_dev_slice(dev: Path, folder: Path, picks: dict[tuple[str, int], int], skip: int = 0) -> Path:
    """A labels.csv folder of dev images referenced by absolute path (nothing copied):
    ``picks[(split, label_a)]`` images of each, after skipping ``skip`` of each."""
    rows = read_rows(dev / "labels.csv")
    chosen = []
    for (split, label_a), n in picks.items():
        pool = [r for r in rows if r["split"] == split and r["label_a"] == str(label_a)]
        chosen += pool[skip:skip + n]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "caption", "label_a", "label_b", "split"])
        writer.writeheader()
        writer.writerows({**{k: r[k] for k in ("caption", "label_a", "label_b", "split")}, "image": str(dev / r["image"])}
                         for r in chosen)
    return folder


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three trainings and four passes of a CLIP tower on 2 cores
def test_two_rounds_on_a_dev_slice_keep_both_classes_and_are_evaluated(dev_data_dir, tmp_path):
    """The default model's recipe (frozen CLIP: a model that reads real pictures), its backbones'
    features computed once and shared by every round through one cache."""
    from genspot.training.loop.train import main as train

    labelled = write_dev_slice(dev_data_dir, tmp_path / "labelled", {("train", 0): 12, ("train", 1): 12, ("val", 0): 8, ("val", 1): 8})
    pool = write_dev_slice(dev_data_dir, tmp_path / "pool", {("train", 0): 15, ("train", 1): 15}, skip=12)
    start, cache = tmp_path / "round0-run", tmp_path / "features"
    assert train(["--data", str(labelled), "--out", str(start), "--config", "clip", "--cache-dir", str(cache), "--quiet"]) == 0
    out = tmp_path / "pseudo"
    assert main(["--checkpoint", str(start / "model.pt"), "--unlabelled", str(pool), "--out", str(out), "--rounds", "2",
                 "--data", str(labelled), "--config", "clip", "--cache-dir", str(cache), "--train-args", f"--cache-dir {cache}",
                 "--threshold", "0.5", "--val-share", "0.2", "--blank-captions", "--quiet"]) == 0
    report = json.loads((out / "rounds.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1, 2] and report["pool_images_in_held_out"] == 0
    previous = report["rounds"][0]
    for entry in report["rounds"][1:]:
        round_dir = out / f"round{entry['round']}"
        summary = json.loads((round_dir / "summary.json").read_text())
        assert summary["checkpoint"] == previous["checkpoint"]  # labelled by the previous round's model
        rows = read_rows(round_dir / "labels.csv")
        kept = {"real": sum(r["label_a"] == "0" for r in rows), "ai": sum(r["label_a"] == "1" for r in rows)}
        assert entry["kept_task_a"] == kept and kept["real"] > 0 and kept["ai"] > 0  # both classes, counted per class
        assert summary["accuracy"]["n_labelled"] == len(rows)  # the pool's labels only grade the pseudo-labels
        n_val = sum(r["split"] == "val" for r in rows)
        assert n_val == entry["n_val"] > 0
        assert f"added {len(rows)} pseudo-labelled samples from {round_dir} ({n_val} to val)" in (round_dir / "run" / "train.log").read_text()
        metrics = json.loads((round_dir / "eval" / "metrics.json").read_text())  # the retrained model, on the held-out val
        assert metrics["checkpoint"] == entry["checkpoint"] == str(round_dir / "run" / "model.pt")
        assert metrics["n_samples"] == 16 and metrics["blank_captions"] is True
        assert entry["task_a_macro_f1"] == metrics["task_a"]["macro_f1"]
        assert entry["delta_task_a_macro_f1"] == pytest.approx(entry["task_a_macro_f1"] - previous["task_a_macro_f1"])
        assert entry["helped"] == (entry["delta_task_a_macro_f1"] > 0)
        previous = entry


def test_rounds_need_labelled_data(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tiny_checkpoint), "--unlabelled", str(tmp_path), "--out", str(tmp_path / "o"), "--rounds", "2"])
    assert "--rounds needs --data" in capsys.readouterr().err
