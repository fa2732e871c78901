"""Boosted-trees head: packing scikit-learn's trees into tensors, statistics, checkpoint round trip."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.training.checkpoint import load_checkpoint, read_checkpoint
from genspot.training.forensic import GradientStatistics, ToneStatistics
from genspot.training.trees import MultiScaleStatistics, TreeEnsemble, TreeHead, fit_tree_ensemble, image_tiles

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


def test_bagged_fit_scores_the_mean_of_its_models_on_unseen_data():
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _problem(400, 5)
    ensemble = fit_tree_ensemble(x, y, **{**FIT, "seeds": 3})
    assert ensemble.num_trees == 3 * FIT["trees"]
    unseen, _ = _problem(300, 6)
    references = [
        HistGradientBoostingClassifier(
            max_iter=30, learning_rate=0.2, max_leaf_nodes=15, max_features=0.5, class_weight="balanced",
            early_stopping=False, random_state=seed,
        ).fit(x, y).decision_function(unseen)
        for seed in (0, 1, 2)
    ]
    assert np.abs(references[0] - references[1]).max() > 0.1  # the seeds do give different models
    packed = ensemble(torch.from_numpy(unseen)).double().numpy()
    np.testing.assert_allclose(packed, np.mean(references, axis=0), atol=1e-5)


def test_averaging_pads_trees_of_different_sizes():
    x, y = _problem(300, 7)
    small = fit_tree_ensemble(x, y, **{**FIT, "max_leaf_nodes": 3})
    large = fit_tree_ensemble(x, y, **FIT)
    assert small.feature.shape[1] < large.feature.shape[1]
    both = TreeEnsemble.average([small, large])
    data = torch.from_numpy(x)
    torch.testing.assert_close(both(data), (small(data) + large(data)) / 2)
    with pytest.raises(ValueError, match="nothing to average"):
        TreeEnsemble.average([])


def test_image_tiles_cut_non_overlapping_squares_image_by_image():
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    tiles = image_tiles(image, 4)
    assert tiles.shape == (8, 3, 4, 4)
    torch.testing.assert_close(tiles[0], image[0, :, :4, :4])
    torch.testing.assert_close(tiles[1], image[0, :, :4, 4:])  # along the row first
    torch.testing.assert_close(tiles[2], image[0, :, 4:, :4])
    torch.testing.assert_close(tiles[5], image[1, :, :4, 4:])
    assert image_tiles(image[..., :7, :7], 4).shape == (2, 3, 4, 4)  # a partial row/column is left out
    assert image_tiles(image, 0) is image and image_tiles(image, 8) is image  # whole image


def test_tiled_tree_head_averages_its_tiles_and_traces_with_any_batch():
    statistics = MultiScaleStatistics([1], [], [1])
    x = torch.rand(60, 3, 16, 16)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long().numpy()
    ensemble = fit_tree_ensemble(statistics(x).numpy(), y, **FIT)
    head = TreeHead(statistics, ensemble, weight=0.5, patch_size=16)
    image = torch.rand(3, 3, 32, 32)
    expected = torch.stack([
        torch.stack([ensemble(statistics(image[i : i + 1, :, r : r + 16, c : c + 16])) for r in (0, 16) for c in (0, 16)]).mean()
        for i in range(3)
    ])
    torch.testing.assert_close(head(image), expected)
    traced = torch.jit.trace(head, image[:2])
    for n in (1, 5):
        batch = torch.rand(n, 3, 32, 32)
        torch.testing.assert_close(traced(batch), head(batch))


def test_tree_share_depends_on_whether_a_caption_was_given():
    x, y = _problem(100, 8)
    blank = torch.tensor([1.0, 0.0, 0.0])
    head = TreeHead(MultiScaleStatistics([1], []), fit_tree_ensemble(x, y, **FIT), weight=0.25,
                    weight_without_caption=1.0, blank_text=blank)
    image = torch.rand(3, 3, 16, 16)
    neural = torch.tensor([1.0, -2.0, 0.5])
    text = torch.stack([blank * 3.0, torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])])  # blank, caption, caption
    trees = head(image)
    expected = torch.stack([trees[0], 0.75 * neural[1] + 0.25 * trees[1], 0.75 * neural[2] + 0.25 * trees[2]])
    torch.testing.assert_close(head.mix(neural, image, text), expected)
    without_text = TreeHead(head.statistics, head.ensemble, weight=0.25, weight_without_caption=1.0)
    torch.testing.assert_close(without_text.mix(neural, image), trees)  # no text branch: never a caption
    scaled = TreeHead(head.statistics, head.ensemble, weight=0.25, weight_without_caption=1.0, blank_text=blank,
                      scale_without_caption=0.5)
    torch.testing.assert_close(scaled.mix(neural, image, text), expected * torch.tensor([0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="must be positive"):
        TreeHead(head.statistics, head.ensemble, weight=0.25, scale_without_caption=0.0)


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


def test_tone_statistics_read_hue_clipping_and_flat_blocks():
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 0.8
    blue = torch.zeros(1, 3, 32, 32)
    blue[:, 2] = 0.8
    blue[..., :16, :] = 1.0  # top half clipped white (no saturation, so it adds no hue)
    features = ToneStatistics()(torch.cat([red, blue]))
    assert features.shape == (2, ToneStatistics.num_features)
    hue = features[:, : ToneStatistics.hue_bins]
    assert hue[0].argmax() == 0 and hue[1].argmax() == 8  # 0 and 240 degrees
    torch.testing.assert_close(hue.sum(dim=1), torch.ones(2))
    highlights, shadows = features[:, 12], features[:, 13]
    torch.testing.assert_close(highlights, torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(shadows, torch.tensor([1.0, 0.5]))  # red and blue pixels have a zero channel
    block_variance = features[:, 21:26]
    torch.testing.assert_close(block_variance, torch.full((2, 5), float(np.log(0.1))))  # flat 8x8 blocks


def test_statistics_are_float32_under_bf16_autocast():
    statistics = MultiScaleStatistics([1, 2], [1, 2, 4], [1])
    image = torch.rand(2, 3, 64, 64)
    plain = statistics(image)
    assert plain.shape == (2, statistics.num_features)
    assert statistics.num_features == 2 * 647 + 3 * GradientStatistics.num_features + ToneStatistics.num_features
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
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        TreeHead(MultiScaleStatistics([1], []), head.ensemble, weight=0.5, weight_without_caption=-0.1)


def test_tiny_checkpoint_carries_its_trees(tiny_checkpoint):
    fitted = re.search(r"fitting 2 x 10 boosted trees on (\d+) x (\d+) statistics \(4 tile\(s\) per image\)", (tiny_checkpoint.parent / "train.log").read_text())
    assert fitted is not None
    rows, columns = int(fitted[1]), int(fitted[2])
    assert rows > 0 and rows % (3 * 4) == 0  # 4 tiles of each training image, as it is and in two augmented copies
    assert columns == MultiScaleStatistics([1, 2], [1, 2, 4]).num_features
    payload = read_checkpoint(tiny_checkpoint)
    assert payload["trees"]["feature"].shape[0] == 2 * 10  # the tiny config's seeds x trees
    assert not any(k.startswith("tree_head.") for k in payload["state_dict"])  # stored once, as "trees"
    model, _ = load_checkpoint(tiny_checkpoint)
    assert model.tree_head is not None
    mixed, neural, trees = _task_a_logits(model, torch.rand(4, 3, 64, 64), ["", "a cat", "", "a dog"])
    torch.testing.assert_close(mixed, 0.5 * neural + 0.5 * trees)


def _task_a_logits(model, image: torch.Tensor, captions: list[str]) -> tuple[torch.Tensor, ...]:
    """(the model's task-A logit, its neural head's alone, its trees' alone)."""
    ids, mask = model.tokenizer(captions)
    with torch.no_grad():
        mixed, _ = model(image, ids, mask)
        neural, _ = model.forward_head(model.forward_features(image, ids, mask))
        return mixed, neural, model.tree_head(image)


OFFLINE_CHECKPOINT = Path(__file__).resolve().parents[2] / "training" / "weights" / "offline.pt"  # the trees model


def test_offline_model_gives_uncaptioned_images_to_the_trees():
    model, _ = load_checkpoint(OFFLINE_CHECKPOINT)
    trees = model.config.trees
    assert trees.patch_size == 128 and trees.weight == 0.5 and trees.weight_without_caption == 1.0
    mixed, neural, tree_logit = _task_a_logits(model, torch.rand(4, 3, 256, 256), ["", "a cat on a sofa", "   ", "img_0042.jpg"])
    scale = model.tree_head.scale_without_caption  # calibrates the trees-only path (test_train_cli)
    torch.testing.assert_close(mixed[[0, 2]], scale * tree_logit[[0, 2]])  # blank (or blank after stripping): trees alone
    torch.testing.assert_close(mixed[[1, 3]], 0.5 * neural[[1, 3]] + 0.5 * tree_logit[[1, 3]])


def test_whole_image_trees_share_the_pixel_branch_statistics_with_the_same_result():
    model, _ = load_checkpoint(OFFLINE_CHECKPOINT)
    image = torch.rand(3, 3, 256, 256)
    assert model.shared_statistics(image) is None  # tiled trees read other statistics than the pixel branch
    model.config = dataclasses.replace(model.config, trees=dataclasses.replace(model.config.trees, patch_size=0))
    model.attach_trees(model.tree_head.ensemble)
    ids, mask = model.tokenizer(["", "a cat", ""])
    with torch.no_grad():
        shared = model.shared_statistics(image)
        assert shared is not None  # its pixel branch and its trees both read full-size GlobalStatistics
        mixed, _ = model(image, ids, mask)
        features = model.forward_features(image, ids, mask)  # each computes its own
        neural, _ = model.forward_head(features)
        torch.testing.assert_close(mixed, model.tree_head.mix(neural, image, features["text"]), rtol=0, atol=1e-6)


def test_caption_dependent_share_refuses_a_text_encoder_that_cannot_tell_blank_captions(tiny_checkpoint, monkeypatch):
    model, _ = load_checkpoint(tiny_checkpoint)
    model.config = dataclasses.replace(model.config, trees=dataclasses.replace(model.config.trees, weight_without_caption=1.0))
    monkeypatch.setattr("genspot.training.model.BLANK_CAPTION_SIMILARITY", -1.0)  # every caption now looks blank
    with pytest.raises(ValueError, match="set trees.weight_without_caption to null"):
        model.attach_trees(model.tree_head.ensemble)
