"""Evaluation metrics for both tasks, in plain numpy so training and evaluation share one definition.

Task A (real vs AI) is scored from ``p_ai`` at a threshold; task B (which generator) is
scored over every sample with the inference rule "if A says real, B is real", so a missed
AI image costs task B too. Ground-truth generators the model never saw (not in its
``labels_b``) cannot be predicted; they are counted and shown per class, and left out of
task-B F1 and accuracy so a new generator in an evaluation set does not silently lower
them. Every returned value is a plain ``int``/``float``/``str``/``list``/``dict`` (JSON-ready).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

REAL = "real"
ECE_BINS = 15


def per_class_scores(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class in ``classes`` (0 where undefined)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    precision, recall, f1, support = (np.zeros(len(classes)) for _ in range(4))
    for i, cls in enumerate(classes):
        true_pos = np.sum((y_true == cls) & (y_pred == cls))
        predicted, actual = np.sum(y_pred == cls), np.sum(y_true == cls)
        precision[i] = true_pos / predicted if predicted else 0.0
        recall[i] = true_pos / actual if actual else 0.0
        denominator = precision[i] + recall[i]
        f1[i] = 2 * precision[i] * recall[i] / denominator if denominator else 0.0
        support[i] = actual
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None if one class."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, tie_group, tie_counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(tie_counts)  # 1-based rank of the last score in each tie group
    ranks = (last_rank - (tie_counts - 1) / 2)[tie_group]  # the average 1-based rank of each group
    u_statistic = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u_statistic / (n_pos * n_neg))


def reliability_bins(p_ai: np.ndarray, label_a: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, list]:
    """Top-label reliability: per equal-width confidence bin, mean confidence, accuracy and count.

    Confidence is ``max(p, 1 - p)`` and a prediction is correct when ``p >= 0.5`` matches the
    label, the usual (Guo et al., 2017) definition for a binary classifier.
    """
    p_ai = np.asarray(p_ai, dtype=np.float64)
    label_a = np.asarray(label_a).astype(int)
    confidence = np.maximum(p_ai, 1.0 - p_ai)
    correct = (p_ai >= 0.5).astype(int) == label_a
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(index, weights=correct.astype(float), minlength=n_bins)
    safe = np.maximum(counts, 1)
    return {
        "edges": edges.tolist(),
        "count": counts.astype(int).tolist(),
        "confidence": np.where(counts > 0, conf_sum / safe, 0.0).tolist(),
        "accuracy": np.where(counts > 0, correct_sum / safe, 0.0).tolist(),
    }


def expected_calibration_error(p_ai: np.ndarray, label_a: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Count-weighted mean |accuracy - confidence| over the reliability bins."""
    bins = reliability_bins(p_ai, label_a, n_bins)
    counts = np.asarray(bins["count"], dtype=np.float64)
    if counts.sum() == 0:
        return 0.0
    gaps = np.abs(np.asarray(bins["accuracy"]) - np.asarray(bins["confidence"]))
    return float(np.sum(gaps * counts) / counts.sum())


def task_a_metrics(label_a: np.ndarray, p_ai: np.ndarray, threshold: float = 0.5) -> dict:
    """Real-vs-AI scores: F1 of the AI class, macro-F1 over both classes, accuracy, AUROC, ECE."""
    label_a = np.asarray(label_a).astype(int)
    p_ai = np.asarray(p_ai, dtype=np.float64)
    pred_a = (p_ai >= threshold).astype(int)
    scores = per_class_scores(label_a, pred_a, (0, 1))
    roc = auroc(label_a, p_ai)
    return {
        "n": int(len(label_a)),
        "threshold": float(threshold),
        "f1_ai": float(scores["f1"][1]),
        "f1_real": float(scores["f1"][0]),
        "macro_f1": float(scores["f1"].mean()),
        "accuracy": float(np.mean(pred_a == label_a)) if len(label_a) else 0.0,
        "auroc": roc,
        "ece": expected_calibration_error(p_ai, label_a),
        "recall": {REAL: float(scores["recall"][0]), "ai": float(scores["recall"][1])},
        "precision": {REAL: float(scores["precision"][0]), "ai": float(scores["precision"][1])},
        "support": {REAL: int(scores["support"][0]), "ai": int(scores["support"][1])},
    }


