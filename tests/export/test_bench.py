"""`genspot bench`: the report's structure on a tiny bundle with tiny time budgets, the warm-up
rule, FLOP counting (including the CPU attention and int8 kernels) and the peak fraction. No test here
depends on how fast anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from genspot.bundle import load_bundle
from genspot.export import bench
from genspot.export.bench import Timing, count_flops, format_rows, main as bench_main, measure
from genspot.export.wrapper import Int8Linear


def test_bench_reports_environment_peak_and_every_row(tiny_bundle: Path, capsys):
    args = ["--bundle", str(tiny_bundle), "--batch", "1,3", "--no-reference", "--seconds", "0", "--runs", "2", "--gemm-size", "64"]
    assert bench_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("start: torch ") and " threads, " in lines[0] and "load average " in lines[0]
    assert lines[1].startswith("measured peak: ") and "GEMM 64^3" in lines[1] and "GFLOP/s" in lines[1]
    assert lines[2].split()[:3] == ["pipeline", "alt-texts", "batch"] and "% peak" in lines[2]
    assert lines[-1].startswith("end: torch ")
    assert "tiny-fp32 (float32) at export: parity ok: max |delta p_ai| = " in lines[-2]
    rows = [line.removeprefix("tiny-fp32 (float32) ").split() for line in lines[3:-2]]
    assert [(row[0], row[1]) for row in rows] == [("distinct", "1"), ("distinct", "3"), ("cached", "3")]
    for captions, batch, warmup, median_ms, spread, images_per_s, cpu_ms, gflop, peak in rows:
        low, high = map(float, spread.split("-"))
        assert int(warmup) >= bench.SETTLE_WINDOW and 0 < low <= float(median_ms) <= high
        assert float(images_per_s) > 0 and float(cpu_ms) > 0
        assert float(gflop) > 0 and float(peak.rstrip("%")) > 0


def test_measure_counts_flops_warms_up_then_times_at_least_runs_calls():
    a, b = torch.ones(16, 32), torch.ones(32, 8)
    calls = []
    timing = measure(lambda: calls.append(torch.mm(a, b)), batch=4, label="mm", captions="-", seconds=0.0, runs=3)
    # one call to fill caches, one counted, the warm-up, then the timed ones
    assert len(calls) == 2 + timing.warmup_calls + 3 and timing.warmup_calls >= bench.SETTLE_WINDOW
    assert timing.flops_per_image == 2 * 16 * 32 * 8 / 4
    assert timing.min_ms <= timing.median_ms <= timing.max_ms and timing.images_per_s > 0


@pytest.mark.parametrize(
    ("walls", "calls"),
    [([5.0, 2.0, 1.0, 1.05, 0.98, 1.0], 5), ([1.0, 1.0, 1.0], 3), ([3.0, 1.0] * 20, bench.SETTLE_MAX_CALLS)],
)
def test_warm_up_ends_when_consecutive_calls_agree(monkeypatch, walls, calls):
    times = iter(walls)
    monkeypatch.setattr(bench, "_call", lambda run: (next(times), 0.0))
    assert bench.settle(lambda: None) == calls


def test_cpu_kernels_are_counted_like_their_unfused_matmuls():
    attention = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    tokens = torch.randn(2, 10, 64)
    with torch.inference_mode():  # fused CPU fast path: aten._native_multi_head_attention
        fused = count_flops(lambda: attention(tokens, tokens, tokens, need_weights=False))
    unfused = count_flops(lambda: attention(tokens, tokens, tokens, need_weights=True))  # linears + bmm
    assert fused == unfused == 2 * 2 * 10 * 64 * 64 * 4 + 2 * 2 * 2 * 10 * 10 * 64
    query = torch.randn(2, 4, 10, 16)
    assert count_flops(lambda: nn.functional.scaled_dot_product_attention(query, query, query)) == 2 * 2 * 2 * 4 * 10 * 10 * 16
    int8 = Int8Linear(nn.Linear(64, 32))  # quantized::linear_dynamic with an opaque packed weight
    assert count_flops(lambda: int8(tokens)) == count_flops(lambda: nn.Linear(64, 32)(tokens)) == 2 * 2 * 10 * 64 * 32


def test_peak_fraction_and_ratio_columns_come_from_counted_flops():
    peak = Timing("bfloat16 GEMM", "-", 1, 125.0, 100.0, 250.0, 100.0, 10e9, 3)  # 100 GFLOP/s at its fastest
    row = Timing("bundle", "distinct", 8, 100.0, 95.0, 120.0, 20.0, 1e9, 4)  # 80 images/s x 1 GFLOP
    assert row.images_per_s == 80.0 and row.peak_fraction(100e9) == pytest.approx(0.8)
    reference = Timing("paper", "128 tokens", 1, 125.0, 120.0, 130.0, 200.0, 30e9, 3)  # 8 images/s
    table = format_rows([row], [reference], peak).splitlines()
    assert table[1].startswith("paper") and table[1].split()[-3:] == ["240%", "1.0x", "1.0x"]
    assert table[2].split()[-3:] == ["80%", "10.0x", "10.0x"] and "95.0-120.0" in table[2]
    assert table[3] == "x base: images/s (wall) and CPU time per image against 'paper'"
    same_encoders = Timing("eager checkpoint", "64 tokens", 1, 250.0, 240.0, 260.0, 400.0, 30e9, 3)  # 4 images/s
    table = format_rows([row], [reference, same_encoders], peak).splitlines()  # the last reference is the baseline
    assert table[1].split()[-2:] == ["2.0x", "2.0x"] and table[3].split()[-2:] == ["20.0x", "20.0x"]
    assert "against 'eager checkpoint'" in table[-1]
    assert len(format_rows([row], [], peak).splitlines()) == 2 and "x base" not in format_rows([row], [], peak)
    assert bench.format_peak(peak) == "measured peak: bfloat16 GEMM, 100 GFLOP/s (fastest timed call; median 80, slowest 40)"


def test_checkpoint_reference_runs_the_bundles_model_one_image_at_a_time(tiny_checkpoint: Path, tiny_bundle: Path, capsys):
    from genspot.export.reference import EagerCheckpoint
    from genspot.export.parity import probe_images

    reference = EagerCheckpoint(tiny_checkpoint)
    bundle = load_bundle(tiny_bundle, text_cache=False)
    images = probe_images(2, bundle.image_size, torch.Generator().manual_seed(0))
    captions = ["a cat", ""]
    p_ai, p_source = bundle.predict(images, captions)
    with torch.inference_mode():
        for i, caption in enumerate(captions):  # same model, same probabilities, caption padded to max_tokens
            eager_ai, eager_source = reference(images[i], caption)
            assert abs(eager_ai.item() - p_ai[i]) < 1e-4 and abs(eager_source[0].numpy() - p_source[i]).max() < 1e-4
            assert reference.tokenizer.encode(caption).ids.__len__() == reference.model.tokenizer.max_tokens
    args = ["--bundle", str(tiny_bundle), "--batch", "2", "--no-reference", "--reference-checkpoint", str(tiny_checkpoint),
            "--seconds", "0", "--runs", "2", "--gemm-size", "64"]
    assert bench_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("paper's way, same encoders: model.pt fp32 eager, 1 by 1")
    assert lines[3].split()[-2:] == ["1.0x", "1.0x"] and "against \"paper's way, same encoders: model.pt" in lines[-3]


def test_bench_needs_something_to_measure(capsys):
    assert bench_main([]) == 2
    assert "--bundle" in capsys.readouterr().err
    assert bench_main(["--same-backbones", "--batch", "0"]) == 2
    assert bench_main(["--same-backbones", "--batch", "x"]) == 2


def _pictures(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir()
    for index in range(count):
        Image.new("RGB", (40 + index, 30), (index * 20, 90, 200)).save(folder / f"{index}.png")
    return folder


def test_against_times_two_bundles_call_for_call_and_reports_the_ratio(tiny_bundle: Path, slow_bundle: Path, tmp_path):
    from genspot.export.alternate import duel, format_duel

    result = duel(tiny_bundle, slow_bundle, _pictures(tmp_path / "pictures", 3), batch=2, seconds=0.0, rounds=3)
    assert len(result.seconds[0]) == len(result.seconds[1]) == 3
    low, high = result.ratio_interval()
    assert low <= sorted(result.ratios())[1] <= high
    assert min(result.ratios()) > 1  # the slow copy spends about half a second more on every call
    report = format_duel(result).splitlines()
    assert report[0].startswith("alternating calls, batch 2, 3 rounds")
    assert report[1].startswith("  tiny-fp32 (") and "images/s" in report[1]
    assert " over " in report[3] and "5th-95th percentile" in report[3]


def test_against_needs_pictures_enough_for_one_batch(tiny_bundle: Path, tmp_path, capsys):
    common = ["--bundle", str(tiny_bundle), "--against", str(tiny_bundle), "--batch", "4", "--seconds", "0"]
    assert bench_main(common) == 2
    assert "--against needs --bundle, --pictures DIR and one --batch size" in capsys.readouterr().err
    assert bench_main([*common, "--pictures", str(_pictures(tmp_path / "few", 2))]) == 2
    assert "holds 2 pictures; batch 4 needs as many" in capsys.readouterr().err
