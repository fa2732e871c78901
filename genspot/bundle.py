"""Load and run an exported detector bundle (``model.ts`` or ``model.onnx``, ``manifest.json``,
``tokenizer.json``).

This is the only way the backend touches the model, so it imports nothing but torch,
tokenizers and genspot's core preprocessing (and onnxruntime, for ONNX bundles only): no
training code, no transformers, no open_clip. The format is documented in ``docs/bundle.md``;
its fields and defaults are :class:`genspot.formats.BundleManifest`.
"""

from __future__ import annotations

import functools
import json
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from genspot import imaging
from genspot.formats import (
    ALT_TEXT_FULL,
    ALT_TEXT_SOURCE_ONLY,
    ALT_TEXT_UNUSED,
    BUNDLE_FORMAT as FORMAT,
    BUNDLE_FORMATS as SUPPORTED_FORMATS,
    BundleManifest,
    FormatError,
    decode_manifest,
)
from genspot.text import CaptionTokenizer, caption_hash

__all__ = ["ALT_TEXT_FULL", "ALT_TEXT_SOURCE_ONLY", "ALT_TEXT_UNUSED", "FORMAT", "SUPPORTED_FORMATS", "Bundle", "BundleError",
           "load_bundle", "read_manifest"]
MODEL_FILE = "model.ts"
ONNX_MODEL_FILE = "model.onnx"
ONNX_TEXT_FILE = "text.onnx"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
KINDS = ("torchscript", "tensorrt", "onnx")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TEXT_CACHE_SIZE = 4096


