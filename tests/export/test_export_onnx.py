"""`genspot export onnx`: an ONNX bundle holds the manifest a TorchScript bundle of the same
checkpoint holds, answers as it does (any batch size and caption length, its text cache, real
pictures), and `genspot bench` times it, counts its FLOPs in torch and quantises its graphs.
Nothing here depends on speed."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.bundle import load_bundle
from genspot.export import bench
from genspot.export.bench import bench_bundle, main as bench_main
from genspot.export.onnx import quantize_bundle
from genspot.export.parity import eager_probabilities, picture_batches, probe_images
from genspot.export.writer import ExportResult

# Fields that differ by nature between two exports of one checkpoint.
PER_EXPORT = {"kind", "files", "parity", "created", "onnxruntime"}


@pytest.fixture(scope="module")
def eager(tiny_checkpoint):
    from genspot.training.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


def test_bundle_has_its_graphs_and_the_torchscript_bundles_manifest(tiny_onnx_bundle: Path, tiny_bundle: Path):
    assert sorted(p.name for p in tiny_onnx_bundle.iterdir()) == ["manifest.json", "model.onnx", "text.onnx", "tokenizer.json"]
    manifest = json.loads((tiny_onnx_bundle / "manifest.json").read_text())
    reference = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["kind"] == "onnx" and manifest["dtype"] == "float32" and manifest["device"] == "cpu"
    assert manifest["files"] == {"model": "model.onnx", "text": "text.onnx", "tokenizer": "tokenizer.json"}
    assert manifest["onnxruntime"] and manifest["text_cache"] is True
    assert manifest["parity"]["max_delta_p_ai"] <= 1e-4 and manifest["parity"]["samples"] == 10
    assert set(manifest) - PER_EXPORT == set(reference) - PER_EXPORT
    assert {k: v for k, v in manifest.items() if k not in PER_EXPORT} == {k: v for k, v in reference.items() if k not in PER_EXPORT}
    assert (tiny_onnx_bundle / "tokenizer.json").read_text() == (tiny_bundle / "tokenizer.json").read_text()


@pytest.mark.parametrize("batch", [1, 5])
def test_batch_and_caption_length_are_dynamic(tiny_onnx_bundle: Path, eager, batch: int):
    detector, meta = eager
    bundle = load_bundle(tiny_onnx_bundle, text_cache=False)
    images = probe_images(batch, bundle.image_size, torch.Generator().manual_seed(batch))
    captions = [("word " * (7 * i)).strip() for i in range(batch)]  # exported with 2 samples; here 0 .. past the token limit
    p_ai, p_source = bundle.predict(images, captions)
    expected_ai, expected_source = eager_probabilities(detector, meta.temperature, detector.tokenizer, images, captions)
    assert p_ai.shape == (batch,) and p_source.shape == (batch, len(meta.labels_b))
    np.testing.assert_allclose(p_ai, expected_ai, atol=1e-4)
    np.testing.assert_allclose(p_source, expected_source, atol=1e-4)


def test_text_cache_gives_the_same_answers_and_is_reused(tiny_onnx_bundle: Path):
    plain = load_bundle(tiny_onnx_bundle, text_cache=False)
    cached = load_bundle(tiny_onnx_bundle)
    images = probe_images(5, plain.image_size, torch.Generator().manual_seed(0))
    captions = ["same alt", "", "same alt", "other", None]
    for _ in range(2):  # second round: every caption served from the cache
        np.testing.assert_allclose(cached.predict(images, captions)[1], plain.predict(images, captions)[1], atol=1e-6)
    assert len(cached.text_cache._entries) == 3  # "same alt", "" (None normalises to it), "other"


def test_onnx_and_torchscript_bundles_agree_on_real_pictures(tiny_onnx_bundle: Path, tiny_bundle: Path, dev_data_dir: Path):
    onnx, torchscript = load_bundle(tiny_onnx_bundle), load_bundle(tiny_bundle)
    batches = picture_batches(dev_data_dir / "images", onnx.preprocess, limit=16)
    assert sum(len(captions) for _, captions in batches) == 16
    for images, captions in batches:
        for got, want in zip(onnx.predict(images, captions), torchscript.predict(images, captions)):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_int8_quantisation_replaces_the_float_matmuls(tiny_onnx_bundle: Path, tmp_path: Path):
    import onnx

    quantized = quantize_bundle(tiny_onnx_bundle, tmp_path / "int8")
    for graph in ("model.onnx", "text.onnx"):
        ops = Counter(node.op_type for node in onnx.load(str(quantized / graph)).graph.node)
        floats = Counter(node.op_type for node in onnx.load(str(tiny_onnx_bundle / graph)).graph.node)
        assert ops["DynamicQuantizeLinear"] > 0 and ops["MatMulInteger"] > 0 and ops["MatMul"] < floats["MatMul"], graph
    bundle = load_bundle(quantized)
    images = probe_images(3, bundle.image_size, torch.Generator().manual_seed(0))
    p_ai, p_source = bundle.predict(images, ["a cat", "", "a photo of a mountain lake at dawn"])
    assert np.all((0 <= p_ai) & (p_ai <= 1)) and np.allclose(p_source.sum(axis=1), 1.0, atol=1e-5)


def test_bench_counts_an_onnx_bundles_flops_on_its_checkpoint(tiny_onnx_bundle: Path, tiny_bundle: Path):
    onnx_rows = bench_bundle(tiny_onnx_bundle, [2], 0.0, 2, "onnx")
    torchscript_rows = bench_bundle(tiny_bundle, [2], 0.0, 2, "torchscript")
    assert [row.captions for row in onnx_rows] == ["distinct", "cached"]
    assert [row.flops_per_image for row in onnx_rows] == [row.flops_per_image for row in torchscript_rows]
    assert all(row.flops_per_image > 0 for row in onnx_rows)


def test_bench_times_the_onnxruntime_models_beside_the_bundle(tiny_bundle: Path, tiny_onnx_bundle: Path, monkeypatch, capsys):
    # the export itself is tested above: the bench gets a copy of the session's ONNX bundle
    def copy(checkpoint, out, loaded=None):
        return ExportResult(Path(shutil.copytree(tiny_onnx_bundle, out)), {}, None)

    monkeypatch.setattr(bench, "export_onnx", copy)
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
