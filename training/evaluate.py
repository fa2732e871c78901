"""`genspot evaluate`: score a checkpoint on a labelled dataset and write a report folder.

REPORT_DIR gets ``predictions.csv`` (one row per image), ``metrics.json`` (task A and B, see
:mod:`genspot.training.metrics`), ``confusion_matrix.png`` (task B, 'real' included) and
``reliability.png`` (task A calibration). Probabilities use the checkpoint's temperature.
The model-running helpers here are shared with `genspot pseudo-label`.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genspot.training.checkpoint import CheckpointError, load_checkpoint
from genspot.training.data import DataError, Sample, load_samples
from genspot.training.metrics import REAL, bootstrap_interval, compute_metrics, reliability_bins
from genspot.training.model import GenspotDetector
from genspot.training.plots import plot_confusion_matrix, plot_reliability
from genspot.training.predict import Predictions, predict

log = logging.getLogger("genspot.evaluate")

PREDICTION_COLUMNS = ("image", "p_ai", "pred_label_a", "pred_label_b", "p_label_b", "label_a", "label_b")


# -- shared with pseudo_label ------------------------------------------------------------------
def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of every command that runs a checkpoint over images."""
    parser.add_argument("--checkpoint", required=True, type=Path, help="RUN_DIR/model.pt written by `genspot train`")
    parser.add_argument("--blank-captions", action="store_true", help="run with every caption empty")
    parser.add_argument("--split", help="use only this split (e.g. val) when the data has a split column")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU with AVX-512-BF16, GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def log_to_stderr() -> None:
    """Messages of the genspot loggers (e.g. skipped images) on stderr, once."""
    root = logging.getLogger("genspot")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def load_model(args: argparse.Namespace) -> tuple[GenspotDetector, dict, torch.device]:
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    model, meta = load_checkpoint(args.checkpoint, map_location=device)
    return model, meta, device


def run_model(model: GenspotDetector, meta: dict, device: torch.device, samples: list[Sample], args: argparse.Namespace,
              jpeg_quality: int | None = None) -> Predictions:
    return predict(
        model,
        samples,
        batch_size=args.batch_size,
        temperature=float(meta.get("temperature", 1.0)),
        blank_captions=args.blank_captions,
        device=device,
        bf16=args.bf16,
        progress=not args.quiet,
        jpeg_quality=jpeg_quality,
    )


def jpeg_quality(text: str) -> int:
    """argparse type: a JPEG quality in [1, 95]."""
    value = int(text)
    if not 1 <= value <= 95:
        raise argparse.ArgumentTypeError(f"must be in [1, 95], got {text}")
    return value


