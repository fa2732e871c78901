"""Fitting the boosted-trees head of task A on statistics of the training images."""

from __future__ import annotations

import dataclasses
import logging
import random

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader
from tqdm import tqdm

from genspot.training.augment import Augmenter
from genspot.training.config import TrainConfig
from genspot.training.data import DetectorDataset, Sample, collate
from genspot.training.model import GenspotDetector
from genspot.training.trees import fit_tree_ensemble, image_tiles

log = logging.getLogger("genspot.train")


@torch.no_grad()
def fit_trees(model: GenspotDetector, samples: list[Sample], config: TrainConfig, device: torch.device, progress: bool) -> None:
    """Fit the boosted-trees head on statistics of the training images (of their tiles, with
    ``trees.patch_size``), as they are and in ``trees.augmented_copies`` augmented copies
    (fixed statistics learn robustness only from examples), and attach it to ``model``."""
    trees = model.config.trees
    statistics = model.tree_statistics().to(device)
    augment = dataclasses.replace(config.augment, train_crop=None)  # whole images, as served
    copies = [DetectorDataset(samples, model.labels_b, model.config.image_size)] + [
        DetectorDataset(samples, model.labels_b, model.config.image_size,
                        Augmenter(augment, random.Random(config.seed + 1 + k)))
        for k in range(trees.augmented_copies)
    ]
    loader = DataLoader(ConcatDataset(copies), batch_size=config.batch_size, collate_fn=collate)
    bar = tqdm(loader, desc="tree features", unit="batch", disable=not progress)
    features = torch.cat([statistics(image_tiles(batch["image"].to(device), trees.patch_size)).cpu() for batch in bar]).numpy()
    tiles = len(features) // (len(samples) * len(copies))
    log.info("fitting %d x %d boosted trees on %d x %d statistics (%d tile(s) per image)",
             trees.seeds, trees.trees, *features.shape, tiles)
    ensemble = fit_tree_ensemble(
        features, np.repeat([s.label_a for s in samples] * len(copies), tiles), trees=trees.trees,
        learning_rate=trees.learning_rate, max_leaf_nodes=trees.max_leaf_nodes,
        max_features=trees.max_features, seed=config.seed, seeds=trees.seeds,
    )
    model.attach_trees(ensemble.to(device))
