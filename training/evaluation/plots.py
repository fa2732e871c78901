"""Evaluation plots as PNG files: task-B confusion matrix and task-A reliability diagram.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly, so nothing
touches pyplot's global state or needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def confusion_counts(y_true: Sequence[str], y_pred: Sequence[str], rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
    """Counts ``[len(rows), len(cols)]``: true class by row, predicted class by column."""
    row_index = {name: i for i, name in enumerate(rows)}
    col_index = {name: j for j, name in enumerate(cols)}
    counts = np.zeros((len(rows), len(cols)), dtype=int)
    for truth, pred in zip(y_true, y_pred):
        counts[row_index[str(truth)], col_index[str(pred)]] += 1
    return counts


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str], path: str | Path, title: str = "Task B confusion matrix"
) -> Path:
    """Counts written in each cell, colour = share of the row (the true class's recall spread).

    ``classes`` are the predictable classes (``real`` + the model's generators); true labels
    outside them (unseen generators) get extra rows at the bottom, marked "(unseen)"; samples
    with an empty true label are left out.
    """
    named = [(str(t), str(p)) for t, p in zip(y_true, y_pred) if str(t)]  # empty truth: origin unknown
    y_true, y_pred = [t for t, _ in named], [p for _, p in named]
    cols = list(classes)
    extra = sorted(set(y_true) - set(cols))
    rows = cols + extra
    counts = confusion_counts(y_true, y_pred, rows, cols)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * max(len(rows), len(cols)) + 2.5)
    figure = Figure(figsize=(size + 1.0, size))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    axes.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(rows)), [*cols, *(f"{name} (unseen)" for name in extra)], fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    for i, j in zip(*np.nonzero(counts)):
        axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color="white" if shares[i, j] > 0.5 else "black")
    return _save(figure, path)


def plot_reliability(bins: dict, ece: float, path: str | Path, title: str = "Task A reliability") -> Path:
    """Bars of accuracy per confidence bin against the diagonal, with the count histogram below.

    ``bins`` is :func:`genspot.training.loop.metrics.reliability_bins` output.
    """
    edges = np.asarray(bins["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    counts = np.asarray(bins["count"])
    accuracy, confidence = np.asarray(bins["accuracy"]), np.asarray(bins["confidence"])
    filled = counts > 0
    figure = Figure(figsize=(5.0, 6.0))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centres[filled], accuracy[filled], width=width[filled], edgecolor="black", color="#4c72b0", label="accuracy")
    top.bar(
        centres[filled], confidence[filled] - accuracy[filled], bottom=accuracy[filled], width=width[filled],
        color="#dd8452", alpha=0.5, edgecolor="#dd8452", label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.set_xlim(edges[np.argmax(filled)] if filled.any() else 0.0, 1.0)  # binary confidence is >= 0.5
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"{title} (ECE = {ece:.3f})")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, counts, width=width, color="grey", edgecolor="black")
    bottom.set_xlabel("confidence max(p, 1 - p)")
    bottom.set_ylabel("count")
    return _save(figure, path)
