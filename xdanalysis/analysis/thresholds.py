"""The null-odds threshold: one sweep over thresholds, the run's own threshold, and a cross-fitted audit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core.common import logit, sigmoid
from ..runs.run import run_or_table, table_of
from ..core.data import gold_answers
from ..core.metrics import squad_v2_scores
from ..core.stats import N_BOOT, bootstrap_interval
from ..core.thresholds import answered_at, best_f1_threshold, scores_at, span_scores

__all__ = ['answered_at', 'scores_at', 'cross_fitted_threshold', 'run_threshold', 'threshold_curve', 'threshold_summary']


def threshold_curve(data, thresholds=None) -> pd.DataFrame:
    """EM and F1 (%), overall / HasAns / NoAns, and the share answered, if the model abstained when null
    odds > threshold; ``questions``: how many questions the curve is over.

    ``thresholds`` default: every distinct null-odds value in the run (and 0.0), so the curve's
    maximum is the official best threshold's score.
    """
    table = table_of(data)
    odds = table["null_odds"].to_numpy(dtype=float)
    has = table["has_answer"].to_numpy(dtype=bool)
    span_exact, span_f1 = span_scores(table)
    if thresholds is None:
        finite = odds[np.isfinite(odds)]
        thresholds = np.unique(np.concatenate([finite, [0.0], [finite.min() - 1.0] if len(finite) else []]))
    thresholds = np.asarray(thresholds, dtype=float)
    rows = {"threshold": thresholds}
    for metric, span in (("EM", span_exact), ("F1", span_f1)):
        scores = scores_at(thresholds, odds, span, has)
        rows[metric] = 100 * scores.mean(axis=1)
        rows[f"HasAns_{metric}"] = 100 * scores[:, has].mean(axis=1) if has.any() else np.nan
        rows[f"NoAns_{metric}"] = 100 * scores[:, ~has].mean(axis=1) if (~has).any() else np.nan
    rows["answered"] = answered_at(thresholds, odds).mean(axis=1)
    rows["questions"] = len(table)
    return pd.DataFrame(rows)


def run_threshold(data) -> float:
    """The null-odds threshold a run's answers were decided with.

    Read from a run (``run.threshold``: what its ``run.json`` records); for a table, recovered from
    the decisions themselves (answered where null odds <= threshold): 0.0 when it is consistent with
    them, else the smallest consistent value. Raises when no single threshold explains the answers.
    """
    data = run_or_table(data)  # a run directory: its run
    if hasattr(data, "threshold") and hasattr(data, "table"):
        return float(data.threshold)
    table = table_of(data)
    odds = table["null_odds"].to_numpy(dtype=float)
    answered = (table["answer"] != "").to_numpy()
    has_span = (table["best_span_text"] != "").to_numpy() & np.isfinite(odds)
    low = odds[answered].max() if answered.any() else -math.inf        # threshold >= every answered one
    high = odds[~answered & has_span].min() if (~answered & has_span).any() else math.inf  # < every abstained
    if not low < high:
        raise ValueError("no single null-odds threshold explains this table's answers; pass current=...")
    return 0.0 if low <= 0.0 < high else float(low)


def threshold_summary(data, current: float | None = None) -> pd.DataFrame:
    """The current and the best null-odds threshold (from the official search), and what moving
    to the best one changes overall, on answerable and on unanswerable questions.

    ``table`` is a run or its table; ``current`` defaults to the threshold the run was decided
    with (:func:`run_threshold`). The scores are those obtained at each threshold. When several
    questions share the best threshold's probability, the official ``best_*`` can count only some
    of them, a split no threshold realises; the ``best`` row then reports what that threshold
    really gives. The ``gain`` row holds differences only (its threshold column is empty). Rates are
    percent, the share answered too (``answered (%)``).
    """
    if current is None:
        current = run_threshold(data)
    table = table_of(data)
    odds = table["null_odds"].to_numpy(dtype=float)
    probs = np.array([sigmoid(x) for x in odds])
    official = _official(table)
    best = {}
    for metric, key in (("EM", "exact"), ("F1", "f1")):
        p = official[f"best_{key}_thresh"]
        # The official threshold is a question's probability: take that question's exact null odds
        # (logit(sigmoid(x)) can round below x and drop the boundary question).
        at = np.flatnonzero(probs == p)
        best[metric] = float(odds[at].max()) if len(at) else logit(p)
    curve = threshold_curve(table, [current, best["EM"], best["F1"]])  # one scoring pass for all three
    rows = []
    for metric, position in (("EM", 1), ("F1", 2)):
        def at_row(i, metric=metric):
            return {"overall": curve[metric][i], "HasAns": curve[f"HasAns_{metric}"][i],
                    "NoAns": curve[f"NoAns_{metric}"][i], "answered (%)": 100 * curve["answered"][i]}

        now, then = at_row(0), at_row(position)
        rows.append({"metric": metric, "threshold": "current", "null_odds_threshold": current, **now})
        rows.append({"metric": metric, "threshold": "best", "null_odds_threshold": best[metric], **then})
        rows.append({"metric": metric, "threshold": "gain", "null_odds_threshold": np.nan,
                     **{k: then[k] - now[k] for k in now}})
    return pd.DataFrame(rows)


def _official(table: pd.DataFrame) -> dict:
    """The official scores of a table, with its no-answer probabilities (the threshold search's ``best_*``)."""
    probs = {qid: sigmoid(x) for qid, x in zip(table["id"], table["null_odds"].to_numpy(dtype=float))}
    return squad_v2_scores(gold_answers(table), dict(zip(table["id"], table["answer"])), probs)


def _f1_at(odds, span_f1, has, threshold) -> np.ndarray:
    return scores_at(threshold, odds, span_f1, has)[0]


def cross_fitted_threshold(data, *, folds: int = 5, seed: int = 0, n_boot: int = N_BOOT,
                           level: float = 0.95) -> dict:
    """An honest estimate of what tuning the null-odds threshold gains.

    The official ``best_f1`` chooses its threshold on the very questions it scores. Here the
    questions are split into ``folds`` seeded folds; each fold is scored at the threshold that
    maximises F1 on the other folds (the middle of the best interval between two questions'
    null odds). Returns F1 (%) at the run's own threshold (``default_f1``),
    the official in-sample ``best_f1`` and its threshold, the ``cross_fitted_f1``, the honest
    ``gain`` (cross-fitted − default) with a bootstrap interval over questions, the ``optimism``
    of the official figure (best − cross-fitted), the per-fold thresholds, and
    ``best_threshold_is_zero``: True when the official ``best_f1_thresh`` is exactly 0, the mark of
    scores computed without no-answer probabilities (as on model cards).

    Example::

        cross_fitted_threshold(load_run("runs/demo"))["gain"]
    """
    current = run_threshold(data)
    table = table_of(data)
    if folds < 2 or folds > len(table):
        raise ValueError(f"folds must be between 2 and the number of questions ({len(table)}), got {folds}")
    odds = table["null_odds"].to_numpy(dtype=float)
    has = table["has_answer"].to_numpy(dtype=bool)
    _, span_f1 = span_scores(table)
    fold_of = np.empty(len(table), dtype=int)
    fold_of[np.random.default_rng(seed).permutation(len(table))] = np.arange(len(table)) % folds
    honest = np.empty(len(table))
    thresholds = []
    for k in range(folds):
        held = fold_of == k
        t = best_f1_threshold(odds[~held], span_f1[~held], has[~held])
        thresholds.append(t)
        honest[held] = _f1_at(odds[held], span_f1[held], has[held], t)
    default = _f1_at(odds, span_f1, has, current)
    official = _official(table)
    low, high = bootstrap_interval(honest - default, n_boot=n_boot, seed=seed, level=level)
    return {
        "count": len(table), "folds": folds, "current_threshold": current,
        "default_f1": 100 * float(default.mean()),
        "best_f1": float(official["best_f1"]), "best_f1_thresh": float(official["best_f1_thresh"]),
        "cross_fitted_f1": 100 * float(honest.mean()),
        "gain": 100 * float((honest - default).mean()), "gain_low": 100 * low, "gain_high": 100 * high,
        "optimism": float(official["best_f1"]) - 100 * float(honest.mean()),
        "fold_thresholds": thresholds,
        "best_threshold_is_zero": float(official["best_f1_thresh"]) == 0.0,
    }
