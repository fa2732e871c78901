"""`genspot export`: checkpoint -> bundle.

    genspot export torchscript --checkpoint RUN_DIR/model.pt --out BUNDLE_DIR [--dtype fp32|bf16|auto] [--int8]
    genspot export trt (--bundle BUNDLE_DIR | --checkpoint RUN_DIR/model.pt) [--out BUNDLE_DIR]

Both take ``--parity-images DIR``: real pictures the parity check also runs (up to 64; the
synthetic probes alone understate low-precision drift, see genspot.export.parity).

Exit status: 0 exported; 1 the export failed (parity, unreadable checkpoint); 2 it cannot run
here (bf16 on a CPU without it, no CUDA, no torch_tensorrt) or bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genspot.export.hardware import resolve_cpu_dtype, tensorrt_missing
from genspot.export.parity import PARITY_PICTURES, ParityError, picture_paths


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot export", description="Export a checkpoint to a serving bundle.")
    commands = parser.add_subparsers(dest="format", required=True, metavar="{torchscript,trt}")

    ts = commands.add_parser("torchscript", help="portable CPU bundle: traced, frozen TorchScript")
    ts.add_argument("--checkpoint", type=Path, required=True, metavar="RUN_DIR/model.pt", help="training checkpoint")
    ts.add_argument("--out", type=Path, required=True, metavar="BUNDLE_DIR", help="bundle folder to write")
    ts.add_argument(
        "--dtype", choices=("fp32", "bf16", "auto"), default="fp32",
        help="backbone precision; auto = bf16 where the CPU has AVX-512-BF16 or AMX, else fp32",
    )
    ts.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of the backbones' Linear layers")
    _add_parity_images(ts)

    trt = commands.add_parser("trt", help="TensorRT bundle for this machine's GPU (needs genspot[trt])")
    source = trt.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bundle", type=Path, metavar="BUNDLE_DIR", help="a portable bundle; rebuilt from the checkpoint its manifest names"
    )
    source.add_argument("--checkpoint", type=Path, metavar="RUN_DIR/model.pt", help="training checkpoint")
    trt.add_argument("--out", type=Path, metavar="OUT_DIR", help="bundle folder to write (default: BUNDLE_DIR-trt)")
    _add_parity_images(trt)
    return parser


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


def _torchscript(args: argparse.Namespace) -> int:
    from genspot.export.torchscript import export_torchscript

    try:
        dtype = resolve_cpu_dtype(args.dtype)
    except ValueError as exc:
        return _fail(f"--dtype {args.dtype} refused: {exc}", 2)
    print(f"exporting {args.checkpoint} -> {args.out} ({dtype}{', int8 linears' if args.int8 else ''})", file=sys.stderr)
    result = export_torchscript(args.checkpoint, args.out, dtype, int8=args.int8, parity_images=args.parity_images)
    print(result.parity.describe(), file=sys.stderr)
    print(f"wrote {result.bundle_dir} (model version {result.manifest['model_version']})")
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
        return _torchscript(args) if args.format == "torchscript" else _tensorrt(args)
    except ParityError as exc:
        return _fail(str(exc), 1)
    except CheckpointError as exc:
        return _fail(str(exc), 1)
