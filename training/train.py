"""`genspot train`: fit the detector on a labels.csv folder or CT2 parquet, write RUN_DIR/model.pt.

The best epoch is chosen by validation task-A macro-F1 (``split`` column ``val``, else a
stratified hold-out), or the last one is kept (``--select last``, after `genspot cv`); at the end head A's temperature is fitted on validation logits and
the checkpoint records val metrics with and without captions (also in metrics.json; the
training curves go to curves.png). ``--mode frozen`` caches the pretrained backbones'
features on disk and trains the rest (fusion, heads and the forensic branch, which always
trains); ``--mode finetune`` trains end to end. Under ``torchrun`` each
process trains a shard (DDP); only rank 0 validates and writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler
from tqdm import tqdm

from genspot.training import calibration, metrics
from genspot.training.augment import Augmenter
from genspot.training.checkpoint import save_checkpoint, stored_state_dict
from genspot.training.config import (
    DEFAULT_CONFIG,
    ConfigError,
    ModelConfig,
    TrainConfig,
    load_model_config,
    load_train_config,
    with_overrides,
)
from genspot.training.curves import plot_training_curves
from genspot.training.data import (
    DataError,
    DetectorDataset,
    Sample,
    collate,
    generator_names,
    load_samples,
    split_samples,
)
from genspot.training.features import FrozenFeatures, autocast, frozen_features
from genspot.training.losses import MultiTaskLoss
from genspot.training.model import GenspotDetector, create_model
from genspot.training.predict import Predictions, predict
from genspot.training.trees import fit_tree_ensemble, image_tiles

log = logging.getLogger("genspot.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, nargs="+",
                        help="labels.csv folder(s), parquet file/folder, or HF dataset name; several are trained on together")
    parser.add_argument("--out", required=True, type=Path, help="run folder: model.pt, train.log, metrics.json, curves.png")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"config name or JSON path (default {DEFAULT_CONFIG})")
    parser.add_argument("--mode", choices=("frozen", "finetune"), help="frozen backbones (cached) or end to end")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--select", choices=("best", "last"),
                        help="keep the best epoch on val, or the last (with an epoch count chosen by `genspot cv`)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="learning rate of pretrained backbones (finetune)")
    parser.add_argument("--head-lr", type=float, help="learning rate of parts trained from scratch")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--val-fraction", type=float, help="hold-out fraction when the data has no val split")
    parser.add_argument("--caption-dropout", type=float, help="probability of training with an empty caption")
    parser.add_argument("--no-augment", action="store_true", help="image augmentations off (caption dropout stays)")
    parser.add_argument("--val-data", help="validation set of its own (e.g. CT2's official validation parquet): all of it is val, "
                        "and --data's own val split, if any, is not used")
    parser.add_argument("--pseudo-labels", nargs="+", default=[], metavar="DIR",
                        help="labels.csv folders added to train (their rows marked split=val, if any, go to val)")
    parser.add_argument("--blank-val-captions", action="store_true", help="select the best epoch with captions blanked")
    parser.add_argument("--max-train", type=int, help="use at most N training samples (stratified)")
    parser.add_argument("--max-val", type=int, help="use at most N validation samples (stratified)")
    parser.add_argument("--cache-dir", type=Path, help="feature cache folder (default RUN_DIR/feature-cache)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast (CPU with AVX-512-BF16, GPU)")
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


# -- run set-up --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def distributed_runtime(device_arg: str):
    """Rank/world/device; a process group when launched by torchrun with WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device_arg == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_arg)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Runtime(rank, world_size, device)
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def barrier(runtime: Runtime) -> None:
    if runtime.world_size > 1:
        dist.barrier()


