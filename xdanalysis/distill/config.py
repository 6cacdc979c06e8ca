"""Distillation settings as one frozen object (the one home of their defaults and checks), the
precision, and what a distillation returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..core.common import check_choice
from ..core.settings import WindowSettings

__all__ = ['DISTILL_DEFAULTS', 'DistillConfig', 'Distilled', 'default_precision']

PRECISIONS = ["float32", "bfloat16"]


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns: the soft-target ``temperature`` and their weight ``alpha`` against the hard
    labels (0: hard labels only), ``attention_weight`` for MiniLM attention transfer, the schedule
    (``epochs`` or ``max_steps`` of ``batch_size`` windows at ``learning_rate``, 10% warm-up, linear
    decay), the training windows, the ``seed``, the ``precision`` (``bfloat16``: bf16 autocast, weights
    stay fp32) and how often a checkpoint is written (default: every epoch). Checked when made, so a
    setting that cannot work is refused before any work.

    >>> DistillConfig(alpha=2)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be between 0 and 1, got 2
    """

    temperature: float = 2.0
    alpha: float = 0.5
    attention_weight: float = 0.0
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 1e-4
    batch_size: int = 16
    windowing: WindowSettings = field(default_factory=lambda: WindowSettings(max_seq_length=256, doc_stride=128))
    seed: int = 0
    precision: str = "float32"
    checkpoint_every: int | None = None

    def __post_init__(self):
        def positive(name, value, whole=True):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and value != int(value)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be {'a whole number ' if whole else ''}above 0, got {value!r}")

        positive("temperature", self.temperature, whole=False)
        positive("learning_rate", self.learning_rate, whole=False)
        for name in ("epochs", "batch_size"):
            positive(name, getattr(self, name))
        for name in ("max_steps", "checkpoint_every"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if not (math.isfinite(self.attention_weight) and self.attention_weight >= 0):
            raise ValueError(f"attention_weight must be 0 or more, got {self.attention_weight}")
        check_choice("precision", self.precision, PRECISIONS)

    def recipe(self) -> dict:
        """The settings as ``distill.json`` records them (what makes two students the same student)."""
        recipe = {k: v for k, v in asdict(self).items() if k not in ("windowing", "checkpoint_every")}
        return {**recipe, **self.windowing.as_dict()}  # every window setting: each one changes what is learnt


# The defaults by name, for the command line's options.
DISTILL_DEFAULTS = {k: v for k, v in DistillConfig().recipe().items() if k != "precision"}


@dataclass
class Distilled:
    """What :func:`distill` made: the student's directory, its ``distill.json``, the loss log and
    the evaluation run (None when not evaluated)."""

    path: Path
    info: dict
    log: pd.DataFrame
    run: object = None

    @property
    def steps(self) -> int:
        """Optimiser steps taken."""
        return int(self.info["steps"])

    @property
    def student_layers(self) -> list[int] | None:
        """The teacher layers the student was cut from (None: it started from a checkpoint)."""
        layers = self.info.get("identity", {}).get("student_layers")
        return None if layers is None else [int(i) for i in layers]

    @property
    def training_seconds(self) -> float:
        return float(self.info["training_seconds"])

    @property
    def windows(self) -> int:
        """Training windows (labelled and teacher-labelled transfer windows together)."""
        return int(self.info["windows"])

    @property
    def threshold(self) -> float:
        """The null-odds threshold its evaluation run decides at (the lab re-fits it; 0.0 otherwise)."""
        return float(self.info.get("lab", {}).get("threshold", 0.0))


def default_precision() -> str:
    """``"bfloat16"`` where bf16 arithmetic is fast (a CUDA GPU; a CPU with AVX512-BF16 or AMX),
    else ``"float32"``: bf16 autocast on a CPU without them is slower than fp32.

    >>> default_precision() in ("float32", "bfloat16")
    True
    """
    from ..model.device import resolve_placement

    return resolve_placement("auto", "auto")[1]
