"""`genspot cv`: grouped folds on the train split only, pooled out-of-fold figures per source."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

from genspot.training.data.aligned import COLUMNS, aligned_row
from genspot.training.data.data import DataError, Sample, group_key, load_samples
from genspot.training.evaluation import crossval
from genspot.training.evaluation.crossval import grouped_folds, load_extra_train, main, train_samples_by_source
from tests.fixtures.data import write_synthetic_dataset
from tests.training.test_train_cli import learnable_config


def test_folds_hold_whole_groups_and_cover_the_train_split_once(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n_per_class=16, seed=1)
    (samples,) = train_samples_by_source([str(data)], 0.15, 0, progress=False)
    assert samples and all(s.split == "train" for s in samples), "val rows never join a fold"
    folds = grouped_folds(samples, np.zeros(len(samples), dtype=int), 4, seed=0)
    held = np.concatenate(folds)
    assert sorted(held.tolist()) == list(range(len(samples)))
    for fold in folds:
        inside = {group_key(samples[i]) for i in fold}
        outside = {group_key(samples[i]) for i in np.setdiff1d(np.arange(len(samples)), fold)}
        assert not inside & outside, "a caption group on both sides of a fold"
        assert {samples[i].label_a for i in fold} == {0, 1}, "stratified: both classes in every fold"


def test_cv_reports_pooled_out_of_fold_figures_per_source(tmp_path):
    first = write_synthetic_dataset(tmp_path / "first", n_per_class=16, seed=3)
    second = write_synthetic_dataset(tmp_path / "second", n_per_class=12, seed=4)
    config = learnable_config(tmp_path / "learn.json", epochs=6)
    out = tmp_path / "cv"
    argv = ["--data", str(first), str(second), "--out", str(out), "--config", str(config), "--folds", "3", "--quiet"]
    assert main(argv) == 0
    report = json.loads((out / "cv.json").read_text())
    assert report["folds"] == 3 and [row["epoch"] for row in report["epochs"]] == list(range(1, 7))
    last = report["epochs"][-1]
    # every train row of each source is predicted once out of fold (the corrupt file is skipped)
    assert last[str(first)]["n"] == 3 * 14 and last[str(second)]["n"] == 3 * 10
    for spec in (str(first), str(second)):
        row = last[spec]
        assert row["task_a_auroc"] >= 0.8, report["epochs"]
        low, high = row["interval"]["auroc"]
        assert low <= row["task_a_auroc"] <= high
    oof = report["out_of_fold"]
    assert len(oof) == 3 * 14 + 3 * 10 and len({(r["data"], r["key"]) for r in oof}) == len(oof)
    point = report["operating_point"]
    verdict = point["verdict"]
    assert verdict["threshold"] - verdict["uncertain_band"] == pytest.approx(point["real_below"])
    assert verdict["threshold"] + verdict["uncertain_band"] == pytest.approx(point["ai_from"])
    reals = np.array([r["p_ai"] for r in oof if r["label_a"] == 0])
    assert (reals >= point["ai_from"]).mean() <= 0.03, "at most 3% of real photos called ai out of fold"
    assert (out / "cv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_folds_is_a_clear_error(tmp_path, synthetic_dataset, caplog):
    assert main(["--data", str(synthetic_dataset), "--out", str(tmp_path / "cv"), "--config", "tiny", "--folds", "1", "--quiet"]) == 2
    assert "need at least 2 folds" in (tmp_path / "cv" / "train.log").read_text()


def write_twins(folder: Path, originals: list[Sample]) -> Path:
    """An --extra-train folder: a mirrored copy of each original, labelled as `genspot aligned-fakes` does."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for number, original in enumerate(originals):
        image = f"images/twin{number:02d}.jpg"
        ImageOps.mirror(original.open_image()).save(folder / image, format="JPEG", quality=92)
        rows.append(aligned_row(original, image))
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_extra_train_images_never_train_the_fold_that_scores_their_twin(tmp_path, monkeypatch):
    data = write_synthetic_dataset(tmp_path / "data", n_per_class=16, seed=5)
    (samples,) = train_samples_by_source([str(data)], 0.15, 0, progress=False)
    twins = write_twins(tmp_path / "twins", [s for s in samples if s.label_a == 0])
    seen: dict[str, list[list[Sample]]] = {"fit": [], "held": []}

    def recording(cls, role):
        class Recording(cls):
            def __init__(self, model, fold_samples, *args, **kwargs):
                seen[role].append(fold_samples)
                super().__init__(model, fold_samples, *args, **kwargs)
        return Recording

    monkeypatch.setattr(crossval, "Trainer", recording(crossval.Trainer, "fit"))
    monkeypatch.setattr(crossval, "Validator", recording(crossval.Validator, "held"))
    out = tmp_path / "cv"
    argv = ["--data", str(data), "--extra-train", str(twins), "--out", str(out), "--config", "tiny", "--epochs", "1",
            "--folds", "4", "--quiet"]
    assert main(argv) == 0
    is_twin = lambda s: s.path.parent.parent == twins  # noqa: E731
    appearances = {}
    for fit, held in zip(seen["fit"], seen["held"], strict=True):
        assert not any(map(is_twin, held)), "an extra image is never scored"
        assert not {group_key(s) for s in fit} & {group_key(s) for s in held}, "a twin trains the fold of its original"
        for twin in filter(is_twin, fit):
            appearances[twin.key] = appearances.get(twin.key, 0) + 1
    held_groups = [{group_key(s) for s in held} for held in seen["held"]]
    twin_groups = {s.key: group_key(s) for s in load_samples(twins, progress=False)}
    for key, group in twin_groups.items():
        assert appearances.get(key, 0) == sum(group not in groups for groups in held_groups), "in every other fold"
    report = json.loads((out / "cv.json").read_text())
    assert len(report["out_of_fold"]) == len(samples) and report["epochs"][-1][str(data)]["n"] == len(samples)
    assert report["extra_train_per_fold"] == [sum(is_twin(s) for s in fit) for fit in seen["fit"]]


def test_extra_train_images_of_a_group_outside_train_are_refused(tmp_path):
    data = write_synthetic_dataset(tmp_path / "data", n_per_class=16, seed=5)
    everything = load_samples(data, progress=False)
    (train,) = train_samples_by_source([str(data)], 0.15, 0, progress=False)
    val_only = [s for s in everything if s.split == "val" and group_key(s) not in {group_key(t) for t in train}]
    twins = write_twins(tmp_path / "twins", val_only[:1])
    with pytest.raises(DataError, match="not train images of a group"):
        load_extra_train([str(twins)], train, progress=False)


def test_sources_holding_both_classes_get_their_own_auroc():
    rng = np.random.default_rng(0)

    def rows(source, n_ai, n_real, separable):
        labels = [1] * n_ai + [0] * n_real
        scores = [0.9 if y else 0.1 for y in labels] if separable else list(rng.uniform(size=len(labels)))
        return [{"source": source, "label_a": y, "p_ai": p} for y, p in zip(labels, scores)]

    oof = rows("quiz", 20, 25, False) + rows("clean", 30, 30, True) + rows("few", 19, 40, True) + rows("ai-only", 50, 0, True)
    found = crossval.mixed_sources(oof)
    assert sorted(found) == ["clean", "quiz"], "at least 20 of each class"
    assert found["clean"]["auroc"] == 1.0 and (found["clean"]["n_ai"], found["clean"]["n_real"]) == (30, 30)
    low, high = found["quiz"]["interval"]
    assert low < found["quiz"]["auroc"] < high < 1.0
