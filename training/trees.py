"""Boosted-trees head for task A: gradient-boosted decision trees on fixed forensic statistics.

With about a thousand training images, trees on fixed statistics beat every neural head we
tried on the same numbers (model card, experiments 11-13, 21-23, 31-38): the statistics are
histograms whose useful cues are thresholds on a few bins, which trees find and linear layers
or small MLPs, trained on so few images, do not. The statistics are ``GlobalStatistics`` (with
the block-DCT spectrum) of the image and of its 2x average-pooled copy, so the trees also see
how the traces change one octave down, plus ``GradientStatistics`` (edge orientation and
strength) at three scales and, optionally, ``ToneStatistics`` (colour, clipping, local
contrast). With ``patch_size``, the statistics are taken on non-overlapping
square tiles and the image's logit is the mean of its tiles' logits: four 128 px tiles of a
256 px image give the trees four times as many (if noisier) training examples, and the mean
over tiles smooths the decision (model card, experiment 40).

The trees are fitted with scikit-learn (training only) and packed into tensors, so the
model stays one TorchScript graph with no scikit-learn at serving time:

- ``TreeEnsemble``: ``T`` trees, each a table of ``M`` nodes (feature, threshold, left,
  right, value; a leaf points to itself), walked for ``depth`` steps by ``gather``.
- ``TreeHead``: (tiles ->) statistics -> ensemble -> a task-A logit; once attached (after
  training), the detector mixes it with the neural head's logit: ``weight`` is the trees'
  share when the image comes with a caption, ``weight_without_caption`` when it does not.
  A caption counts as missing when its text features are the blank caption's (cosine
  similarity >= ``BLANK_CAPTION_SIMILARITY``), so the rule also holds in the bundle's cached
  text-feature path, which sees features only.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genspot.training.forensic import GlobalStatistics, GradientStatistics, ToneStatistics


class MultiScaleStatistics(nn.Module):
    """The trees' input [N, 3, S, S] -> [N, F]: ``GlobalStatistics(dct=True)`` of the image
    average-pooled by each of ``scales``, ``GradientStatistics`` by each of ``gradient_scales``
    and ``ToneStatistics`` by each of ``tone_scales``."""

    def __init__(self, scales: Sequence[int], gradient_scales: Sequence[int], tone_scales: Sequence[int] = ()) -> None:
        super().__init__()
        if not scales or any(int(s) < 1 for s in [*scales, *gradient_scales, *tone_scales]):
            raise ValueError(
                f"scales must be positive integers, got {list(scales)}, {list(gradient_scales)} and {list(tone_scales)}"
            )
        self.scales = [int(s) for s in scales]
        self.gradient_scales = [int(s) for s in gradient_scales]
        self.tone_scales = [int(s) for s in tone_scales]
        self.statistics = GlobalStatistics(dct=True)
        self.gradients = GradientStatistics()
        self.tone = ToneStatistics()
        self.num_features = (len(self.scales) * self.statistics.num_features
                             + len(self.gradient_scales) * GradientStatistics.num_features
                             + len(self.tone_scales) * ToneStatistics.num_features)

    def forward(self, image: torch.Tensor, full_size: torch.Tensor | None = None) -> torch.Tensor:
        """``full_size``: ``self.statistics(image)`` when the caller has it already (not recomputed)."""
        # Always float32: bf16 would move values across the trees' thresholds.
        with torch.autocast(image.device.type, enabled=False):
            image = image.float()
            parts = [
                full_size.float() if s == 1 and full_size is not None else self.statistics(_pooled(image, s))
                for s in self.scales
            ]
            parts += [self.gradients(_pooled(image, s)) for s in self.gradient_scales]
            parts += [self.tone(_pooled(image, s)) for s in self.tone_scales]
            return torch.cat(parts, dim=1)


def _pooled(image: torch.Tensor, scale: int) -> torch.Tensor:
    return image if scale == 1 else F.avg_pool2d(image, scale)


def image_tiles(image: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping ``size`` x ``size`` tiles from the top-left, [N, 3, H, W] -> [N * T, 3, size, size]
    (image-major; rows and columns that do not fill a tile are left out). ``size`` 0, or not
    below the image's side, means the whole image (T = 1)."""
    if size <= 0 or size >= min(image.shape[-2], image.shape[-1]):
        return image
    tiles = image.unfold(2, size, size).unfold(3, size, size)  # [N, C, h, w, size, size]
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, image.shape[1], size, size)


def _float32_at_most(threshold: torch.Tensor) -> torch.Tensor:
    """Each value rounded down to float32 (so float32 ``x <= result`` iff ``x <= threshold``)."""
    rounded = threshold.float()
    above = rounded.double() > threshold.double()
    return torch.where(above, torch.nextafter(rounded, torch.full_like(rounded, -torch.inf)), rounded)


NODE_TABLES = ("feature", "threshold", "left", "right", "value")  # TreeEnsemble's tables, in constructor order


