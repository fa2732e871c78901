"""`genspot cv`: grouped folds on the train split only, pooled out-of-fold figures per source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genspot.training.evaluation.crossval import grouped_folds, main, train_samples_by_source
from genspot.training.data.data import group_key
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
