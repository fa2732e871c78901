"""`genspot bench`: a bundle's throughput against the paper's pipeline, in one run on one machine.

    genspot bench --bundle BUNDLE_DIR [--batch 1,8,32] [--reference/--no-reference] [--reference-checkpoint CKPT]
    genspot bench --same-backbones [--batch ...]
    genspot bench --bundle BUNDLE_DIR --onnxruntime [...]
    genspot bench --bundle BUNDLE_DIR --against OTHER_BUNDLE --pictures DIR [--batch 8] [--seconds 30]

Method. Every row (one batch size of ``Bundle.predict``, tokenisation included) is first
called until its times settle (TorchScript's profiling executor re-specialises per input
shape, so the first calls of each shape measure compilation), then timed at least ``--runs``
times and for at least ``--seconds``; the row reports the median, its min-max spread and the
median CPU time (all threads) per image. Alt-texts are all distinct, except a last row per
bundle that repeats them so they come from the bundle's text-feature cache. The references run
the paper's way (``export/reference.py``: fp32 eager, one image per call, captions padded to a
fixed length): the paper's own encoders, and with ``--reference-checkpoint`` the checkpoint a
bundle was exported from (the same encoders as the bundle), which is then the ratios' baseline.
``--same-backbones`` adds bundles with the reference's backbones (ViT-B/32 + BERT-base, random
weights) in fp32, bf16 and bf16 + int8 linears, so each optimisation step is measured on the
same work. ``--onnxruntime`` adds the bundle's checkpoint exported as an ONNX bundle
(``export/onnx.py``: fp32) and ONNX Runtime's int8 dynamic quantisation of its graphs (outside
the bundle contract), with their parity against the eager checkpoint and the bundle.
``--against`` instead times two bundles call for call on real pictures (``export/alternate.py``):
the way to state one bundle's speed-up over another.

Distance to the limit. Each row's FLOPs per image are counted with
``torch.utils.flop_counter.FlopCounterMode`` on one call (matmuls, convolutions and attention,
2 FLOPs per multiply-add; an ONNX bundle's on the checkpoint it came from, run in torch, where
that checkpoint is on the machine, else not counted: "-"); the bench also times a large matmul in bf16 (fp32 where the CPU has
no native bf16), and each row's ``% peak`` is its FLOPs x median images/s over that matmul's
fastest call (the peak).
The machine, threads and load average (at the start and at the end) are printed with the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from tqdm import tqdm

from genspot.bundle import Bundle, load_bundle, read_manifest
from genspot.export.hardware import cpu_bf16_reason, cpu_description
from genspot.export.onnx import export_onnx, quantize_bundle
from genspot.export.parity import TOLERANCES, ParityReport, check_parity, compare, probe_batches, probe_images
from genspot.export.wrapper import ProbabilityModel
from genspot.imaging import input_channels

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
SETTLE_WINDOW = 3  # warm-up ends when this many consecutive calls agree ...
SETTLE_TOLERANCE = 0.10  # ... within this fraction (slowest / fastest - 1)
SETTLE_MAX_CALLS = 30


@dataclasses.dataclass(frozen=True)
class Timing:
    """One measured row: wall times of the timed calls (median and spread), median CPU time
    (all threads) per image, counted FLOPs per image and how many warm-up calls it took."""

    label: str
    captions: str
    batch: int
    median_ms: float
    min_ms: float
    max_ms: float
    cpu_ms_per_image: float
    flops_per_image: float
    warmup_calls: int

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_ms * 1e3

    @property
    def best_flops_per_s(self) -> float:
        """Counted FLOPs over the fastest timed call: a peak is what the CPU can do, and on a
        shared machine a slower call means something else ran."""
        return self.flops_per_image * self.batch / self.min_ms * 1e3

    def peak_fraction(self, peak_flops_per_s: float) -> float:
        """Achieved FLOP/s (counted FLOPs x median images/s) over the measured peak."""
        return self.flops_per_image * self.images_per_s / peak_flops_per_s


def _call(run: Callable[[], None]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def settle(run: Callable[[], None], max_calls: int = SETTLE_MAX_CALLS) -> int:
    """Call ``run`` until ``SETTLE_WINDOW`` consecutive wall times agree within
    ``SETTLE_TOLERANCE`` (or ``max_calls`` is reached); returns the number of calls."""
    walls: list[float] = []
    while len(walls) < max_calls:
        walls.append(_call(run)[0])
        recent = walls[-SETTLE_WINDOW:]
        if len(recent) == SETTLE_WINDOW and max(recent) <= (1 + SETTLE_TOLERANCE) * min(recent):
            break
    return len(walls)


# FlopCounterMode formulas: they receive the arguments' shapes (and ``out_shape``).
def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _native_mha_flops(query, key, value, embed_dim, num_head, *args, out_shape=None, **kwargs) -> int:
    """nn.MultiheadAttention's fused fast path: q/k/v and output projections plus attention."""
    (batch, length, _), source = query, key[1]
    projections = 2 * batch * embed_dim * embed_dim * (2 * length + 2 * source)
    head = embed_dim // num_head
    keys = (batch, num_head, source, head)
    return projections + sdpa_flop_count((batch, num_head, length, head), keys, keys)


