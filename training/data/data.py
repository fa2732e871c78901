"""Labelled samples from a labels.csv folder, CT2/Defactify parquet, or a Hugging Face dataset.

``load_samples(spec)`` returns ``Sample`` records whatever the source:

- a folder with ``labels.csv`` (``image, caption, label_a, label_b[, split][, source]``);
- a parquet file or a folder of them, in one of the CT2 / Defactify 4 schemas, told apart by
  their columns: wide training rows (``caption`` plus one image column per generator, six
  samples per row, ``coco_image`` real), long rows (``Caption, Image, Label_A, Label_B``,
  column names in any case) and the test split (``caption, image``: long rows without labels,
  loadable with ``require_labels=False`` only); split taken from the file name
  (train/val/validation/test), except that rows without labels are always ``test`` (the hub's
  test files are named ``train-*.parquet``). Each parquet sample keeps its row number over the
  files in sorted order (``Sample.row``, the row index of a CT2 submission);
- a Hugging Face dataset name (needs the optional ``datasets`` package and a network).

Every image is decoded once up front; unreadable ones are skipped and counted in the log,
never stopping a run. Images that arrive as bytes (parquet cells, dataset rows) are written once
to a content-addressed store on disk (``GENSPOT_IMAGE_STORE``, default ``~/.cache/genspot/images``)
and read from there, so a CT2-sized set is streamed, not held in memory. Validation splits are by group (``group_key``): CT2 shares one caption between a real photo
and five generated images, and a text-to-image prompt makes several images, so an image-level
split would put the same caption on both sides. ``DetectorDataset`` turns samples into model
inputs for training.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from genspot.imaging import IMAGE_SUFFIXES, RESIZE_POLICY, VIEWS, policy_views, preprocess, to_rgb, to_tensor
from genspot.training.data.augment import Augmenter, jpeg_recompressed
from genspot.training.data.losses import IGNORE_INDEX

log = logging.getLogger(__name__)

REAL = "real"
LABELS_CSV = "labels.csv"
CSV_COLUMNS = ("image", "caption", "label_a", "label_b")
WIDE_IMAGE_COLUMNS = {  # CT2 wide training rows: column -> generator name
    "coco_image": REAL,
    "sd21_image": "sd21",
    "sdxl_image": "sdxl",
    "sd3_image": "sd3",
    "dalle_image": "dalle",
    "midjourney_image": "midjourney",
}
LONG_COLUMNS = ("Caption", "Image", "Label_A", "Label_B")  # matched in any case ("caption, image" in the test split)
# Label_B ids 0..5 of Defactify 4 (CT2): 0 real (MS COCO), 1 Stable Diffusion 2.1, 2 SDXL, 3 Stable
# Diffusion 3, 4 DALL-E 3, 5 Midjourney v6. Label_A: 0 real, 1 AI-generated.
CT2_LABEL_B = (REAL, "sd21", "sdxl", "sd3", "dalle", "midjourney")
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}
IMAGE_STORE_ENV = "GENSPOT_IMAGE_STORE"


class DataError(ValueError):
    """Data that cannot be used at all (missing column, no samples, ...): one line."""


@dataclass(frozen=True)
class Sample:
    key: str  # stable name: path relative to the data folder, or "file.parquet#row:column"
    caption: str
    label_a: int  # 0 real, 1 AI-generated, -1 unknown (unlabelled)
    label_b: str  # generator name, "real", or "" when unknown
    split: str | None = None
    source: str | None = None
    path: Path | None = None
    data: bytes | None = None  # encoded image while it is read from a parquet cell / dataset row
    digest: str | None = None  # sha256 of the encoded image bytes (feature-cache keys)
    stored: bool = False  # ``path`` is a copy in the image store (a cache), not the user's file
    row: int | None = None  # parquet / dataset row number over all files read (submission index)
    group: str | None = None  # images that must stay on one side of a split (see ``group_key``)

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else Path(self.path).read_bytes()

    def open_image(self) -> Image.Image:
        """The decoded RGB picture (first frame, EXIF orientation, alpha on white)."""
        image = Image.open(io.BytesIO(self.read_bytes()))
        image.load()
        return to_rgb(image)


# -- reading sources ---------------------------------------------------------------------------
def load_samples(spec: str | Path, *, require_labels: bool = True, progress: bool = True) -> list[Sample]:
    """All readable samples of ``spec`` (folder, parquet file/folder, or HF dataset name)."""
    path = Path(spec)
    if path.is_dir() and (path / LABELS_CSV).is_file():
        raw = read_labels_csv(path, require_labels)
    elif (path.is_file() and path.suffix == ".parquet") or (path.is_dir() and any(path.rglob("*.parquet"))):
        raw = read_parquet(path, require_labels)
    elif path.is_dir() and not require_labels:
        raw = read_image_folder(path)
    elif path.exists():
        raise DataError(f"{path}: no {LABELS_CSV} and no .parquet files")
    else:
        raw = read_hf_dataset(str(spec), require_labels)
    samples = verify_images(raw, progress=progress)
    if not samples:
        raise DataError(f"{spec}: no readable samples")
    return samples


def _require_columns(have: Iterable[str], need: Iterable[str], where: str) -> None:
    missing = [c for c in need if c not in set(have)]
    if missing:
        raise DataError(f"{where}: missing column {', '.join(repr(c) for c in missing)}")


def read_labels_csv(folder: Path, require_labels: bool = True) -> Iterator[Sample]:
    csv_path = folder / LABELS_CSV
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _require_columns(reader.fieldnames or [], CSV_COLUMNS if require_labels else ("image",), str(csv_path))
        for line, row in enumerate(reader, start=2):
            label_a = _int_label(row.get("label_a"), f"{csv_path}:{line}", require_labels)
            yield Sample(
                key=row["image"],
                caption=row.get("caption") or "",
                label_a=label_a,
                label_b=(row.get("label_b") or "").strip() or (REAL if label_a == 0 else ""),
                split=(row.get("split") or "").strip() or None,
                source=(row.get("source") or "").strip() or None,
                path=folder / row["image"],
                group=(row.get("group") or "").strip() or None,
            )


def _int_label(value: Any, where: str, required: bool) -> int:
    if value in (None, "") and not required:
        return -1
    try:
        label = int(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: label_a must be 0 or 1, got {value!r}") from None
    if label not in (0, 1):
        raise DataError(f"{where}: label_a must be 0 or 1, got {label}")
    return label


def read_image_folder(folder: Path) -> Iterator[Sample]:
    """Unlabelled images of a folder (recursively), caption empty."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        yield Sample(key=str(path.relative_to(folder)), caption="", label_a=-1, label_b="", path=path)


