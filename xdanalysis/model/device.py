"""Where and in what a model runs: the only place ``"auto"`` devices and dtypes are decided."""

from __future__ import annotations

from ..core.common import check_choice

__all__ = ['resolve_placement', 'resolve_openvino_dtype', 'DEVICES', 'DTYPES', 'cpu_flags', 'fast_bfloat16', 'model_device_dtype', 'resolve_device', 'resolve_dtype']


DEVICES = ["auto", "cpu", "cuda", "mps"]


# int8: dynamic quantisation of the Linear layers (xdanalysis.model.quantize), on the CPU only.
DTYPES = ["auto", "float32", "bfloat16", "float16", "int8"]


def resolve_device(device: str = "auto") -> str:
    """The device to run on: ``"auto"`` is CUDA if there is one, then Apple's MPS, then the CPU;
    a device that is asked for and absent is an error (never a silent fallback).

    >>> resolve_device("cpu")
    'cpu'
    """
    check_choice("device", device, DEVICES)
    if device == "cpu":
        return device  # without importing torch: a finished run is checked on every reuse
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    if device == "mps" and not mps:
        raise ValueError("device 'mps' asked for, but this machine has no Apple MPS; use --device cpu or auto")
    return device


def fast_bfloat16(device: str) -> bool:
    """Whether bf16 arithmetic is fast on ``device``: a CUDA GPU that supports it, or a CPU with
    AMX or AVX512-BF16 (read from /proc/cpuinfo); elsewhere bf16 is emulated and slower than fp32.

    >>> fast_bfloat16("mps")
    False
    """
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_flags() -> set:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return {flag for line in handle if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def resolve_dtype(dtype: str = "float32", device: str = "cpu") -> str:
    """The dtype to run in: ``"auto"`` is bfloat16 where :func:`fast_bfloat16` says so, else
    float32 (the official figures are fp32, so float32 is the default everywhere). float16 is
    refused on a CPU, where torch does not run it fast.

    >>> resolve_dtype("auto", "mps")
    'float32'
    """
    check_choice("dtype", dtype, DTYPES)
    if dtype == "auto":
        return "bfloat16" if fast_bfloat16(device) else "float32"
    if dtype == "int8" and device != "cpu":
        raise ValueError(f"dtype int8 on {device}: int8 here is PyTorch's dynamic quantisation, which runs on the "
                         "CPU only; use --device cpu for int8, or bfloat16/float16 on the GPU")
    if dtype == "float16" and device == "cpu":
        raise ValueError("dtype float16 on the CPU: torch runs it slowly or not at all; use bfloat16 (fast on CPUs "
                         "with AMX or AVX512-BF16) or float32")
    return dtype


def resolve_placement(device: str | None = "auto", dtype: str | None = "float32",
                      runtime: str = "torch") -> tuple[str, str]:
    """``(device, dtype)`` resolved together (the dtype depends on the device; int8 makes ``auto`` the
    CPU); None means the default, ``auto`` device and float32. ``runtime="openvino"`` runs on the CPU
    (:func:`resolve_openvino_dtype`).

    >>> resolve_placement("cpu", None)
    ('cpu', 'float32')
    """
    if runtime == "openvino":
        if device not in (None, "auto", "cpu"):
            raise ValueError(f"runtime openvino runs on the CPU; device {device!r} is PyTorch's: use --runtime torch "
                             f"--device {device}, or --device cpu with OpenVINO")
        return "cpu", resolve_openvino_dtype(dtype or "float32")
    if dtype == "int8" and device in (None, "auto"):
        device = "cpu"  # int8 runs on the CPU only: "auto" chooses it
    where = resolve_device(device or "auto")
    return where, resolve_dtype(dtype or "float32", where)


def resolve_openvino_dtype(dtype: str = "float32") -> str:
    """The precision OpenVINO runs in on this CPU: ``auto`` is bfloat16 where the CPU has AMX or
    AVX512-BF16, else float32; int8 is NNCF's static quantisation. bfloat16 is refused on a CPU without
    them (OpenVINO would quietly run float32 under its name), float16 everywhere (a GPU precision).

    >>> resolve_openvino_dtype("int8")
    'int8'
    """
    check_choice("dtype", dtype, DTYPES)
    if dtype == "auto":
        return "bfloat16" if fast_bfloat16("cpu") else "float32"
    if dtype == "float16":
        raise ValueError("dtype float16 with runtime openvino: a GPU precision; on the CPU use bfloat16 (CPUs with "
                         "AMX or AVX512-BF16), int8 or float32")
    if dtype == "bfloat16" and not fast_bfloat16("cpu"):
        raise ValueError("dtype bfloat16 with runtime openvino: this CPU has neither AMX nor AVX512-BF16, so OpenVINO "
                         "would run float32 under a bfloat16 name; use float32, or int8 for speed")
    return dtype


def model_device_dtype(model) -> tuple[str, str]:
    """Where a loaded model is and in which dtype: ``("cpu", "float32")``, ``("cuda", "bfloat16")``..."""
    if getattr(model, "runtime", "torch") != "torch":  # xdanalysis.model.openvino's compiled model
        return "cpu", model.dtype_name
    parameter = next(model.parameters())
    quantised = any(".quantized." in type(module).__module__ for module in model.modules())
    return parameter.device.type, "int8" if quantised else str(parameter.dtype).replace("torch.", "")
