"""`genspot pseudo-label`: label unlabelled images with a checkpoint, keeping confident ones in
balanced classes; with ``--rounds N``, also retrain on them and evaluate, N times over.

Keep rule. Task A decides the class (real or AI) and its confidence ``max(p, 1 - p)``; an image
is a candidate when that confidence reaches ``--threshold``. Head B does not gate keeping (the
paper's rule, both heads >= the threshold, kept almost no AI image once there are many
generators): a kept AI image gets its most likely generator as ``label_b`` when head B's
probability reaches ``--threshold-b``, and no generator otherwise (head B then skips it, head A
still learns from it). Balance (``--balance quota``, the default): every predicted class keeps the
same share of its predictions, most confident first, the share being that of the class with
the fewest candidates; the kept set thus has the predicted class proportions and both classes
whenever each has a candidate. The report gives, per class, the predictions, the candidates,
the kept images and the lowest kept confidence (the class's effective threshold).
``--balance none`` keeps every candidate.

OUT/labels.csv is a labels.csv folder `genspot train --pseudo-labels OUT` accepts (image files
referenced by absolute path, nothing copied; images from parquet or a dataset, which live only in
the image store, a cache, are written to OUT/images/). ``--val-share F`` marks a share F of the
kept images, whole caption groups stratified by pseudo-class, ``split=val``: training then
validates on them too. When the input has labels they are used only to report the accuracy of
what was kept (OUT/summary.json). ``--rounds``: see :mod:`genspot.training.ct2.pseudo_rounds`.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from genspot.training.data.data import Sample, load_samples, split_samples
from genspot.training.loop.metrics import REAL
from genspot.training.evaluation.model_cli import add_model_arguments, head_b_confidence, load_model, probability, run_command, run_model, select_split, write_csv
from genspot.training.model.predict import Predictions

log = logging.getLogger("genspot.pseudo_label")

LABEL_COLUMNS = ("image", "caption", "label_a", "label_b", "split", "source", "confidence")
TASK_A_CLASSES = ("real", "ai")
BALANCES = ("quota", "none")


def task_a_confidence(predictions: Predictions) -> np.ndarray:
    """Per sample, head A's confidence in the class it predicts."""
    return np.maximum(predictions.p_ai, 1.0 - predictions.p_ai)


def select_balanced(confidence: np.ndarray, predicted_ai: np.ndarray, threshold: float, balance: str) -> tuple[np.ndarray, dict]:
    """(sorted indices kept, per task-A class: predicted, candidates, kept, min_kept_confidence)."""
    masks = {"real": ~predicted_ai, "ai": predicted_ai}
    candidates = {name: np.flatnonzero(mask & (confidence >= threshold)) for name, mask in masks.items()}
    predicted = {name: int(mask.sum()) for name, mask in masks.items()}
    shares = [len(candidates[name]) / predicted[name] for name in TASK_A_CLASSES if predicted[name]]
    share = min(shares, default=0.0)
    kept, per_class = [], {}
    for name in TASK_A_CLASSES:
        chosen = candidates[name]
        if balance == "quota":
            by_confidence = chosen[np.argsort(-confidence[chosen], kind="stable")]
            chosen = by_confidence[: math.ceil(share * predicted[name] - 1e-9)]
        kept.append(chosen)
        per_class[name] = {
            "predicted": predicted[name],
            "candidates": len(candidates[name]),
            "kept": len(chosen),
            "min_kept_confidence": float(confidence[chosen].min()) if len(chosen) else None,
        }
    return np.sort(np.concatenate(kept)), per_class


def pseudo_labels_b(predictions: Predictions, labels_b: list[str], threshold_b: float) -> list[str]:
    """``real``, the top generator where head B is sure enough, else "" (an AI image of no known generator)."""
    names = predictions.pred_label_b(labels_b)
    sure = head_b_confidence(predictions) >= threshold_b
    return [name if name == REAL or ok else "" for name, ok in zip(names, sure)]


def val_keys(kept: list[Sample], labels: list[str], share: float, seed: int) -> set[str]:
    """Keys of a share of the kept samples, whole caption groups, stratified by pseudo-label."""
    if share <= 0 or not kept:
        return set()
    relabelled = [replace(s, label_b=label or "ai", split=None) for s, label in zip(kept, labels)]
    return {s.key for s in split_samples(relabelled, share, seed)[1]}


def image_reference(sample: Sample, images_dir: Path) -> str:
    """Absolute path of the sample's file; images from parquet or a dataset (only in the image
    store, which may be deleted) are saved under ``images_dir`` first."""
    if sample.path is not None and not sample.stored:
        return str(Path(sample.path).resolve())
    encoded = sample.read_bytes()
    with Image.open(io.BytesIO(encoded)) as image:
        suffix = (image.format or "png").lower()
    path = images_dir / f"{sample.digest[:24]}.{suffix}"  # load_samples set it: the SHA-256 of these bytes
    images_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded)
    return str(path.resolve())


def accuracy_report(kept: list[Sample], pseudo_b: list[str]) -> dict | None:
    """How often the kept pseudo-labels match the true labels (labelled samples only)."""
    pairs = [(s, label) for s, label in zip(kept, pseudo_b) if s.label_a in (0, 1)]
    if not pairs:
        return None
    per_class: dict[str, dict[str, int]] = {}
    for sample, label in pairs:
        entry = per_class.setdefault(label, {"kept": 0, "correct": 0})
        entry["kept"] += 1
        entry["correct"] += int(sample.label_b == label)
    return {
        "n_labelled": len(pairs),
        "task_a_accuracy": float(np.mean([s.label_a == int(label != REAL) for s, label in pairs])),
        "task_b_accuracy": float(np.mean([s.label_b == label for s, label in pairs])),
        "per_class": {name: {**v, "precision": v["correct"] / v["kept"]} for name, v in sorted(per_class.items())},
    }


