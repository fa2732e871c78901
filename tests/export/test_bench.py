"""`genspot bench` runs end to end on a tiny bundle with tiny time budgets."""

from __future__ import annotations

from pathlib import Path

from genspot.export.bench import Timing, format_rows, main as bench_main, measure


def test_bench_prints_every_batch_size_with_and_without_text_cache(tiny_bundle: Path, capsys):
    assert bench_main(["--bundle", str(tiny_bundle), "--batch", "1,3", "--no-reference", "--seconds", "0"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("torch ") and table[1].startswith("pipeline")
    rows = [line.split() for line in table[2:-1]]  # environment, header, rows, parity line
    assert all(line.startswith("tiny-fp32 (float32) ") for line in table[2:])
    assert [(row[2], row[3]) for row in rows] == [("distinct", "1"), ("distinct", "3"), ("cached", "3")]
    for row in rows:
        latency_ms, images_per_s, cpu_ms = map(float, row[4:7])
        assert latency_ms > 0 and images_per_s > 0 and cpu_ms > 0
    assert "tiny-fp32 (float32) at export: parity ok: max |delta p_ai| = " in table[-1]


def test_measure_and_ratio_column():
    calls = []
    timing = measure(lambda: calls.append(1), batch=4, label="noop", captions="distinct", seconds=0.0, warmup=2, min_runs=3)
    assert len(calls) == 5 and timing.batch == 4 and timing.images_per_s > 0
    reference = Timing("paper", "128 tokens", 1, 100.0, 10.0, 200.0)
    table = format_rows([Timing("bundle", "distinct", 8, 20.0, 400.0, 20.0)], reference).splitlines()
    assert table[1].startswith("paper") and table[2].split()[-2:] == ["40.0x", "10.0x"]


def test_bench_needs_something_to_measure(capsys):
    assert bench_main([]) == 2
    assert "--bundle" in capsys.readouterr().err
    assert bench_main(["--same-backbones", "--batch", "0"]) == 2
