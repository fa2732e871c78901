"""Within training/, imports go one way, from the dataset to a chosen model (training/__init__.py):
each folder imports only those before it, read from the source, lazy imports included."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.import_order import imports_against_order

TRAINING = Path(__file__).resolve().parents[2] / "training"
LAYERS = ("config", "data", "model", "loop", "evaluation", "ct2")
"""training/'s shared module and folders, each importing only those before it."""

NOT_CODE = {"__init__", "__pycache__", "configs", "weights", "MODEL_CARD.md"}


def test_training_imports_go_one_way_from_data_to_ct2():
    found = {path.name.removesuffix(".py") for path in TRAINING.iterdir()} - NOT_CODE
    assert found == set(LAYERS), "every folder and shared module of training/ has its place in LAYERS"
    assert imports_against_order(TRAINING, "genspot.training", LAYERS) == [], "imports against the path's direction"