def _int8_linear_flops(inputs, packed_weight, *args, out_val=None, **kwargs) -> int:
    """int8 dynamic linear (its weight is an opaque packed object: sizes come from the tensors)."""
    return 2 * inputs.numel() * out_val.shape[-1]


_int8_linear_flops._get_raw = True  # FlopCounterMode passes the tensors themselves, not shapes

# CPU kernels FlopCounterMode has no formula for (their matmuls are not dispatched separately).
KERNEL_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    torch.ops.aten._native_multi_head_attention: _native_mha_flops,
    torch.ops.quantized.linear_dynamic: _int8_linear_flops,
}


def count_flops(run: Callable[[], None]) -> int:
    """FLOPs of one call of ``run`` (matmuls, convolutions, attention, int8 linears; 2 per multiply-add)."""
    with FlopCounterMode(display=False, custom_mapping=KERNEL_FLOPS) as counter:
        run()
    return counter.get_total_flops()


def measure(
    run: Callable[[], None], batch: int, label: str, captions: str, seconds: float, runs: int = 5, counted: Callable[[], None] | None = None
) -> Timing:
    """One row: FLOPs counted on a call of ``counted`` (default ``run``; after a first call, which
    fills any cache as the timed calls will find it), warm-up of ``run`` until times settle, then
    at least ``runs`` timed calls and at least ``seconds``. A TorchScript module's later speed
    depends on what ran it before, a call under FlopCounterMode included: give ``counted`` a
    separately loaded copy."""
    counted = counted or run
    counted()
    flops = count_flops(counted)
    warmup = settle(run)
    samples: list[tuple[float, float]] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < runs or time.perf_counter() < deadline:
        samples.append(_call(run))
    walls = [wall * 1e3 for wall, _ in samples]
    cpu_ms = statistics.median(cpu for _, cpu in samples) * 1e3
    return Timing(label, captions, batch, statistics.median(walls), min(walls), max(walls), cpu_ms / batch, flops / batch, warmup)


def gemm_peak(size: int, seconds: float, runs: int) -> Timing:
    """The CPU's measured matmul peak: a ``size`` x ``size`` x ``size`` matmul loop in bf16
    (fp32 where the CPU lacks native bf16), timed like a row (FLOPs "per image" = per matmul)."""
    dtype = torch.bfloat16 if cpu_bf16_reason() is None else torch.float32
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(dtype) for _ in range(2))
    out = torch.empty(size, size, dtype=dtype)
    name = str(dtype).removeprefix("torch.")
    return measure(lambda: torch.mm(a, b, out=out), 1, f"{name} GEMM {size}^3", "-", seconds, runs)


def captions_for(count: int, distinct: bool) -> list[str]:
    """``count`` alt-texts; ``distinct`` makes each unique so no cache can help."""
    return [ALT_TEXTS[i % len(ALT_TEXTS)] + (f" #{i}" if distinct else "") for i in range(count)]


def _bundle_row(bundles: tuple[Bundle, Bundle], batch: int, label: str, seconds: float, runs: int) -> Timing:
    """One batch size of ``Bundle.predict``: timed on ``bundles[0]``, FLOPs counted on ``bundles[1]``."""
    timed, counter = bundles
    images = probe_images(batch, timed.image_size, torch.Generator().manual_seed(batch), timed.input_channels)
    distinct = timed.text_cache is None
    captions = captions_for(batch, distinct)

    def predict(bundle: Bundle) -> Callable[[], None]:
        return lambda: bundle.predict(images, captions)

    return measure(predict(timed), batch, label, "distinct" if distinct else "cached", seconds, runs, predict(counter))


