"""The `genspot` console script: a thin dispatcher over each component's ``main(argv)``.

Subcommands are imported lazily so that `genspot serve` never imports training code and
`genspot --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help). Each module exposes ``main(argv: list[str]) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("genspot.training.loop.train", "train a detector on a labelled folder or CT2 parquet"),
    "cv": ("genspot.training.evaluation.crossval", "grouped cross-validation of a training recipe on the train split"),
    "aligned-fakes": ("genspot.training.data.aligned", "reconstruct real train photos through an autoencoder: extra AI examples"),
    "evaluate": ("genspot.training.evaluation.evaluate", "evaluate a checkpoint: metrics, plots, predictions"),
    "predict": ("genspot.training.ct2.submission", "predict with a checkpoint: a CT2 submission, or p_ai per image"),
    "pseudo-label": ("genspot.training.ct2.pseudo_label", "label unlabelled images with a checkpoint"),
    "export": ("genspot.export.cli", "export a checkpoint to a TorchScript / ONNX / TensorRT bundle"),
    "bench": ("genspot.export.bench", "measure a bundle's throughput against the paper's pipeline"),
    "serve": ("genspot.backend.api.serve", "run the detection service"),
    "scan": ("genspot.backend.pipeline.scan", "run the detection pipeline on local files or URLs"),
    "alt-text-check": ("genspot.backend.pipeline.alt_text_check", "measure how far alt-texts move a bundle's verdicts"),
    "feedback": ("genspot.backend.api.feedback_cli", "export wrong-verdict reports (POST /v1/feedback) as label candidates"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: genspot COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `genspot COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] == "--version":
        from genspot import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"genspot: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
