"""`genspot bench`: a bundle's throughput against the paper's pipeline, in one run on one machine.

    genspot bench --bundle BUNDLE_DIR [--batch 1,8,32] [--reference/--no-reference]
    genspot bench --same-backbones [--batch ...]

For each batch size: median latency and images/s of ``Bundle.predict`` (tokenisation
included), then the same with every alt-text repeated (text features served from the
bundle's cache). The reference is the paper's inference loop (``export/reference.py``).
``--same-backbones`` exports bundles with the reference's backbones (ViT-B/32 + BERT-base,
random weights) in fp32, bf16 and bf16 + int8 linears, so each optimisation step's effect is
measured against the same work. Timings are bounded by ``--seconds`` per row.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from genspot.bundle import Bundle, load_bundle
from genspot.export.hardware import cpu_bf16_reason
from genspot.export.parity import probe_images

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
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}


@dataclasses.dataclass(frozen=True)
class Timing:
    label: str
    batch: int
    latency_ms: float
    images_per_s: float


def measure(run: Callable[[], None], batch: int, label: str, seconds: float, warmup: int = 2, min_runs: int = 3) -> Timing:
    """Median wall time of ``run`` after ``warmup`` calls, repeating for ``seconds`` (at least ``min_runs``)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return Timing(label, batch, median * 1e3, batch / median)


def captions_for(count: int, distinct: bool) -> list[str]:
    """``count`` alt-texts; ``distinct`` makes each unique so no cache can help."""
    return [ALT_TEXTS[i % len(ALT_TEXTS)] + (f" #{i}" if distinct else "") for i in range(count)]


def bench_bundle(path: Path, batches: list[int], seconds: float, label: str) -> list[Timing]:
    """Rows for one bundle: each batch size with distinct alt-texts, then with repeated ones (cache)."""
    plain = load_bundle(path, text_cache=False)
    rows = []
    for batch in batches:
        images = probe_images(batch, plain.image_size, torch.Generator().manual_seed(batch))
        captions = captions_for(batch, distinct=True)
        rows.append(measure(lambda: plain.predict(images, captions), batch, label, seconds))
    cached = load_bundle(path, text_cache=True)
    if cached.text_cache is not None:
        for batch in batches:
            images = probe_images(batch, cached.image_size, torch.Generator().manual_seed(batch))
            captions = captions_for(batch, distinct=False)
            rows.append(measure(lambda: cached.predict(images, captions), batch, f"{label} + text cache (repeated alt-texts)", seconds))
    return rows


def bench_reference(tokenizer_source: Bundle, image_size: int, count: int) -> Timing:
    """The paper's pipeline over ``count`` images, one at a time."""
    from genspot.export.reference import ReferencePipeline

    reference = ReferencePipeline(tokenizer_source.tokenizer._tokenizer, num_classes=len(tokenizer_source.labels))
    images = probe_images(count, image_size, torch.Generator().manual_seed(0))
    captions = captions_for(count, distinct=True)
    label = "paper pipeline: CLIPVisionModel ViT-B/32 + BERT-base, fp32 eager, 1 image at a time, 128 tokens"
    return measure(lambda: reference.predict(images, captions), count, label, seconds=0.0, warmup=1, min_runs=2)


def same_backbone_checkpoint(folder: Path, image_size: int) -> Path:
    """A checkpoint with the reference's backbones (open_clip ViT-B-32, BERT-base shape), random weights."""
    from genspot.training.checkpoint import save_checkpoint
    from genspot.training.config import PACKAGED_TEXT_ENCODER, load_model_config
    from genspot.training.model import create_model

    paper = load_model_config("paper")
    config = dataclasses.replace(
        paper,
        image=dataclasses.replace(paper.image, pretrained=None),
        text=dataclasses.replace(paper.text, source=PACKAGED_TEXT_ENCODER, random_init=True, config_overrides=dict(BERT_BASE)),
    )
    torch.manual_seed(0)
    model = create_model(config, ["sd21", "sdxl", "sd3", "dalle3", "midjourney"], load_weights=False)
    return save_checkpoint(folder / "model.pt", model, train_args={"image_size": image_size})


def same_backbone_bundles(folder: Path, image_size: int) -> list[tuple[str, Path]]:
    """fp32, bf16 and bf16 + int8 bundles of the same-backbone model (bf16 ones only where the CPU has bf16)."""
    from genspot.export.torchscript import export_torchscript
    from genspot.training.checkpoint import load_checkpoint

    checkpoint = same_backbone_checkpoint(folder, image_size)
    loaded = load_checkpoint(checkpoint)
    variants = [("TorchScript fp32, batched, pad to longest", torch.float32, False)]
    if cpu_bf16_reason() is None:
        variants += [("TorchScript bf16", torch.bfloat16, False), ("TorchScript bf16 + int8 linears", torch.bfloat16, True)]
    bundles = []
    for label, dtype, int8 in tqdm(variants, desc="exporting same-backbone bundles", file=sys.stderr):
        out = folder / label.split(",")[0].replace(" ", "-").replace("+", "").lower()
        result = export_torchscript(checkpoint, out, dtype, int8=int8, loaded=loaded)
        bundles.append((f"{label} ({result.parity.describe().split(':', 1)[1].split('(')[0].strip()})", out))
    return bundles


def format_rows(rows: list[Timing], reference: Timing | None) -> str:
    width = max(len(row.label) for row in rows + ([reference] if reference else []))
    lines = [f"{'pipeline':<{width}}  {'batch':>5}  {'latency ms':>10}  {'images/s':>9}  {'vs paper':>8}"]
    for row in ([reference] if reference else []) + rows:
        ratio = f"{row.images_per_s / reference.images_per_s:7.1f}x" if reference else ""
        lines.append(f"{row.label:<{width}}  {row.batch:>5}  {row.latency_ms:>10.1f}  {row.images_per_s:>9.2f}  {ratio:>8}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder to measure")
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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="genspot-bench-") as tmp:
        targets = []
        if args.bundle is not None:
            manifest = load_bundle(args.bundle).manifest
            targets.append((f"{args.bundle.name} ({manifest['dtype']}{'+' + manifest['quantization'] if manifest.get('quantization') else ''})", args.bundle))
        if args.same_backbones:
            targets += same_backbone_bundles(Path(tmp), args.image_size)
        for label, path in tqdm(targets, desc="timing bundles", file=sys.stderr):
            rows += bench_bundle(path, batches, args.seconds, label)
        reference = None
        if args.reference:
            first = load_bundle(targets[0][1])
            reference = bench_reference(first, first.image_size, args.reference_images)
    print(format_rows(rows, reference))
    return 0