def bench_bundle(path: Path, batches: list[int], seconds: float, runs: int, label: str) -> list[Timing]:
    """Rows for one bundle: each batch size with distinct alt-texts, then the largest batch with
    repeated alt-texts whose text features come from the bundle's cache. Every row loads the
    bundle afresh, since a TorchScript module's speed at one shape depends on the shapes it ran
    before; FLOPs are counted on a second copy, so the counting cannot change the timed one."""
    counted = _torch_graph(path)

    def fresh(text_cache: bool) -> tuple[Bundle, Bundle]:
        counter = load_bundle(path, text_cache=text_cache)
        return load_bundle(path, text_cache=text_cache), counter if counted is None else dataclasses.replace(counter, module=counted)

    rows = [_bundle_row(fresh(False), batch, label, seconds, runs) for batch in batches]
    cached = fresh(True)
    if cached[0].text_cache is not None:
        rows.append(_bundle_row(cached, max(batches), label, seconds, runs))
    return rows


def _torch_graph(path: Path) -> ProbabilityModel | None:
    """For an ONNX bundle, whose graphs run outside torch, the same graphs in torch (its checkpoint
    in fp32 eager) to count FLOPs on; None for other bundles, or when the checkpoint is not here."""
    from genspot.export.tensorrt import source_checkpoint
    from genspot.training.model.checkpoint import load_checkpoint

    if read_manifest(path)["kind"] != "onnx":
        return None
    try:
        detector, meta = load_checkpoint(source_checkpoint(path))
    except FileNotFoundError:
        return None
    return ProbabilityModel(detector, meta.temperature).eval()


def onnxruntime_models(bundle_dir: Path, folder: Path) -> list[tuple[str, Bundle, str]]:
    """(label, bundle, parity summary) of the bundle's checkpoint exported as an ONNX bundle in
    ``folder`` (fp32) and of ONNX Runtime's int8 dynamic quantisation of its graphs, each checked
    against the eager checkpoint (the tolerance a bundle of that precision must meet) and against
    the bundle."""
    from genspot.export.tensorrt import source_checkpoint
    from genspot.training.model.checkpoint import load_checkpoint

    checkpoint = source_checkpoint(bundle_dir)
    detector, meta = load_checkpoint(checkpoint)
    bundle = load_bundle(bundle_dir, text_cache=False)
    fp32 = export_onnx(checkpoint, folder / "onnx-fp32", loaded=(detector, meta)).bundle_dir
    variants = [("fp32", fp32, "float32"), ("int8 dynamic", quantize_bundle(fp32, folder / "onnx-int8"), "int8")]
    models = []
    for name, path, precision in tqdm(variants, desc="checking ONNX Runtime models", file=sys.stderr):
        model = load_bundle(path, text_cache=False)
        eager = check_parity(
            detector, meta.temperature, detector.tokenizer, [model.predict], bundle.image_size, TOLERANCES[precision],
            channels=bundle.input_channels,
        )
        tolerance = TOLERANCES[precision].looser(TOLERANCES[bundle.spec.dtype])
        against = compare(bundle.predict, [model.predict], probe_batches(bundle.image_size, channels=bundle.input_channels), tolerance)
        models.append((f"ONNX Runtime {name}", model, f"{eager.describe()}; against {bundle_dir.name}: {against.describe()}"))
    return models


def _one_by_one(pipeline, image_size: int, label: str, captions: str, seconds: float, runs: int, channels: int = 3) -> Timing:
    """A reference pipeline's row: one image per call, cycling through 8 images."""
    images = probe_images(8, image_size, torch.Generator().manual_seed(0), channels)
    samples = itertools.cycle(zip(images, captions_for(8, distinct=True)))

    def one_image() -> None:
        image, caption = next(samples)
        pipeline.predict(image.unsqueeze(0), [caption])

    return measure(one_image, 1, label, captions, seconds, runs)


