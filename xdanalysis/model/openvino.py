"""OpenVINO: a QA model's forward pass compiled for the CPU, in float32, bfloat16 (OpenVINO's inference
precision) or int8 (NNCF's post-training quantisation with static activation scales), converted once per
weights and settings and kept on disk as OpenVINO's own files (IR ``.xml``/``.bin``), never as pickles.

The compiled model stands where a PyTorch model stands (``OpenVINOModel``: the same call, the same
start and end logits), so every run, report and explorer is unchanged. It gives logits only: attention
weights, hidden states and gradients need PyTorch (:func:`~xdanalysis.model.runtime.require_torch` says so).

Why OpenVINO's own conversion and NNCF directly, not Optimum Intel: Optimum Intel 2.2 needs transformers
< 5.6 and torchvision (an unpinned torch), and this project runs transformers 5.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.io import file_checksum, write_json
from ..core.settings import OpenVINOSettings, WindowSettings
from .quantize import cache_root

__all__ = ['Calibration', 'OpenVINOError', 'calibration_inputs', 'compile_openvino', 'convert_to_openvino',
           'ir_weights', 'openvino_cache_dir', 'openvino_model', 'openvino_threads', 'openvino_versions',
           'quantize_openvino']


class OpenVINOError(ValueError):
    """A model OpenVINO cannot run here as asked (names the model and what to do instead)."""


def openvino_cache_dir() -> Path:
    return cache_root() / "openvino"


def openvino_threads(settings: OpenVINOSettings = OpenVINOSettings()) -> int:
    """The inference threads: as set, else every core this process may use."""
    if settings.threads:
        return settings.threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def openvino_versions(*, int8: bool = False) -> dict:
    """The versions that make a converted model: OpenVINO's, and NNCF's for int8; a missing package is an
    :class:`OpenVINOError` saying how to install it."""
    import importlib.metadata as md

    versions = {}
    for package in ("openvino", "nncf") if int8 else ("openvino",):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            raise OpenVINOError(f"runtime openvino{' with int8' if int8 else ''} needs the {package} package, which is "
                                "not installed: pip install 'xdanalysis[openvino]' (make install does)") from None
    return versions


@dataclass(frozen=True, eq=False)
class Calibration:
    """The questions int8's activation scales are measured on: ``questions`` (a question table), where they
    come from in words (``source``), whether they lie outside the run's data (``held_out``), and the windows
    they are cut into (``windowing``, the run's)."""

    questions: pd.DataFrame
    source: str
    held_out: bool = True
    windowing: WindowSettings = WindowSettings()

    def fingerprint(self) -> str:
        ids = "\n".join(map(str, self.questions["id"]))
        payload = json.dumps({"ids": ids, "windowing": self.windowing.as_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def describe(self) -> dict:
        """What a run records of it (``run.json``'s ``calibration``)."""
        return {"source": self.source, "held_out": self.held_out, "questions": int(len(self.questions)),
                "articles": int(self.questions["title"].nunique()) if "title" in self.questions else None,
                "fingerprint": self.fingerprint()}


def calibration_inputs(calibration: Calibration, tokenizer, *, windows: int, seed: int) -> list[dict]:
    """``windows`` windows of the calibration questions, drawn with ``seed``, each as one model input
    (numpy arrays of one row: no padding enters the scales)."""
    from .forward import batch_tensors
    from .windows import prepare_windows

    prepared = prepare_windows(calibration.questions, tokenizer, calibration.windowing)
    if not len(prepared):
        raise OpenVINOError(f"no calibration windows: {calibration.source} holds no question")
    picked = np.sort(np.random.default_rng(seed).choice(len(prepared), size=min(windows, len(prepared)),
                                                        replace=False))
    return [{name: tensor.numpy() for name, tensor in batch_tensors(prepared, [i]).items()} for i in picked]


def convert_to_openvino(model, input_names):
    """``model`` (a PyTorch QA model) as an OpenVINO model with dynamic batch and length on every input in
    ``input_names``, its two outputs named ``start_logits`` and ``end_logits``."""
    import openvino as ov
    import torch
    import transformers

    example = {name: torch.ones(2, 16, dtype=torch.long) for name in input_names}
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # tracing touches the loss function, which transformers announces
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing warnings about Python values: the shapes stay dynamic
            converted = ov.convert_model(model, example_input=example,
                                         input=[(name, [-1, -1], ov.Type.i64) for name in input_names])
    finally:
        transformers.logging.set_verbosity(verbosity)
    for output, name in zip(converted.outputs, ("start_logits", "end_logits")):
        output.get_tensor().set_names({name})
    return converted


def quantize_openvino(converted, inputs: list[dict], settings: OpenVINOSettings = OpenVINOSettings()):
    """NNCF's post-training int8 quantisation of ``converted``, its activation scales measured on ``inputs``
    (the calibration windows), as ``settings`` say."""
    import logging

    import nncf

    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    ignored = nncf.IgnoredScope(patterns=list(settings.keep_float), validate=False) if settings.keep_float else None
    level = logging.getLogger("nncf").level
    logging.getLogger("nncf").setLevel(logging.ERROR)  # its INFO lines on every node; restored after
    try:
        return nncf.quantize(converted, nncf.Dataset(inputs), model_type=nncf.ModelType.TRANSFORMER,
                             preset=presets[settings.preset], subset_size=len(inputs), ignored_scope=ignored)
    finally:
        logging.getLogger("nncf").setLevel(level)


# Our dtypes as OpenVINO's inference precision: int8's remaining float operations run in float32.
_PRECISION = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}


def compile_openvino(converted, *, dtype: str, threads: int):
    """``converted`` compiled for the CPU with its precision and thread count set, one stream (the
    toolkit's batches run one after another); refused when the CPU would not run the precision asked."""
    import openvino as ov

    wanted = _PRECISION[dtype]
    compiled = ov.Core().compile_model(converted, "CPU", {
        "INFERENCE_PRECISION_HINT": wanted, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY"})
    got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if got != wanted:
        raise OpenVINOError(f"OpenVINO compiled the model in {got}, not the {wanted} asked for ({dtype}) on this CPU; "
                            "use float32")
    return compiled


_RECORD_FILE, _XML, _BIN = "openvino.json", "model.xml", "model.bin"


def openvino_model(fingerprint: str, load_float, *, dtype: str, config, input_names,
                   settings: OpenVINOSettings = OpenVINOSettings(), calibration: Calibration | None = None,
                   tokenizer=None, cache_dir=None):
    """The :class:`OpenVINOModel` of the float32 weights whose fingerprint is ``fingerprint``, in ``dtype``.

    The converted model (and, for int8, the quantised one) is read from the cache when it was made before
    from those weights with these settings, calibration set and OpenVINO (and NNCF) version, else made from
    ``load_float()`` and cached. An entry is used only when its record names all of these and its files
    have the checksums it recorded; otherwise it is rebuilt, with a warning naming it. int8 needs
    ``calibration`` and ``tokenizer`` (its windows are cut from the calibration questions).
    """
    int8 = dtype == "int8"
    if int8 and (calibration is None or tokenizer is None):
        raise OpenVINOError("int8 with runtime openvino needs calibration questions (a Calibration) and the tokenizer: "
                            "its activation scales are measured on them")
    record = {"weights_fingerprint": fingerprint, "inputs": list(input_names), **openvino_versions(int8=int8),
              "kind": "int8" if int8 else "float"}
    if int8:
        record.update(recipe=settings.int8_recipe(), calibration=calibration.describe())
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache_dir or openvino_cache_dir()).expanduser() / key
    cached = _read_cached(folder, record)
    if cached is None:
        started = time.perf_counter()
        float_model = load_float()
        converted = convert_to_openvino(float_model, input_names)
        made = {"untrained_weights": sorted(getattr(float_model, "untrained_weights", []))}
        if int8:
            inputs = calibration_inputs(calibration, tokenizer, windows=settings.calibration_windows,
                                        seed=settings.seed)
            converted = quantize_openvino(converted, inputs, settings)
            made["calibration_windows_used"] = len(inputs)
        made["seconds"] = round(time.perf_counter() - started, 2)
        _write_cached(folder, converted, {**record, **made})
        cached = converted, {**record, **made, "converted_now": True}
    from .openvino_module import OpenVINOModel

    converted, record = cached
    threads = openvino_threads(settings)
    compiled = compile_openvino(converted, dtype=dtype, threads=threads)
    return OpenVINOModel(compiled, config=config, dtype_name=dtype,
                         record={**record, "threads": threads, "cache": str(folder), "weights": ir_weights(converted)})


# The element types of an OpenVINO model's weights (its other constants are shapes, indices and flags).
_WEIGHT_TYPES = {"f32", "f16", "bf16", "i8", "u8", "i4", "u4"}


def ir_weights(converted) -> dict:
    """``{"count", "bytes"}`` of an OpenVINO model's weights: its constants of a number type (int8 weights count
    one byte each, their scales and the layers kept in float their own)."""
    count = size = 0
    for op in converted.get_ops():
        if op.get_type_name() != "Constant":
            continue
        kind = op.get_output_element_type(0)
        if kind.get_type_name() in _WEIGHT_TYPES:
            elements = int(np.prod(list(op.get_output_shape(0)), dtype=np.int64))
            count, size = count + elements, size + elements * kind.bitwidth // 8
    return {"count": count, "bytes": size}


def _read_cached(folder: Path, expected: dict):
    """``(model, record)``: the cached OpenVINO model in ``folder`` and its record, if every check passes; None (with a warning naming what failed)
    otherwise, and None without a word when there is no entry."""
    record_file = folder / _RECORD_FILE
    if not record_file.exists():
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or {k: record.get(k) for k in expected} != expected:
            raise ValueError(f"{_RECORD_FILE} does not describe these weights, settings and versions")
        for name in (_XML, _BIN):
            if record.get("files", {}).get(name) != file_checksum(folder / name):
                raise ValueError(f"{name} is not the file that was written (missing, or its size or sha256 differs)")
        import openvino as ov

        return ov.Core().read_model(str(folder / _XML)), {k: v for k, v in record.items() if k != "files"}
    except Exception as exc:  # damaged, swapped or of another version: never used, rebuilt
        warnings.warn(f"OpenVINO cache entry {folder} not used ({type(exc).__name__}: {exc}); rebuilding it from the "
                      "float32 weights", stacklevel=4)
        return None


def _write_cached(folder: Path, converted, record: dict) -> None:
    """Keep ``converted`` as IR files in ``folder``, the record (with their checksums) written last, so an
    entry is complete or is not one."""
    import openvino as ov

    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _RECORD_FILE).unlink(missing_ok=True)
        ov.save_model(converted, str(folder / _XML), compress_to_fp16=False)  # the weights as they are
        files = {name: file_checksum(folder / name) for name in (_XML, _BIN)}
        write_json(folder / _RECORD_FILE, {**record, "files": files}, indent=2)
    except OSError as exc:
        warnings.warn(f"the OpenVINO model could not be cached in {folder} ({exc}); it is used without being kept "
                      "(free space there, or set XDANALYSIS_CACHE to another folder)", stacklevel=4)
