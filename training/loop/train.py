"""`genspot train`: fit the detector on a labels.csv folder or CT2 parquet, write RUN_DIR/model.pt.

The best epoch is chosen by validation task-A macro-F1 (``split`` column ``val``, else a
stratified hold-out), or the last one is kept (``--select last``, after `genspot cv`); at the end head A's temperature is fitted on validation logits and
the checkpoint records val metrics with and without captions (also in metrics.json; the
training curves go to curves.png). ``--mode frozen`` caches the pretrained backbones'
features on disk and trains the rest (fusion and heads); ``--mode finetune`` trains end to end. Under ``torchrun`` each
process trains a shard (DDP); only rank 0 validates and writes.

This module is the command: its options, the configs they give, and the run's order. The parts
live in :mod:`~genspot.training.loop.distributed` (process set-up, logging),
:mod:`~genspot.training.data.train_data` (samples), :mod:`~genspot.training.loop.loop` (``Trainer``,
``Validator``) and :mod:`~genspot.training.loop.calibration`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import torch

from genspot.training.model.checkpoint import save_checkpoint, stored_state_dict
from genspot.training.config import (
    DEFAULT_CONFIG,
    ConfigError,
    ModelConfig,
    TrainConfig,
    load_model_config,
    load_train_config,
    with_overrides,
)
from genspot.training.loop.curves import plot_training_curves
from genspot.training.data.data import DataError, generator_names
from genspot.training.loop.distributed import TrainingProcess, barrier, distributed_runtime, log_to_run_dir
from genspot.training.loop.loop import Trainer, Validator, prepare_frozen_features
from genspot.training.model.model import create_model
from genspot.training.data.train_data import load_data

__all__ = ["build_parser", "calibrate", "distributed_runtime", "main", "prepare_frozen_features", "resolve_configs",
           "Trainer", "Validator"]

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


def calibrate(validator: Validator, fit_temperature: bool = True) -> dict:
    """Fit the temperature on val (a pure fit; it goes to the checkpoint) and return it with the
    calibrated val metrics with and without captions. Without ``fit_temperature`` it stays 1: a
    recipe whose verdict band was chosen on out-of-fold scores keeps those scores' meaning, and val
    is not fitted to."""
    with_captions, blank = validator.predictions(False), validator.predictions(True)
    temperature = validator.fit_calibration(with_captions, blank) if fit_temperature else 1.0
    return {"temperature": temperature, **validator.calibrated_metrics(temperature, with_captions, blank)}


def fit(args: argparse.Namespace, process: TrainingProcess) -> int:
    model_config, train_config = resolve_configs(args)
    progress = not args.quiet and process.is_main
    torch.manual_seed(train_config.seed + process.rank)
    train_samples, val_samples = load_data(args, train_config, progress)
    labels_b = generator_names(train_samples + val_samples)
    log.info(
        "config %s, mode %s, %d process(es) on %s: %d train / %d val samples, %d generator classes: %s",
        model_config.name, train_config.mode, process.world_size, process.device,
        len(train_samples), len(val_samples), len(labels_b), ", ".join(labels_b),
    )
    model = create_model(model_config, labels_b).to(process.device)
    cache_dir = args.cache_dir or args.out / "feature-cache"
    started = time.monotonic()
    train_frozen, val_frozen = prepare_frozen_features(model, train_samples, val_samples, cache_dir, process, train_config, progress)
    if train_frozen is not None:
        log.info("frozen backbones' features of %d train + %d val samples: %.1f s (what %s already held was not recomputed)",
                 len(train_samples), len(val_samples), time.monotonic() - started, cache_dir)
    trainer = Trainer(model, train_samples, train_frozen, train_config, process, progress)
    validator = Validator(model, val_samples, val_frozen, train_config, process, progress)
    train_args = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "train_config": train_config.to_dict()}
    checkpoint_path = args.out / "model.pt"

    history, best, best_state = [], None, None
    for epoch in range(1, train_config.epochs + 1):
        epoch_started = time.monotonic()
        losses = trainer.epoch(epoch)
        train_seconds = time.monotonic() - epoch_started
        if process.is_main:
            task_a = validator.metrics(validator.predictions(args.blank_val_captions))["task_a"]
            val_seconds = time.monotonic() - epoch_started - train_seconds
            history.append({"epoch": epoch, **losses, "val_task_a_macro_f1": task_a["macro_f1"], "val_task_a_f1_ai": task_a["f1_ai"],
                            "train_seconds": train_seconds, "val_seconds": val_seconds})
            log.info("epoch %d: loss %.4f, val task-A macro-F1 %.4f (AI F1 %.4f); training %.1f s (%d steps of batch %d, %.2f s "
                     "a step), validation %.1f s", epoch, losses["loss"], task_a["macro_f1"], task_a["f1_ai"], train_seconds,
                     len(trainer.loader), train_config.batch_size, train_seconds / max(1, len(trainer.loader)), val_seconds)
            if best is None or train_config.select == "last" or task_a["macro_f1"] > best["score"]:
                best = {"epoch": epoch, "score": task_a["macro_f1"]}
                best_state = {k: v.clone() for k, v in stored_state_dict(model).items()}
                save_checkpoint(checkpoint_path, model, metrics={"best_epoch": epoch, "history": history},
                                train_args=train_args, finished=False)  # until the final save below
        barrier(process)

    if process.is_main:
        model.load_state_dict(best_state, strict=False)
        final = {"best_epoch": best["epoch"], **calibrate(validator, train_config.calibrate), "history": history}
        save_checkpoint(checkpoint_path, model, temperature=final["temperature"], metrics=final, train_args=train_args)
        (args.out / "metrics.json").write_text(json.dumps(final, indent=2), encoding="utf-8")
        plot_training_curves(history, args.out / "curves.png", best["epoch"])
        log.info(
            "best epoch %d; val task-A macro-F1 %.4f with captions, %.4f blanked; temperature %.3f; %.0f s; wrote %s",
            best["epoch"], final["val"]["task_a"]["macro_f1"], final["val_blank_captions"]["task_a"]["macro_f1"],
            final["temperature"], time.monotonic() - started, checkpoint_path,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with distributed_runtime(args.device) as process:
        log_to_run_dir(args.out, process)
        try:
            return fit(args, process)
        except (ConfigError, DataError) as exc:
            log.error("genspot train: error: %s", exc)  # stderr and train.log
            return 2
