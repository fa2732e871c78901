"""Checkpoint metadata is decoded through genspot.formats.CheckpointMeta: old files load with
the defaults defined there, other versions and broken files fail with a message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genspot.formats import CHECKPOINT_FORMAT
from genspot.training.model.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from genspot.training.config import ModelConfig


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


def test_an_old_checkpoint_decodes_with_the_defaults(tmp_path, tiny_checkpoint):
    """A file as genspot wrote them before the ``finished`` field and before the pixel branch and
    the tree head were retired (their sections disabled, ``trees`` null): it counts as finished,
    its config reads as the current one, the rest as stored."""
    payload = read_checkpoint(tiny_checkpoint)
    config = payload["config"]
    del payload["finished"]
    payload.update(trees=None, config={**config, "forensic": {"enabled": False, "params": {}}, "trees": {"enabled": False, "weight": 0.5}})
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    model, meta = load_checkpoint(path)
    assert meta.format == CHECKPOINT_FORMAT and meta.finished is True
    assert meta.temperature == payload["temperature"] and meta.labels_b == payload["labels_b"] == model.labels_b
    assert ModelConfig.from_dict(meta.config) == ModelConfig.from_dict(config)


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
