"""Checkpoint -> ONNX bundle: the detector's graphs in fp32 for ONNX Runtime's CPU provider.

Where the CPU has no native bf16, ONNX Runtime runs the fp32 graph faster than TorchScript does
(docs/PERFORMANCE.md). The bundle's ``text.onnx`` is ``ProbabilityModel.encode_text`` and its
``model.onnx`` is ``forward_with_text`` (``forward`` where the model has no text branch), so the
service's text-feature cache works as with TorchScript and no weight is stored twice
(:mod:`genspot.onnx_model`). Each graph goes through ``torch.export`` with a dynamic batch axis
(and token axis) and the dynamo ONNX exporter; every other axis keeps the shape of the
checkpoint's trace inputs. ``quantize_bundle`` is the bench's int8 variant, outside the bundle
contract (it fails parity: docs/PERFORMANCE.md).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import warnings
from pathlib import Path

import torch

from genspot.bundle import ONNX_MODEL_FILE, ONNX_TEXT_FILE
from genspot.export.parity import TOLERANCES
from genspot.export.torchscript import trace_inputs
from genspot.export.wrapper import ProbabilityModel
from genspot.export.writer import ExportResult, write_bundle
from genspot.formats import CheckpointMeta
from genspot.onnx_model import MODEL_INPUTS, MODEL_OUTPUTS, TEXT_INPUTS, TEXT_OUTPUTS

MIN_TOKENS = 2


class _EntryPoint(torch.nn.Module):
    """One method of the wrapper as ``forward``: ``torch.export`` exports a module's forward only."""

    def __init__(self, wrapper: ProbabilityModel, method: str):
        super().__init__()
        self.wrapper = wrapper
        self.method = method

    def forward(self, *inputs: torch.Tensor):
        return getattr(self.wrapper, self.method)(*inputs)


def export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], dynamic: dict[str, dict], outputs: tuple[str, ...], path: Path) -> None:
    """``module(*inputs.values())`` to an ONNX file whose inputs and outputs carry these names."""
    program_inputs = {name: dynamic.get(name, {}) for name in inputs}
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):  # the exporter's progress lines
        warnings.simplefilter("ignore")
        program = torch.export.export(module, tuple(inputs.values()), dynamic_shapes={"inputs": tuple(program_inputs.values())}, strict=False)
        exported = torch.onnx.export(program, dynamo=True, input_names=list(inputs), output_names=list(outputs))
    exported.save(str(path))


def export_graphs(wrapper: ProbabilityModel, example: tuple[torch.Tensor, ...], max_tokens: int, folder: Path) -> dict[str, str]:
    """Write ``model.onnx`` (and ``text.onnx`` where the model reads text) to ``folder``; returns
    them as the manifest's ``files`` entries."""
    image, input_ids, attention_mask = example
    batch = torch.export.Dim("batch", min=1)
    tokens = torch.export.Dim("tokens", min=MIN_TOKENS, max=max_tokens)
    dynamic = {"image": {0: batch}, "text_features": {0: batch}, "input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}}
    wrapper = wrapper.eval()
    if not wrapper.has_text:
        export_graph(_EntryPoint(wrapper, "forward_with_text"), {"image": image}, dynamic, MODEL_OUTPUTS, folder / ONNX_MODEL_FILE)
        return {"model": ONNX_MODEL_FILE}
    text = dict(zip(TEXT_INPUTS, (input_ids, attention_mask)))
    export_graph(_EntryPoint(wrapper, "encode_text"), text, dynamic, TEXT_OUTPUTS, folder / ONNX_TEXT_FILE)
    with torch.no_grad():
        features = wrapper.encode_text(input_ids, attention_mask)
    model = dict(zip(MODEL_INPUTS, (image, features)))
    export_graph(_EntryPoint(wrapper, "forward_with_text"), model, dynamic, MODEL_OUTPUTS, folder / ONNX_MODEL_FILE)
    return {"model": ONNX_MODEL_FILE, "text": ONNX_TEXT_FILE}


def export_onnx(
    checkpoint: Path,
    out: Path,
    *,
    loaded: tuple[torch.nn.Module, CheckpointMeta] | None = None,
    parity_images: Path | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to an fp32 ONNX bundle at ``out``; raises :class:`ParityError` when
    it drifts from the eager checkpoint (on the probes, or the real pictures of ``parity_images``)."""
    import onnxruntime

    from genspot.training.model.checkpoint import load_checkpoint

    detector, meta = loaded or load_checkpoint(checkpoint)
    wrapper = ProbabilityModel(detector, meta.temperature, torch.float32)
    example = trace_inputs(detector)
    return write_bundle(
        out,
        lambda folder: export_graphs(wrapper, example, int(detector.config.text.max_tokens), folder),
        checkpoint=checkpoint,
        detector=detector,
        meta=meta,
        tolerance=TOLERANCES["float32"],
        parity_images=parity_images,
        kind="onnx",
        dtype=torch.float32,
        device="cpu",
        quantization=None,
        text_cache=wrapper.has_text,
        extra={"onnxruntime": onnxruntime.__version__},
    )


def quantize_bundle(bundle_dir: Path, out: Path) -> Path:
    """A copy of an ONNX bundle at ``out`` with every graph in ONNX Runtime's dynamic int8
    quantisation (its defaults: int8 weights, uint8 activations); its manifest still says fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shutil.copytree(bundle_dir, out)
    for graph in out.glob("*.onnx"):
        quantize_dynamic(str(bundle_dir / graph.name), str(graph), weight_type=QuantType.QInt8)
    return out