def setup_logging(out: Path, runtime: Runtime) -> None:
    """Log to RUN_DIR/train.log and stderr (rank 0); other ranks only warn."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out / "train.log", encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    root = logging.getLogger("genspot")
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO if runtime.is_main else logging.WARNING)


def resolve_configs(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """Config file values, CLI flags on top; the mode decides which backbones are frozen."""
    model_config = load_model_config(args.config)
    train_config = load_train_config(args.config)
    augment = with_overrides(train_config.augment, caption_dropout=args.caption_dropout)
    if args.no_augment:
        augment = dataclasses.replace(augment, enabled=False)
    train_config = with_overrides(
        train_config,
        mode=args.mode,
        epochs=args.epochs,
        select=args.select,
        batch_size=args.batch_size,
        lr=args.lr,
        head_lr=args.head_lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        val_fraction=args.val_fraction,
        num_workers=args.num_workers,
        bf16=args.bf16,
        augment=augment,
    )
    freeze = train_config.mode == "frozen"
    model_config = dataclasses.replace(
        model_config,
        image=dataclasses.replace(model_config.image, freeze=freeze),
        text=dataclasses.replace(model_config.text, freeze=freeze),
    )
    return model_config, train_config


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


# -- training ----------------------------------------------------------------------------------
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


def prepare_frozen_features(model, train_samples, val_samples, cache_dir, runtime, config, progress):
    """(train, val) ``FrozenFeatures`` in frozen mode (None otherwise); rank 0 fills the cache first."""
    if config.mode != "frozen" or not model.frozen_branches():
        return None, None
    result = (None, None)
    for turn in ("main", "others"):
        if runtime.is_main == (turn == "main"):
            kwargs = dict(device=runtime.device, bf16=config.bf16, progress=progress, write=runtime.is_main)
            result = tuple(frozen_features(model, samples, cache_dir, **kwargs) for samples in (train_samples, val_samples))
        barrier(runtime)
    return result


class Trainer:
    """One process's training state: augmented data, loss, AdamW with cosine decay, DDP wrapper."""

    def __init__(self, model: GenspotDetector, samples: list[Sample], frozen: FrozenFeatures | None,
                 config: TrainConfig, runtime: Runtime, progress: bool):
        self.model, self.frozen, self.config, self.runtime, self.progress = model, frozen, config, runtime, progress
        augmenter = Augmenter(config.augment, random.Random(config.seed + runtime.rank))
        pixels = frozen is None or model.reads_pixels_when_cached()
        dataset = DetectorDataset(samples, model.labels_b, model.config.image_size, augmenter, pixels=pixels)
        sampler = DistributedSampler(dataset, runtime.world_size, runtime.rank, seed=config.seed) if runtime.world_size > 1 else None
        self.loader = DataLoader(
            dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
            num_workers=config.num_workers, collate_fn=collate, worker_init_fn=_seed_worker,
            drop_last=len(dataset) > config.batch_size * runtime.world_size,  # no 1-sample batch for BatchNorm
            generator=torch.Generator().manual_seed(config.seed),
        )
        pos_weight = class_balance(samples) if model.config.loss.balance_a else None
        self.loss_fn = MultiTaskLoss(model.config.loss, pos_weight).to(runtime.device)
        self.optimizer = make_optimizer(model, self.loss_fn, config)
        total = max(1, config.epochs * len(self.loader))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
        self.module = model
        if runtime.world_size > 1:
            device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.module = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def epoch(self, number: int) -> dict[str, float]:
        """Train one epoch; mean losses of this process."""
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(number)
        self.module.train()
        device, totals = self.runtime.device, {}
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
        if self.runtime.world_size > 1:
            for parameter in self.loss_fn.parameters():
                dist.all_reduce(parameter.grad)
                parameter.grad /= self.runtime.world_size


class Validator:
    """Predictions and metrics on the validation samples (rank 0)."""

    def __init__(self, model: GenspotDetector, samples: list[Sample], frozen: FrozenFeatures | None,
                 config: TrainConfig, runtime: Runtime, progress: bool):
        self.model, self.samples, self.frozen = model, samples, frozen
        self.config, self.runtime, self.progress = config, runtime, progress

    def predictions(self, blank_captions: bool) -> Predictions:
        return predict(
            self.model, self.samples, batch_size=self.config.batch_size, blank_captions=blank_captions,
            device=self.runtime.device, bf16=self.config.bf16, frozen=self.frozen, progress=self.progress,
        )

    def metrics(self, predictions: Predictions) -> dict:
        return metrics.compute_metrics(
            [s.label_a for s in self.samples],
            predictions.p_ai,
            [s.label_b for s in self.samples],
            predictions.pred_label_b(self.model.labels_b),
            self.model.labels_b,
        )

    def calibrate(self) -> dict:
        """Temperature fitted on val logits with and without captions (the web has both), and the
        calibrated val metrics both ways. When the tree head gives caption-less images their own
        path, the temperature is fitted on the captioned images and that path gets a scale
        (``TreeHead.scale_without_caption``) fitted on the val images with captions blanked."""
        with_captions, blank = self.predictions(False), self.predictions(True)
        labels = np.array([s.label_a for s in self.samples])
        head = self.model.tree_head
        if head is not None and head.separates_captions:
            captioned = np.array([bool(s.caption.strip()) for s in self.samples], dtype=bool)
            temperature = calibration.fit_temperature(with_captions.logit_a[captioned], labels[captioned])
            head.scale_without_caption = temperature / calibration.fit_temperature(blank.logit_a, labels)
            with_captions, blank = self.predictions(False), self.predictions(True)
        else:
            temperature = calibration.fit_temperature(np.concatenate([with_captions.logit_a, blank.logit_a]), np.concatenate([labels, labels]))
        return {
            "temperature": temperature,
            "scale_without_caption": head.scale_without_caption if head is not None else 1.0,
            "val": self.metrics(with_captions.with_temperature(temperature)),
            "val_blank_captions": self.metrics(blank.with_temperature(temperature)),
        }


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


