"""The bundle's graph in ONNX, run by ONNX Runtime on the CPU: the alternative runtime of issue 17.

Not a bundle kind: the backend loads only TorchScript bundles (``genspot/bundle.py``). This
exports the wrapper that becomes ``model.ts`` (``ProbabilityModel.forward`` of a checkpoint in
float32: ONNX Runtime's CPU provider has no bf16 MatMul or Add) through ``torch.export`` with
dynamic batch and token axes (the program the TensorRT export compiles) and the dynamo ONNX
exporter, optionally quantises it with ONNX Runtime's int8 dynamic quantisation, and runs it
with a bundle's tokenizer, so ``genspot bench --onnxruntime`` can time and check it next to
the bundle.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from genspot.export.tensorrt import export_program
from genspot.export.torchscript import checkpoint_image_size, trace_inputs
from genspot.export.wrapper import ProbabilityModel
from genspot.formats import CheckpointMeta
from genspot.text import CaptionTokenizer

INPUTS = ("image", "input_ids", "attention_mask")
OUTPUTS = ("p_ai", "p_source")


def export_onnx(detector: torch.nn.Module, meta: CheckpointMeta, path: Path) -> Path:
    """Write the float32 bundle graph ``(image, input_ids, attention_mask) -> (p_ai, p_source)`` to ``path``."""
    wrapper = ProbabilityModel(detector, meta.temperature, torch.float32).eval()
    example = trace_inputs(detector.tokenizer, checkpoint_image_size(meta))
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):  # the exporter's progress lines
        warnings.simplefilter("ignore")
        program = export_program(wrapper, example, int(detector.config.text.max_tokens))
        exported = torch.onnx.export(program, dynamo=True, input_names=list(INPUTS), output_names=list(OUTPUTS))
    exported.save(str(path))
    return path


def quantize_int8(source: Path, out: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of ``source`` (its defaults: int8 weights, uint8 activations)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8)
    return out


class OnnxRuntimeModel:
    """An exported graph in an ONNX Runtime session (CPU provider, all graph optimisations, as
    many intra-op threads as torch uses) behind ``Bundle.predict``'s interface; no text cache."""

    text_cache = None

    def __init__(self, path: Path, tokenizer: CaptionTokenizer, image_size: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.image_size = image_size

    def predict(self, images: torch.Tensor, captions: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed float32 images [N, 3, S, S] + captions -> ``(p_ai [N], p_source [N, K])``."""
        input_ids, attention_mask = self.tokenizer(list(captions))
        feed = dict(zip(INPUTS, (images.float().numpy(), input_ids.numpy(), attention_mask.numpy())))
        p_ai, p_source = self.session.run(list(OUTPUTS), feed)
        return p_ai, p_source
