"""`genspot pseudo-label`: label unlabelled images with a checkpoint, keeping only confident ones.

As in the paper, a sample is kept when head A's confidence ``max(p, 1 - p)`` and, for an
AI prediction, head B's top softmax probability both reach ``--threshold``. OUT/labels.csv is
a labels.csv folder `genspot train --pseudo-labels OUT` accepts (image files referenced by
absolute path, nothing copied; images from parquet or a dataset, which live only in the image
store, a cache, are written to OUT/images/), so
rounds can repeat: train, pseudo-label, train again. When the input has labels they are used
only to report the accuracy of what was kept (OUT/summary.json).
"""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from genspot.training.data import Sample, load_samples
from genspot.training.evaluate import (
    add_model_arguments,
    head_b_confidence,
    load_model,
    probability,
    run_command,
    run_model,
    select_split,
    write_csv,
)
from genspot.training.metrics import REAL
from genspot.training.predict import Predictions

LABEL_COLUMNS = ("image", "caption", "label_a", "label_b", "split", "source", "confidence")


def pseudo_label_confidence(predictions: Predictions) -> np.ndarray:
    """Per sample, head A's confidence, lowered to head B's where A says AI (B unused for real)."""
    p_ai = predictions.p_ai
    confidence_a = np.maximum(p_ai, 1.0 - p_ai)
    return np.where(p_ai >= 0.5, np.minimum(confidence_a, head_b_confidence(predictions)), confidence_a)


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
    pseudo_b = predictions.pred_label_b(list(model.labels_b))
    confidence = pseudo_label_confidence(predictions)
    kept = [i for i in range(len(samples)) if confidence[i] >= args.threshold]
    rows = [
        {
            "image": image_reference(samples[i], args.out / "images"),
            "caption": samples[i].caption,
            "label_a": int(pseudo_b[i] != REAL),
            "label_b": pseudo_b[i],
            "split": "train",
            "source": "pseudo",
            "confidence": f"{confidence[i]:.6f}",
        }
        for i in kept
    ]
    write_csv(args.out / "labels.csv", LABEL_COLUMNS, rows)
    summary = {
        "checkpoint": str(args.checkpoint),
        "unlabelled": str(args.unlabelled),
        "split": args.split,
        "threshold": args.threshold,
        "blank_captions": args.blank_captions,
        "n_samples": len(samples),
        "n_kept": len(kept),
        "predicted_per_class": dict(sorted(Counter(pseudo_b).items())),
        "kept_per_class": dict(sorted(Counter(pseudo_b[i] for i in kept).items())),
        "accuracy": accuracy_report([samples[i] for i in kept], [pseudo_b[i] for i in kept]),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"kept {summary['n_kept']} of {summary['n_samples']} images at confidence >= {summary['threshold']}"]
    accuracy = summary["accuracy"] or {"per_class": {}}
    width = max(map(len, summary["predicted_per_class"]), default=0)
    for name, predicted in summary["predicted_per_class"].items():
        line = f"  {name:<{width}}  kept {summary['kept_per_class'].get(name, 0):>6} of {predicted:>6} predicted"
        if name in accuracy["per_class"]:
            line += f"   precision {accuracy['per_class'][name]['precision']:.3f}"
        lines.append(line)
    if summary["accuracy"]:
        a = summary["accuracy"]
        lines.append(f"accuracy of the kept labelled samples: task A {a['task_a_accuracy']:.4f}, task B {a['task_b_accuracy']:.4f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot pseudo-label", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--unlabelled", required=True, help="folder of images (recursive), labels.csv folder, or parquet")
    parser.add_argument("--threshold", type=probability, default=0.8, help="minimum confidence of both heads (default 0.8)")
    parser.add_argument("--out", required=True, type=Path, help="output folder: labels.csv, summary.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> str:
        summary = format_summary(pseudo_label(args))
        return f"{summary}\nwrote {args.out / 'labels.csv'} (train on it with `genspot train --pseudo-labels {args.out}`)"

    return run_command("genspot pseudo-label", work)