def bench_reference(tokenizer_source: Bundle, image_size: int, seconds: float, runs: int) -> Timing:
    """The paper's pipeline (its encoders, random weights), the paper's way."""
    from genspot.export.reference import PAPER_MAX_TOKENS, ReferencePipeline

    reference = ReferencePipeline(tokenizer_source.tokenizer, num_classes=len(tokenizer_source.labels))
    return _one_by_one(reference, image_size, PAPER_LABEL, f"{PAPER_MAX_TOKENS} tokens", seconds, runs)


def bench_checkpoint(path: Path, seconds: float, runs: int) -> Timing:
    """A checkpoint (the one a bundle came from: the same encoders) run the paper's way."""
    from genspot.export.reference import EagerCheckpoint

    pipeline = EagerCheckpoint(path)
    label = f"paper's way, same encoders: {path.name} fp32 eager, 1 by 1"
    tokens = f"{pipeline.tokenizer.padding['length']} tokens"
    config = pipeline.model.config
    return _one_by_one(pipeline, config.image_size, label, tokens, seconds, runs, input_channels(config.resize_policy))


def same_backbone_checkpoint(folder: Path, image_size: int) -> Path:
    """A checkpoint with the reference's backbones (open_clip ViT-B-32, BERT-base shape), random weights."""
    from genspot.training.model.checkpoint import save_checkpoint
    from genspot.training.config import PACKAGED_TEXT_ENCODER, load_model_config
    from genspot.training.model.model import create_model

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
    from genspot.training.model.checkpoint import load_checkpoint

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


