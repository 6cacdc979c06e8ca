"""Small matplotlib figures shared by the notebooks and the report: labelled axes, counts shown."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_scores", "plot_null_odds"]


def plot_scores(scores: dict, ax=None, title: str | None = None):
    """EM and F1 bars for all questions, answerable (HasAns) and unanswerable (NoAns), with counts.

    ``scores`` is the dict of :func:`xdanalysis.metrics.squad_v2_scores`.

    Example
    -------
    ::

        plot_scores(run.scores())
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    groups = [("all", ""), ("answerable\n(HasAns)", "HasAns_"), ("unanswerable\n(NoAns)", "NoAns_")]
    groups = [(label, prefix) for label, prefix in groups if f"{prefix}total" in scores]
    x = np.arange(len(groups))
    for offset, metric, color in ((-0.2, "exact", "#4c72b0"), (0.2, "f1", "#dd8452")):
        values = [scores[prefix + metric] for _, prefix in groups]
        bars = ax.bar(x + offset, values, width=0.4, label="EM" if metric == "exact" else "F1", color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(x, [f"{label}\nn={scores[prefix + 'total']}" for label, prefix in groups])
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title or "SQuAD 2.0 scores, answerable vs unanswerable")
    ax.legend(loc="upper right")
    return ax


def plot_null_odds(table: pd.DataFrame, threshold: float = 0.0, ax=None, bins: int = 40):
    """Histogram of null odds for answerable and unanswerable questions, with the threshold.

    Questions right of the threshold get the empty answer. ``table`` is a run's table.

    Example
    -------
    ::

        plot_null_odds(run.table)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    odds = table["null_odds"].replace([np.inf, -np.inf], np.nan).dropna()
    edges = np.histogram_bin_edges(odds, bins=bins) if len(odds) else bins
    for has_answer, label, color in ((True, "answerable", "#4c72b0"), (False, "unanswerable", "#c44e52")):
        values = table.loc[table["has_answer"] == has_answer, "null_odds"]
        values = values[np.isfinite(values)]
        ax.hist(values, bins=edges, alpha=0.6, color=color, label=f"{label} (n={len(values)})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("null odds = null score − best span score  (right of the line: abstain)")
    ax.set_ylabel("questions")
    ax.set_title("Where the model abstains")
    ax.legend()
    return ax
