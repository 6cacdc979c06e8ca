"""Tables for people: plain column names and one or two decimals (the data keeps its own names)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core.common import logit

__all__ = ['COLUMN_NAMES', 'readable', 'threshold_audit_table']

# The package's column names as a reader would say them; a name not here has its underscores spaced.
COLUMN_NAMES = {
    "count": "questions", "share (%)": "share of questions (%)", "n": "questions",
    "EM_low": "EM 95% CI low", "EM_high": "EM 95% CI high", "F1_low": "F1 95% CI low", "F1_high": "F1 95% CI high",
    "HasAns_count": "answerable questions", "HasAns_EM": "answerable EM", "HasAns_F1": "answerable F1",
    "HasAns_F1_low": "answerable F1 CI low", "HasAns_F1_high": "answerable F1 CI high",
    "NoAns_count": "unanswerable questions", "NoAns_EM": "unanswerable EM", "NoAns_F1": "unanswerable F1",
    "NoAns_F1_low": "unanswerable F1 CI low", "NoAns_F1_high": "unanswerable F1 CI high",
    "HasAns": "answerable", "NoAns": "unanswerable",
    "low": "95% CI low", "high": "95% CI high", "p_value": "p-value", "difference": "difference (points)",
    "null_odds": "null odds", "null_odds_threshold": "null-odds threshold", "overall": "all questions",
    "answer_texts": "gold answers", "has_answer": "answerable", "plausible_trap": "plausible-answer trap",
    "exact": "EM", "f1": "F1", "answer": "answer", "outcome": "outcome",
    # speed is the median of a few timed rounds and the spread as measured (fastest, slowest), never an interval
    "ms/question": "ms/question (median round)", "ms low": "fastest round (ms/question)",
    "ms high": "slowest round (ms/question)",
}


def _name(column, suffixes: dict) -> str:
    for suffix, label in suffixes.items():
        if isinstance(column, str) and column.endswith(suffix):
            return f"{_name(column[: -len(suffix)], {})} ({label})"
    return COLUMN_NAMES.get(column, column.replace("_", " ") if isinstance(column, str) else column)


def readable(frame: pd.DataFrame, *, digits: int = 2, labels: tuple | None = None) -> pd.DataFrame:
    """``frame`` with people's column names (``COLUMN_NAMES``) and floats rounded to ``digits``.

    ``labels``: the two models of a comparison, whose columns end in ``_a`` and ``_b``.

    >>> readable(pd.DataFrame({"null_odds_a": [1.23456], "HasAns_F1": [50.0]}), labels=("teacher", "student"))
       null odds (teacher)  answerable F1
    0                 1.23           50.0
    >>> readable(pd.DataFrame({"p_value": [0.0], "p": ["< 0.001"]}))  # the p-value as text, once
       p-value
    0  < 0.001
    """
    suffixes = {"_a": labels[0], "_b": labels[1]} if labels else {}
    if {"p_value", "p"} <= set(frame.columns):  # one p-value shown: the text one ("< 0.001", never "0.00")
        frame = frame.drop(columns="p_value").rename(columns={"p": "p_value"})
    shown = frame.rename(columns=lambda c: _name(c, suffixes))
    shown.index = shown.index.set_names([_name(n, suffixes) if n else n for n in shown.index.names])
    shown = shown.round(digits)
    for column in shown.columns[shown.dtypes == object]:  # mixed columns (counts and rates): their floats too
        shown[column] = [round(v, digits) if isinstance(v, float) else v for v in shown[column]]
    return shown


def threshold_audit_table(audit: dict, *, digits: int = 2) -> pd.DataFrame:
    """The cross-fitted threshold audit (:func:`xdanalysis.analysis.thresholds.cross_fitted_threshold`)
    as one labelled row per figure: every threshold named with its scale (null odds, or the official
    script's no-answer probability) and every fold's threshold on a row of its own."""
    probability = audit["best_f1_thresh"]
    odds = logit(probability) if 0 < probability < 1 else math.nan
    rows = [
        ("questions", audit["count"]), ("folds", audit["folds"]),
        ("run's threshold (null odds)", audit["current_threshold"]),
        ("F1 at the run's null-odds threshold (%)", audit["default_f1"]),
        ("official best F1, chosen on the questions it scores (%)", audit["best_f1"]),
        ("official best threshold (no-answer probability, as evaluate-v2.0.py)", probability),
        ("official best threshold (null odds)", odds),
        ("cross-fitted F1, null-odds threshold chosen on the other folds (%)", audit["cross_fitted_f1"]),
        ("honest gain over the run's null-odds threshold (points)", audit["gain"]),
        ("honest gain, 95% CI low", audit["gain_low"]), ("honest gain, 95% CI high", audit["gain_high"]),
        ("optimism of the official best F1 (points)", audit["optimism"]),
        *((f"fold {k + 1} threshold (null odds)", t) for k, t in enumerate(audit["fold_thresholds"])),
    ]
    def shown(name: str, value) -> str:  # counts whole, a probability in four decimals, the rest in ``digits``
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        return f"{value:.4f}" if "probability" in name else f"{value:.{digits}f}"

    return pd.DataFrame({"value": [shown(name, value) for name, value in rows]},
                        index=pd.Index([name for name, _ in rows], name="figure"))
