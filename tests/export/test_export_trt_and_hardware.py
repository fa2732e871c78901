"""What the machine can run: bf16 refusal, and `export trt` exiting 2 with its one-line reason."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import pytest
import torch

import genspot.export.hardware as hardware
from genspot.export.cli import main as export_main


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
    return path


def test_bf16_detection_reads_cpu_flags(tmp_path: Path):
    assert hardware.cpu_bf16_reason(_cpuinfo(tmp_path, "avx512f avx512_bf16")) is None
    assert hardware.cpu_bf16_reason(_cpuinfo(tmp_path, "amx_tile amx_bf16")) is None
    reason = hardware.cpu_bf16_reason(_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert "avx512_bf16 or amx_bf16" in reason and "--dtype fp32" in reason


def test_dtype_resolution(tmp_path: Path):
    (tmp_path / "bf16").mkdir()
    with_bf16 = _cpuinfo(tmp_path / "bf16", "avx512_bf16")
    without = _cpuinfo(tmp_path, "avx2")
    assert hardware.resolve_cpu_dtype("fp32", without) == torch.float32
    assert hardware.resolve_cpu_dtype("auto", without) == torch.float32
    assert hardware.resolve_cpu_dtype("auto", with_bf16) == torch.bfloat16
    assert hardware.resolve_cpu_dtype("bf16", with_bf16) == torch.bfloat16
    with pytest.raises(ValueError, match="lacks native bf16"):
        hardware.resolve_cpu_dtype("bf16", without)


def test_auto_bundle_is_bf16_torchscript_with_native_bf16_else_fp32_onnx(tmp_path: Path, monkeypatch, capsys):
    import genspot.export.onnx as onnx
    import genspot.export.torchscript as torchscript
    from genspot.export.parity import ParityReport
    from genspot.export.writer import ExportResult

    (tmp_path / "bf16").mkdir()
    with_bf16, without = _cpuinfo(tmp_path / "bf16", "avx512_bf16"), _cpuinfo(tmp_path, "avx2")
    assert hardware.resolve_cpu_bundle("auto", with_bf16) == ("torchscript", torch.bfloat16)
    assert hardware.resolve_cpu_bundle("auto", without) == ("onnx", torch.float32)
    assert hardware.resolve_cpu_bundle("fp32", with_bf16) == ("onnx", torch.float32)
    calls = []

    def exporter(kind):
        def export(checkpoint, out, *args, **kwargs):
            calls.append((kind, *args))
            return ExportResult(out, {"model_version": "x"}, ParityReport(0.0, 0.0, 1e-4, 10))

        return export

    monkeypatch.setattr(onnx, "export_onnx", exporter("onnx"))
    monkeypatch.setattr(torchscript, "export_torchscript", exporter("torchscript"))
    for cpuinfo in (with_bf16, without):
        monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)
        assert export_main(["auto", "--checkpoint", "model.pt", "--out", str(tmp_path / "b")]) == 0
    assert calls == [("torchscript", torch.bfloat16), ("onnx",)]
    assert export_main(["auto", "--checkpoint", "model.pt", "--out", str(tmp_path / "b"), "--dtype", "bf16"]) == 2
    assert "lacks native bf16" in capsys.readouterr().err


def test_cli_refuses_bf16_on_a_cpu_without_it(tiny_checkpoint: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(hardware, "CPUINFO", _cpuinfo(tmp_path, "avx2"))
    code = export_main(["torchscript", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--dtype", "bf16"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--dtype bf16 refused" in err and "lacks native bf16" in err
    assert not (tmp_path / "b").exists()


def test_export_trt_without_cuda_exits_2_with_one_line(tiny_checkpoint: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert export_main(["trt", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "t")]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "genspot export: trt: CUDA is not available on this machine (Torch-TensorRT needs an NVIDIA GPU)"
    assert captured.out == "" and not (tmp_path / "t").exists()


def test_export_trt_without_torch_tensorrt_exits_2_with_one_line(tiny_bundle: Path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_import = builtins.__import__

    def no_torch_tensorrt(name, *args, **kwargs):
        if name.split(".")[0] == "torch_tensorrt":
            raise ImportError("No module named 'torch_tensorrt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torch_tensorrt", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_torch_tensorrt)
    assert export_main(["trt", "--bundle", str(tiny_bundle)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "genspot export: trt: torch_tensorrt is not installed (pip install 'genspot[trt]')"
    assert not tiny_bundle.with_name(tiny_bundle.name + "-trt").exists()


def test_trt_source_checkpoint_comes_from_the_portable_manifest(tiny_bundle: Path, tiny_checkpoint: Path):
    from genspot.export.tensorrt import source_checkpoint

    assert source_checkpoint(tiny_bundle) == tiny_checkpoint.resolve()


def test_trt_program_has_one_shared_dynamic_batch_and_dynamic_tokens(tiny_checkpoint: Path):
    """The torch.export step Torch-TensorRT compiles runs here on the CPU (TensorRT itself cannot)."""
    from genspot.export.parity import eager_probabilities, probe_images
    from genspot.export.tensorrt import BATCH_PROFILE, export_program
    from genspot.export.torchscript import trace_inputs
    from genspot.export.wrapper import ProbabilityModel
    from genspot.training.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(tiny_checkpoint)
    size, max_tokens = model.config.image_size, meta.config["text"]["max_tokens"]
    wrapper = ProbabilityModel(model, meta.temperature, torch.float32)
    program = export_program(wrapper, trace_inputs(model), max_tokens)
    ranges = sorted((int(r.lower), int(r.upper)) for r in program.range_constraints.values())
    assert ranges == sorted([(BATCH_PROFILE["min"], BATCH_PROFILE["max"]), (2, max_tokens)])  # one batch symbol, one token symbol
    captions = ["", "a long caption " * 20, "x", "y", "z"]
    images = probe_images(5, size, torch.Generator().manual_seed(1))
    with torch.no_grad():
        p_ai, p_source = program.module()(images, *model.tokenizer(captions))
    expected_ai, expected_source = eager_probabilities(model, meta.temperature, model.tokenizer, images, captions)
    assert torch.allclose(p_ai, torch.from_numpy(expected_ai), atol=1e-4)
    assert torch.allclose(p_source, torch.from_numpy(expected_source), atol=1e-4)
    half = export_program(ProbabilityModel(model, meta.temperature, torch.float16), trace_inputs(model), max_tokens)
    dtypes = {str(node.meta["val"].dtype) for node in half.graph.nodes if hasattr(node.meta.get("val"), "dtype")}
    assert {"torch.float16", "torch.float32"} <= dtypes  # fp16 backbones, float32 resize / heads
