"""Calibration of the answer/abstain decision: reliability, ECE and Brier score."""
from __future__ import annotations
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..runs.run import table_of
from .slices import per_bucket

__all__ = ['Reliability', 'RELIABILITY_GROUPS', 'best_span_probabilities', 'calibration_summary', 'decision_confidence', 'reliability']


def best_span_probabilities(run) -> pd.Series:
    """The n-best softmax probability of each question's best span (NaN where it has none), from
    the run's ``nbest_predictions.json``; a table that carries a ``span_probability`` column is
    read as it is."""
    table = table_of(run)
    if "span_probability" in table.columns:
        return table["span_probability"].astype(float)
    if not hasattr(run, "nbest"):
        raise ValueError("the span probabilities live in the run's n-best list: pass the run itself (load_run(...)), "
                         "or a table with a 'span_probability' column")
    nbest = run.nbest
    values = []
    for qid in table["id"]:
        spans = [c for c in nbest.get(qid, []) if c["text"] != ""]
        values.append(spans[0]["probability"] if spans else np.nan)  # n-best lists are sorted by score
    return pd.Series(values, index=table.index, dtype=float)


def decision_confidence(run) -> pd.DataFrame:
    """Per question: what the model decided (``answered``), the probability it gave that decision
    (the n-best probability of the chosen span, or ``na_prob`` when it abstained) and whether the
    decision was right (``correct``: EM 1; a correct abstention counts).

    Example::

        decision_confidence(load_run("runs/demo")).groupby("answered")["correct"].mean()
    """
    table = table_of(run)
    answered = (table["answer"] != "").to_numpy()
    span = best_span_probabilities(run).to_numpy()
    confidence = np.where(answered, span, table["na_prob"].to_numpy(dtype=float))
    return pd.DataFrame({"id": table["id"].to_numpy(), "has_answer": table["has_answer"].to_numpy(dtype=bool),
                         "answered": answered, "confidence": confidence,
                         "correct": table["exact"].to_numpy(dtype=float)}, index=table.index)


def _reliability_of(confidence: np.ndarray, correct: np.ndarray, bins: int) -> tuple[pd.DataFrame, float, float]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # (a, b] buckets, 0 in the first
    rows = []
    for b in range(bins):
        mask = which == b
        rows.append({"bin": b, "low": edges[b], "high": edges[b + 1], "count": int(mask.sum()),
                     "confidence": float(confidence[mask].mean()) if mask.any() else np.nan,
                     "accuracy": float(correct[mask].mean()) if mask.any() else np.nan})
    frame = pd.DataFrame(rows)
    filled = frame[frame["count"] > 0]
    n = max(1, len(confidence))
    ece = float((filled["count"] / n * (filled["accuracy"] - filled["confidence"]).abs()).sum())
    brier = float(np.mean((confidence - correct) ** 2)) if len(confidence) else np.nan
    return frame, ece, brier


RELIABILITY_GROUPS = ["all", "answerable", "unanswerable"]


@dataclass(frozen=True, eq=False)
class Reliability:
    """What :func:`reliability` found, as plain frames: ``bins`` (per group and equal-width confidence
    bin: the count, mean confidence and accuracy) and ``summary`` (per group: n, ECE, Brier, mean
    confidence and accuracy). :func:`xdanalysis.views.plot_reliability` draws it."""

    bins: pd.DataFrame
    summary: pd.DataFrame


def reliability(data, *, bins: int = 10) -> Reliability:
    """The reliability diagram of a run's decisions (see :func:`decision_confidence`): per group
    (all, answerable, unanswerable) and equal-width confidence bin, the count, mean confidence and
    accuracy (EM) (``.bins``); per group n, ECE (count-weighted |accuracy − confidence| over the bins)
    and the Brier score (mean squared confidence − correct) (``.summary``).

    Example::

        reliability(load_run("runs/demo")).summary
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    decisions = decision_confidence(data)
    known = decisions["confidence"].notna()
    frames, rows = [], []
    for group in RELIABILITY_GROUPS:
        mask = known & {"all": True, "answerable": decisions["has_answer"],
                        "unanswerable": ~decisions["has_answer"]}[group]
        part = decisions[mask]
        frame, ece, brier = _reliability_of(part["confidence"].to_numpy(), part["correct"].to_numpy(), bins)
        frames.append(frame.assign(group=group))
        rows.append({"group": group, "count": len(part), "ECE": ece if len(part) else np.nan, "Brier": brier,
                     "mean confidence": part["confidence"].mean(), "accuracy": part["correct"].mean()})
    columns = ["group", "bin", "low", "high", "count", "confidence", "accuracy"]
    return Reliability(bins=pd.concat(frames, ignore_index=True)[columns], summary=pd.DataFrame(rows))


def calibration_summary(data, *, bins: int = 10, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """ECE and Brier score of the run's decisions, overall and per bucket of a slice with ``by``."""
    decisions = decision_confidence(data)
    table = table_of(data).assign(_confidence=decisions["confidence"], _correct=decisions["correct"])

    def one(part):
        known = part["_confidence"].notna()
        _, ece, brier = _reliability_of(part.loc[known, "_confidence"].to_numpy(),
                                        part.loc[known, "_correct"].to_numpy(), bins)
        return {"count": len(part), "ECE": ece, "Brier": brier, "mean confidence": part["_confidence"].mean(),
                "accuracy": part["_correct"].mean()}

    return per_bucket(table, one, by=by, edges=edges, quantiles=quantiles)
