"""``manifest.json``: everything a server needs to use ``model.ts`` (see docs/bundle.md)."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from genspot import __version__
from genspot.bundle import (
    ALT_TEXT_FULL,
    ALT_TEXT_SOURCE_ONLY,
    ALT_TEXT_UNUSED,
    DTYPES,
    FORMAT,
    MANIFEST_FILE,
)
from genspot.formats import CheckpointMeta
from genspot.training.config import ModelConfig

DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}  # the reader's table, reversed


def weights_hash(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, dtypes, shapes, bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if not isinstance(tensor, torch.Tensor):
            continue
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_version(weights_sha256: str, dtype: torch.dtype, quantization: str | None) -> str:
    """Short weight hash plus precision: two bundles of one checkpoint in bf16 and fp32 differ."""
    precision = DTYPE_NAMES[dtype] + (f"+{quantization}" if quantization else "")
    return f"{weights_sha256[:12]}-{precision}"


def branch_normalization(detector: torch.nn.Module) -> dict[str, Any]:
    """What each branch does to the [0, 1] input inside the model (recorded, never re-applied)."""
    record: dict[str, Any] = {}
    for name in detector.branch_names:
        branch = detector.branches[name]
        if hasattr(branch, "mean") and hasattr(branch, "std"):
            record[name] = {
                "mean": [round(float(v), 8) for v in branch.mean.flatten()],
                "std": [round(float(v), 8) for v in branch.std.flatten()],
                "input_size": int(getattr(branch, "input_size", 0)) or None,
            }
        elif name != "text":
            record[name] = {"mean": None, "std": None, "note": "reads high-frequency residuals of the [0, 1] image"}
    return record


def alt_text_use(detector: torch.nn.Module) -> str:
    """What the bundle's alt-text input can change (``genspot.bundle.Bundle.alt_text``)."""
    if "text" not in detector.branch_names:
        return ALT_TEXT_UNUSED
    return ALT_TEXT_SOURCE_ONLY if detector.text_for_b_only else ALT_TEXT_FULL


GENERATOR_NAMES_FILE = Path(__file__).with_name("generator_names.json")


def display_names(labels: list[str]) -> dict[str, str]:
    """How to show each known generator label (``generator_names.json``); others show as their id."""
    known = json.loads(GENERATOR_NAMES_FILE.read_text(encoding="utf-8"))
    return {label: known[label] for label in labels if label in known}


def backbones(config: ModelConfig) -> dict[str, Any]:
    """The enabled branches and where their weights came from, from the model config."""
    used: dict[str, Any] = {}
    if config.image.enabled:
        used["image"] = {"open_clip_model": config.image.model_name, "pretrained": config.image.pretrained}
    if config.text.enabled:
        used["text"] = {"source": config.text.source, "pooling": config.text.pooling, "random_init": config.text.random_init}
    used["fusion"] = config.fusion.kind
    return used


def build_manifest(
    *,
    kind: str,
    files: dict[str, str],
    detector: torch.nn.Module,
    meta: CheckpointMeta,
    dtype: torch.dtype,
    device: str,
    weights_sha256: str,
    quantization: str | None,
    text_cache: bool,
    parity: dict[str, Any],
    source_checkpoint: Path | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = meta.config
    manifest = {
        "format": FORMAT,
        "kind": kind,
        "files": files,
        "model_version": model_version(weights_sha256, dtype, quantization),
        "weights_sha256": weights_sha256,
        "labels": list(meta.labels_b),
        "display_names": display_names(list(meta.labels_b)),
        "image_size": int(detector.config.image_size),
        "resize_policy": detector.config.resize_policy,
        "input_range": [0.0, 1.0],
        "normalization": branch_normalization(detector),
        "max_text_tokens": int(detector.config.text.max_tokens),
        "alt_text": alt_text_use(detector),
        "dtype": DTYPE_NAMES[dtype],
        "quantization": quantization,
        "device": device,
        "text_cache": text_cache,
        "temperature": meta.temperature,
        "verdict_band": verdict_band(detector.config.verdict),
        "source_name_min_confidence": detector.config.verdict.name_generator_from,
        "backbones": backbones(detector.config),
        "model_config": config,
        "metrics": meta.metrics,
        "parity": parity,
        "source": {
            "checkpoint": str(source_checkpoint.resolve()) if source_checkpoint else None,
            "checkpoint_created": meta.created,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported_with": {"genspot": __version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    manifest.update(extra or {})
    return manifest


def verdict_band(verdict) -> dict[str, float]:
    """The operating point the recipe was chosen with (``VerdictConfig``), for the backend."""
    return {"threshold": verdict.threshold, "uncertain_band": verdict.uncertain_band}


def write_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> None:
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