def _padded(table: torch.Tensor, size: int, name: str) -> torch.Tensor:
    """Node table [T, M] widened to [T, size] with unreachable leaves (pointing to themselves, value 0)."""
    extra = size - table.shape[1]
    if extra == 0:
        return table
    if name in ("left", "right"):
        fill = torch.arange(table.shape[1], size, device=table.device).expand(table.shape[0], extra)
    else:
        fill = torch.zeros(table.shape[0], extra, dtype=table.dtype, device=table.device)
    return torch.cat([table, fill.to(table.dtype)], dim=1)


class TreeEnsemble(nn.Module):
    """Sum of regression trees packed as node tables [T, M]: ``x [N, F] -> [N]`` raw score.

    Node ``k`` of tree ``t`` sends ``x`` to ``left[t, k]`` when ``x[feature[t, k]] <= threshold[t, k]``,
    else to ``right[t, k]``; leaves point to themselves, so ``depth`` steps reach a leaf from
    the root whatever the path. All float32 (no float64 in the graph, for GPUs and TensorRT):
    scikit-learn compares float32 features with float64 thresholds, and for a float32 ``x``,
    ``x <= t`` holds exactly when ``x <= t'``, ``t'`` the largest float32 not above ``t``."""

    def __init__(self, feature: torch.Tensor, threshold: torch.Tensor, left: torch.Tensor,
                 right: torch.Tensor, value: torch.Tensor, depth: int, bias: float = 0.0) -> None:
        super().__init__()
        shape = feature.shape
        if any(t.shape != shape for t in (threshold, left, right, value)) or len(shape) != 2:
            raise ValueError("tree tables must all be [trees, nodes]")
        self.register_buffer("feature", feature.long())
        self.register_buffer("threshold", _float32_at_most(threshold))
        self.register_buffer("left", left.long())
        self.register_buffer("right", right.long())
        self.register_buffer("value", value.float())
        self.register_buffer("offsets", torch.arange(shape[0]).unsqueeze(0) * shape[1], persistent=False)
        self.depth = int(depth)
        self.bias = float(bias)

    @property
    def num_trees(self) -> int:
        return int(self.feature.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        node = torch.zeros(x.shape[0], self.num_trees, dtype=torch.long, device=x.device)
        feature, threshold = self.feature.flatten(), self.threshold.flatten()
        left, right = self.left.flatten(), self.right.flatten()
        for _ in range(self.depth):
            index = node + self.offsets
            goes_left = x.gather(1, feature[index]) <= threshold[index]
            node = torch.where(goes_left, left[index], right[index])
        return self.value.flatten()[node + self.offsets].sum(dim=1) + self.bias

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k).cpu() for k in NODE_TABLES}, "depth": self.depth, "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TreeEnsemble":
        return cls(*(data[k] for k in NODE_TABLES), int(data["depth"]), float(data["bias"]))

    @classmethod
    def average(cls, ensembles: Sequence["TreeEnsemble"]) -> "TreeEnsemble":
        """One ensemble scoring the mean of ``ensembles``' scores (bagging): their trees side by
        side, leaf values and biases divided by their number."""
        if not ensembles:
            raise ValueError("nothing to average")
        size = max(e.feature.shape[1] for e in ensembles)
        tables = {k: torch.cat([_padded(getattr(e, k), size, k) for e in ensembles]) for k in NODE_TABLES}
        tables["value"] = tables["value"] / len(ensembles)
        bias = sum(e.bias for e in ensembles) / len(ensembles)
        return cls(*(tables[k] for k in NODE_TABLES), max(e.depth for e in ensembles), bias)

    @classmethod
    def from_sklearn(cls, model: Any) -> "TreeEnsemble":
        """Pack a fitted binary ``sklearn.ensemble.HistGradientBoostingClassifier`` (numerical
        features, no missing values). Its node tables are private API, so ``fit_tree_ensemble``
        checks the packed scores against ``decision_function``."""
        trees = [predictors[0].nodes for predictors in model._predictors]
        size = max(len(nodes) for nodes in trees)
        tables = {k: np.zeros((len(trees), size)) for k in NODE_TABLES}
        for i, nodes in enumerate(trees):
            n, leaf = len(nodes), nodes["is_leaf"].astype(bool)
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            own = np.arange(n)
            tables["feature"][i, :n] = np.where(leaf, 0, nodes["feature_idx"])
            tables["threshold"][i, :n] = np.where(leaf, 0.0, nodes["num_threshold"])
            tables["left"][i, :n] = np.where(leaf, own, nodes["left"])
            tables["right"][i, :n] = np.where(leaf, own, nodes["right"])
            tables["value"][i, :n] = np.where(leaf, nodes["value"], 0.0)
        depth = max(int(nodes["depth"].max()) for nodes in trees)
        bias = float(np.ravel(model._baseline_prediction)[0])
        return cls(*(torch.from_numpy(tables[k]) for k in NODE_TABLES), depth, bias)


# Blank vs short real captions with the packaged MiniLM: 1.0 (bf16: 0.99997) vs at most 0.93;
# GenspotDetector.attach_trees checks the text encoder in use separates them.
BLANK_CAPTION_SIMILARITY = 0.99


