"""The SQuAD 2.0 null-odds decision as plain arrays: which questions are answered at a threshold,
what each then scores, and the threshold that maximises F1 on a set of questions."""

from __future__ import annotations

import math

import numpy as np

from .metrics import table_scores

__all__ = ['answered_at', 'best_f1_threshold', 'scores_at', 'span_scores']


def span_scores(table) -> tuple[np.ndarray, np.ndarray]:
    """EM and F1 of each question's best span, as if it had answered."""
    return table_scores(table, "best_span_text")


def answered_at(thresholds, odds: np.ndarray) -> np.ndarray:
    """``[thresholds, questions]``: whether each question is answered at each threshold. The SQuAD 2.0
    decision rule, in one place: answer when null odds <= threshold, abstain above it.

    >>> answered_at([0.0, 2.0], np.array([-1.0, 1.0, np.inf])).tolist()
    [[True, False, False], [True, True, False]]
    """
    return odds[None, :] <= np.atleast_1d(np.asarray(thresholds, dtype=float))[:, None]


def scores_at(thresholds, odds: np.ndarray, span_scores: np.ndarray, has: np.ndarray) -> np.ndarray:
    """``[thresholds, questions]``: each question's score at each threshold, the best span's score
    where it is answered and 1 or 0 for abstaining on an unanswerable or answerable question."""
    return np.where(answered_at(thresholds, odds), span_scores[None, :], (~has).astype(float)[None, :])


def best_f1_threshold(odds: np.ndarray, span_f1: np.ndarray, has: np.ndarray) -> float:
    """The null-odds threshold that maximises F1 on these questions. Every threshold from one
    question's null odds up to the next gives the same decisions; the official search returns the
    lower end, on a question, which other questions fall on either side of by chance. Here: the
    middle of that interval (of the lowest best one), ±inf at the ends.

    >>> best_f1_threshold(np.array([-1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0]), np.array([True, True, False]))
    2.5
    """
    finite = np.unique(odds[np.isfinite(odds)])
    candidates = np.concatenate([[-np.inf], finite])  # answer where odds <= candidate
    f1 = scores_at(candidates, odds, span_f1, has).mean(axis=1)
    k = int(np.argmax(f1))
    if k == 0:
        return -math.inf
    if k == len(candidates) - 1:
        return math.inf
    return float((candidates[k] + candidates[k + 1]) / 2)
