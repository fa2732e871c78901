"""`genspot.bundle.load_bundle`: runs with torch + tokenizers only, refuses bad bundles clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genspot.bundle import ALT_TEXT_FULL, BundleError, load_bundle

REPO = Path(__file__).resolve().parents[2]


def test_loading_and_predicting_imports_no_training_code(tiny_bundle: Path, tiny_onnx_bundle: Path):
    """Neither kind pulls in training or export code; onnxruntime is imported for ONNX bundles only."""
    script = textwrap.dedent(
        f"""
        import sys
        from PIL import Image
        import torch
        from genspot.bundle import load_bundle
        for path in ({str(tiny_bundle)!r}, {str(tiny_onnx_bundle)!r}):
            bundle = load_bundle(path)
            image = bundle.preprocess(Image.new("RGB", (300, 200), (200, 30, 60)))
            p_ai, p_source = bundle.predict(torch.stack([image, image]), ["a red card", ""])
            assert p_ai.shape == (2,) and p_source.shape == (2, len(bundle.labels)), (p_ai.shape, p_source.shape)
            print(bundle.spec.kind, "ONNXRUNTIME", "onnxruntime" in sys.modules)
        banned = sorted(m for m in sys.modules if m.split(".")[0] in ("transformers", "open_clip")
                        or m.startswith(("genspot.training", "genspot.export")))
        print("BANNED", banned)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BANNED []" in result.stdout
    assert "torchscript ONNXRUNTIME False" in result.stdout and "onnx ONNXRUNTIME True" in result.stdout


def test_bundle_surface(tiny_bundle: Path):
    bundle = load_bundle(tiny_bundle)
    manifest = bundle.manifest
    assert bundle.labels == manifest["labels"] and bundle.version == manifest["model_version"]
    tensor = bundle.preprocess(Image.new("RGBA", (50, 90), (0, 0, 0, 0)))
    assert tensor.shape == (3, bundle.image_size, bundle.image_size) and tensor.dtype == torch.float32
    assert torch.allclose(tensor, torch.ones_like(tensor))  # transparent -> white
    input_ids, attention_mask = bundle.tokenize(["short", "a much longer caption than the first one"])
    assert input_ids.dtype == torch.long and input_ids.shape == attention_mask.shape and input_ids.shape[0] == 2
    assert attention_mask[0].sum() < attention_mask[1].sum()
    p_ai, p_source = bundle.predict(torch.zeros(0, 3, bundle.image_size, bundle.image_size), [])
    assert p_ai.shape == (0,) and p_source.shape == (0, len(bundle.labels))
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        bundle.predict(torch.zeros(2, 3, bundle.image_size, bundle.image_size), ["x"])


def test_predict_is_thread_safe(tiny_bundle: Path):
    bundle = load_bundle(tiny_bundle)
    generator = torch.Generator().manual_seed(3)
    jobs = [(torch.rand(n, 3, bundle.image_size, bundle.image_size, generator=generator), [f"caption {i}" for i in range(n)]) for n in (1, 2, 3, 4) * 3]
    expected = [bundle.predict(images, captions)[0] for images, captions in jobs]
    bundle.text_cache.clear()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: bundle.predict(*job)[0], jobs))
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, atol=1e-6)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def _edit_manifest(path: Path, **changes) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    (path / "manifest.json").write_text(json.dumps(manifest))


def _drop(path: Path, field: str) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest[field]
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "kind, breakage, message",
    [
        ("tiny_bundle", lambda p: shutil.rmtree(p), "does not exist"),
        ("tiny_bundle", lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
        ("tiny_bundle", lambda p: (p / "manifest.json").write_text("{not json"), "unreadable manifest"),
        ("tiny_bundle", lambda p: (p / "model.ts").unlink(), "model.ts is missing"),
        ("tiny_bundle", lambda p: (p / "model.ts").write_bytes(b"garbage"), "cannot load"),
        ("tiny_bundle", lambda p: (p / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        ("tiny_bundle", lambda p: _edit_manifest(p, format="genspot-bundle/99"), "unsupported bundle format 'genspot-bundle/99'"),
        ("tiny_bundle", lambda p: _edit_manifest(p, dtype="int4"), "unknown dtype 'int4'"),
        ("tiny_bundle", lambda p: _drop(p, "labels"), "missing field(s) labels"),
        ("tiny_onnx_bundle", lambda p: (p / "model.onnx").unlink(), "model.onnx is missing"),
        ("tiny_onnx_bundle", lambda p: (p / "text.onnx").unlink(), "text.onnx is missing"),
        ("tiny_onnx_bundle", lambda p: (p / "model.onnx").write_bytes(b"garbage"), "cannot load"),
        ("tiny_onnx_bundle", lambda p: shutil.copyfile(p / "text.onnx", p / "model.onnx"),
         "model.onnx takes ['input_ids', 'attention_mask']"),
    ],
)
def test_broken_bundles_raise_bundle_error(kind: str, request, tmp_path: Path, breakage, message: str):
    copy = _copy(request.getfixturevalue(kind), tmp_path)
    breakage(copy)
    with pytest.raises(BundleError) as info:
        load_bundle(copy)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_onnx_bundle_refuses_a_gpu(tiny_onnx_bundle: Path):
    with pytest.raises(BundleError, match="ONNX bundles run on the CPU"):
        load_bundle(tiny_onnx_bundle, device="cuda")


def test_tensorrt_bundle_for_another_gpu_is_refused(tiny_bundle: Path, tmp_path: Path, monkeypatch):
    copy = _copy(tiny_bundle, tmp_path)
    _edit_manifest(copy, kind="tensorrt", device="cuda", tensorrt={"gpu_name": "NVIDIA H100 80GB HBM3", "tensorrt": "10.0"})
    with pytest.raises(BundleError, match="built for GPU 'NVIDIA H100 80GB HBM3'.*needs CUDA"):
        load_bundle(copy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA GeForce RTX 4090")
    with pytest.raises(BundleError, match="built for GPU 'NVIDIA H100 80GB HBM3' but this machine has 'NVIDIA GeForce RTX 4090'"):
        load_bundle(copy)


def test_an_old_bundle_without_the_later_fields_loads_with_their_defaults(tiny_bundle: Path, tmp_path: Path):
    """Bundles from before ``alt_text``, ``display_names`` and ``text_cache`` existed still load
    (genspot.formats.BundleManifest's defaults: alt-text read fully, no text cache)."""
    copy = _copy(tiny_bundle, tmp_path)
    for field in ("alt_text", "display_names", "text_cache", "temperature", "parity", "metrics"):
        _drop(copy, field)
    bundle = load_bundle(copy)
    assert bundle.alt_text == ALT_TEXT_FULL and not bundle.alt_text_is_safe
    assert bundle.spec.text_cache is False and bundle.text_cache is None and bundle.spec.display_names == {}
    p_ai, p_source = bundle.predict(torch.rand(2, 3, bundle.image_size, bundle.image_size), ["a cat", None])
    assert p_ai.shape == (2,) and p_source.shape == (2, len(bundle.labels))


def test_a_mistyped_manifest_field_is_named(tiny_bundle: Path, tmp_path: Path):
    copy = _copy(tiny_bundle, tmp_path)
    _edit_manifest(copy, image_size="big")
    with pytest.raises(BundleError, match=r"invalid manifest .*manifest\.json: .*`\$\.image_size`"):
        load_bundle(copy)