class TreeHead(nn.Module):
    """Image -> (tiles ->) multi-scale statistics -> boosted trees -> task-A logit [N] (mean over
    tiles). ``weight`` / ``weight_without_caption``: its share in the mix with the neural head
    when a caption is given / missing; ``blank_text``: the text branch's features of a blank
    caption (None without a text branch: then no image has a caption).

    ``scale_without_caption`` multiplies the mixed logit of an image without a caption. When the
    two paths differ (``separates_captions``), training fits it so that the checkpoint's one
    temperature calibrates both: the caption-less path rests on the trees alone and is far less
    sharp than the captioned one, so a single temperature fitted on both left it miscalibrated."""

    def __init__(self, statistics: MultiScaleStatistics, ensemble: TreeEnsemble, weight: float,
                 weight_without_caption: float | None = None, patch_size: int = 0,
                 blank_text: torch.Tensor | None = None, scale_without_caption: float = 1.0) -> None:
        super().__init__()
        weight_without_caption = weight if weight_without_caption is None else weight_without_caption
        if not (0.0 <= weight <= 1.0 and 0.0 <= weight_without_caption <= 1.0):
            raise ValueError(f"tree weights must be in [0, 1], got {weight} and {weight_without_caption}")
        if not scale_without_caption > 0.0:
            raise ValueError(f"scale_without_caption must be positive, got {scale_without_caption}")
        self.statistics = statistics
        self.ensemble = ensemble
        self.weight = float(weight)
        self.weight_without_caption = float(weight_without_caption)
        self.scale_without_caption = float(scale_without_caption)
        self.patch_size = int(patch_size)
        self.register_buffer("blank_text", None if blank_text is None else blank_text.float().flatten(), persistent=False)

    def forward(self, image: torch.Tensor, full_size: torch.Tensor | None = None) -> torch.Tensor:
        """``full_size``: the image's ``GlobalStatistics`` when already computed (used without tiles only)."""
        if self.patch_size <= 0:
            return self.ensemble(self.statistics(image, full_size))
        scores = self.ensemble(self.statistics(image_tiles(image, self.patch_size)))
        return scores.reshape(image.shape[0], -1).mean(dim=1)

    @property
    def separates_captions(self) -> bool:
        """Whether images with and without a caption take different paths (weights) here."""
        return self.blank_text is not None and self.weight != self.weight_without_caption

    def caption_given(self, text_features: torch.Tensor) -> torch.Tensor:
        """[N] bool: the text features are not those of a blank caption."""
        similarity = F.cosine_similarity(text_features.float(), self.blank_text.unsqueeze(0), dim=1)
        return similarity < BLANK_CAPTION_SIMILARITY

    def mix(self, neural_logit: torch.Tensor, image: torch.Tensor, text_features: torch.Tensor | None = None,
            full_size: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted mean of the neural head's and the trees' task-A logits; the weight (and the
        caption-less scale) depends on whether ``text_features`` (the text branch's output) come
        from a caption."""
        trees, neural = self(image, full_size), neural_logit.float()
        without = self.scale_without_caption * ((1.0 - self.weight_without_caption) * neural + self.weight_without_caption * trees)
        if text_features is None or not self.separates_captions:
            return without
        captioned = (1.0 - self.weight) * neural + self.weight * trees
        return torch.where(self.caption_given(text_features), captioned, without)


def fit_tree_ensemble(features: np.ndarray, labels: np.ndarray, *, trees: int, learning_rate: float,
                      max_leaf_nodes: int, max_features: float, seed: int, seeds: int = 1) -> TreeEnsemble:
    """Gradient boosting (log-loss, classes re-weighted to balance) on ``features`` -> a packed
    ensemble, checked to score the training features as scikit-learn does. ``seeds`` > 1 fits
    that many models (random states ``seed``, ``seed + 1``, ...) and averages them (bagging:
    a single fit's feature subsampling makes its val score vary by about 0.01)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # training-only dependency

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=int)
    if len(np.unique(labels)) < 2:
        raise ValueError("the boosted trees need both real and AI-generated training images")
    if not np.isfinite(features).all():
        raise ValueError("tree features contain NaN or infinity")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    ensembles, scores = [], []
    for random_state in range(seed, seed + seeds):
        model = HistGradientBoostingClassifier(
            max_iter=trees, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes, max_features=max_features,
            class_weight="balanced", early_stopping=False, random_state=random_state,
        )
        model.fit(features, labels)
        ensembles.append(TreeEnsemble.from_sklearn(model))
        scores.append(model.decision_function(features))
    ensemble = TreeEnsemble.average(ensembles)
    packed = ensemble(torch.from_numpy(features)).double().numpy()
    error = np.abs(packed - np.mean(scores, axis=0)).max()
    if error > 1e-4:
        raise RuntimeError(f"packed trees disagree with scikit-learn by {error:.2e} (unsupported scikit-learn version?)")
    return ensemble
