"""`genspot aligned-fakes`: aligned fakes of a seeded share of a data set's real train photos.

Each chosen photo goes through the TAEF2 autoencoder at its own size (sides centre-cropped to a
multiple of 8), so fake and real twin differ only by the decoder's traces. The output folder is
a labels.csv data set to train on (`genspot cv --extra-train`, `genspot train --pseudo-labels`):
``label_a`` 1; ``label_b`` empty, so head B, which names generators, never learns an
autoencoder as one; ``source`` the original's with ``:taef2`` added, so no table mixes fakes
into a real-photo source; ``group`` the original's, so twins stay on one side of every split;
``origin`` the original's key. Pictures are saved as JPEG quality 92 with 4:2:0 chroma, as the
shared data sets are, so the file format tells nothing apart. Pictures already in the folder
are kept, so an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import random
import sys
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from genspot.imaging import to_tensor
from genspot.training.config import TrainConfig
from genspot.training.data.data import LABELS_CSV, DataError, Sample, group_key, load_samples, split_samples
from genspot.training.data.taef2 import DEFAULT_WEIGHTS, SCALE, Autoencoder, load_autoencoder

log = logging.getLogger("genspot.aligned")

COLUMNS = ("image", "caption", "label_a", "label_b", "source", "group", "split", "origin")
SOURCE_SUFFIX = ":taef2"
JPEG = {"format": "JPEG", "quality": 92, "subsampling": "4:2:0"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot aligned-fakes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="labels.csv folder or parquet whose real train photos are reconstructed")
    parser.add_argument("--out", required=True, type=Path, help="output folder: labels.csv and images/")
    parser.add_argument("--fraction", type=share, default=0.5, help="share of each source's real train photos (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of photos (default 0)")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                        help=f"folder with taef2_encoder.pth and taef2_decoder.pth (default {DEFAULT_WEIGHTS})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def share(text: str) -> float:
    """argparse type: a fraction in (0, 1]."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def choose_photos(samples: list[Sample], fraction: float, seed: int) -> list[Sample]:
    """``fraction`` of each source's real photos, rounded, drawn in a seeded order: the same
    arguments give the same photos, and a larger fraction takes a superset of a smaller one's."""
    by_source: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: s.key):
        if sample.label_a == 0:
            by_source.setdefault(sample.source or "", []).append(sample)
    chosen = []
    for source in sorted(by_source):
        photos = by_source[source]
        random.Random(f"{seed}:{source}").shuffle(photos)
        chosen += photos[: round(fraction * len(photos))]
    return chosen


def crop_to_multiple(picture: Image.Image, multiple: int = SCALE) -> Image.Image:
    """The centre of ``picture`` with both sides cut down to a multiple of ``multiple``."""
    width, height = picture.size
    new_width, new_height = width - width % multiple, height - height % multiple
    if not new_width or not new_height:
        raise ValueError(f"{width}x{height} is smaller than {multiple} px on a side")
    left, top = (width - new_width) // 2, (height - new_height) // 2
    return picture.crop((left, top, left + new_width, top + new_height))


@torch.no_grad()
def reconstruct(model: Autoencoder, picture: Image.Image) -> Image.Image:
    """The picture through encoder and decoder, at its own size (cropped to a multiple of 8)."""
    pixels = to_tensor(crop_to_multiple(picture))[None].contiguous(memory_format=torch.channels_last)
    output = model(pixels)[0].mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(output.numpy())


def jpeg_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, **JPEG)
    return buffer.getvalue()


def aligned_row(original: Sample, image: str) -> dict:
    return {
        "image": image, "caption": original.caption, "label_a": 1, "label_b": "",
        "source": f"{original.source or ''}{SOURCE_SUFFIX}", "group": group_key(original),
        "split": "train", "origin": original.key,
    }


def make_aligned_fakes(args: argparse.Namespace) -> str:
    try:
        model = load_autoencoder(args.weights).to(memory_format=torch.channels_last)
    except FileNotFoundError as exc:
        raise DataError(f"{exc} (point --weights at the TAEF2 folder)") from None
    defaults = TrainConfig()  # the train split `genspot cv` and `genspot train` use by default
    train, _ = split_samples(load_samples(args.data, progress=not args.quiet), defaults.val_fraction, defaults.seed)
    chosen = choose_photos(train, args.fraction, args.seed)
    if not chosen:
        raise DataError(f"{args.data}: no real train photos to reconstruct")
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for original in tqdm(chosen, desc="aligned fakes", unit="img", disable=args.quiet):
        image = f"images/{original.digest[:20]}.jpg"
        path = args.out / image
        if not path.is_file():
            try:
                encoded = jpeg_bytes(reconstruct(model, original.open_image()))
            except ValueError as exc:
                skipped.append(f"{original.key} ({exc})")
                continue
            partial = path.with_suffix(".partial")
            partial.write_bytes(encoded)
            partial.replace(path)
        rows.append(aligned_row(original, image))
    if skipped:
        log.warning("skipped %d picture(s) too small for the autoencoder; first: %s", len(skipped), "; ".join(skipped[:3]))
    with (args.out / LABELS_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    reals = sum(s.label_a == 0 for s in train)
    return (f"{len(rows)} aligned fakes of {reals} real train photos (fraction {args.fraction}, seed {args.seed}) in {args.out}; "
            f"use them with `genspot cv --extra-train {args.out}`")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        print(make_aligned_fakes(args))
    except DataError as exc:
        print(f"genspot aligned-fakes: error: {exc}", file=sys.stderr)
        return 2
    return 0