def fit(args: argparse.Namespace, runtime: Runtime) -> int:
    model_config, train_config = resolve_configs(args)
    progress = not args.quiet and runtime.is_main
    torch.manual_seed(train_config.seed + runtime.rank)
    train_samples, val_samples = load_data(args, train_config, progress)
    labels_b = generator_names(train_samples + val_samples)
    log.info(
        "config %s, mode %s, %d process(es) on %s: %d train / %d val samples, %d generator classes: %s",
        model_config.name, train_config.mode, runtime.world_size, runtime.device,
        len(train_samples), len(val_samples), len(labels_b), ", ".join(labels_b),
    )
    model = create_model(model_config, labels_b).to(runtime.device)
    cache_dir = args.cache_dir or args.out / "feature-cache"
    train_frozen, val_frozen = prepare_frozen_features(model, train_samples, val_samples, cache_dir, runtime, train_config, progress)
    trainer = Trainer(model, train_samples, train_frozen, train_config, runtime, progress)
    validator = Validator(model, val_samples, val_frozen, train_config, runtime, progress)
    train_args = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "train_config": train_config.to_dict()}
    checkpoint_path = args.out / "model.pt"

    history, best, best_state = [], None, None
    started = time.monotonic()
    for epoch in range(1, train_config.epochs + 1):
        losses = trainer.epoch(epoch)
        if runtime.is_main:
            task_a = validator.metrics(validator.predictions(args.blank_val_captions))["task_a"]
            history.append({"epoch": epoch, **losses, "val_task_a_macro_f1": task_a["macro_f1"], "val_task_a_f1_ai": task_a["f1_ai"]})
            log.info("epoch %d: loss %.4f, val task-A macro-F1 %.4f (AI F1 %.4f)", epoch, losses["loss"], task_a["macro_f1"], task_a["f1_ai"])
            if best is None or train_config.select == "last" or task_a["macro_f1"] > best["score"]:
                best = {"epoch": epoch, "score": task_a["macro_f1"]}
                best_state = {k: v.clone() for k, v in stored_state_dict(model).items()}
                save_checkpoint(checkpoint_path, model, metrics={"best_epoch": epoch, "history": history},
                                train_args=train_args, finished=False)  # until the final save below
        barrier(runtime)

    if runtime.is_main:
        model.load_state_dict(best_state, strict=False)
        if model_config.trees.enabled:
            fit_trees(model, train_samples, train_config, runtime.device, progress)
        final = {"best_epoch": best["epoch"], **validator.calibrate(), "history": history}
        save_checkpoint(checkpoint_path, model, temperature=final["temperature"], metrics=final, train_args=train_args)
        (args.out / "metrics.json").write_text(json.dumps(final, indent=2), encoding="utf-8")
        plot_training_curves(history, args.out / "curves.png", best["epoch"])
        log.info(
            "best epoch %d; val task-A macro-F1 %.4f with captions, %.4f blanked; temperature %.3f (caption-less "
            "logits scaled by %.3f); %.0f s; wrote %s",
            best["epoch"], final["val"]["task_a"]["macro_f1"], final["val_blank_captions"]["task_a"]["macro_f1"],
            final["temperature"], final["scale_without_caption"], time.monotonic() - started, checkpoint_path,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with distributed_runtime(args.device) as runtime:
        setup_logging(args.out, runtime)
        try:
            return fit(args, runtime)
        except (ConfigError, DataError) as exc:
            log.error("genspot train: error: %s", exc)  # stderr and train.log
            return 2