def _split_from_name(name: str) -> str | None:
    lowered = name.lower()
    for token, split in SPLIT_NAMES.items():
        if token in lowered.replace("-", "_").split("_") or lowered.startswith(token):
            return split
    return None


def read_parquet(path: Path, require_labels: bool = True) -> Iterator[Sample]:
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    row_number = 0  # over all files, in sorted order: the submission's row index
    for file in files:
        parquet = pq.ParquetFile(file)
        columns = parquet.schema_arrow.names
        split = _split_from_name(file.stem)
        row_index = 0
        for batch in parquet.iter_batches(batch_size=256):
            for row in batch.to_pylist():
                key = f"{file.name}#{row_index}"
                yield from ct2_row_samples(row, columns, key, split, str(file), require_labels, row_number)
                row_index += 1
                row_number += 1


def ct2_schema(columns: list[str], where: str) -> tuple[str, dict[str, str]]:
    """``("wide", {})``, or ``("long", {canonical lower-case name: column})`` for long rows
    (labelled or, like the test split, not); any other set of columns is a one-line error."""
    if any(c in columns for c in WIDE_IMAGE_COLUMNS):
        _require_columns(columns, ["caption", *WIDE_IMAGE_COLUMNS], where)
        return "wide", {}
    by_lower = {c.lower(): c for c in columns}
    if "caption" in by_lower and "image" in by_lower:
        return "long", {c.lower(): by_lower[c.lower()] for c in LONG_COLUMNS if c.lower() in by_lower}
    raise DataError(
        f"{where}: unknown CT2 schema, found columns {', '.join(columns) or '(none)'}; expected wide training rows "
        f"(caption, {', '.join(WIDE_IMAGE_COLUMNS)}), long rows ({', '.join(LONG_COLUMNS)}) or the test split (caption, image)"
    )


def ct2_row_samples(
    row: dict, columns: list[str], key: str, split: str | None, where: str, require_labels: bool = True,
    row_number: int | None = None,
) -> Iterator[Sample]:
    """Samples of one CT2 row: six for a wide row, one for a long row (labels optional when unlabelled)."""
    schema, names = ct2_schema(columns, where)
    if schema == "wide":
        caption = row["caption"] or ""
        for column, generator in WIDE_IMAGE_COLUMNS.items():
            yield Sample(
                key=f"{key}:{column}",
                caption=caption,
                label_a=int(generator != REAL),
                label_b=generator,
                split=split,
                data=image_cell_bytes(row[column]),
                row=row_number,
                group=caption.strip() or key,  # the six images of a row stay together
            )
        return
    if require_labels:
        missing = [c for c in LONG_COLUMNS[2:] if c.lower() not in names]
        if missing:
            raise DataError(f"{where}: missing column {', '.join(repr(c) for c in missing)}")
    label_b = ""
    if row.get(names.get("label_b")) is not None:
        label_b_index = int(row[names["label_b"]])
        if not 0 <= label_b_index < len(CT2_LABEL_B):
            raise DataError(f"{where} {key}: Label_B must be 0..{len(CT2_LABEL_B) - 1}, got {label_b_index}")
        label_b = CT2_LABEL_B[label_b_index]
    label_a = _int_label(row.get(names.get("label_a")), f"{where} {key}", require_labels)
    yield Sample(
        key=key,
        caption=row[names["caption"]] or "",
        label_a=label_a,
        label_b=label_b,
        split=split if label_a in (0, 1) else "test",  # rows without labels can only be predicted
        data=image_cell_bytes(row[names["image"]]),
        row=row_number,
    )


