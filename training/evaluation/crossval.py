"""`genspot cv`: grouped K-fold cross-validation of a training recipe on the *train* split only.

Recipe searches select on these folds, so the val split stays untouched until the chosen
recipe is trained once (``"select": "last"`` with the epoch count found here) and evaluated.
Folds keep each caption / prompt group (``group_key``) on one side and are stratified by
source and class. Every epoch, each fold's held-out images are predicted; the out-of-fold
predictions of all folds are pooled per source (each ``--data`` given) into task-A macro-F1
(captions blanked) and AUROC with percentile-bootstrap intervals, and task-B macro-F1 (captions
as given). RUN_DIR gets ``cv.json`` (the pooled figures per epoch, each image's last-epoch out-of-fold
prediction, and the operating point they support: ``operating_point``) and ``cv.png``. Takes
the same options as `genspot train`, plus ``--folds`` and ``--extra-train``: images made from
train images (``genspot aligned-fakes``) that train in every fold not holding out their group and
are never scored, so a fake never trains a fold that scores its twin, and the figures and the
operating point stay those of the original data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold

from genspot.training.loop import metrics
from genspot.training.model.checkpoint import stored_state_dict
from genspot.training.config import ConfigError
from genspot.training.loop.curves import plot_cv_curves
from genspot.training.data.data import DataError, Sample, generator_names, group_key, load_samples, split_samples
from genspot.training.model.features import FrozenFeatures
from genspot.training.loop.distributed import TrainingProcess, distributed_runtime, log_to_run_dir
from genspot.training.loop.loop import Trainer, Validator, prepare_frozen_features
from genspot.training.model.model import create_model
from genspot.training.evaluation.operating_point import (
    Targets,
    choose_band,
    choose_naming_confidence,
    format_table,
    named_guess_candidates,
    outcome_table,
)
from genspot.training.loop.train import build_parser as build_train_parser, resolve_configs

log = logging.getLogger("genspot.cv")


def build_parser():
    parser = build_train_parser()
    parser.prog, parser.description = "genspot cv", __doc__.split("\n\n")[0]
    parser.add_argument("--folds", type=int, default=5, help="number of grouped folds (default 5)")
    parser.add_argument("--extra-train", nargs="+", default=[], metavar="DIR",
                        help="labels.csv folders of images made from --data's train images (`genspot aligned-fakes`), "
                        "each with its original's group: trained on in every fold that does not hold out that group, never scored")
    return parser


def train_samples_by_source(specs: list[str], val_fraction: float, seed: int, progress: bool) -> list[list[Sample]]:
    """Each source's train part (its split column, else the hold-out `genspot train` would make)."""
    return [split_samples(load_samples(spec, progress=progress), val_fraction, seed)[0] for spec in specs]


