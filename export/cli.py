"""`genspot export`: checkpoint -> bundle.

    genspot export torchscript --checkpoint RUN_DIR/model.pt --out BUNDLE_DIR [--dtype fp32|bf16|auto] [--int8]
    genspot export onnx --checkpoint RUN_DIR/model.pt --out BUNDLE_DIR
    genspot export auto --checkpoint RUN_DIR/model.pt --out BUNDLE_DIR [--dtype fp32|bf16|auto]
    genspot export trt (--bundle BUNDLE_DIR | --checkpoint RUN_DIR/model.pt) [--out BUNDLE_DIR]

``auto`` writes the fastest exact CPU bundle for ``--dtype``: bf16 TorchScript where the CPU has
native bf16, else fp32 ONNX (genspot.export.hardware.resolve_cpu_bundle).

All take ``--parity-images DIR``: real pictures the parity check also runs (up to 64; the
synthetic probes alone understate low-precision drift, see genspot.export.parity).

Exit status: 0 exported; 1 the export failed (parity, unreadable checkpoint); 2 it cannot run
here (bf16 on a CPU without it, no CUDA, no torch_tensorrt) or bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from genspot.export.hardware import resolve_cpu_bundle, resolve_cpu_dtype, tensorrt_missing
from genspot.export.parity import PARITY_PICTURES, ParityError, picture_paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot export", description="Export a checkpoint to a serving bundle.")
    commands = parser.add_subparsers(dest="format", required=True, metavar="{torchscript,onnx,auto,trt}")

    ts = _cpu_command(commands, "torchscript", "portable CPU bundle: traced, frozen TorchScript", dtype_default="fp32")
    ts.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of the backbones' Linear layers")
    _cpu_command(commands, "onnx", "CPU bundle for ONNX Runtime, fp32", dtype_default=None)
    _cpu_command(commands, "auto", "the fastest exact CPU bundle here: bf16 TorchScript with native bf16, else fp32 ONNX",
                 dtype_default="auto")

    trt = commands.add_parser("trt", help="TensorRT bundle for this machine's GPU (needs genspot[trt])")
    source = trt.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bundle", type=Path, metavar="BUNDLE_DIR", help="a portable bundle; rebuilt from the checkpoint its manifest names"
    )
    source.add_argument("--checkpoint", type=Path, metavar="RUN_DIR/model.pt", help="training checkpoint")
    trt.add_argument("--out", type=Path, metavar="OUT_DIR", help="bundle folder to write (default: BUNDLE_DIR-trt)")
    _add_parity_images(trt)
    return parser


def _cpu_command(commands, name: str, help_text: str, dtype_default: str | None) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text)
    command.add_argument("--checkpoint", type=Path, required=True, metavar="RUN_DIR/model.pt", help="training checkpoint")
    command.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR", help="bundle folder to write")
    if dtype_default is not None:
        command.add_argument(
            "--dtype", choices=("fp32", "bf16", "auto"), default=dtype_default,
            help="backbone precision; auto = bf16 where the CPU has AVX-512-BF16 or AMX, else fp32",
        )
    _add_parity_images(command)
    return command


def _add_parity_images(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--parity-images", type=_picture_folder, metavar="DIR",
        help=f"also check parity on up to {PARITY_PICTURES} real pictures of this folder (.jpg .png .webp, by name)",
    )


def _picture_folder(value: str) -> Path:
    try:
        picture_paths(Path(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return Path(value)


def _fail(message: str, status: int) -> int:
    lines = message.strip().splitlines() or [""]
    print(f"genspot export: {lines[0]}", file=sys.stderr)
    return status


def _kind_and_dtype(args: argparse.Namespace) -> tuple[str, torch.dtype]:
    """The bundle ``torchscript``, ``onnx`` or ``auto`` (one of the two, for this CPU) writes;
    ``ValueError`` for bf16 on a CPU without it."""
    if args.format == "onnx":
        return "onnx", torch.float32
    if args.format == "auto":
        return resolve_cpu_bundle(args.dtype)
    return "torchscript", resolve_cpu_dtype(args.dtype)


def _cpu_bundle(args: argparse.Namespace) -> int:
    try:
        kind, dtype = _kind_and_dtype(args)
    except ValueError as exc:
        return _fail(f"--dtype {args.dtype} refused: {exc}", 2)
    int8 = kind == "torchscript" and getattr(args, "int8", False)
    print(f"exporting {args.checkpoint} -> {args.out} ({kind}, {dtype}{', int8 linears' if int8 else ''})", file=sys.stderr)
    if kind == "onnx":
        from genspot.export.onnx import export_onnx

        result = export_onnx(args.checkpoint, args.out, parity_images=args.parity_images)
    else:
        from genspot.export.torchscript import export_torchscript

        result = export_torchscript(args.checkpoint, args.out, dtype, int8=int8, parity_images=args.parity_images)
    print(result.parity.describe(), file=sys.stderr)
    print(f"wrote {result.bundle_dir} ({kind}, model version {result.manifest['model_version']})")
    return 0


def _tensorrt(args: argparse.Namespace) -> int:
    missing = tensorrt_missing()
    if missing:
        return _fail(f"trt: {missing}", 2)
    from genspot.export.tensorrt import export_tensorrt, source_checkpoint

    if args.out is None and args.bundle is None:
        return _fail("trt: --out is required with --checkpoint", 2)
    out = args.out or args.bundle.with_name(args.bundle.name + "-trt")
    try:
        checkpoint = args.checkpoint or source_checkpoint(args.bundle)
    except FileNotFoundError as exc:
        return _fail(f"trt: {exc}", 1)
    print(f"compiling {checkpoint} -> {out} with Torch-TensorRT (fp16)", file=sys.stderr)
    result = export_tensorrt(checkpoint, out, args.parity_images)
    print(result.parity.describe(), file=sys.stderr)
    print(f"wrote {result.bundle_dir} for {result.manifest['tensorrt']['gpu_name']} (model version {result.manifest['model_version']})")
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from genspot.training.model.checkpoint import CheckpointError

    try:
        return _tensorrt(args) if args.format == "trt" else _cpu_bundle(args)
    except ParityError as exc:
        return _fail(str(exc), 1)
    except CheckpointError as exc:
        return _fail(str(exc), 1)
