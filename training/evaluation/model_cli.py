"""What every command that runs a checkpoint over labelled or unlabelled images shares
(`genspot evaluate`, `genspot pseudo-label`, `genspot submission`): options, logging, loading
the model and running it, argparse types, one-line errors, CSV output."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genspot.training.model.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint
from genspot.training.data.data import DataError, Sample
from genspot.training.model.features import frozen_features
from genspot.training.model.model import GenspotDetector
from genspot.training.model.predict import Predictions, predict

log = logging.getLogger("genspot.model_cli")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of every command that runs a checkpoint over images."""
    parser.add_argument("--checkpoint", required=True, type=Path, help="RUN_DIR/model.pt written by `genspot train`")
    parser.add_argument("--blank-captions", action="store_true", help="run with every caption empty")
    parser.add_argument("--split", help="use only this split (e.g. val) when the data has a split column")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU with AVX-512-BF16, GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--cache-dir", type=Path, help="read (and add to) the frozen backbones' cached features "
                        "there, as `genspot train --cache-dir` does, instead of running them on every picture")


def log_to_stderr() -> None:
    """Messages of the genspot loggers (e.g. skipped images) on stderr, once."""
    root = logging.getLogger("genspot")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def load_model(args: argparse.Namespace) -> tuple[GenspotDetector, CheckpointMeta, torch.device]:
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    model, meta = load_checkpoint(args.checkpoint, map_location=device)
    return model, meta, device


def run_model(model: GenspotDetector, meta: CheckpointMeta, device: torch.device, samples: list[Sample], args: argparse.Namespace,
              jpeg_quality: int | None = None) -> Predictions:
    cached = getattr(args, "cache_dir", None) is not None and jpeg_quality is None and model.frozen_branches()
    frozen = frozen_features(model, samples, args.cache_dir, device=device, bf16=args.bf16, progress=not args.quiet) if cached else None
    return predict(
        model,
        samples,
        batch_size=args.batch_size,
        temperature=meta.temperature,
        blank_captions=args.blank_captions,
        device=device,
        bf16=args.bf16,
        progress=not args.quiet,
        jpeg_quality=jpeg_quality,
        frozen=frozen,
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
