"""Checkpoint files (``RUN_DIR/model.pt``): format "genspot-checkpoint/1", see docs/ARCHITECTURE.md;
the metadata's fields and defaults are :class:`genspot.formats.CheckpointMeta`.

Frozen pretrained backbones are rebuilt from their source (config) instead of being stored,
so the default checkpoint stays small; fine-tuned or randomly initialised ones are stored.

`genspot train` saves the file at each best epoch with ``"finished": False`` (no fitted
temperature) and once more at the end with ``"finished": True``; a file left by an
interrupted run is refused by :func:`load_checkpoint` (and so by evaluate and export). Files
written before the field existed have no ``finished`` key and count as finished.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import torch

from genspot.formats import CHECKPOINT_FORMAT, CheckpointMeta, FormatError, decode_checkpoint_meta
from genspot.text import CaptionTokenizer
from genspot.training.config import ModelConfig
from genspot.training.model.model import GenspotDetector, create_model, rebuildable_branches

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "CheckpointMeta", "load_checkpoint", "read_checkpoint", "save_checkpoint"]


class CheckpointError(RuntimeError):
    """A file that is not a usable genspot checkpoint."""


def stored_state_dict(model: GenspotDetector) -> dict[str, torch.Tensor]:
    """The model's state without the rebuildable frozen backbones."""
    skip = tuple(f"branches.{name}." for name in model.rebuildable_branches())
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith(skip)}


def save_checkpoint(
    path: str | Path,
    model: GenspotDetector,
    *,
    temperature: float = 1.0,
    metrics: dict | None = None,
    train_args: dict | None = None,
    finished: bool = True,
) -> Path:
    """Write ``path`` atomically; ``finished=False`` marks a file saved mid-run (see module doc)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = CheckpointMeta(
        format=CHECKPOINT_FORMAT,
        config=model.config.to_dict(),
        labels_b=list(model.labels_b),
        tokenizer_json=model.tokenizer.to_str(),
        temperature=float(temperature),
        metrics=metrics or {},
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        train_args=train_args or {},
        finished=bool(finished),
    )
    payload = {**meta.to_dict(), "state_dict": stored_state_dict(model)}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written model.pt
    return path


def unfinished_error(path: str | Path, meta: CheckpointMeta) -> CheckpointError:
    epoch = meta.metrics.get("best_epoch")
    after = f" after epoch {epoch}" if epoch is not None else ""
    return CheckpointError(
        f"{path}: unfinished checkpoint of an interrupted `genspot train` run (saved{after}; "
        "temperature not fitted): rerun the training to the end"
    )


def read_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, allow_unfinished: bool = False
) -> dict[str, Any]:
    """The raw checkpoint dict, checked for format and fields; an unfinished run's file only with ``allow_unfinished``."""
    return _read(path, map_location, allow_unfinished)[0]


def _read(path: str | Path, map_location, allow_unfinished: bool) -> tuple[dict[str, Any], CheckpointMeta]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle/zip errors of a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or "format" not in payload:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} file")
    try:
        meta = decode_checkpoint_meta(payload, str(path))
    except FormatError as exc:
        raise CheckpointError(str(exc)) from exc
    if not allow_unfinished and not meta.finished:
        raise unfinished_error(path, meta)
    return payload, meta


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, allow_unfinished: bool = False
) -> tuple[GenspotDetector, CheckpointMeta]:
    """(model in eval mode, its :class:`~genspot.formats.CheckpointMeta`).

    Raises :class:`CheckpointError` naming the file for an interrupted run's checkpoint unless
    ``allow_unfinished``."""
    payload, meta = _read(path, map_location, allow_unfinished)
    config = ModelConfig.from_dict(meta.config)
    model = create_model(config, meta.labels_b, load_weights=bool(rebuildable_branches(config)))
    missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    rebuilt = tuple(f"branches.{name}." for name in model.rebuildable_branches())
    missing = [k for k in missing if not k.startswith(rebuilt)]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.tokenizer = CaptionTokenizer.from_str(meta.tokenizer_json, config.text.max_tokens)
    return model.to(map_location).eval(), meta
