"""Checkpoint -> TensorRT bundle: Torch-TensorRT (dynamo frontend), fp16, TorchScript container.

TensorRT engines are specific to a GPU model and TensorRT version, so this runs on the
machine that will serve, from a checkpoint or from a portable bundle (whose manifest names
its checkpoint). The backbones run in fp16 (a ``.half()`` network with explicit typing, not
``enabled_precisions``); resize/normalisation, fusion and heads stay float32, as in the
portable bundle. Batch is dynamic (min 1, opt 16, max 64), shared by all three inputs; the
token dimension is dynamic up to the text limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from genspot.bundle import MANIFEST_FILE, MODEL_FILE
from genspot.export.hardware import tensorrt_missing
from genspot.export.parity import TOLERANCES
from genspot.export.torchscript import trace_inputs
from genspot.export.wrapper import ProbabilityModel
from genspot.export.writer import ExportResult, write_bundle

BATCH_PROFILE = {"min": 1, "opt": 16, "max": 64}
MIN_TOKENS = 2


class TensorRTUnavailable(RuntimeError):
    """CUDA or torch_tensorrt is missing: there is no TensorRT export on this machine."""


def source_checkpoint(bundle_dir: Path) -> Path:
    """The checkpoint a portable bundle was exported from (recorded in its manifest)."""
    manifest_path = bundle_dir / MANIFEST_FILE
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8"))["source"]["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileNotFoundError(f"{manifest_path}: no source checkpoint recorded ({exc}); pass --checkpoint") from exc
    if not recorded or not Path(recorded).is_file():
        raise FileNotFoundError(f"the checkpoint {recorded!r} named by {manifest_path} is not on this machine; pass --checkpoint")
    return Path(recorded)


def _profile_inputs(image_shape: tuple[int, ...], max_tokens: int, opt_tokens: int) -> list:
    """Optimisation profiles: batch min/opt/max shared by image, input_ids and attention_mask."""
    import torch_tensorrt

    tokens = {"min": MIN_TOKENS, "opt": opt_tokens, "max": max_tokens}

    def spec(per_sample: Callable[[str], tuple[int, ...]], dtype: torch.dtype):
        shapes = {f"{key}_shape": (batch, *per_sample(key)) for key, batch in BATCH_PROFILE.items()}
        return torch_tensorrt.Input(**shapes, dtype=dtype)

    return [
        spec(lambda key: image_shape, torch.float32),
        spec(lambda key: (tokens[key],), torch.int64),
        spec(lambda key: (tokens[key],), torch.int64),
    ]


def _versions() -> dict[str, Any]:
    import tensorrt
    import torch_tensorrt

    device = torch.cuda.current_device()
    return {
        "gpu_name": torch.cuda.get_device_name(device),
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
        "cuda": torch.version.cuda,
        "tensorrt": tensorrt.__version__,
        "torch_tensorrt": torch_tensorrt.__version__,
        "torch": torch.__version__,
    }


def export_program(wrapper: ProbabilityModel, example: tuple[torch.Tensor, ...], max_tokens: int) -> torch.export.ExportedProgram:
    """``torch.export`` with one batch dimension shared by all inputs and a dynamic token count."""
    batch = torch.export.Dim("batch", min=BATCH_PROFILE["min"], max=BATCH_PROFILE["max"])
    tokens = torch.export.Dim("tokens", min=MIN_TOKENS, max=max_tokens)
    return torch.export.export(
        wrapper,
        example,
        dynamic_shapes={"image": {0: batch}, "input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}},
        strict=False,
    )


def compile_tensorrt(exported: torch.export.ExportedProgram, image_shape: tuple[int, ...], max_tokens: int):
    """``torch_tensorrt.compile(ir="dynamo")`` of the exported program with the batch profile."""
    import torch_tensorrt

    return torch_tensorrt.compile(
        exported,
        ir="dynamo",
        inputs=_profile_inputs(image_shape, max_tokens, opt_tokens=min(32, max_tokens)),
        use_explicit_typing=True,  # fp16 comes from the .half() backbones, layer by layer
        min_block_size=1,
    )


def export_tensorrt(checkpoint: Path, out: Path, parity_images: Path | None = None) -> ExportResult:
    """Compile ``checkpoint`` for this GPU into ``out``; raises TensorRTUnavailable, or ParityError (``out`` untouched)."""
    missing = tensorrt_missing()
    if missing:
        raise TensorRTUnavailable(missing)
    import torch_tensorrt

    from genspot.training.model.checkpoint import load_checkpoint

    detector, meta = load_checkpoint(checkpoint)
    max_tokens = int(detector.config.text.max_tokens)
    device = torch.device("cuda")
    wrapper = ProbabilityModel(detector, meta.temperature, torch.float16).to(device).eval()
    example = tuple(t.to(device) for t in trace_inputs(detector))
    with torch.no_grad():
        compiled = compile_tensorrt(export_program(wrapper, example, max_tokens), tuple(example[0].shape[1:]), max_tokens)

    def save_model(folder: Path) -> dict[str, str]:
        torch_tensorrt.save(compiled, str(folder / MODEL_FILE), output_format="torchscript", arg_inputs=list(example))
        return {"model": MODEL_FILE}

    return write_bundle(
        out,
        save_model,
        checkpoint=checkpoint,
        detector=detector,
        meta=meta,
        tolerance=TOLERANCES["float16"],
        parity_images=parity_images,
        kind="tensorrt",
        dtype=torch.float16,
        device="cuda",
        quantization=None,
        text_cache=False,
        extra={"tensorrt": _versions(), "max_batch": BATCH_PROFILE["max"], "batch_profile": dict(BATCH_PROFILE)},
    )
