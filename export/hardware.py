"""What this machine can run: bf16 on the CPU (and so which CPU bundle is fastest), CUDA and
Torch-TensorRT for `export trt`.

bf16 is only worth exporting for CPUs with native bf16 matrix instructions (AVX-512-BF16
or AMX); elsewhere it is emulated and slower than fp32, so it is refused rather than
quietly shipped.
"""

from __future__ import annotations

from pathlib import Path

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str, cpuinfo: Path | None = None) -> str:
    """The first ``name : value`` of /proc/cpuinfo ('' where unavailable)."""
    try:
        text = (cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_flags(cpuinfo: Path | None = None) -> set[str]:
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo is unavailable)."""
    return set(_cpuinfo_field("flags", cpuinfo).split())


def cpu_description() -> str:
    """CPU model and its matrix features, for benchmark reports."""
    model = _cpuinfo_field("model name") or "unknown CPU"
    features = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni"})
    return f"{model} ({', '.join(features) or 'no bf16/int8 matrix extensions'})"


def cpu_bf16_reason(cpuinfo: Path | None = None) -> str | None:
    """``None`` if the CPU computes bf16 natively, else why bf16 is refused (one line)."""
    flags = cpu_flags(cpuinfo)
    if flags:
        if flags & set(BF16_CPU_FLAGS):
            return None
        return f"this CPU lacks native bf16 ({' or '.join(BF16_CPU_FLAGS)} not in /proc/cpuinfo flags); use --dtype fp32"
    if torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX") and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return None
    return "cannot confirm native bf16 support on this CPU (no /proc/cpuinfo flags, oneDNN says no); use --dtype fp32"


def resolve_cpu_dtype(requested: str, cpuinfo: Path | None = None) -> torch.dtype:
    """``fp32`` | ``bf16`` | ``auto`` -> torch dtype; raises ``ValueError`` for bf16 on a CPU without it."""
    if requested == "fp32":
        return torch.float32
    reason = cpu_bf16_reason(cpuinfo)
    if requested == "auto":
        return torch.float32 if reason else torch.bfloat16
    if requested == "bf16":
        if reason:
            raise ValueError(reason)
        return torch.bfloat16
    raise ValueError(f"unknown dtype {requested!r}; choose fp32, bf16 or auto")


def resolve_cpu_bundle(requested_dtype: str, cpuinfo: Path | None = None) -> tuple[str, torch.dtype]:
    """``(kind, dtype)`` of the fastest exact CPU bundle for ``fp32`` | ``bf16`` | ``auto``: TorchScript
    where that resolves to bf16 (native bf16), else ONNX Runtime fp32, which ran fp32 faster than
    TorchScript on both EPYCs measured (docs/PERFORMANCE.md)."""
    dtype = resolve_cpu_dtype(requested_dtype, cpuinfo)
    return ("torchscript", dtype) if dtype == torch.bfloat16 else ("onnx", torch.float32)


def tensorrt_missing() -> str | None:
    """``None`` if Torch-TensorRT can compile here, else the one missing piece."""
    if not torch.cuda.is_available():
        return "CUDA is not available on this machine (Torch-TensorRT needs an NVIDIA GPU)"
    try:
        import torch_tensorrt  # noqa: F401
    except ImportError:
        return "torch_tensorrt is not installed (pip install 'genspot[trt]')"
    return None
