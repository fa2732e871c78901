"""On-disk cache of frozen-backbone features, so frozen-mode training runs only the small parts.

Keys: backbone (``backbone_key`` of its config) + image content digest + input size (+ the view,
for views other than the whole picture resized) for the image branch; backbone + caption hash
for the text branch (plus the empty caption, needed by caption dropout and blank-caption
evaluation). One file per backbone:
``CACHE_DIR/<branch>-<backbone_key>.pt`` = ``{"keys": [...], "features": Tensor[M, D]}``;
missing entries are computed and appended. Image features are of the clean picture: in
frozen mode augmentations reach only the branches that train.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from genspot.imaging import RESIZE_POLICY, policy_views
from genspot.text import caption_hash
from genspot.training.model.branches import backbone_key, feature_store_config
from genspot.training.data.data import DetectorDataset, Sample, collate
from genspot.training.model.model import GenspotDetector


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast when asked for (fast on CPUs with AVX-512-BF16 and on GPUs), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


class FeatureStore:
    """One backbone's cached features: key -> row of a tensor, persisted in one file."""

    def __init__(self, path: Path):
        self.path = path
        data = torch.load(path, weights_only=True) if path.is_file() else {"keys": [], "features": None}
        self.keys: list[str] = list(data["keys"])
        self.features: torch.Tensor | None = data["features"]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.added = 0  # rows added since loading: only then is the file rewritten

    def missing(self, keys: list[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self.index]

    def add(self, keys: list[str], features: torch.Tensor) -> None:
        features = features.detach().float().cpu()
        self.features = features if self.features is None else torch.cat([self.features, features])
        for key in keys:
            self.index[key] = len(self.keys)
            self.keys.append(key)
        self.added += len(keys)

    def save(self) -> None:
        """Write the file if rows were added (runs that only read a full cache never rewrite it)."""
        if not self.added:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"keys": self.keys, "features": self.features}, tmp)
        tmp.replace(self.path)
        self.added = 0

    def rows(self, keys: list[str]) -> torch.Tensor:
        return self.features[[self.index[k] for k in keys]]


class FrozenFeatures:
    """Frozen-backbone features of one sample list, looked up per batch for ``model(..., cached=)``."""

    def __init__(self, image: torch.Tensor | None, text: FeatureStore | None):
        self.image = image  # [len(samples), D] in sample order
        self.text = text

    def lookup(self, batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
        cached = {}
        if self.image is not None:
            cached["image"] = self.image[batch["index"]].to(device)
        if self.text is not None:
            cached["text"] = self.text.rows([caption_hash(c) for c in batch["caption"]]).to(device)
        return cached


def image_keys(samples: list[Sample], image_size: int, view: str = RESIZE_POLICY) -> list[str]:
    """Cache keys of one view of each picture (the whole-picture view keeps its original keys)."""
    suffix = "" if view == RESIZE_POLICY else f"-{view}"
    return [f"{s.digest}-{image_size}{suffix}" for s in samples]


@torch.no_grad()
def _fill_image_store(store, model, samples, keys, view, batch_size, device, bf16, progress) -> None:
    todo = [(s, k) for s, k in zip(samples, keys) if k not in store.index]
    unique = list({k: s for s, k in todo}.items())
    if not unique:
        return
    dataset = DetectorDataset([s for _, s in unique], model.labels_b, model.config.image_size, resize_policy=view)  # one view
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    branch = model.branches["image"]
    for batch in tqdm(loader, desc="caching image features", unit="batch", disable=not progress):
        with autocast(device, bf16):
            features = branch.store_features(batch["image"].to(device))
        store.add([unique[i][0] for i in batch["index"].tolist()], features)


@torch.no_grad()
def _fill_text_store(store, model, captions, batch_size, device, bf16, progress) -> None:
    todo = {caption_hash(c): c for c in [*captions, ""] if caption_hash(c) not in store.index}
    items = list(todo.items())
    tokenizer, branch = model.tokenizer, model.branches["text"]
    chunks = range(0, len(items), batch_size)
    for start in tqdm(chunks, desc="caching text features", unit="batch", disable=not progress or not items):
        chunk = items[start : start + batch_size]
        input_ids, attention_mask = tokenizer([c for _, c in chunk])
        with autocast(device, bf16):
            features = branch(input_ids.to(device), attention_mask.to(device))
        store.add([k for k, _ in chunk], features)


def frozen_features(
    model: GenspotDetector,
    samples: list[Sample],
    cache_dir: str | Path,
    *,
    batch_size: int = 64,
    device: torch.device = torch.device("cpu"),
    bf16: bool = False,
    progress: bool = True,
    write: bool = True,
) -> FrozenFeatures:
    """Features of every frozen backbone for ``samples``, computing and caching what is missing."""
    cache_dir = Path(cache_dir)
    image = text = None
    frozen = model.frozen_branches()
    if "image" in frozen:
        store = FeatureStore(cache_dir / f"image-{backbone_key(feature_store_config(model.config.image))}.pt")
        columns = model.branches["image"].store_columns()
        views = []
        for view in policy_views(model.config.resize_policy):  # concatenated as the branch does
            keys = image_keys(samples, model.config.image_size, view)
            _fill_image_store(store, model, samples, keys, view, batch_size, device, bf16, progress)
            if write:
                store.save()
            rows = store.rows(keys)
            views.append(rows if columns is None else rows[:, columns])
        image = torch.cat(views, dim=1)
    if "text" in frozen:
        text = FeatureStore(cache_dir / f"text-{backbone_key(model.config.text)}.pt")
        _fill_text_store(text, model, [s.caption for s in samples], batch_size, device, bf16, progress)
        if write:
            text.save()
    return FrozenFeatures(image, text)
