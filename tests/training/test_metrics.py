"""Metrics against hand-computed cases (and scikit-learn, where installed, on random data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genspot.training.loop.metrics import auroc, bootstrap_interval, compute_metrics, expected_calibration_error, reliability_bins

LABEL_A = [1, 1, 1, 0, 0, 0, 1, 0]
P_AI = [0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.7, 0.4]


def test_task_a_hand_computed():
    # predictions 1,1,0,0,1,0,1,0: AI TP=3 FP=1 FN=1, real TP=3 FP=1 FN=1
    a = compute_metrics(LABEL_A, P_AI)["task_a"]
    assert a["f1_ai"] == pytest.approx(0.75)
    assert a["f1_real"] == pytest.approx(0.75)
    assert a["macro_f1"] == pytest.approx(0.75)
    assert a["accuracy"] == pytest.approx(0.75)
    # 14 of the 16 (AI, real) pairs are ordered correctly: 0.3 beats only 0.2 and 0.1
    assert a["auroc"] == pytest.approx(14 / 16)
    assert a["recall"] == {"real": pytest.approx(0.75), "ai": pytest.approx(0.75)}
    assert a["support"] == {"real": 4, "ai": 4}


def test_task_a_threshold_and_all_ai_baseline():
    # everything called AI: AI F1 = 2*0.5*1/1.5, real F1 = 0
    a = compute_metrics(LABEL_A, P_AI, threshold=0.0)["task_a"]
    assert a["f1_ai"] == pytest.approx(2 / 3)
    assert a["f1_real"] == 0.0
    assert a["macro_f1"] == pytest.approx(1 / 3)
    assert a["auroc"] == pytest.approx(14 / 16)  # threshold-free


def test_auroc_ties_and_single_class():
    assert auroc(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert auroc(np.array([1, 1, 0]), np.array([0.7, 0.2, 0.2])) == pytest.approx(0.75)
    assert auroc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_ece_hand_computed():
    # two bins, each |accuracy - confidence| = 0.4
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1]) == pytest.approx(0.4)
    # both correct, confidences 0.9 and 0.8: gaps 0.1 and 0.2
    assert expected_calibration_error([0.1, 0.8], [0, 1]) == pytest.approx(0.15)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == pytest.approx(0.0)
    bins = reliability_bins([0.1, 0.8], [0, 1])
    assert sum(bins["count"]) == 2 and len(bins["edges"]) == 16


def test_task_b_hand_computed_with_unseen():
    label_b = ["real", "real", "sd", "sd", "mj", "mj", "mj", "newgen"]
    pred_b = ["real", "sd", "sd", "real", "mj", "sd", "mj", "mj"]
    label_a = [0 if v == "real" else 1 for v in label_b]
    p_ai = [0.1 if v == "real" else 0.9 for v in pred_b]
    b = compute_metrics(label_a, p_ai, label_b, pred_b, labels_b=["sd", "mj"])["task_b"]
    # real P=1/2 R=1/2 F1=.5; sd P=1/3 R=1/2 F1=.4; mj P=1 R=2/3 F1=.8 (newgen excluded)
    assert b["per_class"]["real"]["f1"] == pytest.approx(0.5)
    assert b["per_class"]["sd"]["f1"] == pytest.approx(0.4)
    assert b["per_class"]["mj"]["f1"] == pytest.approx(0.8)
    assert b["per_class"]["mj"]["recall"] == pytest.approx(2 / 3)
    assert b["macro_f1"] == pytest.approx((0.5 + 0.4 + 0.8) / 3)
    assert b["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.4 + 3 * 0.8) / 7)
    assert b["accuracy"] == pytest.approx(4 / 7)
    assert b["n"] == 7
    assert b["unseen"]["n"] == 1 and b["unseen"]["labels"] == ["newgen"]
    assert b["unseen"]["per_class"]["newgen"] == {"support": 1, "detected_as_ai": 1.0, "predicted_as": {"mj": 1}}


def test_task_b_leaves_out_samples_without_a_generator_name():
    b = compute_metrics([1, 1, 0], [0.9, 0.9, 0.1], ["sd", "", "real"], ["sd", "sd", "real"], labels_b=["sd"])["task_b"]
    assert b["n"] == 2 and b["n_without_label"] == 1 and b["unseen"]["n"] == 0
    assert b["accuracy"] == 1.0 and b["macro_f1"] == 1.0


def test_output_is_json_serialisable():
    metrics = compute_metrics(LABEL_A, P_AI, ["x"] * 4 + ["real"] * 4, ["x"] * 8, labels_b=["x"])
    assert json.loads(json.dumps(metrics)) == metrics


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="p_ai"):
        compute_metrics([1, 0], [0.5])


def test_agrees_with_sklearn_on_random_data():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    label_a = rng.integers(0, 2, 300)
    p_ai = np.clip(label_a * 0.3 + rng.random(300) * 0.7, 0, 1).round(2)  # rounding makes ties
    a = compute_metrics(label_a, p_ai)["task_a"]
    pred_a = (p_ai >= 0.5).astype(int)
    assert a["f1_ai"] == pytest.approx(sk.f1_score(label_a, pred_a))
    assert a["macro_f1"] == pytest.approx(sk.f1_score(label_a, pred_a, average="macro"))
    assert a["auroc"] == pytest.approx(sk.roc_auc_score(label_a, p_ai))
    names = np.array(["real", "a", "b", "c"])
    label_b, pred_b = names[rng.integers(0, 4, 300)], names[rng.integers(0, 4, 300)]
    b = compute_metrics(label_a, p_ai, label_b, pred_b, labels_b=["a", "b", "c"])["task_b"]
    assert b["macro_f1"] == pytest.approx(sk.f1_score(label_b, pred_b, average="macro"))
    assert b["weighted_f1"] == pytest.approx(sk.f1_score(label_b, pred_b, average="weighted"))


def _noisy_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, 1 / (1 + np.exp(-(2.0 * (labels - 0.5) + rng.normal(size=n))))


def test_bootstrap_interval_brackets_the_figure_and_narrows_with_more_images():
    small, large = (bootstrap_interval(*_noisy_scores(n, 1)) for n in (200, 3200))
    for n, interval in ((200, small), (3200, large)):
        labels, scores = _noisy_scores(n, 1)
        point = compute_metrics(labels, scores)["task_a"]
        for key in ("macro_f1", "auroc"):
            low, high = interval[key]
            assert low <= point[key] <= high, (n, key)
    width = {name: iv["macro_f1"][1] - iv["macro_f1"][0] for name, iv in (("small", small), ("large", large))}
    assert width["large"] < width["small"] / 2  # about 1/sqrt(16) of it
    assert 0.05 < width["small"] < 0.3
    assert small == bootstrap_interval(*_noisy_scores(200, 1))  # seeded
    assert small["level"] == 0.95 and small["resamples"] == 1000


def test_bootstrap_interval_of_perfect_and_of_degenerate_predictions():
    perfect = bootstrap_interval(np.array([0, 1] * 10), np.array([0.1, 0.9] * 10), resamples=200)
    assert perfect["macro_f1"] == [1.0, 1.0] and perfect["auroc"] == [1.0, 1.0]
    one_class = bootstrap_interval(np.ones(5, dtype=int), np.full(5, 0.7), resamples=50)
    assert one_class["auroc"] is None  # no resample has both classes
    with pytest.raises(ValueError, match="at least 2 samples"):
        bootstrap_interval(np.array([1]), np.array([0.5]))
