"""`genspot pseudo-label --rounds N`: pseudo-label, retrain, evaluate, N times over.

Round r labels the unlabelled pool with the previous round's checkpoint (round 1: --checkpoint)
into OUT/round{r}/ (the keep rule of :mod:`genspot.training.ct2.pseudo_label`), trains a new model
from scratch on --data plus those pseudo-labels (OUT/round{r}/run/: `genspot train --config
CONFIG --pseudo-labels OUT/round{r}` and --train-args), and evaluates it on a held-out labelled set
(--eval-data, all of it, such as CT2's official validation set; default the val split of --data;
--eval-split picks a split) into OUT/round{r}/eval/. The starting
checkpoint is evaluated first on the same set (round 0), so OUT/rounds.json and the printed table
say whether each round helped: task-A macro-F1 against the round before. Pool images that are
also in the held-out set (same bytes) make that check optimistic and are reported.
``--stop-when-worse`` ends the rounds at the first one that does not help.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from pathlib import Path

from genspot.training.config import DEFAULT_CONFIG
from genspot.training.data.data import DataError, load_samples
from genspot.training.evaluation.evaluate import evaluate
from genspot.training.evaluation.model_cli import select_split

log = logging.getLogger("genspot.pseudo_label")


def add_round_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rounds (predict, keep, retrain, evaluate)")
    group.add_argument("--rounds", type=int, default=0, help="retraining rounds (default 0: label once, no training)")
    group.add_argument("--data", help="labelled training data of every round (needed with --rounds)")
    group.add_argument("--config", default=DEFAULT_CONFIG, help=f"training config of every round (default {DEFAULT_CONFIG})")
    group.add_argument("--train-args", default="", help='more `genspot train` options, e.g. "--epochs 8 --bf16"')
    group.add_argument("--eval-data", help="held-out labelled data evaluated after each round (default --data)")
    group.add_argument("--eval-split", help="split of the held-out data evaluated (default: all of --eval-data, or val of --data)")
    group.add_argument("--stop-when-worse", action="store_true", help="stop at the first round that does not raise task-A macro-F1")


def check_round_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.rounds < 0:
        parser.error(f"--rounds must be >= 0, got {args.rounds}")
    if args.rounds and not args.data:
        parser.error("--rounds needs --data (the labelled training data of each round)")


def held_out(args: argparse.Namespace) -> tuple[str, str | None]:
    """(data, split) of the per-round check: all of --eval-data, else the val split of --data."""
    if args.eval_data:
        return args.eval_data, args.eval_split
    return args.data, args.eval_split or "val"


def scores(report: dict) -> dict:
    a, b = report["task_a"], report["task_b"]
    return {"task_a_macro_f1": a["macro_f1"], "task_a_f1_ai": a["f1_ai"], "task_a_auroc": a["auroc"], "task_b_macro_f1": b["macro_f1"]}


def evaluate_round(args: argparse.Namespace, checkpoint: Path, out: Path) -> dict:
    data, split = held_out(args)
    namespace = argparse.Namespace(
        checkpoint=checkpoint, data=data, split=split, out=out, threshold=0.5,
        blank_captions=args.blank_captions, batch_size=args.batch_size, device=args.device, bf16=args.bf16, quiet=args.quiet,
        jpeg_quality=None,
    )
    return scores(evaluate(namespace))


def train_round(args: argparse.Namespace, pseudo_dir: Path, run_dir: Path) -> Path:
    from genspot.training.loop.train import main as train

    argv = ["--data", str(args.data), "--out", str(run_dir), "--config", args.config, "--pseudo-labels", str(pseudo_dir),
            "--device", args.device, *shlex.split(args.train_args)]
    code = train(argv + (["--quiet"] if args.quiet else []))
    root = logging.getLogger("genspot")  # train logs to its run's train.log: stop that before the next step
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
    if code != 0:
        raise DataError(f"training of {run_dir} failed (exit code {code}); see {run_dir / 'train.log'}")
    return run_dir / "model.pt"


def overlap_with_held_out(args: argparse.Namespace) -> int:
    """Pool images (by content) that are also in the evaluated held-out split."""
    data, split = held_out(args)
    checked = select_split(load_samples(data, progress=False), split)
    pool = select_split(load_samples(args.unlabelled, require_labels=False, progress=False), args.split)
    return len({s.digest for s in pool} & {s.digest for s in checked})


def run_rounds(args: argparse.Namespace) -> dict:
    from genspot.training.ct2.pseudo_label import pseudo_label

    overlap = overlap_with_held_out(args)
    if overlap:
        log.warning("%d pool image(s) are also in the held-out set: the per-round check is optimistic", overlap)
    checkpoint = Path(args.checkpoint)
    history = [{"round": 0, "checkpoint": str(checkpoint), **evaluate_round(args, checkpoint, args.out / "round0" / "eval")}]
    for number in range(1, args.rounds + 1):
        round_dir = args.out / f"round{number}"
        log.info("round %d of %d: pseudo-labelling %s with %s", number, args.rounds, args.unlabelled, checkpoint)
        summary = pseudo_label(argparse.Namespace(**{**vars(args), "checkpoint": checkpoint, "out": round_dir}))
        if not summary["n_kept"]:
            confident = ", ".join(f"{c} {v['candidates']} of {v['predicted']}" for c, v in summary["task_a"].items())
            raise DataError(f"round {number} kept no image (confident at {args.threshold}: {confident}); lower --threshold")
        checkpoint = train_round(args, round_dir, round_dir / "run")
        result = evaluate_round(args, checkpoint, round_dir / "eval")
        previous = history[-1]["task_a_macro_f1"]
        history.append({
            "round": number, "checkpoint": str(checkpoint), "n_kept": summary["n_kept"], "n_val": summary["n_val"],
            "kept_task_a": {name: entry["kept"] for name, entry in summary["task_a"].items()},
            "kept_per_class": summary["kept_per_class"], "pseudo_label_accuracy": summary["accuracy"],
            **result, "delta_task_a_macro_f1": result["task_a_macro_f1"] - previous,
            "helped": result["task_a_macro_f1"] > previous,
        })
        if args.stop_when_worse and not history[-1]["helped"]:
            log.info("round %d did not help (task-A macro-F1 %.4f <= %.4f): stopping", number, result["task_a_macro_f1"], previous)
            break
    data, split = held_out(args)
    report = {"eval_data": str(data), "eval_split": split, "blank_captions": args.blank_captions,
              "pool_images_in_held_out": overlap, "rounds": history}
    (args.out / "rounds.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_rounds(report: dict) -> str:
    captions = "blanked" if report["blank_captions"] else "as given"
    lines = [f"held-out check on {report['eval_data']} (split {report['eval_split'] or 'all'}, captions {captions})",
             f"{'round':>5}  {'kept real':>9}  {'kept AI':>7}  {'A macro-F1':>10}  {'A AUROC':>7}  {'B macro-F1':>10}  helped"]
    for entry in report["rounds"]:
        kept = entry.get("kept_task_a", {})
        helped = {True: "yes", False: "no"}.get(entry.get("helped"), "-")
        lines.append(f"{entry['round']:>5}  {kept.get('real', '-'):>9}  {kept.get('ai', '-'):>7}  {_number(entry['task_a_macro_f1']):>10}  "
                     f"{_number(entry['task_a_auroc']):>7}  {_number(entry['task_b_macro_f1']):>10}  {helped}")
    return "\n".join(lines)
