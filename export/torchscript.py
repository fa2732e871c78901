"""Checkpoint -> portable TorchScript bundle (traced, frozen; dynamic batch and sequence length).

The bundle is written to a staging folder beside ``out``, checked for parity by loading it
exactly as the backend does, and only then moved into place: a bundle that fails the check
never replaces a working one.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genspot.bundle import MODEL_FILE, TOKENIZER_FILE, load_bundle
from genspot.export.manifest import DTYPE_NAMES, build_manifest, weights_hash, write_manifest
from genspot.export.parity import TOLERANCES, ParityError, ParityReport, check_parity, probe_batches
from genspot.export.wrapper import ProbabilityModel
from genspot.imaging import DEFAULT_IMAGE_SIZE

INT8 = "int8-dynamic-linear"


@dataclass(frozen=True)
class ExportResult:
    bundle_dir: Path
    manifest: dict[str, Any]
    parity: ParityReport


def checkpoint_image_size(meta: dict[str, Any]) -> int:
    """The input size the checkpoint was trained at (``train_args.image_size``)."""
    return int((meta.get("train_args") or {}).get("image_size") or DEFAULT_IMAGE_SIZE)


def trace_inputs(tokenizer, image_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Example inputs for tracing: two samples, one caption padded, so masking is traced as data."""
    images, _ = probe_batches(image_size)[1]
    input_ids, attention_mask = tokenizer(["", "a photo of a dog running on the beach at sunset"])
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


def parity_against_bundle(
    detector: torch.nn.Module, meta: dict[str, Any], bundle_dir: Path, tolerance: float, device: str = "cpu"
) -> ParityReport:
    """Eager checkpoint vs the bundle as the backend loads it, with and without text caching."""
    bundles = [load_bundle(bundle_dir, device=device, text_cache=False)]
    if bundles[0].manifest.get("text_cache"):
        bundles.append(load_bundle(bundle_dir, device=device, text_cache=True))
    return check_parity(
        detector,
        float(meta.get("temperature", 1.0)),
        detector.tokenizer,
        [bundle.predict for bundle in bundles],
        int(bundles[0].image_size),
        tolerance,
    )


def install_bundle(staging: Path, out: Path) -> None:
    """Move a checked bundle from ``staging`` to ``out``, replacing a previous bundle there."""
    out.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)


def export_torchscript(
    checkpoint: Path,
    out: Path,
    dtype: torch.dtype,
    *,
    int8: bool = False,
    tolerance: float | None = None,
    loaded: tuple[torch.nn.Module, dict[str, Any]] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out``; raises :class:`ParityError` when the bundle drifts."""
    from genspot.training.checkpoint import load_checkpoint

    detector, meta = loaded or load_checkpoint(checkpoint)
    image_size = checkpoint_image_size(meta)
    wrapper = ProbabilityModel(detector, float(meta.get("temperature", 1.0)), dtype)
    quantization = INT8 if int8 and wrapper.quantize_backbones() else None
    if tolerance is None:
        tolerance = TOLERANCES["int8" if quantization else DTYPE_NAMES[dtype]]
    traced = trace_model(wrapper, trace_inputs(detector.tokenizer, image_size))

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staging = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(traced, str(staging / MODEL_FILE))
        (staging / TOKENIZER_FILE).write_text(meta["tokenizer_json"], encoding="utf-8")
        manifest = build_manifest(
            kind="torchscript",
            detector=detector,
            meta=meta,
            image_size=image_size,
            dtype=dtype,
            device="cpu",
            weights_sha256=weights_hash(detector),
            quantization=quantization,
            text_cache=wrapper.has_text,
            parity={},
            source_checkpoint=checkpoint,
        )
        write_manifest(staging, manifest)
        report = parity_against_bundle(detector, meta, staging, tolerance)
        if not report.ok:
            raise ParityError(f"export rejected, {report.describe()}")
        manifest["parity"] = report.to_dict()
        write_manifest(staging, manifest)
        install_bundle(staging, out)
    return ExportResult(out, manifest, report)
