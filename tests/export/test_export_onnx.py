"""export/onnx.py: the bundle's graph exported to ONNX gives the eager model's probabilities in
ONNX Runtime at any batch size and caption length; its int8 quantisation really quantises;
`genspot bench --onnxruntime` times both next to the bundle. Nothing here depends on speed."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.export import bench
from genspot.export.bench import main as bench_main
from genspot.export.onnx import OnnxRuntimeModel, export_onnx, quantize_int8
from genspot.export.parity import TOLERANCES, check_parity, eager_probabilities, probe_images
from genspot.export.torchscript import checkpoint_image_size


@pytest.fixture(scope="module")
def eager(tiny_checkpoint):
    from genspot.training.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def onnx_file(eager, tmp_path_factory) -> Path:
    detector, meta = eager
    return export_onnx(detector, meta, tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_onnx_graph_passes_the_fp32_bundle_parity_check(eager, onnx_file: Path):
    detector, meta = eager
    image_size = checkpoint_image_size(meta)
    model = OnnxRuntimeModel(onnx_file, detector.tokenizer, image_size)
    report = check_parity(detector, meta.temperature, detector.tokenizer, [model.predict], image_size, TOLERANCES["float32"])
    assert report.ok and report.samples == 10, report.describe()


@pytest.mark.parametrize("batch", [1, 5])
def test_batch_and_caption_length_are_dynamic(eager, onnx_file: Path, batch: int):
    detector, meta = eager
    model = OnnxRuntimeModel(onnx_file, detector.tokenizer, checkpoint_image_size(meta))
    images = probe_images(batch, model.image_size, torch.Generator().manual_seed(batch))
    captions = [("word " * (7 * i)).strip() for i in range(batch)]  # traced with 2 samples; here 0 .. past the token limit
    p_ai, p_source = model.predict(images, captions)
    expected_ai, expected_source = eager_probabilities(detector, meta.temperature, detector.tokenizer, images, captions)
    assert p_ai.shape == (batch,) and p_source.shape == (batch, len(meta.labels_b))
    np.testing.assert_allclose(p_ai, expected_ai, atol=1e-4)
    np.testing.assert_allclose(p_source, expected_source, atol=1e-4)


def test_int8_quantisation_replaces_the_float_matmuls(eager, onnx_file: Path):
    import onnx

    detector, meta = eager
    quantized = quantize_int8(onnx_file, onnx_file.with_name("model.int8.onnx"))
    ops = Counter(node.op_type for node in onnx.load(str(quantized)).graph.node)
    assert ops["DynamicQuantizeLinear"] > 0 and ops["MatMulInteger"] > 0
    assert ops["MatMul"] < Counter(node.op_type for node in onnx.load(str(onnx_file)).graph.node)["MatMul"]
    model = OnnxRuntimeModel(quantized, detector.tokenizer, checkpoint_image_size(meta))
    images = probe_images(3, model.image_size, torch.Generator().manual_seed(0))
    p_ai, p_source = model.predict(images, ["a cat", "", "a photo of a mountain lake at dawn"])
    assert np.all((0 <= p_ai) & (p_ai <= 1)) and np.allclose(p_source.sum(axis=1), 1.0, atol=1e-5)


def test_bench_times_the_onnxruntime_models_beside_the_bundle(tiny_bundle: Path, onnx_file: Path, monkeypatch, capsys):
    # the export itself is tested above (and takes most of the time): the bench gets a copy of its file
    monkeypatch.setattr(bench, "export_onnx", lambda detector, meta, path: Path(shutil.copyfile(onnx_file, path)))
    args = ["--bundle", str(tiny_bundle), "--batch", "1,2", "--no-reference", "--onnxruntime", "--seconds", "0", "--runs", "2",
            "--gemm-size", "64"]
    assert bench_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[3 : next(i for i, line in enumerate(lines) if " at export: " in line)]
    rows = {}
    for line in table:
        for label in ("tiny-fp32 (float32)", "ONNX Runtime fp32", "ONNX Runtime int8 dynamic"):
            if line.startswith(label + " "):
                rows.setdefault(label, []).append(line.removeprefix(label).split())
    assert [row[:2] for row in rows["ONNX Runtime fp32"]] == [["distinct", "1"], ["distinct", "2"]]
    assert [row[:2] for row in rows["ONNX Runtime int8 dynamic"]] == [["distinct", "1"], ["distinct", "2"]]
    bundle_flops = {row[1]: row[7] for row in rows["tiny-fp32 (float32)"] if row[0] == "distinct"}
    assert {row[1]: row[7] for row in rows["ONNX Runtime fp32"]} == bundle_flops  # same graph, counted on the bundle
    fp32_parity = next(line for line in lines if line.startswith("ONNX Runtime fp32 at export: "))
    assert "parity ok" in fp32_parity and "(tolerance 0.0001, 10 samples); against tiny-fp32: parity ok" in fp32_parity
    assert any(line.startswith("ONNX Runtime int8 dynamic at export: parity ") for line in lines)


def test_onnxruntime_needs_a_bundle(capsys):
    assert bench_main(["--same-backbones", "--onnxruntime"]) == 2
    assert "--onnxruntime needs --bundle" in capsys.readouterr().err
