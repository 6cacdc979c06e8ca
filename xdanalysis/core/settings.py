"""The window and decoding settings, as frozen objects: the one home of their defaults (run_qa's and
utils_qa's, and the original SQuAD scripts' ``max_query_length``), their checks, and how a run's
``run.json`` stores and gives them back.

>>> WindowSettings(max_seq_length=128, doc_stride=32)
WindowSettings(max_seq_length=128, doc_stride=32, max_query_length=64)
>>> DecodingSettings(n_best_size=0)
Traceback (most recent call last):
...
ValueError: n_best_size must be at least 1, got 0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["WindowSettings", "DecodingSettings", "DECODING_DEFAULTS", "settings_of_run"]


def _whole(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be {'at least 1' if least else '0 or more'}, got {value}")


@dataclass(frozen=True)
class WindowSettings:
    """How a question and its context become windows: ``max_seq_length`` tokens per window,
    ``doc_stride`` tokens of overlap, questions cut to ``max_query_length`` tokens."""

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    def __post_init__(self):
        _whole("max_seq_length", self.max_seq_length, 1)
        _whole("max_query_length", self.max_query_length, 1)
        _whole("doc_stride", self.doc_stride, 0)
        if self.doc_stride >= self.max_seq_length:
            raise ValueError(f"doc_stride ({self.doc_stride}) must be smaller than max_seq_length "
                             f"({self.max_seq_length})")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecodingSettings:
    """How windows' logits become an answer (utils_qa's): the ``n_best_size`` best starts and ends,
    spans of at most ``max_answer_length`` tokens, and abstain when null odds exceed
    ``null_score_diff_threshold``."""

    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0

    def __post_init__(self):
        _whole("n_best_size", self.n_best_size, 1)
        _whole("max_answer_length", self.max_answer_length, 1)
        threshold = self.null_score_diff_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
                or not math.isfinite(threshold):
            raise ValueError(f"null_score_diff_threshold must be a finite number, got {threshold!r}")
        object.__setattr__(self, "null_score_diff_threshold", float(threshold))

    def as_dict(self) -> dict:
        return asdict(self)


# The defaults of both, by name (the CLI's option defaults are read from here).
DECODING_DEFAULTS = {**WindowSettings().as_dict(), **DecodingSettings().as_dict()}


def settings_of_run(settings: dict) -> tuple[WindowSettings, DecodingSettings]:
    """The window and decoding settings a run was made with, from its ``run.json`` ``settings``
    (a setting a run does not record takes its default): the one reader of them.

    >>> settings_of_run({"max_seq_length": 256, "null_score_diff_threshold": -1.5})[1].null_score_diff_threshold
    -1.5
    """
    def build(kind):
        return kind(**{f.name: settings[f.name] for f in fields(kind) if settings.get(f.name) is not None})

    return build(WindowSettings), build(DecodingSettings)