def grouped_folds(samples: list[Sample], sources: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out index arrays: whole groups per fold, stratified by source and task-A class."""
    strata = [f"{source}:{s.label_a}" for s, source in zip(samples, sources)]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [held for _, held in splitter.split(np.zeros(len(samples)), strata, [group_key(s) for s in samples])]


def load_extra_train(folders: list[str], samples: list[Sample], progress: bool) -> list[Sample]:
    """The extra train images; each must carry the group of a train image (its original's), or
    nothing would keep it off the fold that scores its original."""
    extra = [s for folder in folders for s in load_samples(folder, progress=progress)]
    known = {group_key(s) for s in samples}
    strays = [s for s in extra if s.split not in (None, "train") or group_key(s) not in known]
    if strays:
        raise DataError(
            f"{len(strays)} extra train image(s) are not train images of a group of --data's train split "
            f"(e.g. {strays[0].key}: split {strays[0].split}, group {group_key(strays[0])!r})"
        )
    return extra


def extra_in_folds(extra: list[Sample], samples: list[Sample], folds: list[np.ndarray]) -> list[np.ndarray]:
    """Per fold, the indices of the extra images it trains on: those whose group it does not hold out."""
    groups = [group_key(s) for s in extra]
    chosen = []
    for held in folds:
        held_groups = {group_key(samples[i]) for i in held}
        chosen.append(np.array([i for i, group in enumerate(groups) if group not in held_groups], dtype=int))
    return chosen


def subset(frozen: FrozenFeatures | None, index: np.ndarray) -> FrozenFeatures | None:
    if frozen is None:
        return None
    return FrozenFeatures(frozen.image[torch.as_tensor(index)] if frozen.image is not None else None, frozen.text)


def pooled_metrics(samples: list[Sample], p_ai: np.ndarray, pred_b: list[str], labels_b: list[str]) -> dict:
    label_a = np.array([s.label_a for s in samples])
    result = metrics.compute_metrics(label_a, p_ai, [s.label_b for s in samples], pred_b, labels_b)
    return {
        "n": len(samples),
        "task_a_macro_f1": result["task_a"]["macro_f1"],
        "task_a_auroc": result["task_a"]["auroc"],
        "task_b_macro_f1": result["task_b"]["macro_f1"],
        "interval": metrics.bootstrap_interval(label_a, p_ai),
    }


def cross_validate(args, process: TrainingProcess) -> dict:
    model_config, train_config = resolve_configs(args)
    progress = not args.quiet
    by_source = train_samples_by_source(args.data, train_config.val_fraction, train_config.seed, progress)
    samples = [s for part in by_source for s in part]
    sources = np.array([i for i, part in enumerate(by_source) for _ in part])
    if args.folds < 2 or len(samples) < args.folds:
        raise DataError(f"need at least 2 folds and as many training samples (got {args.folds} folds, {len(samples)} samples)")
    extra = load_extra_train(args.extra_train, samples, progress)
    labels_b = generator_names(samples + extra)
    folds = grouped_folds(samples, sources, args.folds, train_config.seed)
    extra_folds = extra_in_folds(extra, samples, folds)
    log.info("config %s: %d train samples from %d source(s), %d grouped folds of %s", model_config.name,
             len(samples), len(by_source), len(folds), ", ".join(str(len(f)) for f in folds))
    if extra:
        log.info("%d extra train images, never scored; each fold trains on %s of them", len(extra),
                 ", ".join(str(len(f)) for f in extra_folds))
    cache_dir = args.cache_dir or args.out / "feature-cache"
    epochs = train_config.epochs
    p_ai = np.zeros((epochs, len(samples)))
    pred_b = [[""] * len(samples) for _ in range(epochs)]
    top_b, top_p = [""] * len(samples), np.zeros(len(samples))  # the source head's guess, last epoch
    started = time.monotonic()
    torch.manual_seed(train_config.seed)
    model = create_model(model_config, labels_b).to(process.device)  # built once: backbones are the folds' costliest part
    untrained = stored_state_dict(model)  # what training changes; each fold starts from it
    everything = samples + extra  # extra images after the scored ones: held-out indices stay valid
    frozen, _ = prepare_frozen_features(model, everything, [], cache_dir, process, train_config, progress)
    for number, (held, extra_fitted) in enumerate(zip(folds, extra_folds), start=1):
        torch.manual_seed(train_config.seed)
        model.load_state_dict(untrained, strict=False)
        fitted = np.concatenate([np.setdiff1d(np.arange(len(samples)), held), len(samples) + extra_fitted])
        fit_samples, held_samples = [everything[i] for i in fitted], [samples[i] for i in held]
        trainer = Trainer(model, fit_samples, subset(frozen, fitted), train_config, process, progress=False)
        validator = Validator(model, held_samples, subset(frozen, held), train_config, process, progress=False)
        for epoch in range(epochs):
            trainer.epoch(epoch + 1)
            blank, given = validator.predictions(True), validator.predictions(False)
            p_ai[epoch, held] = blank.p_ai
            for i, label in zip(held, given.pred_label_b(labels_b)):
                pred_b[epoch][i] = label
        for i, best, probs in zip(held, given.probs_b.argmax(axis=1), given.probs_b):
            top_b[i], top_p[i] = labels_b[best], float(probs[best])
        log.info("fold %d/%d done (%.0f s so far)", number, len(folds), time.monotonic() - started)
    per_epoch = []
    for epoch in range(epochs):
        row = {"epoch": epoch + 1}
        for index, spec in enumerate(args.data):
            mask = sources == index
            chosen = [samples[i] for i in np.flatnonzero(mask)]
            row[str(spec)] = pooled_metrics(chosen, p_ai[epoch, mask], [pred_b[epoch][i] for i in np.flatnonzero(mask)], labels_b)
        per_epoch.append(row)
    oof = out_of_fold_rows(samples, [str(args.data[i]) for i in sources], p_ai[-1], top_b, top_p)
    return {
        "config": model_config.name,
        "train_config": train_config.to_dict(),
        "data": [str(spec) for spec in args.data],
        "folds": len(folds),
        "fold_sizes": [len(f) for f in folds],
        "extra_train": [str(folder) for folder in args.extra_train],
        "extra_train_per_fold": [len(f) for f in extra_folds],
        "seconds": round(time.monotonic() - started, 1),
        "epochs": per_epoch,
        "operating_point": operating_point(oof),
        "mixed_sources": mixed_sources(oof),
        "out_of_fold": oof,
    }


def out_of_fold_rows(samples: list[Sample], data: list[str], p_ai: np.ndarray, top_b: list[str], top_p: np.ndarray) -> list[dict]:
    """The last epoch's out-of-fold prediction of every train image (the operating point's input)."""
    return [
        {"data": spec, "key": s.key, "source": s.source or "", "label_a": s.label_a, "label_b": s.label_b,
         "p_ai": round(float(p), 6), "top_source": b, "top_source_p": round(float(q), 6)}
        for s, spec, p, b, q in zip(samples, data, p_ai, top_b, top_p)
    ]


def operating_point(oof: list[dict], targets: Targets = Targets()) -> dict:
    """The verdict band and naming confidence these predictions support, with the outcomes at that band."""
    p_ai = np.array([r["p_ai"] for r in oof])
    label_a = np.array([r["label_a"] for r in oof])
    sources = np.array([r["source"] for r in oof])
    band = choose_band(p_ai, label_a, sources, targets)
    correct = np.array([r["top_source"] == r["label_b"] for r in oof])
    called_ai = named_guess_candidates(label_a, p_ai, band)
    top_p, data = np.array([r["top_source_p"] for r in oof]), np.array([r["data"] for r in oof])
    naming = choose_naming_confidence(top_p[called_ai], correct[called_ai], targets, data[called_ai])
    return {
        "targets": dataclasses.asdict(targets),
        "verdict": {"threshold": band.threshold, "uncertain_band": band.uncertain_band, "name_generator_from": naming},
        "ai_from": band.ai_from, "real_below": band.real_below,
        "outcomes": outcome_table(p_ai, label_a, sources, band),
    }


MIXED_SOURCE_MIN = 20  # pictures of each class a source needs for its own AUROC


def mixed_sources(oof: list[dict]) -> dict[str, dict]:
    """AUROC with its interval for each source holding both classes (at least ``MIXED_SOURCE_MIN``
    of each): there only the real-vs-AI cue can help, where the pooled AUROC also rewards telling
    sources apart."""
    found = {}
    for source in sorted({r["source"] for r in oof}):
        rows = [r for r in oof if r["source"] == source]
        label_a = np.array([r["label_a"] for r in rows])
        n_ai = int(label_a.sum())
        if min(n_ai, len(rows) - n_ai) < MIXED_SOURCE_MIN:
            continue
        p_ai = np.array([r["p_ai"] for r in rows])
        found[source] = {"n_ai": n_ai, "n_real": len(rows) - n_ai, "auroc": metrics.auroc(label_a, p_ai),
                         "interval": metrics.bootstrap_interval(label_a, p_ai)["auroc"]}
    return found


def summary(report: dict) -> str:
    last = report["epochs"][-1]
    lines = [f"{report['config']}: {report['folds']}-fold grouped CV on train, out-of-fold figures at epoch {last['epoch']}"]
    if report["extra_train"]:
        lines.append(f"  extra train images from {', '.join(report['extra_train'])} (never scored): "
                     f"{', '.join(map(str, report['extra_train_per_fold']))} per fold")
    for spec in report["data"]:
        row, interval = last[spec], last[spec]["interval"]
        lines.append(
            f"  {spec} ({row['n']} images): task-A macro-F1 {row['task_a_macro_f1']:.3f} "
            f"[{interval['macro_f1'][0]:.3f}, {interval['macro_f1'][1]:.3f}], AUROC {row['task_a_auroc']:.3f} "
            f"[{interval['auroc'][0]:.3f}, {interval['auroc'][1]:.3f}], task-B macro-F1 {row['task_b_macro_f1']:.3f}"
        )
    for source, row in report["mixed_sources"].items():
        lines.append(f"  mixed source {source} ({row['n_ai']} ai, {row['n_real']} real): AUROC {row['auroc']:.3f} "
                     f"[{row['interval'][0]:.3f}, {row['interval'][1]:.3f}]")
    point = report["operating_point"]
    lines.append(
        f"operating point: ai from p_ai {point['ai_from']:.2f}, real below {point['real_below']:.2f} "
        f"(config \"verdict\": {json.dumps(point['verdict'])})"
    )
    lines.append(format_table(point["outcomes"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with distributed_runtime(args.device) as process:
        if process.world_size > 1:
            raise SystemExit("genspot cv: runs in one process (its folds are small); start it without torchrun")
        log_to_run_dir(args.out, process)
        try:
            report = cross_validate(args, process)
        except (ConfigError, DataError) as exc:
            log.error("genspot cv: error: %s", exc)
            return 2
    (args.out / "cv.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    plot_cv_curves(report, args.out / "cv.png")
    print(f"{summary(report)}\nwrote {args.out}/cv.json, cv.png")
    return 0
