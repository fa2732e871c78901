"""Curves per epoch: training loss and val task-A macro-F1 (RUN_DIR/curves.png), and the pooled
out-of-fold figures of `genspot cv` (RUN_DIR/cv.png)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_training_curves(history: list[dict], path: str | Path, best_epoch: int | None = None) -> Path:
    """Two panels over epochs: training losses (total, A, B) and val task-A macro-F1 / AI-class F1."""
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    losses, scores = figure.subplots(1, 2)
    for key, label in (("loss", "total"), ("loss_a", "task A (BCE)"), ("loss_b", "task B (CE, AI only)")):
        losses.plot(epochs, [row[key] for row in history], marker="o", label=label)
    losses.set(title="training loss", xlabel="epoch")
    scores.plot(epochs, [row["val_task_a_macro_f1"] for row in history], marker="o", label="macro-F1")
    scores.plot(epochs, [row["val_task_a_f1_ai"] for row in history], marker="o", label="AI-class F1")
    scores.set(title="validation, task A", xlabel="epoch", ylim=(0, 1.02))
    if best_epoch is not None:
        scores.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
    for axes in (losses, scores):
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    path = Path(path)
    FigureCanvasAgg(figure).print_png(str(path))
    return path


def plot_cv_curves(report: dict, path: str | Path) -> Path:
    """One panel per source: out-of-fold task-A AUROC (with its bootstrap band) and macro-F1, and
    task-B macro-F1, over epochs, so the epoch count to train with can be read off."""
    figure = Figure(figsize=(4.5 * len(report["data"]), 3.6), layout="constrained")
    panels = figure.subplots(1, len(report["data"]), squeeze=False)[0]
    epochs = [row["epoch"] for row in report["epochs"]]
    for axes, spec in zip(panels, report["data"]):
        rows = [row[spec] for row in report["epochs"]]
        auroc = [r["task_a_auroc"] for r in rows]
        axes.plot(epochs, auroc, marker="o", label="task-A AUROC")
        axes.fill_between(epochs, [r["interval"]["auroc"][0] for r in rows], [r["interval"]["auroc"][1] for r in rows], alpha=0.2)
        axes.plot(epochs, [r["task_a_macro_f1"] for r in rows], marker="o", label="task-A macro-F1")
        axes.plot(epochs, [r["task_b_macro_f1"] for r in rows], marker="o", label="task-B macro-F1")
        axes.set(title=f"{Path(spec).name}: {report['folds']}-fold grouped CV", xlabel="epoch", ylim=(0, 1.02))
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
    path = Path(path)
    FigureCanvasAgg(figure).print_png(str(path))
    return path
