"""Distillation settings: the defaults, the precision, and what a distillation returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ['DISTILL_DEFAULTS', 'Distilled', 'default_precision']


# The one source of the distillation defaults (the CLI and the notebook use these).
DISTILL_DEFAULTS = {
    "temperature": 2.0,
    "alpha": 0.5,
    "attention_weight": 0.0,
    "epochs": 1,
    "max_steps": None,
    "learning_rate": 1e-4,
    "batch_size": 16,
    "max_seq_length": 256,
    "doc_stride": 128,
    "seed": 0,
}


# Training ------------------------------------------------------------------------------------

@dataclass
class Distilled:
    """What :func:`distill` made: the student's directory, its ``distill.json``, the loss log and
    the evaluation run (None when not evaluated)."""

    path: Path
    info: dict
    log: pd.DataFrame
    run: object = None


# The lab's students, shared by the notebooks --------------------------------------------------

def default_precision() -> str:
    """``"bfloat16"`` where bf16 arithmetic is fast (a CUDA GPU; a CPU with AVX512-BF16 or AMX),
    else ``"float32"``: bf16 autocast on a CPU without them is slower than fp32.

    >>> default_precision() in ("float32", "bfloat16")
    True
    """
    from ..model.device import resolve_placement

    return resolve_placement("auto", "auto")[1]
