"""The training loop: one process's optimisation of the detector over its shard of the training
samples (``Trainer``) and predictions, metrics and calibration fits on the validation samples
(``Validator``); frozen backbones' features are computed once (``prepare_frozen_features``)."""

from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from genspot.training.loop import calibration, metrics
from genspot.training.data.augment import Augmenter
from genspot.training.config import TrainConfig
from genspot.training.data.data import DetectorDataset, Sample, collate
from genspot.training.loop.distributed import TrainingProcess, barrier
from genspot.training.model.features import FrozenFeatures, autocast, frozen_features
from genspot.training.data.losses import MultiTaskLoss
from genspot.training.model.model import GenspotDetector
from genspot.training.model.predict import Predictions, predict


def class_balance(samples: list[Sample]) -> float:
    """Task-A BCE ``pos_weight`` = n_real / n_ai, so both classes weigh the same in the loss."""
    n_ai = sum(s.label_a == 1 for s in samples)
    return (len(samples) - n_ai) / max(1, n_ai)


def make_optimizer(model: GenspotDetector, loss_fn: MultiTaskLoss, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; pretrained backbones at ``lr``, parts trained from scratch at ``head_lr``."""
    backbone_ids = {id(p) for n in ("image", "text") if n in model.branches for p in model.branches[n].parameters()}
    trainable = [p for p in [*model.parameters(), *loss_fn.parameters()] if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) in backbone_ids], "lr": config.lr},
        {"params": [p for p in trainable if id(p) not in backbone_ids], "lr": config.head_lr or config.lr},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=config.weight_decay)


def _seed_worker(worker_id: int) -> None:
    """Each DataLoader worker draws its own augmentations."""
    info = torch.utils.data.get_worker_info()
    info.dataset.augmenter.rng.seed(info.seed)


def prepare_frozen_features(model, train_samples, val_samples, cache_dir, process, config, progress):
    """(train, val) ``FrozenFeatures`` in frozen mode (None otherwise); rank 0 fills the cache first."""
    if config.mode != "frozen" or not model.frozen_branches():
        return None, None
    result = (None, None)
    for turn in ("main", "others"):
        if process.is_main == (turn == "main"):
            kwargs = dict(device=process.device, bf16=config.bf16, progress=progress, write=process.is_main)
            result = tuple(frozen_features(model, samples, cache_dir, **kwargs) for samples in (train_samples, val_samples))
        barrier(process)
    return result


class Trainer:
    """One process's training state: augmented data, loss, AdamW with cosine decay, DDP wrapper."""

    def __init__(self, model: GenspotDetector, samples: list[Sample], frozen: FrozenFeatures | None,
                 config: TrainConfig, process: TrainingProcess, progress: bool):
        self.model, self.frozen, self.config, self.process, self.progress = model, frozen, config, process, progress
        augmenter = Augmenter(config.augment, random.Random(config.seed + process.rank))
        pixels = frozen is None or model.reads_pixels_when_cached()
        dataset = DetectorDataset.for_model(model, samples, augmenter=augmenter, pixels=pixels)
        sampler = DistributedSampler(dataset, process.world_size, process.rank, seed=config.seed) if process.world_size > 1 else None
        self.loader = DataLoader(
            dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
            num_workers=config.num_workers, collate_fn=collate, worker_init_fn=_seed_worker,
            drop_last=len(dataset) > config.batch_size * process.world_size,  # no 1-sample batch for BatchNorm
            generator=torch.Generator().manual_seed(config.seed),
        )
        pos_weight = class_balance(samples) if model.config.loss.balance_a else None
        self.loss_fn = MultiTaskLoss(model.config.loss, pos_weight).to(process.device)
        self.optimizer = make_optimizer(model, self.loss_fn, config)
        total = max(1, config.epochs * len(self.loader))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
        self.module = model
        if process.world_size > 1:
            device_ids = [process.device.index] if process.device.type == "cuda" else None
            self.module = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def epoch(self, number: int) -> dict[str, float]:
        """Train one epoch; mean losses of this process."""
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(number)
        self.module.train()
        device, totals = self.process.device, {}
        bar = tqdm(self.loader, desc=f"epoch {number}", unit="batch", disable=not self.progress)
        for step, batch in enumerate(bar, start=1):
            input_ids, attention_mask = self.model.tokenizer(batch["caption"])
            cached = self.frozen.lookup(batch, device) if self.frozen is not None else None
            with autocast(device, self.config.bf16):
                logit_a, logits_b = self.module(
                    batch["image"].to(device), input_ids.to(device), attention_mask.to(device), cached
                )
            loss, parts = self.loss_fn(logit_a, logits_b, batch["label_a"].to(device), batch["label_b"].to(device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._sync_loss_parameters()
            self.optimizer.step()
            self.scheduler.step()
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value
            bar.set_postfix(loss=f"{totals['loss'] / step:.4f}")
        return {key: value / max(1, len(self.loader)) for key, value in totals.items()}

    def _sync_loss_parameters(self) -> None:
        """Average the learned task weights' gradients over processes (DDP covers only the model)."""
        if self.process.world_size > 1:
            for parameter in self.loss_fn.parameters():
                dist.all_reduce(parameter.grad)
                parameter.grad /= self.process.world_size


class Validator:
    """Predictions and metrics on the validation samples (rank 0)."""

    def __init__(self, model: GenspotDetector, samples: list[Sample], frozen: FrozenFeatures | None,
                 config: TrainConfig, process: TrainingProcess, progress: bool):
        self.model, self.samples, self.frozen = model, samples, frozen
        self.config, self.process, self.progress = config, process, progress

    def predictions(self, blank_captions: bool) -> Predictions:
        return predict(
            self.model, self.samples, batch_size=self.config.batch_size, blank_captions=blank_captions,
            device=self.process.device, bf16=self.config.bf16, frozen=self.frozen, progress=self.progress,
        )

    def metrics(self, predictions: Predictions) -> dict:
        return metrics.compute_metrics(
            [s.label_a for s in self.samples],
            predictions.p_ai,
            [s.label_b for s in self.samples],
            predictions.pred_label_b(self.model.labels_b),
            self.model.labels_b,
        )

    def fit_calibration(self, with_captions: Predictions, blank: Predictions) -> float:
        """The temperature fitted on these val predictions (with captions and blanked); changes nothing."""
        labels = np.array([s.label_a for s in self.samples])
        return calibration.fit_calibration(with_captions.logit_a, blank.logit_a, labels)

    def calibrated_metrics(self, temperature: float, with_captions: Predictions, blank: Predictions) -> dict:
        return {
            "val": self.metrics(with_captions.with_temperature(temperature)),
            "val_blank_captions": self.metrics(blank.with_temperature(temperature)),
        }
