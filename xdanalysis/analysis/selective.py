"""Selective QA: risk–coverage curves and AURC, overall and per bucket."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..runs.run import table_of
from .slices import per_bucket
from ..core.thresholds import span_scores

__all__ = ['aurc', 'coverage_at', 'curve_aurc', 'risk_coverage', 'selective_summary']


# Selective QA and calibration ---------------------------------------------------------------
# The ranking every selective-QA number shares: most confident (lowest null odds) first; ties keep
# the run's order.

def _confidence_order(table: pd.DataFrame) -> np.ndarray:
    return np.argsort(table["null_odds"].to_numpy(dtype=float), kind="stable")


def risk_coverage(data) -> pd.DataFrame:
    """The risk–coverage curve of a run: answer the ``k`` most confident questions, abstain on the rest.

    Questions are ranked by confidence ``-null_odds`` (best span score − null score), most confident
    first (ties keep the run's order). At each ``k`` the model answers the top ``k`` with its best
    span: ``coverage`` is k/n and ``risk`` is 1 − the mean official F1 of those ``k`` best spans (an
    answered unanswerable question scores 0). ``null_odds`` is the k-th question's: abstaining above
    it gives that point. Its area is :func:`curve_aurc`, its coverage at an F1 :func:`coverage_at`: a
    plain frame, read by functions.

    >>> t = pd.DataFrame({"id": ["a", "b"], "answer_texts": [["x"], []], "best_span_text": ["x", "y"],
    ...                   "null_odds": [-2.0, 1.0]})
    >>> risk_coverage(t)[["coverage", "risk"]].values.tolist()
    [[0.5, 0.0], [1.0, 0.5]]
    """
    table = table_of(data)
    if len(table) == 0:
        raise ValueError("risk_coverage needs at least one question")
    order = _confidence_order(table)
    _, span_f1 = span_scores(table)
    f1 = span_f1[order]
    k = np.arange(1, len(table) + 1)
    risk = 1.0 - np.cumsum(f1) / k
    frame = pd.DataFrame({"k": k, "coverage": k / len(table), "risk": risk,
                          "null_odds": table["null_odds"].to_numpy(dtype=float)[order],
                          "id": table["id"].to_numpy()[order], "f1": f1})
    return frame


def curve_aurc(curve: pd.DataFrame) -> float:
    """The area under a :func:`risk_coverage` curve: its mean risk over k = 1..n (0 to 1, lower is better).

    >>> curve_aurc(pd.DataFrame({"coverage": [0.5, 1.0], "risk": [0.0, 0.5]}))
    0.25
    """
    return float(curve["risk"].mean())


def coverage_at(curve: pd.DataFrame, f1: float) -> float:
    """The largest coverage of a :func:`risk_coverage` curve whose answered questions reach mean F1
    ``f1`` (0 to 1); 0.0 when even the most confident question falls short.

    >>> coverage_at(pd.DataFrame({"coverage": [0.5, 1.0], "risk": [0.0, 0.5]}), 0.8)
    0.5
    """
    reached = curve["coverage"][curve["risk"].to_numpy() <= 1.0 - f1 + 1e-12]
    return float(reached.max()) if len(reached) else 0.0


def aurc(data) -> float:
    """Area under the risk–coverage curve: the mean risk over k = 1..n (lower is better).

    >>> t = pd.DataFrame({"id": ["a", "b"], "answer_texts": [["x"], []], "best_span_text": ["x", "y"],
    ...                   "null_odds": [-2.0, 1.0]})
    >>> aurc(t)
    0.25
    """
    table = table_of(data)
    return curve_aurc(risk_coverage(table))


def selective_summary(data, *, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """AURC, the AURC of a perfect ranking (``oracle AURC``: the same answers, best F1 first), their
    difference ``excess AURC``, and the coverage at 80% / 90% F1, all in percent (as every rate shown to a
    person, the unit in the column's name); per bucket of a slice with ``by``.

    Example::

        selective_summary(run, by="question type")
    """
    table = table_of(data)
    def one(part: pd.DataFrame) -> dict:
        curve = risk_coverage(part)
        best = np.sort(curve["f1"].to_numpy())[::-1]
        oracle = float((1.0 - np.cumsum(best) / np.arange(1, len(best) + 1)).mean())
        area = curve_aurc(curve)
        return {"count": len(part), "AURC (%)": 100 * area, "oracle AURC (%)": 100 * oracle,
                "excess AURC (%)": 100 * (area - oracle), "coverage at 80% F1 (%)": 100 * coverage_at(curve, 0.8),
                "coverage at 90% F1 (%)": 100 * coverage_at(curve, 0.9)}

    return per_bucket(table, one, by=by, edges=edges, quantiles=quantiles)
