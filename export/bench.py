"""`genspot bench`: a bundle's throughput against the paper's pipeline, in one run on one machine.

    genspot bench --bundle BUNDLE_DIR [--batch 1,8,32] [--reference/--no-reference]
    genspot bench --same-backbones [--batch ...]

For each batch size: best latency, images/s and CPU time per image of ``Bundle.predict``
(tokenisation included, alt-texts all distinct), then the largest batch again with repeated
alt-texts served from the bundle's text-feature cache. The reference is the paper's
inference loop (``export/reference.py``), one image per call. ``--same-backbones`` exports
bundles with the reference's backbones (ViT-B/32 + BERT-base, random weights) in fp32, bf16
and bf16 + int8 linears, so each optimisation step's effect is measured on the same work.
Both a wall-clock ratio (best runs) and a CPU-time ratio (robust on a busy shared machine)
are printed. Time is bounded by ``--seconds`` per row.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from genspot.bundle import Bundle, load_bundle
from genspot.export.hardware import cpu_bf16_reason, cpu_description
from genspot.export.parity import ParityReport, probe_images

# Alt-texts of web-like lengths (empty ones included): the bench cycles through them.
ALT_TEXTS = (
    "",
    "Company logo",
    "A golden retriever puppy playing with a red ball on a green lawn in the afternoon sun",
    "Portrait of a woman in a blue dress standing in front of a brick wall, film photography, 35mm",
    "Figure 3: Validation loss of the three models over 100 epochs",
    "",
    "cyberpunk city at night, neon lights, rain, highly detailed digital art, octane render, trending on artstation",
    "Team photo",
)
PAPER_LABEL = "paper: HF CLIP ViT-B/32 + BERT-base, fp32 eager, 1 by 1"
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


@dataclasses.dataclass(frozen=True)
class Timing:
    """One measured row. Latency is the best run (the least disturbed on a shared machine);
    CPU time (all threads) per image is the median, a cost measure that contention barely moves."""

    label: str
    captions: str
    batch: int
    latency_ms: float
    images_per_s: float
    cpu_ms_per_image: float


def measure(
    run: Callable[[], None], batch: int, label: str, captions: str, seconds: float, warmup: int = 2, min_runs: int = 3
) -> Timing:
    """Time ``run`` after ``warmup`` calls, repeating for ``seconds`` (at least ``min_runs`` times)."""
    for _ in range(warmup):
        run()
    walls: list[float] = []
    cpus: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(walls) < min_runs or time.perf_counter() < deadline:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    best = min(walls)
    return Timing(label, captions, batch, best * 1e3, batch / best, statistics.median(cpus) / batch * 1e3)


def captions_for(count: int, distinct: bool) -> list[str]:
    """``count`` alt-texts; ``distinct`` makes each unique so no cache can help."""
    return [ALT_TEXTS[i % len(ALT_TEXTS)] + (f" #{i}" if distinct else "") for i in range(count)]


def bench_bundle(path: Path, batches: list[int], seconds: float, label: str) -> list[Timing]:
    """Rows for one bundle: each batch size with distinct alt-texts, then the largest batch with
    repeated alt-texts whose text features come from the bundle's cache."""
    plain = load_bundle(path, text_cache=False)
    rows = []
    for batch in batches:
        images = probe_images(batch, plain.image_size, torch.Generator().manual_seed(batch))
        captions = captions_for(batch, distinct=True)
        rows.append(measure(lambda: plain.predict(images, captions), batch, label, "distinct", seconds))
    cached = load_bundle(path, text_cache=True)
    if cached.text_cache is not None:
        batch = max(batches)
        images = probe_images(batch, cached.image_size, torch.Generator().manual_seed(batch))
        captions = captions_for(batch, distinct=False)
        rows.append(measure(lambda: cached.predict(images, captions), batch, label, "cached", seconds))
    return rows


def bench_reference(tokenizer_source: Bundle, image_size: int, count: int) -> Timing:
    """The paper's pipeline, one image per call, over ``count`` images."""
    from genspot.export.reference import ReferencePipeline

    reference = ReferencePipeline(tokenizer_source.tokenizer._tokenizer, num_classes=len(tokenizer_source.labels))
    images = probe_images(count, image_size, torch.Generator().manual_seed(0))
    captions = captions_for(count, distinct=True)
    samples = itertools.cycle(zip(images, captions))

    def one_image() -> None:
        image, caption = next(samples)
        reference.predict(image.unsqueeze(0), [caption])

    return measure(one_image, 1, PAPER_LABEL, "128 tokens", 0.0, warmup=1, min_runs=count)


