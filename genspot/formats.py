"""The two files the parts hand each other, defined once: the training checkpoint's metadata
(``RUN_DIR/model.pt``, written by training, read by training and export) and the bundle
manifest (``BUNDLE_DIR/manifest.json``, written by export, read by :mod:`genspot.bundle` and
so the backend). See docs/ARCHITECTURE.md and docs/bundle.md.

Each is a msgspec struct; fields that older files lack have their default here and nowhere
else. Decoding checks the ``format`` version first, so a file of another version fails with a
message naming it, and a known version with a missing or mistyped field names the field. This
module imports only msgspec: the backend loads it with the bundle.
"""

from __future__ import annotations

from typing import Any

import msgspec

CHECKPOINT_FORMAT = "genspot-checkpoint/1"
CHECKPOINT_FORMATS = (CHECKPOINT_FORMAT,)
BUNDLE_FORMAT = "genspot-bundle/1"
BUNDLE_FORMATS = (BUNDLE_FORMAT,)
ALT_TEXT_FULL, ALT_TEXT_SOURCE_ONLY, ALT_TEXT_UNUSED = "full", "source_only", "unused"


class FormatError(ValueError):
    """A checkpoint or manifest of an unknown version, or with missing or mistyped fields."""


class CheckpointMeta(msgspec.Struct, kw_only=True, frozen=True):
    """Everything in a checkpoint but its weights (``state_dict``)."""

    format: str
    config: dict[str, Any]  # the model config (``ModelConfig.to_dict()``)
    labels_b: list[str]  # generator names, index = head-B class
    tokenizer_json: str
    temperature: float = 1.0  # head A's calibration: p_ai = sigmoid(logit / temperature)
    metrics: dict[str, Any] = {}
    created: str | None = None
    train_args: dict[str, Any] = {}
    finished: bool = True  # False in the file saved mid-run (files from before the field: finished)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class VerdictBand(msgspec.Struct, kw_only=True, frozen=True):
    threshold: float
    uncertain_band: float


class BundleManifest(msgspec.Struct, kw_only=True, frozen=True):
    """The typed view of ``manifest.json`` (fields the reader uses; others are kept in the raw dict)."""

    format: str
    kind: str
    labels: list[str]
    image_size: int
    resize_policy: str
    max_text_tokens: int
    dtype: str
    device: str
    model_version: str
    alt_text: str = ALT_TEXT_FULL  # bundles from before the field read alt-text fully
    text_cache: bool = False
    max_batch: int | None = None
    temperature: float = 1.0
    quantization: str | None = None
    display_names: dict[str, str] = {}
    # The least p_source at which the source head's top guess is named as the generator (chosen
    # where its named guesses prove accurate on validation data); None: not measured for this bundle.
    source_name_min_confidence: float | None = None
    # The verdict band the detector was chosen with (``ai`` from threshold + uncertain_band, ``real``
    # below threshold - uncertain_band); None in bundles from before it: the backend's defaults.
    verdict_band: VerdictBand | None = None
    tensorrt: dict[str, Any] = {}
    parity: dict[str, Any] = {}
    metrics: dict[str, Any] = {}


def _version_error(what: str, found: Any, source: str, known: tuple[str, ...], advice: str) -> FormatError:
    return FormatError(f"unsupported {what} format {found!r} in {source}; this genspot reads {', '.join(known)} ({advice})")


def decode_checkpoint_meta(payload: dict[str, Any], source: str) -> CheckpointMeta:
    """The metadata of a ``torch.load``-ed checkpoint dict (``state_dict`` is ignored)."""
    found = payload.get("format")
    if found not in CHECKPOINT_FORMATS:
        raise _version_error("checkpoint", found, source, CHECKPOINT_FORMATS, "retrain, or use the genspot that wrote it")
    fields = {k: v for k, v in payload.items() if k != "state_dict"}
    try:
        return msgspec.convert(fields, CheckpointMeta, strict=False)
    except msgspec.ValidationError as exc:
        raise FormatError(f"invalid {found} checkpoint {source}: {exc}") from exc


def decode_manifest(manifest: Any, source: str) -> BundleManifest:
    """The typed manifest of a parsed ``manifest.json``."""
    if not isinstance(manifest, dict):
        raise FormatError(f"invalid manifest {source}: expected a JSON object")
    fields = BundleManifest.__struct_fields__
    required = fields[: len(fields) - len(BundleManifest.__struct_defaults__)]
    missing = [name for name in required if name not in manifest]
    if missing:
        raise FormatError(f"invalid manifest {source}: missing field(s) {', '.join(missing)}")
    if manifest["format"] not in BUNDLE_FORMATS:
        raise _version_error("bundle", manifest["format"], source, BUNDLE_FORMATS, "re-export the bundle")
    try:
        return msgspec.convert(manifest, BundleManifest)
    except msgspec.ValidationError as exc:
        raise FormatError(f"invalid manifest {source}: {exc}") from exc
