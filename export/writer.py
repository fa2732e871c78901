"""Writing a bundle safely: stage its files, check parity as the backend will load it, install.

A bundle that fails the parity check never replaces a working one at ``out``, and no staging
folder is left behind.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from genspot.bundle import TOKENIZER_FILE, load_bundle
from genspot.export.manifest import build_manifest, weights_hash, write_manifest
from genspot.export.parity import ParityError, ParityReport, Tolerance, check_parity, picture_batches
from genspot.formats import CheckpointMeta


@dataclass(frozen=True)
class ExportResult:
    bundle_dir: Path
    manifest: dict[str, Any]
    parity: ParityReport


def parity_against_bundle(
    detector: torch.nn.Module,
    meta: CheckpointMeta,
    bundle_dir: Path,
    tolerance: Tolerance | float,
    device: str = "cpu",
    parity_images: Path | None = None,
) -> ParityReport:
    """Eager checkpoint vs the bundle as the backend loads it, with and without text caching, on
    the probes and on the real pictures of ``parity_images`` (preprocessed as the bundle does)."""
    bundles = [load_bundle(bundle_dir, device=device, text_cache=False)]
    if bundles[0].spec.text_cache:
        bundles.append(load_bundle(bundle_dir, device=device, text_cache=True))
    pictures = picture_batches(parity_images, bundles[0].preprocess) if parity_images is not None else []
    return check_parity(
        detector,
        meta.temperature,
        detector.tokenizer,
        [bundle.predict for bundle in bundles],
        int(bundles[0].image_size),
        tolerance,
        pictures,
        bundles[0].input_channels,
    )


def install_bundle(staging: Path, out: Path) -> None:
    """Move a checked bundle from ``staging`` to ``out``, replacing a previous bundle there."""
    out.mkdir(parents=True, exist_ok=True)
    for item in staging.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)


def write_bundle(
    out: Path,
    save_model: Callable[[Path], dict[str, str]],
    *,
    checkpoint: Path,
    detector: torch.nn.Module,
    meta: CheckpointMeta,
    tolerance: Tolerance | float,
    parity_images: Path | None = None,
    **manifest_fields: Any,
) -> ExportResult:
    """Stage the model (``save_model`` writes its files into the staging folder and returns them as
    the manifest's ``files`` entries), tokenizer and manifest; check parity (on the real pictures of
    ``parity_images`` too, where given); install at ``out``.

    ``manifest_fields`` go to :func:`genspot.export.manifest.build_manifest` (kind, dtype, device, ...).
    Raises :class:`ParityError` (``out`` untouched) when the bundle drifts beyond ``tolerance``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staging = Path(tmp)
        model_files = save_model(staging)
        (staging / TOKENIZER_FILE).write_text(meta.tokenizer_json, encoding="utf-8")
        manifest = build_manifest(
            files={**model_files, "tokenizer": TOKENIZER_FILE},
            detector=detector,
            meta=meta,
            weights_sha256=weights_hash(detector),
            parity={},
            source_checkpoint=checkpoint,
            **manifest_fields,
        )
        write_manifest(staging, manifest)
        report = parity_against_bundle(detector, meta, staging, tolerance, manifest["device"], parity_images)
        if not report.ok:
            raise ParityError(f"export rejected, {report.describe()}")
        manifest["parity"] = report.to_dict()
        write_manifest(staging, manifest)
        install_bundle(staging, out)
    return ExportResult(out, manifest, report)