def bootstrap_interval(
    label_a: np.ndarray, p_ai: np.ndarray, threshold: float = 0.5, *, resamples: int = 1000, level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Percentile-bootstrap intervals of task A's macro-F1 and AUROC: how far each figure moves
    over other draws of as many images like these (on a few hundred images, several points,
    which is why two models' figures closer than that are not told apart). Seeded: the same
    inputs give the same interval."""
    label_a = np.asarray(label_a).astype(int)
    p_ai = np.asarray(p_ai, dtype=np.float64)
    if len(label_a) < 2:
        raise ValueError("a bootstrap interval needs at least 2 samples")
    pred_a = (p_ai >= threshold).astype(int)
    rng = np.random.default_rng(seed)
    macro_f1, roc = [], []
    for _ in range(resamples):
        pick = rng.integers(0, len(label_a), len(label_a))
        macro_f1.append(per_class_scores(label_a[pick], pred_a[pick], (0, 1))["f1"].mean())
        area = auroc(label_a[pick], p_ai[pick])
        if area is not None:  # a resample with one class has no AUROC
            roc.append(area)
    tails = [50 * (1 - level), 100 - 50 * (1 - level)]

    def interval(values: list[float]) -> list[float] | None:
        return [float(v) for v in np.percentile(values, tails)] if values else None

    return {"level": level, "resamples": resamples, "macro_f1": interval(macro_f1), "auroc": interval(roc)}


def task_b_metrics(label_b: Sequence[str], pred_b: Sequence[str], labels_b: Sequence[str]) -> dict:
    """Source attribution over all samples ('real' is a class); unseen generators reported apart.

    Samples with an empty ``label_b`` (AI images of unknown origin) are left out and counted.
    """
    label_b = np.asarray([str(v) for v in label_b], dtype=object)
    pred_b = np.asarray([str(v) for v in pred_b], dtype=object)
    named = label_b != ""
    label_b, pred_b = label_b[named], pred_b[named]
    known = [REAL, *[str(v) for v in labels_b if str(v) != REAL]]
    seen = np.isin(label_b, known)
    true_seen, pred_seen = label_b[seen], pred_b[seen]
    # sklearn's convention: score the classes that occur in the truth or the predictions
    scored = [cls for cls in known if np.any(true_seen == cls) or np.any(pred_seen == cls)]
    scores = per_class_scores(true_seen, pred_seen, scored)
    support = scores["support"]
    unseen_names = sorted(set(label_b[~seen].tolist()))
    per_class = {
        cls: {"recall": float(scores["recall"][i]), "f1": float(scores["f1"][i]), "support": int(support[i])}
        for i, cls in enumerate(scored)
    }
    unseen = {}
    for name in unseen_names:
        predictions = pred_b[label_b == name]
        values, counts = np.unique(predictions, return_counts=True)
        unseen[name] = {
            "support": int(len(predictions)),
            "detected_as_ai": float(np.mean(predictions != REAL)),
            "predicted_as": {str(v): int(c) for v, c in zip(values, counts)},
        }
    return {
        "n": int(seen.sum()),
        "classes": scored,
        "macro_f1": float(scores["f1"].mean()) if scored else 0.0,
        "weighted_f1": float(np.sum(scores["f1"] * support) / support.sum()) if support.sum() else 0.0,
        "accuracy": float(np.mean(true_seen == pred_seen)) if len(true_seen) else 0.0,
        "per_class": per_class,
        "unseen": {"n": int((~seen).sum()), "labels": unseen_names, "per_class": unseen},
        "n_without_label": int((~named).sum()),
    }


def compute_metrics(
    label_a: Sequence[int],
    p_ai: Sequence[float],
    label_b: Sequence[str] | None = None,
    pred_b: Sequence[str] | None = None,
    labels_b: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict:
    """Metrics of both tasks as a JSON-serialisable dict: ``{"task_a": ..., "task_b": ...}``.

    ``pred_b`` must already follow the inference rule (``real`` wherever task A says real).
    ``labels_b`` are the generators the model knows; without it, the generators in
    ``pred_b`` are taken as known. Task B is omitted when ``label_b`` or ``pred_b`` is None.
    """
    if len(label_a) != len(p_ai):
        raise ValueError(f"label_a has {len(label_a)} entries but p_ai has {len(p_ai)}")
    result = {"task_a": task_a_metrics(np.asarray(label_a), np.asarray(p_ai), threshold)}
    if label_b is not None and pred_b is not None:
        if not len(label_b) == len(pred_b) == len(label_a):
            raise ValueError("label_b, pred_b and label_a must have the same length")
        known = sorted(set(map(str, pred_b)) - {REAL}) if labels_b is None else list(labels_b)
        result["task_b"] = task_b_metrics(label_b, pred_b, known)
    return result
