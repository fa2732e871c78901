"""Checkpoint metadata is decoded through genspot.formats.CheckpointMeta: old files load with
the defaults defined there, other versions and broken files fail with a message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genspot.formats import CHECKPOINT_FORMAT, CheckpointMeta
from genspot.training.checkpoint import CheckpointError, load_checkpoint, read_checkpoint

OFFLINE_CHECKPOINT = Path(__file__).resolve().parents[2] / "training" / "weights" / "offline.pt"


def test_an_old_checkpoint_decodes_with_the_defaults():
    """offline.pt predates the ``finished`` field: it counts as finished, the rest as stored."""
    payload = read_checkpoint(OFFLINE_CHECKPOINT)
    assert "finished" not in payload
    model, meta = load_checkpoint(OFFLINE_CHECKPOINT)
    assert isinstance(meta, CheckpointMeta) and meta.format == CHECKPOINT_FORMAT and meta.finished is True
    assert meta.temperature == payload["temperature"] and meta.labels_b == payload["labels_b"] == model.labels_b
    assert meta.config == payload["config"] and meta.created == payload["created"]
    assert model.tree_head is not None and model.tree_head.scale_without_caption == payload["trees"]["scale_without_caption"]


def _rewritten(tmp_path: Path, source: Path, **changes) -> Path:
    payload = read_checkpoint(source)
    for key, value in changes.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    return path


def test_a_checkpoint_without_temperature_gets_the_format_default(tmp_path, tiny_checkpoint):
    _, meta = load_checkpoint(_rewritten(tmp_path, tiny_checkpoint, temperature=None, metrics=None, created=None))
    assert (meta.temperature, meta.metrics, meta.created) == (1.0, {}, None)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "genspot-checkpoint/2"}, "unsupported checkpoint format 'genspot-checkpoint/2'"),
        ({"labels_b": None}, "missing required field `labels_b`"),
        ({"temperature": "warm"}, "`$.temperature`"),
    ],
)
def test_other_versions_and_broken_metadata_fail_naming_them(tmp_path, tiny_checkpoint, changes, message):
    path = _rewritten(tmp_path, tiny_checkpoint, **changes)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_tree_head_saved_before_its_caption_less_scale_gets_one(tmp_path, tiny_checkpoint):
    trees = {k: v for k, v in read_checkpoint(tiny_checkpoint)["trees"].items() if k != "scale_without_caption"}
    model, meta = load_checkpoint(_rewritten(tmp_path, tiny_checkpoint, trees=trees))
    assert meta.scale_without_caption == 1.0 and model.tree_head.scale_without_caption == 1.0