def same_backbone_checkpoint(folder: Path, image_size: int) -> Path:
    """A checkpoint with the reference's backbones (open_clip ViT-B-32, BERT-base shape), random weights."""
    from genspot.training.checkpoint import save_checkpoint
    from genspot.training.config import PACKAGED_TEXT_ENCODER, load_model_config
    from genspot.training.model import create_model

    paper = load_model_config("paper")
    config = dataclasses.replace(
        paper,
        image_size=image_size,
        image=dataclasses.replace(paper.image, pretrained=None),
        text=dataclasses.replace(paper.text, source=PACKAGED_TEXT_ENCODER, random_init=True, config_overrides=dict(BERT_BASE)),
    )
    torch.manual_seed(0)
    model = create_model(config, ["sd21", "sdxl", "sd3", "dalle3", "midjourney"], load_weights=False)
    return save_checkpoint(folder / "model.pt", model)


def same_backbone_bundles(folder: Path, image_size: int) -> list[tuple[str, Path, str]]:
    """(label, folder, parity summary) of fp32, bf16 and bf16 + int8 bundles of the same-backbone
    model; the bf16 ones only where the CPU has native bf16."""
    from genspot.export.torchscript import export_torchscript
    from genspot.training.checkpoint import load_checkpoint

    checkpoint = same_backbone_checkpoint(folder, image_size)
    loaded = load_checkpoint(checkpoint)
    variants = [("fp32", torch.float32, False)]
    if cpu_bf16_reason() is None:
        variants += [("bf16", torch.bfloat16, False), ("bf16+int8", torch.bfloat16, True)]
    bundles = []
    for name, dtype, int8 in tqdm(variants, desc="exporting same-backbone bundles", file=sys.stderr):
        result = export_torchscript(checkpoint, folder / name, dtype, int8=int8, loaded=loaded)
        bundles.append((f"same-backbone TorchScript {name}", folder / name, result.parity.describe()))
    return bundles


def format_rows(rows: list[Timing], reference: Timing | None) -> str:
    """The table: wall-clock and CPU-time ratios against the paper's pipeline."""
    rows = ([reference] if reference else []) + rows
    width = max(len(row.label) for row in rows)
    header = f"{'pipeline':<{width}}  {'alt-texts':<10}  {'batch':>5}  {'best ms':>9}  {'images/s':>9}  {'CPU ms/img':>10}"
    lines = [header + (f"  {'x paper (wall)':>14}  {'x paper (CPU)':>13}" if reference else "")]
    for row in rows:
        line = f"{row.label:<{width}}  {row.captions:<10}  {row.batch:>5}  {row.latency_ms:>9.1f}  {row.images_per_s:>9.2f}  {row.cpu_ms_per_image:>10.1f}"
        if reference:
            wall = row.images_per_s / reference.images_per_s
            cpu = reference.cpu_ms_per_image / row.cpu_ms_per_image
            line += f"  {wall:>13.1f}x  {cpu:>12.1f}x"
        lines.append(line)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, metavar="BUNDLE_DIR", help="bundle folder to measure")
    parser.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True, help="also time the paper's pipeline")
    parser.add_argument("--reference-images", type=int, default=8, help="images through the paper's pipeline (default 8)")
    parser.add_argument("--same-backbones", action="store_true", help="also export and time bundles with the paper's backbones")
    parser.add_argument("--image-size", type=int, default=256, help="input size of --same-backbones bundles")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per measurement row (default 3)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.bundle is None and not args.same_backbones:
        print("genspot bench: give --bundle BUNDLE_DIR, --same-backbones, or both", file=sys.stderr)
        return 2
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        print(f"genspot bench: --batch must be comma-separated integers, got {args.batch!r}", file=sys.stderr)
        return 2
    if not batches or min(batches) < 1:
        print("genspot bench: --batch sizes must be positive", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_description()}")
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="genspot-bench-") as tmp:
        targets = []
        if args.bundle is not None:
            manifest = load_bundle(args.bundle).manifest
            precision = manifest["dtype"] + (f"+{manifest['quantization']}" if manifest.get("quantization") else "")
            parity = ParityReport(**manifest["parity"]).describe() if manifest.get("parity") else "parity not recorded"
            targets.append((f"{args.bundle.name} ({precision})", args.bundle, parity))
        if args.same_backbones:
            targets += same_backbone_bundles(Path(tmp), args.image_size)
        for label, path, _ in tqdm(targets, desc="timing bundles", file=sys.stderr):
            rows += bench_bundle(path, batches, args.seconds, label)
        reference = None
        if args.reference:
            first = load_bundle(targets[0][1])
            reference = bench_reference(first, first.image_size, args.reference_images)
    print(format_rows(rows, reference))
    for label, _, parity in targets:
        print(f"{label} at export: {parity}")
    return 0
