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

from ..core.io import file_checksum, write_atomic, write_json
from ..core.settings import Int8Settings

__all__ = ['INT8_CACHE_ENV', 'Int8Error', 'cache_root', 'int8_cache_dir', 'int8_layers', 'int8_model', 'int8_settings_of',
           'quantize_int8', 'resolve_int8']


# Where quantised models are kept (default ~/.cache/xdanalysis/int8).
INT8_CACHE_ENV = "XDANALYSIS_CACHE"


class Int8Error(ValueError):
    """A model that cannot be quantised to int8 here: says which and what to use instead."""


def cache_root() -> Path:
    """Where converted models are kept: ``XDANALYSIS_CACHE``, default ``~/.cache/xdanalysis``."""
    return Path(os.environ.get(INT8_CACHE_ENV) or Path.home() / ".cache" / "xdanalysis").expanduser()


def int8_cache_dir() -> Path:
    return cache_root() / "int8"


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


def int8_model(fingerprint: str, load_float, settings: Int8Settings = Int8Settings(), *, cache_dir=None,
               structure=None):
    """The int8 model of the float32 weights whose fingerprint is ``fingerprint``: read from the
    cache when it was built before from those same weights with these settings and this torch,
    else built from ``load_float()`` (which returns the float32 model) and cached. Weights that
    change have another fingerprint, so an old int8 model is never reused for them.

    The cache holds data, never code: the quantised state dict (read with ``weights_only=True``) and
    ``int8.json``, which records what it was made from and the sha256 of the state file. Before use the
    record must name these weights, settings and torch, and the file must have that checksum; the
    quantised structure is rebuilt from ``structure()`` (the float model's architecture, e.g. from its
    config; default ``load_float()``) and given the saved weights. An entry that fails any check is
    rebuilt, with a warning naming it; a cache that cannot be written (a full disk) is skipped with a
    warning, and the model is still returned.
    """
    import torch

    settings = resolve_int8(settings)
    record = {"weights_fingerprint": fingerprint, "torch": torch.__version__, **settings.as_dict()}
    key = hashlib.sha256(json.dumps({"weights": fingerprint, "int8": settings.as_dict(),
                                     "torch": torch.__version__}, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache_dir or int8_cache_dir()).expanduser() / key
    cached = _read_cached(folder, record, structure or load_float, settings)
    if cached is not None:
        return cached
    float_model = load_float()
    layers = int8_layers(float_model, settings)
    model = quantize_int8(float_model, settings)
    _write_cached(folder, model, {**record, "layers": layers,
                                  "untrained_weights": sorted(getattr(float_model, "untrained_weights", []))})
    return model


_STATE_FILE, _RECORD_FILE = "int8-state.pt", "int8.json"


def _read_cached(folder: Path, expected: dict, structure, settings: Int8Settings):
    """The cached int8 model in ``folder`` if every check passes; None (with a warning naming what failed)
    otherwise, and None without a word when there is no entry."""
    import torch

    record_file, state_file = folder / _RECORD_FILE, folder / _STATE_FILE
    if not record_file.exists() or not state_file.exists():
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or {k: record.get(k) for k in expected} != expected:
            raise ValueError(f"{record_file.name} does not describe these weights and settings")
        if record.get("state") != file_checksum(state_file):
            raise ValueError(f"{state_file.name} is not the file that was written (size or sha256 differs)")
        with _quiet_quantisation():
            state = torch.load(state_file, weights_only=True, map_location="cpu")
            model = quantize_int8(structure(), settings)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # damaged, swapped or of another torch: never used, rebuilt below
        warnings.warn(f"int8 cache entry {folder} not used ({type(exc).__name__}: {exc}); rebuilding it from the "
                      "float32 weights", stacklevel=4)
        return None
    model.untrained_weights = list(record.get("untrained_weights", []))
    return model


def _write_cached(folder: Path, model, record: dict) -> None:
    """Keep ``model``'s int8 state and its record in ``folder``: the state first, the record (with the
    state's checksum) last, so an entry is complete or is not one."""
    import torch

    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _RECORD_FILE).unlink(missing_ok=True)
        write_atomic(folder / _STATE_FILE, lambda tmp: torch.save(model.state_dict(), tmp))
        write_json(folder / _RECORD_FILE, {**record, "state": file_checksum(folder / _STATE_FILE)}, indent=2)
    except OSError as exc:
        warnings.warn(f"the int8 model could not be cached in {folder} ({exc}); it is used without being kept "
                      f"(free space there, or set {INT8_CACHE_ENV} to another folder)", stacklevel=4)


@contextmanager
def _quiet_quantisation():
    """torch 2.13 announces, on every use, that torch.ao.quantization will move to torchao; said once in
    the README, not on every load (only inside this block: no global filter is changed)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?is).*(quantiz|TypedStorage)")
        yield
