"""The samples of a `genspot train` run: its sources split into train and val, pseudo-labels
added, and both sides subsampled to ``--max-train`` / ``--max-val``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random

from genspot.training.config import TrainConfig
from genspot.training.data.data import DataError, Sample, load_samples, split_samples

log = logging.getLogger("genspot.train")


def subsample(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most ``limit`` samples, keeping class proportions (deterministic)."""
    if limit is None or len(samples) <= limit:
        return samples
    rng = random.Random(seed)
    shuffled = samples[:]
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda s: s.label_b)  # stable: random order within each class
    step = len(shuffled) / limit
    return [shuffled[int(i * step)] for i in range(limit)]


def load_data(args: argparse.Namespace, train_config: TrainConfig, progress: bool) -> tuple[list[Sample], list[Sample]]:
    sources = [load_samples(spec, progress=progress) for spec in args.data]
    if args.val_data:
        train = [s for samples in sources for s in samples if s.split in (None, "train")]
        val = [dataclasses.replace(s, split="val") for s in load_samples(args.val_data, progress=progress)]
    else:  # each source split on its own: its split column, or a hold-out of its own groups
        train, val = [], []
        for samples in sources:
            source_train, source_val = split_samples(samples, train_config.val_fraction, train_config.seed)
            train, val = train + source_train, val + source_val
    for folder in args.pseudo_labels:
        pseudo = load_samples(folder, progress=progress)
        pseudo_val = [s for s in pseudo if s.split == "val"]
        log.info("added %d pseudo-labelled samples from %s (%d to val)", len(pseudo), folder, len(pseudo_val))
        train += [dataclasses.replace(s, split="train") for s in pseudo if s.split != "val"]
        val += pseudo_val
    train = subsample(train, args.max_train, train_config.seed)
    val = subsample(val, args.max_val, train_config.seed)
    if not train or not val:
        raise DataError(f"{', '.join(map(str, args.data))}: need both training and validation samples (got {len(train)} and {len(val)})")
    return train, val