class BundleError(Exception):
    """A bundle is missing, malformed, of an unsupported version, or unusable on this machine."""


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse and validate ``BUNDLE_DIR/manifest.json``."""
    manifest_path = Path(path) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"not a bundle: {manifest_path} is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"unreadable manifest {manifest_path}: {exc}") from exc
    try:
        spec = decode_manifest(manifest, str(manifest_path))
    except FormatError as exc:
        raise BundleError(str(exc)) from exc
    if spec.kind not in KINDS:
        raise BundleError(f"unknown bundle kind {spec.kind!r} in {manifest_path}; known: {', '.join(KINDS)}")
    if spec.dtype not in DTYPES:
        raise BundleError(f"unknown dtype {spec.dtype!r} in {manifest_path}; known: {', '.join(DTYPES)}")
    if spec.resize_policy not in imaging.RESIZE_POLICIES:
        raise BundleError(f"unknown resize policy {spec.resize_policy!r} in {manifest_path}")
    return manifest


def _resolve_device(spec: BundleManifest, device: str | torch.device) -> torch.device:
    """The device to run on; a TensorRT bundle runs only on the GPU model it was built for."""
    device = torch.device(device)
    if spec.kind == "onnx" and device.type != "cpu":
        raise BundleError(f"ONNX bundles run on the CPU (ONNX Runtime's CPU provider), not on {device}; serve with --device cpu")
    if spec.kind != "tensorrt":
        return device
    built = spec.tensorrt
    if not torch.cuda.is_available():
        raise BundleError(
            f"this TensorRT bundle was built for GPU {built.get('gpu_name', '?')!r} and needs CUDA, "
            "which is not available here; serve the portable TorchScript bundle or rebuild with `genspot export trt`"
        )
    device = device if device.type == "cuda" else torch.device("cuda")
    here = torch.cuda.get_device_name(device)
    if here != built.get("gpu_name"):
        raise BundleError(
            f"this TensorRT bundle was built for GPU {built.get('gpu_name')!r} but this machine has {here!r}; "
            "TensorRT engines are GPU-specific: rebuild it here with `genspot export trt --bundle PORTABLE_BUNDLE`"
        )
    try:
        import torch_tensorrt  # noqa: F401  (registers the TensorRT runtime ops model.ts needs)
    except ImportError as exc:
        raise BundleError("this TensorRT bundle needs torch_tensorrt: pip install 'genspot[trt]'") from exc
    return device


def _required_file(path: Path) -> Path:
    if not path.is_file():
        raise BundleError(f"incomplete bundle: {path} is missing")
    return path


def _load_module(path: Path, spec: BundleManifest, device: torch.device):
    """The detector's entry points (``forward``, and ``encode_text`` / ``forward_with_text`` where
    ``spec.text_cache``): a TorchScript module, or an ONNX bundle's graphs in ONNX Runtime."""
    if spec.kind == "onnx":
        return _load_onnx(path, spec)
    model_path = _required_file(path / MODEL_FILE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice; TorchScript is the format
            module = torch.jit.load(str(model_path), map_location=device)
    except (RuntimeError, ValueError, OSError) as exc:
        raise BundleError(f"cannot load {model_path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return module.eval()


def _load_onnx(path: Path, spec: BundleManifest):
    model_path = _required_file(path / ONNX_MODEL_FILE)
    text_path = _required_file(path / ONNX_TEXT_FILE) if spec.text_cache else None
    from genspot.onnx_model import OnnxModel

    try:
        return OnnxModel(model_path, text_path)
    except ImportError as exc:
        raise BundleError(f"ONNX bundles need onnxruntime ({exc}): pip install onnxruntime") from exc
    except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no base class but Exception
        raise BundleError(f"cannot load {model_path.parent}'s ONNX graphs: {str(exc).splitlines()[0] if str(exc) else exc}") from exc


def _load_tokenizer(path: Path, max_tokens: int) -> CaptionTokenizer:
    tokenizer_path = _required_file(path / TOKENIZER_FILE)
    try:
        return CaptionTokenizer.from_file(tokenizer_path, max_tokens)
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise BundleError(f"cannot read tokenizer {tokenizer_path}: {exc}") from exc


class _TextFeatureCache:
    """Bounded LRU of text features by caption hash: web pages repeat the same alt-texts."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> torch.Tensor | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: torch.Tensor) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class Bundle:
    """A loaded bundle: preprocessing, tokenisation and the detector on one device (a TorchScript
    module, or :class:`genspot.onnx_model.OnnxModel` with the same entry points).
    ``manifest`` is ``manifest.json`` as written; ``spec`` its typed view."""

    path: Path
    manifest: dict[str, Any]
    module: Any
    tokenizer: CaptionTokenizer
    device: torch.device
    text_cache: _TextFeatureCache | None = None

    @functools.cached_property
    def spec(self) -> BundleManifest:
        return decode_manifest(self.manifest, str(self.path / MANIFEST_FILE))

    @property
    def labels(self) -> list[str]:
        """Generator names, index = column of ``p_source``."""
        return list(self.spec.labels)

    @property
    def version(self) -> str:
        """Model version: a hash of the exported weights."""
        return self.spec.model_version

    @property
    def alt_text(self) -> str:
        """How the model reads alt-text: ``source_only`` (head B only: it cannot change p_ai),
        ``unused`` (no text branch) or ``full`` (p_ai depends on it; bundles from before this
        field are ``full``)."""
        return self.spec.alt_text

    @property
    def alt_text_is_safe(self) -> bool:
        """Whether a page's alt-text cannot move p_ai, so the service may send it by default."""
        return self.alt_text != ALT_TEXT_FULL

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    @property
    def input_channels(self) -> int:
        """Channels of ``preprocess``'s tensor: three per view of the manifest's resize policy."""
        return imaging.input_channels(self.spec.resize_policy)

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.spec.dtype]

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Decoded picture -> float32 tensor [3, S, S] exactly as the model was trained on."""
        return imaging.preprocess(image, self.image_size, self.spec.resize_policy)

    def tokenize(self, captions: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> ``(input_ids, attention_mask)`` int64 [N, T], padded to the longest."""
        return self.tokenizer(list(captions))

    def predict(self, images: torch.Tensor, captions: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """Batch of preprocessed images + their captions -> ``(p_ai [N], p_source [N, K])``.

        Safe to call from several threads at once. Images are float32 in [0, 1]; the model
        casts to its own dtype inside. Uses cached text features where the bundle allows.
        """
        shape = (self.input_channels, self.image_size, self.image_size)
        if images.ndim != 4 or images.shape[1:] != shape:
            raise ValueError(f"expected images [N, {', '.join(map(str, shape))}], got {list(images.shape)}")
        if images.shape[0] != len(captions):
            raise ValueError(f"{images.shape[0]} images but {len(captions)} captions")
        if images.shape[0] == 0:
            return np.zeros(0, dtype=np.float32), np.zeros((0, len(self.labels)), dtype=np.float32)
        step = int(self.spec.max_batch or images.shape[0])
        chunks = [self._predict_chunk(images[i : i + step], captions[i : i + step]) for i in range(0, len(captions), step)]
        return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])

    def _predict_chunk(self, images: torch.Tensor, captions: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            images = images.to(self.device, torch.float32)
            if self.text_cache is not None:
                p_ai, p_source = self.module.forward_with_text(images, self._text_features(captions))
            else:
                input_ids, attention_mask = (t.to(self.device) for t in self.tokenize(captions))
                p_ai, p_source = self.module(images, input_ids, attention_mask)
        return p_ai.float().cpu().numpy(), p_source.float().cpu().numpy()

    def _text_features(self, captions: list[str | None]) -> torch.Tensor:
        """Text features per caption: cached ones reused, the rest encoded in one batch."""
        keys = [caption_hash(caption) for caption in captions]
        found = {key: self.text_cache.get(key) for key in set(keys)}
        missing = [key for key, value in found.items() if value is None]
        if missing:
            caption_of = dict(zip(keys, captions))
            input_ids, attention_mask = (t.to(self.device) for t in self.tokenize([caption_of[k] for k in missing]))
            encoded = self.module.encode_text(input_ids, attention_mask)
            for key, row in zip(missing, encoded):
                found[key] = row
                self.text_cache.put(key, row)
        return torch.stack([found[key] for key in keys])


def load_bundle(path: str | Path, device: str | torch.device = "cpu", text_cache: bool = True) -> Bundle:
    """Load ``BUNDLE_DIR``; raises :class:`BundleError` with a one-line reason if it cannot be used here."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle directory {path} does not exist")
    manifest = read_manifest(path)
    spec = decode_manifest(manifest, str(path / MANIFEST_FILE))
    resolved = _resolve_device(spec, device)
    module = _load_module(path, spec, resolved)
    tokenizer = _load_tokenizer(path, spec.max_text_tokens)
    cache = _TextFeatureCache(TEXT_CACHE_SIZE) if text_cache and spec.text_cache else None
    return Bundle(path, manifest, module, tokenizer, resolved, cache)