def probability(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def run_command(prog: str, work: Callable[[], str]) -> int:
    """Run ``work`` with logging set up; print its summary, or bad input as a one-line error (exit 2)."""
    log_to_stderr()
    try:
        summary = work()
    except (CheckpointError, DataError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def head_b_confidence(predictions: Predictions) -> np.ndarray:
    """Probability of the most likely generator of each sample (0 when the model knows none)."""
    probs = predictions.probs_b
    return probs.max(axis=1) if probs.size else np.zeros(len(predictions.p_ai))


# -- evaluation ----------------------------------------------------------------------------------
def select_split(samples: list[Sample], split: str | None) -> list[Sample]:
    """Samples of ``split``; all of them when the data has no split column."""
    if split is None:
        return samples
    if all(s.split is None for s in samples):
        log.info("the data has no split column; using all %d samples", len(samples))
        return samples
    chosen = [s for s in samples if s.split == split]
    if not chosen:
        found = sorted({s.split for s in samples if s.split})
        raise DataError(f"no samples in split {split!r} (splits present: {', '.join(found)})")
    return chosen


def prediction_rows(samples: list[Sample], predictions: Predictions, pred_b: list[str], threshold: float) -> list[dict]:
    confidence_b = head_b_confidence(predictions)
    return [
        {
            "image": sample.key,
            "p_ai": f"{p_ai:.6f}",
            "pred_label_a": int(p_ai >= threshold),
            "pred_label_b": label,
            "p_label_b": "" if label == REAL else f"{conf:.6f}",
            "label_a": sample.label_a,
            "label_b": sample.label_b,
        }
        for sample, p_ai, label, conf in zip(samples, predictions.p_ai, pred_b, confidence_b)
    ]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _range(bounds: list[float]) -> str:
    return f"{bounds[0]:.3f}-{bounds[1]:.3f}"


def format_summary(report: dict) -> str:
    """A short two-column table of the headline numbers."""
    a, b = report["task_a"], report["task_b"]
    rows = [
        ("F1 (AI class)", a["f1_ai"], None),
        ("macro-F1", a["macro_f1"], b["macro_f1"]),
        ("weighted-F1", None, b["weighted_f1"]),
        ("accuracy", a["accuracy"], b["accuracy"]),
        ("AUROC", a["auroc"], None),
        ("ECE", a["ece"], None),
        ("recall real", a["recall"]["real"], None),
        ("recall AI", a["recall"]["ai"], None),
    ]
    captions = "blanked" if report["blank_captions"] else "as given"
    jpeg = f", re-encoded as JPEG q{report['jpeg_quality']}" if report.get("jpeg_quality") else ""
    lines = [
        f"{report['n_samples']} images (split {report['split'] or 'all'}, captions {captions}{jpeg}), temperature {report['temperature']:.3f}",
        f"{'':<15}{'task A':>8}  {'task B':>8}",
        *(f"{name:<15}{_cell(va):>8}  {_cell(vb):>8}" for name, va, vb in rows),
    ]
    interval = a.get("interval")
    if interval and interval["macro_f1"]:
        auroc_range = f", AUROC {_range(interval['auroc'])}" if interval["auroc"] else ""
        lines.append(f"task A {interval['level']:.0%} bootstrap interval ({interval['resamples']} resamples): "
                     f"macro-F1 {_range(interval['macro_f1'])}{auroc_range}")
    unseen = b["unseen"]
    if unseen["n"]:
        lines.append(f"task B leaves out {unseen['n']} samples of unseen generators: {', '.join(unseen['labels'])}")
    if b["n_without_label"]:
        lines.append(f"task B leaves out {b['n_without_label']} AI samples without a generator name")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> dict:
    model, meta, device = load_model(args)
    samples = select_split(load_samples(args.data, progress=not args.quiet), args.split)
    log.info("evaluating %s on %d samples from %s", args.checkpoint, len(samples), args.data)
    predictions = run_model(model, meta, device, samples, args, args.jpeg_quality)
    labels_b = list(model.labels_b)
    pred_b = predictions.pred_label_b(labels_b, args.threshold)
    label_a = [s.label_a for s in samples]
    label_b = [s.label_b for s in samples]
    report = {
        "checkpoint": str(args.checkpoint),
        "data": str(args.data),
        "split": args.split,
        "blank_captions": args.blank_captions,
        "jpeg_quality": args.jpeg_quality,
        "temperature": float(meta.get("temperature", 1.0)),
        "n_samples": len(samples),
        "labels_b": labels_b,
        **compute_metrics(label_a, predictions.p_ai, label_b, pred_b, labels_b, args.threshold),
        "reliability": reliability_bins(predictions.p_ai, label_a),
    }
    if len(samples) >= 2:
        report["task_a"]["interval"] = bootstrap_interval(np.asarray(label_a), predictions.p_ai, args.threshold)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "predictions.csv", PREDICTION_COLUMNS, prediction_rows(samples, predictions, pred_b, args.threshold))
    (out / "metrics.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    suffix = " (captions blanked)" if args.blank_captions else ""
    plot_confusion_matrix(label_b, pred_b, [REAL, *labels_b], out / "confusion_matrix.png", f"Task B confusion matrix{suffix}")
    plot_reliability(report["reliability"], report["task_a"]["ece"], out / "reliability.png", f"Task A reliability{suffix}")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot evaluate", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="labels.csv folder, parquet file/folder, or HF dataset name")
    parser.add_argument("--out", required=True, type=Path, help="report folder")
    parser.add_argument("--threshold", type=probability, default=0.5, help="p_ai at or above which an image counts as AI")
    parser.add_argument("--jpeg-quality", type=jpeg_quality, help="re-encode every image as JPEG at this quality first (robustness)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> str:
        files = "predictions.csv, metrics.json, confusion_matrix.png, reliability.png"
        return f"{format_summary(evaluate(args))}\nwrote {args.out}/: {files}"

    return run_command("genspot evaluate", work)