def image_cell_bytes(cell: Any) -> bytes | None:
    """Encoded image bytes from a parquet/HF cell: bytes, {"bytes": ...}, or a PIL image."""
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return bytes(cell["bytes"])
        if cell.get("path") and Path(cell["path"]).is_file():
            return Path(cell["path"]).read_bytes()
        return None
    if isinstance(cell, Image.Image):
        buffer = io.BytesIO()
        cell.save(buffer, format="PNG")
        return buffer.getvalue()
    return None


def read_hf_dataset(name: str, require_labels: bool = True) -> Iterator[Sample]:
    """Rows of a Hugging Face dataset in the CT2 schema (online only; needs ``datasets``)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{name!r} is not a local folder or parquet file, and loading it from the Hugging Face hub "
            "needs the `datasets` package (pip install datasets)"
        ) from None
    try:
        dataset_dict = datasets.load_dataset(name)
    except Exception as exc:  # network, auth, unknown name
        raise DataError(f"cannot load Hugging Face dataset {name!r}: {exc}") from exc
    row_number = 0
    for split_name, dataset in dataset_dict.items():
        for column, feature in dataset.features.items():
            if isinstance(feature, datasets.Image):
                dataset = dataset.cast_column(column, datasets.Image(decode=False))
        columns = list(dataset.column_names)
        for index, row in enumerate(dataset):
            split = SPLIT_NAMES.get(split_name)
            yield from ct2_row_samples(row, columns, f"{split_name}#{index}", split, name, require_labels, row_number)
            row_number += 1


def image_store() -> Path:
    """Where images that arrive as bytes are kept: ``$GENSPOT_IMAGE_STORE``, else
    ``$XDG_CACHE_HOME/genspot/images`` (``~/.cache/genspot/images``)."""
    if os.environ.get(IMAGE_STORE_ENV):
        return Path(os.environ[IMAGE_STORE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genspot" / "images"


def store_image(encoded: bytes, digest: str, store: Path) -> Path:
    """The stored copy of ``encoded``, named by its SHA-256 and written once (by an atomic rename,
    so the processes of a ``torchrun`` job can fill one store together)."""
    path = store / digest[:2] / digest
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{digest}.{os.getpid()}.partial")
        partial.write_bytes(encoded)
        os.replace(partial, path)
    except OSError as exc:
        raise DataError(f"cannot write the image store {store} ({exc}); point {IMAGE_STORE_ENV} at a writable folder") from exc
    return path


def verify_images(samples: Iterable[Sample], progress: bool = True) -> list[Sample]:
    """Readable samples, each with its content digest; unreadable ones are skipped and logged.
    Samples carrying their bytes leave them in the image store and point at the stored file."""
    readable, skipped = [], []
    store = image_store()
    for sample in tqdm(samples, desc="checking images", unit="img", disable=not progress, leave=False):
        try:
            encoded = sample.read_bytes()
            if encoded is None:
                raise ValueError("no image data")
            with Image.open(io.BytesIO(encoded)) as image:
                image.load()
        except Exception as exc:  # PIL raises many kinds (OSError, SyntaxError, DecompressionBombError...)
            skipped.append(f"{sample.key} ({type(exc).__name__}: {exc})")
            continue
        digest = hashlib.sha256(encoded).hexdigest()
        if sample.data is not None:
            sample = replace(sample, data=None, path=store_image(encoded, digest, store), stored=True)
        readable.append(replace(sample, digest=digest))
    if skipped:
        log.warning("skipped %d unreadable image(s); first: %s", len(skipped), "; ".join(skipped[:3]))
    return readable


# -- labels and splits -----------------------------------------------------------------------
def generator_names(samples: Iterable[Sample]) -> list[str]:
    """Sorted generator names (head-B classes) of the AI-generated samples."""
    return sorted({s.label_b for s in samples if s.label_a == 1 and s.label_b and s.label_b != REAL})


def group_key(sample: Sample) -> str:
    """What keeps images together in a split: ``Sample.group`` (a wide CT2 row, a labels.csv
    ``group`` column), else the caption (CT2: one caption for a real photo and its generated
    images; folder data: the prompt), case and spacing ignored; an image without either is
    its own group."""
    if sample.group:
        return sample.group
    caption = " ".join(sample.caption.lower().split())
    return f"caption:{caption}" if caption else f"key:{sample.key}"


def shared_groups(train: list[Sample], val: list[Sample]) -> set[str]:
    """Groups (captions, prompts) that have images on both sides."""
    return {group_key(s) for s in train} & {group_key(s) for s in val}


def split_samples(samples: list[Sample], val_fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """(train, val): the ``split`` column when it names a val split, else a hold-out of whole
    groups (``group_key``), stratified by the set of classes in a group: within each stratum,
    groups in a seeded random order join val while that brings its size closer to
    ``val_fraction`` of the stratum."""
    if any(s.split == "val" for s in samples):
        train, val = [s for s in samples if s.split in (None, "train")], [s for s in samples if s.split == "val"]
        leaked = shared_groups(train, val)
        if leaked:
            log.warning("%d caption/prompt group(s) have images in both train and val (e.g. %s)", len(leaked), sorted(leaked)[0])
        return train, val
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        if sample.split != "test":
            groups.setdefault(group_key(sample), []).append(sample)
    strata: dict[tuple[str, ...], list[list[Sample]]] = {}
    for name in sorted(groups):
        members = groups[name]
        strata.setdefault(tuple(sorted({s.label_b for s in members})), []).append(members)
    rng = random.Random(seed)
    train, val = [], []
    for stratum in sorted(strata):
        members = strata[stratum]
        rng.shuffle(members)
        total = sum(map(len, members))
        target = round(total * val_fraction) if total > 1 else 0
        taken = 0
        for group in members:
            if abs(taken + len(group) - target) < abs(taken - target):
                val += group
                taken += len(group)
            else:
                train += group
    return train, val


# -- torch dataset -----------------------------------------------------------------------------
NO_PIXELS = torch.zeros(3, 0, 0)  # the image of a sample whose model reads only cached features


class DetectorDataset(Dataset):
    """Samples -> dicts of ``image`` [3 * views, S, S], ``caption``, ``label_a``, ``label_b`` (class index or
    IGNORE_INDEX for real/unknown generators), ``index``. Augments when given an ``Augmenter``;
    ``jpeg_quality`` re-encodes every picture first (robustness evaluation); ``pixels=False``
    gives an empty ``image`` without decoding (a model reading only cached features)."""

    def __init__(
        self,
        samples: list[Sample],
        labels_b: list[str],
        image_size: int,
        augmenter: Augmenter | None = None,
        blank_captions: bool = False,
        jpeg_quality: int | None = None,
        pixels: bool = True,
        resize_policy: str = RESIZE_POLICY,
    ):
        self.samples = samples
        self.resize_policy, self.views = resize_policy, policy_views(resize_policy)
        self.jpeg_quality, self.pixels = jpeg_quality, pixels
        self.class_index = {name: i for i, name in enumerate(labels_b)}
        self.image_size = image_size
        self.augmenter = augmenter
        self.blank_captions = blank_captions

    @classmethod
    def for_model(cls, model, samples: list[Sample], **options) -> "DetectorDataset":
        """The dataset ``model`` reads: its generator labels, input size and resize policy."""
        return cls(samples, model.labels_b, model.config.image_size, resize_policy=model.config.resize_policy, **options)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image = self.image(sample) if self.pixels else NO_PIXELS  # (before the caption draw: seeded runs repeat)
        caption = "" if self.blank_captions else sample.caption
        if self.augmenter is not None:
            caption = self.augmenter.drop_caption(caption)
        return {
            "image": image,
            "caption": caption,
            "label_a": sample.label_a,
            "label_b": self.class_index.get(sample.label_b, IGNORE_INDEX),
            "index": index,
        }

    def image(self, sample: Sample) -> torch.Tensor:
        picture = sample.open_image()
        if self.jpeg_quality is not None:
            picture = jpeg_recompressed(picture, self.jpeg_quality)
        if self.augmenter is None:
            return preprocess(picture, self.image_size, self.resize_policy)
        picture = self.augmenter.picture(picture)
        return torch.cat([self.augmenter.tensor(to_tensor(VIEWS[v](picture, self.image_size))) for v in self.views])


def collate(items: list[dict]) -> dict:
    return {
        "image": torch.stack([item["image"] for item in items]),
        "caption": [item["caption"] for item in items],
        "label_a": torch.tensor([item["label_a"] for item in items], dtype=torch.long),
        "label_b": torch.tensor([item["label_b"] for item in items], dtype=torch.long),
        "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
    }
