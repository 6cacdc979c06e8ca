"""int8 inference: a model's Linear layers quantised with PyTorch's dynamic quantisation, built once
and cached on disk, keyed by the fingerprint of the weights it was made from.

Why PyTorch's own engine: measured side by side with ONNX Runtime's dynamic int8 and OpenVINO on the
same windows (``benchmarks/bench_compress.py``), it was the fastest here, needs no export step (so
any architecture torch runs can be quantised) and no package beyond torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path

from ..core.io import write_atomic, write_json
from ..core.settings import Int8Settings

__all__ = ['INT8_CACHE_ENV', 'Int8Error', 'int8_cache_dir', 'int8_layers', 'int8_model', 'int8_settings_of',
           'quantize_int8', 'resolve_int8']


# Where quantised models are kept (default ~/.cache/xdanalysis/int8).
INT8_CACHE_ENV = "XDANALYSIS_CACHE"


class Int8Error(ValueError):
    """A model that cannot be quantised to int8 here: says which and what to use instead."""


def int8_cache_dir() -> Path:
    root = os.environ.get(INT8_CACHE_ENV) or Path.home() / ".cache" / "xdanalysis"
    return Path(root).expanduser() / "int8"


def resolve_int8(settings: Int8Settings = Int8Settings()) -> Int8Settings:
    """``settings`` with ``reduce_range=None`` decided for this CPU: full 8-bit activations where it
    has VNNI (int32 accumulation), 7 bits elsewhere (int16 pairs saturate with 8). What a run records."""
    if settings.reduce_range is not None:
        return settings
    from dataclasses import replace

    from .device import cpu_flags

    flags = cpu_flags()
    return replace(settings, reduce_range=not ({"avx512_vnni", "avx_vnni", "amx_int8"} & flags))


def int8_layers(model, settings: Int8Settings = Int8Settings()) -> dict:
    """``{"int8": [names], "float32": [names]}``: the Linear layers quantised and those kept in float32."""
    import torch

    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    kept = [n for n in names if any(fnmatch(n, pattern) for pattern in settings.keep_float)]
    return {"int8": [n for n in names if n not in kept], "float32": kept}


def quantize_int8(model, settings: Int8Settings = Int8Settings()):
    """A copy of ``model`` (float32, on the CPU) with its Linear layers quantised to int8 as
    ``settings`` say; the model given is not changed.

    Example::

        fast = quantize_int8(model)                      # the tuned default
        naive = quantize_int8(model, NAIVE_INT8)         # every Linear, one scale per matrix
    """
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    kind = getattr(model.config, "model_type", type(model).__name__)
    device, dtype = next(model.parameters()).device.type, next(model.parameters()).dtype
    if device != "cpu" or dtype != torch.float32:
        raise Int8Error(f"int8 quantisation starts from a float32 model on the CPU; this {kind} model is "
                        f"{str(dtype).replace('torch.', '')} on {device}")
    settings = resolve_int8(settings)
    layers = int8_layers(model, settings)["int8"]
    if not layers:
        raise Int8Error(f"model type {kind!r} ({type(model).__name__}) has no torch.nn.Linear layer to quantise "
                        f"(GPT-2-style Conv1D layers are not Linear); run it in float32 or bfloat16, or export "
                        "it with ONNX Runtime (optimum-onnx) or OpenVINO, which quantise other layer kinds")
    qconfig = per_channel_dynamic_qconfig if settings.per_channel else default_dynamic_qconfig
    with torch.no_grad(), _quiet_quantisation():
        quantised = quantize_dynamic(model, {name: qconfig for name in layers}, dtype=torch.qint8, inplace=False)
    if not settings.reduce_range:
        from .int8_linear import DynamicLinear, FullRangeLinear

        for module in quantised.modules():
            if type(module) is DynamicLinear:
                module.__class__ = FullRangeLinear
    quantised.eval()
    quantised.int8_settings = settings.as_dict()
    return quantised


def int8_settings_of(model) -> dict | None:
    """The :class:`Int8Settings` (as a dict) a model was quantised with; None for a float model."""
    return getattr(model, "int8_settings", None)


def int8_model(fingerprint: str, load_float, settings: Int8Settings = Int8Settings(), *, cache_dir=None):
    """The int8 model of the float32 weights whose fingerprint is ``fingerprint``: read from the
    cache when it was built before from those same weights with these settings and this torch,
    else built from ``load_float()`` (which returns the float32 model) and cached. Weights that
    change have another fingerprint, so an old int8 model is never reused for them.

    The cache holds whole pickled modules (``torch.load(weights_only=False)``): read only files that
    this library wrote in your own cache directory.
    """
    import torch

    settings = resolve_int8(settings)
    key = hashlib.sha256(json.dumps({"weights": fingerprint, "int8": settings.as_dict(),
                                     "torch": torch.__version__}, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache_dir or int8_cache_dir()) / key
    if (folder / "model.pt").exists() and (folder / "int8.json").exists():
        with _quiet_quantisation():
            return torch.load(folder / "model.pt", weights_only=False)
    float_model = load_float()
    layers = int8_layers(float_model, settings)
    model = quantize_int8(float_model, settings)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "model.pt", lambda tmp: torch.save(model, tmp))
    write_json(folder / "int8.json", {"weights_fingerprint": fingerprint, "torch": torch.__version__,
                                      **settings.as_dict(), "layers": layers}, indent=2)
    return model


@contextmanager
def _quiet_quantisation():
    """torch 2.13 announces, on every use, that torch.ao.quantization will move to torchao; said once in
    the README, not on every load (only inside this block: no global filter is changed)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?is).*(quantiz|TypedStorage)")
        yield
