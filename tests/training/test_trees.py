"""Boosted-trees head: packing scikit-learn's trees into tensors, statistics, checkpoint round trip."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.training.checkpoint import load_checkpoint, read_checkpoint
from genspot.training.forensic import GradientStatistics
from genspot.training.trees import MultiScaleStatistics, TreeEnsemble, TreeHead, fit_tree_ensemble

FIT = dict(trees=30, learning_rate=0.2, max_leaf_nodes=15, max_features=0.5, seed=0)


def _problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = (((x[:, 0] > 0.3) & (x[:, 1] < 0)) | (x[:, 2] > 1)).astype(int)  # an interaction, as trees find
    return x, y


def test_packed_trees_score_unseen_data_exactly_as_scikit_learn():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _problem(400, 0)
    ensemble = fit_tree_ensemble(x, y, **FIT)
    reference = HistGradientBoostingClassifier(
        max_iter=30, learning_rate=0.2, max_leaf_nodes=15, max_features=0.5, class_weight="balanced",
        early_stopping=False, random_state=0,
    ).fit(x, y)
    unseen, labels = _problem(300, 1)
    packed = ensemble(torch.from_numpy(unseen)).double().numpy()
    np.testing.assert_allclose(packed, reference.decision_function(unseen), atol=1e-5)
    assert ((packed > 0) == labels).mean() > 0.8  # and it learned the interaction


def test_traced_ensemble_takes_any_batch_size():
    x, y = _problem(200, 2)
    ensemble = fit_tree_ensemble(x, y, **FIT)
    traced = torch.jit.trace(ensemble, torch.from_numpy(x[:4]))
    for n in (1, 7, 50):
        batch = torch.from_numpy(x[:n])
        torch.testing.assert_close(traced(batch), ensemble(batch))


def test_ensemble_survives_its_dict_form():
    x, y = _problem(200, 3)
    ensemble = fit_tree_ensemble(x, y, **FIT)
    again = TreeEnsemble.from_dict(ensemble.to_dict())
    torch.testing.assert_close(again(torch.from_numpy(x)), ensemble(torch.from_numpy(x)))


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((10, 3)), np.ones(10), "both real and AI"),
        (np.full((10, 3), np.nan), np.arange(10) % 2, "NaN or infinity"),
    ],
)
def test_fit_refuses_unusable_data(x, y, message):
    with pytest.raises(ValueError, match=message):
        fit_tree_ensemble(x, y, **FIT)


def test_gradient_statistics_see_edge_orientation():
    stripes = torch.zeros(1, 3, 32, 32)
    stripes[..., ::4] = 1.0  # vertical stripes: horizontal gradients (angle 0)
    features = GradientStatistics()(torch.cat([stripes, stripes.transpose(-1, -2)]))
    assert features.shape == (2, GradientStatistics.num_features)
    histogram = features[:, : GradientStatistics.bins]
    assert histogram[0].argmax() == 0 and histogram[1].argmax() == GradientStatistics.bins // 2
    torch.testing.assert_close(histogram.sum(dim=1), torch.ones(2))


def test_statistics_are_float32_under_bf16_autocast():
    statistics = MultiScaleStatistics([1, 2], [1, 2, 4])
    image = torch.rand(2, 3, 64, 64)
    plain = statistics(image)
    assert plain.shape == (2, statistics.num_features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(statistics(image), plain)


def test_tree_head_mixes_logits_by_weight():
    x, y = _problem(100, 4)
    head = TreeHead(MultiScaleStatistics([1], []), fit_tree_ensemble(x, y, **FIT), weight=0.25)
    image = torch.rand(3, 3, 16, 16)
    neural = torch.tensor([1.0, -2.0, 0.5])
    torch.testing.assert_close(head.mix(neural, image), 0.75 * neural + 0.25 * head(image))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TreeHead(MultiScaleStatistics([1], []), head.ensemble, weight=1.5)


def test_tiny_checkpoint_carries_its_trees(tiny_checkpoint):
    fitted = re.search(r"fitting 20 boosted trees on (\d+) x (\d+) statistics", (tiny_checkpoint.parent / "train.log").read_text())
    assert fitted is not None
    rows, columns = int(fitted[1]), int(fitted[2])
    assert rows > 0 and rows % 3 == 0  # each training image as it is and in two augmented copies
    assert columns == MultiScaleStatistics([1, 2], [1, 2, 4]).num_features
    payload = read_checkpoint(tiny_checkpoint)
    assert payload["trees"]["feature"].shape[0] == 20  # the tiny config's tree count
    assert not any(k.startswith("tree_head.") for k in payload["state_dict"])  # stored once, as "trees"
    model, _ = load_checkpoint(tiny_checkpoint)
    assert model.tree_head is not None
    image = torch.rand(4, 3, 64, 64)
    ids, mask = model.tokenizer(["", "a cat", "", "a dog"])
    with torch.no_grad():
        mixed, _ = model(image, ids, mask)
        neural, _ = model.forward_head(model.forward_features(image, ids, mask))
        trees = model.tree_head(image)
    torch.testing.assert_close(mixed, 0.5 * neural + 0.5 * trees)


def test_default_model_computes_shared_statistics_once_with_the_same_result():
    model, _ = load_checkpoint(Path(__file__).resolve().parents[2] / "training" / "weights" / "default.pt")
    image = torch.rand(3, 3, 256, 256)
    ids, mask = model.tokenizer(["", "a cat", ""])
    with torch.no_grad():
        shared = model.shared_statistics(image)
        assert shared is not None  # its pixel branch and its trees both read full-size GlobalStatistics
        mixed, _ = model(image, ids, mask)
        neural, _ = model.forward_head(model.forward_features(image, ids, mask))  # each computes its own
        torch.testing.assert_close(mixed, 0.5 * neural + 0.5 * model.tree_head(image), rtol=0, atol=1e-6)
