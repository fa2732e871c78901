"""Checkpoint -> portable TorchScript bundle (traced, frozen; dynamic batch and sequence length)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from genspot.bundle import MODEL_FILE
from genspot.export.manifest import DTYPE_NAMES
from genspot.export.parity import TOLERANCES, Tolerance, probe_batches
from genspot.export.wrapper import ProbabilityModel
from genspot.export.writer import ExportResult, write_bundle
from genspot.formats import CheckpointMeta
from genspot.imaging import input_channels

INT8 = "int8-dynamic-linear"


def trace_inputs(detector) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Example inputs for tracing: two samples of the detector's input shape, one caption padded, so
    masking is traced as data."""
    config = detector.config
    images, _ = probe_batches(config.image_size, channels=input_channels(config.resize_policy))[1]
    input_ids, attention_mask = detector.tokenizer(["", "a photo of a dog running on the beach at sunset"])
    return images[:2], input_ids, attention_mask


def trace_model(wrapper: ProbabilityModel, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """Trace ``forward`` (and the text-cache entry points) and freeze the result."""
    image, input_ids, attention_mask = example
    methods: dict[str, tuple] = {"forward": (image, input_ids, attention_mask)}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape-constant branches, deprecation notices
        if wrapper.has_text:
            text_features = wrapper.encode_text(input_ids, attention_mask)
            methods["encode_text"] = (input_ids, attention_mask)
            methods["forward_with_text"] = (image, text_features)
        traced = torch.jit.trace_module(wrapper.eval(), methods, check_trace=False)
        return torch.jit.freeze(traced.eval(), preserved_attrs=wrapper.traced_methods())


def export_torchscript(
    checkpoint: Path,
    out: Path,
    dtype: torch.dtype,
    *,
    int8: bool = False,
    tolerance: Tolerance | float | None = None,
    loaded: tuple[torch.nn.Module, CheckpointMeta] | None = None,
    parity_images: Path | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out``; raises :class:`ParityError` when the bundle drifts (on the
    probes, or on the real pictures of ``parity_images``)."""
    from genspot.training.model.checkpoint import load_checkpoint

    detector, meta = loaded or load_checkpoint(checkpoint)
    wrapper = ProbabilityModel(detector, meta.temperature, dtype)
    quantization = INT8 if int8 and wrapper.quantize_backbones() else None
    if tolerance is None:
        tolerance = TOLERANCES["int8" if quantization else DTYPE_NAMES[dtype]]
    traced = trace_model(wrapper, trace_inputs(detector))

    def save_model(folder: Path) -> dict[str, str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice; TorchScript is the format
            torch.jit.save(traced, str(folder / MODEL_FILE))
        return {"model": MODEL_FILE}

    return write_bundle(
        out,
        save_model,
        checkpoint=checkpoint,
        detector=detector,
        meta=meta,
        tolerance=tolerance,
        parity_images=parity_images,
        kind="torchscript",
        dtype=dtype,
        device="cpu",
        quantization=quantization,
        text_cache=wrapper.has_text,
    )