def environment(when: str) -> str:
    """One line: torch, threads, the CPU and the load average, for the report."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    threads = f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
    return f"{when}: torch {torch.__version__}, {threads}, {cpu_description()}; load average {load}"


def format_rows(rows: list[Timing], references: list[Timing], peak: Timing) -> str:
    """The table: median and spread, FLOPs, fraction of the measured peak, and ratios to the
    baseline, the last of ``references`` (which head the table)."""
    peak_flops = peak.best_flops_per_s
    baseline = references[-1] if references else None
    rows = references + rows
    width = max(len(row.label) for row in rows)
    header = (
        f"{'pipeline':<{width}}  {'alt-texts':<10}  {'batch':>5}  {'warm-up':>7}  {'median ms':>9}  {'min-max ms':>15}"
        f"  {'images/s':>9}  {'CPU ms/img':>10}  {'GFLOP/img':>9}  {'% peak':>6}"
    )
    lines = [header + (f"  {'x base (wall)':>13}  {'x base (CPU)':>12}" if baseline else "")]
    for row in rows:
        spread = f"{row.min_ms:.1f}-{row.max_ms:.1f}"
        counted = (f"{row.flops_per_image / 1e9:>9.3g}", f"{100 * row.peak_fraction(peak_flops):>5.3g}%") if row.flops_per_image else ("-", "-")
        line = (
            f"{row.label:<{width}}  {row.captions:<10}  {row.batch:>5}  {row.warmup_calls:>7}  {row.median_ms:>9.1f}"
            f"  {spread:>15}  {row.images_per_s:>9.2f}  {row.cpu_ms_per_image:>10.1f}  {counted[0]:>9}  {counted[1]:>6}"
        )
        if baseline:
            wall = row.images_per_s / baseline.images_per_s
            cpu = baseline.cpu_ms_per_image / row.cpu_ms_per_image
            line += f"  {wall:>12.1f}x  {cpu:>11.1f}x"
        lines.append(line)
    if baseline:
        lines.append(f"x base: images/s (wall) and CPU time per image against {baseline.label!r}")
    return "\n".join(lines)


def format_peak(peak: Timing) -> str:
    """The measured peak line: the matmul's fastest call (the peak every ``% peak`` divides by),
    its median and slowest."""
    gflops = peak.flops_per_image / 1e9
    return (
        f"measured peak: {peak.label}, {peak.best_flops_per_s / 1e9:.0f} GFLOP/s "
        f"(fastest timed call; median {gflops * 1e3 / peak.median_ms:.0f}, slowest {gflops * 1e3 / peak.max_ms:.0f})"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, metavar="BUNDLE_DIR", help="bundle folder to measure")
    parser.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True, help="also time the paper's pipeline")
    parser.add_argument("--reference-checkpoint", type=Path, metavar="CHECKPOINT",
                        help="also time this checkpoint (the bundle's source: the same encoders) the paper's way, "
                             "fp32 eager one image at a time; the ratio columns are then against it")
    parser.add_argument("--same-backbones", action="store_true", help="also export and time bundles with the paper's backbones")
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also export the bundle's checkpoint (named in its manifest) to ONNX and time it in ONNX Runtime, "
                             "fp32 and int8 dynamic")
    parser.add_argument("--against", type=Path, metavar="OTHER_BUNDLE",
                        help="time --bundle and this bundle by alternating calls on --pictures (one batch size) and "
                             "print the speed-up with its interval; nothing else is timed")
    parser.add_argument("--pictures", type=Path, metavar="DIR", help="real pictures for --against (at least one batch)")
    parser.add_argument("--image-size", type=int, default=256, help="input size of --same-backbones bundles")
    parser.add_argument("--seconds", type=float, default=3.0, help="least time of timed calls per row, after warm-up (default 3)")
    parser.add_argument("--runs", type=int, default=5, help="least number of timed calls per row (default 5)")
    parser.add_argument("--gemm-size", type=int, default=2048, help="side of the square matmul timed as the peak (default 2048)")
    return parser


def _batches(text: str) -> list[int] | None:
    try:
        batches = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        return None
    return batches if batches and min(batches) >= 1 else None


def _bundle_target(path: Path) -> tuple[str, Path, str]:
    """(label, folder, parity summary) of a bundle given on the command line."""
    spec = load_bundle(path).spec
    precision = spec.dtype + (f"+{spec.quantization}" if spec.quantization else "")
    parity = ParityReport(**spec.parity).describe() if spec.parity else "parity not recorded"
    return f"{path.name} ({precision})", path, parity


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.bundle is None and not args.same_backbones:
        print("genspot bench: give --bundle BUNDLE_DIR, --same-backbones, or both", file=sys.stderr)
        return 2
    if args.onnxruntime and args.bundle is None:
        print("genspot bench: --onnxruntime needs --bundle BUNDLE_DIR", file=sys.stderr)
        return 2
    batches = _batches(args.batch)
    if batches is None:
        print(f"genspot bench: --batch must be comma-separated positive integers, got {args.batch!r}", file=sys.stderr)
        return 2
    if args.against is not None:
        return _main_against(args, batches)
    torch.manual_seed(0)
    print(environment("start"))
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="genspot-bench-") as tmp:
        targets = [_bundle_target(args.bundle)] if args.bundle is not None else []
        if args.same_backbones:
            targets += same_backbone_bundles(Path(tmp), args.image_size)
        alternatives = onnxruntime_models(args.bundle, Path(tmp)) if args.onnxruntime else []
        peak = gemm_peak(args.gemm_size, args.seconds, args.runs)
        for label, path, _ in tqdm(targets, desc="timing bundles", file=sys.stderr):
            rows += bench_bundle(path, batches, args.seconds, args.runs, label)
        if alternatives:
            counter = load_bundle(args.bundle, text_cache=False)  # FLOPs: the same graph, counted on the bundle
            for label, model, _ in alternatives:
                rows += [_bundle_row((model, counter), batch, label, args.seconds, args.runs) for batch in batches]
        references = []
        if args.reference:
            first = load_bundle(targets[0][1])
            references.append(bench_reference(first, first.image_size, args.seconds, args.runs))
        if args.reference_checkpoint is not None:
            references.append(bench_checkpoint(args.reference_checkpoint, args.seconds, args.runs))
    print(format_peak(peak))
    print(format_rows(rows, references, peak))
    for label, _, parity in targets + alternatives:
        print(f"{label} at export: {parity}")
    print(environment("end"))
    return 0


def _main_against(args: argparse.Namespace, batches: list[int]) -> int:
    from genspot.export.alternate import MIN_ROUNDS, duel, format_duel

    if args.bundle is None or args.pictures is None or len(batches) != 1:
        print("genspot bench: --against needs --bundle, --pictures DIR and one --batch size", file=sys.stderr)
        return 2
    print(environment("start"))
    try:
        result = duel(args.bundle, args.against, args.pictures, batches[0], args.seconds, max(args.runs, MIN_ROUNDS))
    except ValueError as exc:
        print(f"genspot bench: {exc}", file=sys.stderr)
        return 2
    print(format_duel(result))
    print(environment("end"))
    return 0
