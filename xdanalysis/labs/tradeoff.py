"""Size, speed and accuracy of several models, timed on the same questions in one run."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd

from ..model.runtime import model_runtime

__all__ = ['model_profile', 'tradeoff_table']


# Size, speed and accuracy ---------------------------------------------------------------------

def model_profile(model, path=None) -> dict:
    """Parameters, layers, hidden size, the weights' size in memory (each tensor at its own dtype:
    int8 weights count one byte) and on-disk size (of ``path``'s weight files, if given)."""
    config = model.config
    disk = None
    if path is not None and Path(path).is_dir():
        disk = sum(f.stat().st_size for f in Path(path).iterdir()
                   if f.suffix in {".safetensors", ".bin", ".pt", ".h5", ".msgpack"}) / 2**20
    count, size = _weights(model)
    return {"parameters (M)": count / 1e6, "layers": getattr(config, "num_hidden_layers", None),
            "hidden size": getattr(config, "hidden_size", None), "weights (MB)": size / 2**20, "disk (MB)": disk}


def _weights(model) -> tuple[int, int]:
    """Number and bytes of the model's weights: its parameters, plus the packed weights and biases of
    int8 (dynamically quantised) Linear layers, which are not parameters; an OpenVINO model's, its
    constants' (:func:`~xdanalysis.model.openvino.ir_weights`)."""
    if model_runtime(model) != "torch":
        return model.record["weights"]["count"], model.record["weights"]["bytes"]
    tensors = {id(p): p for p in model.parameters()}
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            tensors.update({id(t): t for t in packed._weight_bias() if t is not None})
    return (sum(t.numel() for t in tensors.values()),
            sum(t.numel() * t.element_size() for t in tensors.values()))


def tradeoff_table(entries: dict, table: pd.DataFrame, repeats: int = 3, **predict_settings) -> pd.DataFrame:
    """Size, measured speed and accuracy of several models, timed in one run on the same questions.

    ``entries``: ``{label: (model, tokenizer, path_or_None, run)}``; ``table``: the questions to
    time on (e.g. 100 of the run's). The models take turns, ``repeats`` rounds, so that a busy
    machine slows them alike: ``ms/question`` is the median round, ``ms low`` / ``ms high`` the
    fastest and slowest. Accuracy comes from each run's table, with what always abstaining scores.
    """
    import numpy as np

    from ..core.metrics import abstain_baseline
    from ..model.predict import predict_table

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for model, tokenizer, _, _ in entries.values():
        predict_table(model, tokenizer, table.iloc[:2], progress=False, **predict_settings)  # warm-up
    timings = {label: [] for label in entries}
    for _ in range(repeats):
        for label, (model, tokenizer, _, _) in entries.items():
            started = time.perf_counter()
            predict_table(model, tokenizer, table, progress=False, **predict_settings)
            timings[label].append(1000 * (time.perf_counter() - started) / len(table))
    rows = []
    for label, (model, _, path, run) in entries.items():
        scores = run.scores()
        floor = abstain_baseline(scores)
        rows.append({"model": label, **model_profile(model, path), "ms/question": float(np.median(timings[label])),
                     "ms low": min(timings[label]), "ms high": max(timings[label]), "timed rounds": repeats,
                     "EM": scores["exact"], "F1": scores["f1"], "HasAns F1": scores.get("HasAns_f1", math.nan),
                     "NoAns F1": scores.get("NoAns_f1", math.nan),
                     "always abstaining": math.nan if floor is None else floor,
                     "reference": run.info.get("settings", {}).get("model", label)})
    return pd.DataFrame(rows)
