"""`genspot evaluate`: score a checkpoint on a labelled dataset and write a report folder.

REPORT_DIR gets ``predictions.csv`` (one row per image), ``metrics.json`` (task A and B, see
:mod:`genspot.training.loop.metrics`), ``confusion_matrix.png`` (task B, 'real' included) and
``reliability.png`` (task A calibration). Probabilities use the checkpoint's temperature.
The model-running helpers it shares with other commands are in :mod:`genspot.training.evaluation.model_cli`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from genspot.training.data.data import Sample, load_samples
from genspot.training.loop.metrics import REAL, bootstrap_interval, compute_metrics, reliability_bins
from genspot.training.evaluation.model_cli import (
    add_model_arguments,
    head_b_confidence,
    jpeg_quality,
    load_model,
    probability,
    run_command,
    run_model,
    select_split,
    write_csv,
)
from genspot.training.evaluation.operating_point import Band, format_table, named_guess_candidates, outcome_table
from genspot.training.evaluation.plots import plot_confusion_matrix, plot_reliability
from genspot.training.model.predict import Predictions

log = logging.getLogger("genspot.evaluate")

PREDICTION_COLUMNS = ("image", "p_ai", "pred_label_a", "pred_label_b", "p_label_b", "label_a", "label_b")


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
    jpeg = f", re-encoded as JPEG q{report['jpeg_quality']}" if report["jpeg_quality"] else ""
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
    point = report.get("operating_point")
    if point:
        lines.append(f"shipped band: ai from p_ai {point['ai_from']:.2f}, real below {point['real_below']:.2f}")
        lines.append(format_table(point["outcomes"]))
        named = point.get("named_generators")
        if named:
            accuracy = "n/a" if named["accuracy"] is None else f"{named['accuracy']:.1%}"
            lines.append(f"generator named on {named['named']} of {named['of_ai_called_ai']} AI pictures called ai "
                         f"(top source >= {named['from']:.2f}): right {accuracy}")
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
        "temperature": meta.temperature,
        "n_samples": len(samples),
        "labels_b": labels_b,
        **compute_metrics(label_a, predictions.p_ai, label_b, pred_b, labels_b, args.threshold),
        "reliability": reliability_bins(predictions.p_ai, label_a),
    }
    report["operating_point"] = shipped_outcomes(model.config.verdict, samples, predictions, labels_b)
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


def shipped_outcomes(verdict, samples: list[Sample], predictions: Predictions, labels_b: list[str]) -> dict:
    """Right / uncertain / wrong per source and class at the band the checkpoint ships with, and how
    often the generators it would name are right."""
    band = Band.around(verdict.threshold, verdict.uncertain_band)
    label_a = np.array([s.label_a for s in samples])
    sources = np.array([s.source or "" for s in samples])
    result = {"ai_from": band.ai_from, "real_below": band.real_below, "outcomes": outcome_table(predictions.p_ai, label_a, sources, band)}
    if verdict.name_generator_from is not None and len(samples):
        candidates = named_guess_candidates(label_a, predictions.p_ai, band)
        named = candidates & (predictions.probs_b.max(axis=1) >= verdict.name_generator_from)
        right = np.array([labels_b[t] == s.label_b for t, s in zip(predictions.probs_b.argmax(axis=1), samples)])
        result["named_generators"] = {
            "from": verdict.name_generator_from, "named": int(named.sum()), "of_ai_called_ai": int(candidates.sum()),
            "accuracy": float(right[named].mean()) if named.any() else None,
        }
    return result


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
