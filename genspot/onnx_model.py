"""An ONNX bundle's graphs in ONNX Runtime, behind the entry points of a TorchScript ``model.ts``.

An ONNX bundle holds the detector as two graphs, so a server can cache text features per
alt-text as it does with TorchScript's ``encode_text`` / ``forward_with_text``, without storing
any weight twice: ``text.onnx`` (the text encoder; absent when the model has no text branch)
and ``model.onnx`` (image branches, fusion and heads, reading the text features). ``forward``
runs one after the other. Both run in fp32 on ONNX Runtime's CPU provider, which has no bf16
kernels for MatMul, Add or Softmax (docs/PERFORMANCE.md).

onnxruntime is imported here only, and this module only when an ONNX bundle is loaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_OUTPUTS = ("text_features",)
MODEL_INPUTS = ("image", "text_features")  # text_features only where the model has a text branch
MODEL_OUTPUTS = ("p_ai", "p_source")


def session(path: Path):
    """An ONNX Runtime session on the CPU: all graph optimisations, as many intra-op threads as
    torch uses (the service's one setting for both runtimes)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _array(tensor: torch.Tensor):
    return tensor.contiguous().numpy()


class OnnxModel:
    """``forward``, ``encode_text`` and ``forward_with_text`` on torch tensors, as ``model.ts`` has them."""

    def __init__(self, model: Path, text: Path | None):
        self.model = session(model)
        self.text = session(text) if text is not None else None
        self.model_inputs = [node.name for node in self.model.get_inputs()]
        expected = list(MODEL_INPUTS if self.text is not None else MODEL_INPUTS[:1])
        if self.model_inputs != expected:
            raise ValueError(f"{model.name} takes {self.model_inputs}, expected {expected}")
        if self.text is not None and [node.name for node in self.text.get_inputs()] != list(TEXT_INPUTS):
            raise ValueError(f"{text.name} takes {[node.name for node in self.text.get_inputs()]}, expected {list(TEXT_INPUTS)}")

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = dict(zip(TEXT_INPUTS, (_array(input_ids), _array(attention_mask))))
        (features,) = self.text.run(list(TEXT_OUTPUTS), feed)
        return torch.from_numpy(features)

    def forward_with_text(self, image: torch.Tensor, text_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arrays = (_array(image), _array(text_features))
        p_ai, p_source = self.model.run(list(MODEL_OUTPUTS), dict(zip(self.model_inputs, arrays)))
        return torch.from_numpy(p_ai), torch.from_numpy(p_source)

    def __call__(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encode_text(input_ids, attention_mask) if self.text is not None else torch.zeros(0, dtype=torch.float32)
        return self.forward_with_text(image, features)