def pseudo_label(args: argparse.Namespace) -> dict:
    model, meta, device = load_model(args)
    samples = select_split(load_samples(args.unlabelled, require_labels=False, progress=not args.quiet), args.split)
    predictions = run_model(model, meta, device, samples, args)
    labels_b = pseudo_labels_b(predictions, list(model.labels_b), args.threshold_b)
    confidence = task_a_confidence(predictions)
    kept, per_class = select_balanced(confidence, predictions.p_ai >= 0.5, args.threshold, args.balance)
    if any(per_class[c]["predicted"] and not per_class[c]["kept"] for c in TASK_A_CLASSES):
        log.warning("a predicted class keeps no image (%s): lower --threshold (%.2f) or use --balance none",
                    ", ".join(f"{c} {v['candidates']} of {v['predicted']} confident" for c, v in per_class.items()), args.threshold)
    kept_samples, kept_labels = [samples[i] for i in kept], [labels_b[i] for i in kept]
    to_val = val_keys(kept_samples, kept_labels, args.val_share, args.seed)
    rows = [
        {
            "image": image_reference(sample, args.out / "images"),
            "caption": sample.caption,
            "label_a": int(label != REAL),
            "label_b": label,
            "split": "val" if sample.key in to_val else "train",
            "source": "pseudo",
            "confidence": f"{confidence[i]:.6f}",
        }
        for i, sample, label in zip(kept, kept_samples, kept_labels)
    ]
    write_csv(args.out / "labels.csv", LABEL_COLUMNS, rows)
    summary = {
        "checkpoint": str(args.checkpoint),
        "unlabelled": str(args.unlabelled),
        "split": args.split,
        "threshold": args.threshold,
        "threshold_b": args.threshold_b,
        "balance": args.balance,
        "val_share": args.val_share,
        "blank_captions": args.blank_captions,
        "n_samples": len(samples),
        "n_kept": len(rows),
        "n_val": sum(row["split"] == "val" for row in rows),
        "task_a": per_class,
        "predicted_per_class": dict(sorted(Counter(labels_b).items())),
        "kept_per_class": dict(sorted(Counter(kept_labels).items())),
        "accuracy": accuracy_report(kept_samples, kept_labels),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"kept {summary['n_kept']} of {summary['n_samples']} images at task-A confidence >= {summary['threshold']} "
             f"(balance {summary['balance']}; {summary['n_val']} marked val)"]
    for name, entry in summary["task_a"].items():
        floor = entry["min_kept_confidence"]
        lines.append(f"  task A {name:<4}  kept {entry['kept']:>6} of {entry['candidates']:>6} confident, "
                     f"{entry['predicted']:>6} predicted" + (f"; lowest kept confidence {floor:.3f}" if floor is not None else ""))
    accuracy = summary["accuracy"] or {"per_class": {}}
    width = max(map(len, summary["predicted_per_class"]), default=0)
    for name, predicted in summary["predicted_per_class"].items():
        shown = name or "ai (generator unsure)"
        line = f"  {shown:<{width}}  kept {summary['kept_per_class'].get(name, 0):>6} of {predicted:>6} predicted"
        if name in accuracy["per_class"]:
            line += f"   precision {accuracy['per_class'][name]['precision']:.3f}"
        lines.append(line)
    if summary["accuracy"]:
        a = summary["accuracy"]
        lines.append(f"accuracy of the kept labelled samples: task A {a['task_a_accuracy']:.4f}, task B {a['task_b_accuracy']:.4f}")
    return "\n".join(lines)


def add_keep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=probability, default=0.8, help="minimum task-A confidence max(p, 1-p) (default 0.8)")
    parser.add_argument("--threshold-b", type=probability, default=0.5,
                        help="minimum head-B probability to name a kept AI image's generator (default 0.5)")
    parser.add_argument("--balance", choices=BALANCES, default="quota",
                        help="quota: every predicted class keeps the same share of its predictions (default); none: all confident")
    parser.add_argument("--val-share", type=probability, default=0.0,
                        help="share of the kept images (whole caption groups) marked split=val (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the val share's draw")


def build_parser() -> argparse.ArgumentParser:
    from genspot.training.ct2.pseudo_rounds import add_round_arguments

    parser = argparse.ArgumentParser(prog="genspot pseudo-label", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--unlabelled", required=True, help="folder of images (recursive), labels.csv folder, or parquet")
    parser.add_argument("--out", required=True, type=Path, help="output folder: labels.csv, summary.json (rounds: round*/, rounds.json)")
    add_keep_arguments(parser)
    add_round_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from genspot.training.ct2.pseudo_rounds import check_round_arguments, format_rounds, run_rounds

    parser = build_parser()
    args = parser.parse_args(argv)
    check_round_arguments(parser, args)

    def work() -> str:
        if args.rounds:
            return f"{format_rounds(run_rounds(args))}\nwrote {args.out / 'rounds.json'}"
        summary = format_summary(pseudo_label(args))
        return f"{summary}\nwrote {args.out / 'labels.csv'} (train on it with `genspot train --pseudo-labels {args.out}`)"

    return run_command("genspot pseudo-label", work)
