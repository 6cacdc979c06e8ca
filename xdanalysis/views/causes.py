"""Figures of why questions are unanswerable: correct abstention per cause, the null-odds margins behind
it, the plausibility of explanations against human rationales, and the rationale-deletion flips."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['plot_cause_abstention', 'plot_cause_margins', 'plot_deletion_flips', 'plot_plausibility', 'rationale_html']


def _errorbars(values, low, high) -> np.ndarray:
    values, low, high = (np.asarray(v, dtype=float) for v in (values, low, high))
    return np.nan_to_num(np.vstack([values - low, high - values]), nan=0.0).clip(min=0)


def plot_cause_abstention(summary: pd.DataFrame, *, ax=None) -> Axes:
    """Correct abstention (%) per cause with its 95% interval (:func:`~xdanalysis.analysis.causes.
    cause_summary`), the count of questions and of false answers beside each bar, lowest first."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 0.5 * len(summary) + 1.6))
    frame = summary.sort_values("correct abstention (%)", ascending=False, kind="stable")
    y = np.arange(len(frame))
    ax.barh(y, frame["correct abstention (%)"], color="#4c72b0",
            xerr=_errorbars(frame["correct abstention (%)"], frame["low (%)"], frame["high (%)"]), capsize=3)
    ax.set_yticks(y, [f"{c} (n={n})" for c, n in zip(frame["cause"], frame["questions"])])
    for i, (rate, high, wrong) in enumerate(zip(frame["correct abstention (%)"], frame["high (%)"],
                                                frame["false answers"])):
        ax.text(min(np.nan_to_num(high, nan=rate) + 1.5, 101), i, f"{rate:.0f}% · {wrong} answered",
                va="center", fontsize=8)
    ax.set_xlim(0, 125)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("correct abstention (%), 95% Wilson interval")
    ax.set_title("Unanswerable questions by human-annotated cause")
    return ax


def plot_cause_margins(table: pd.DataFrame, *, ax=None, threshold: float = 0.0) -> Axes:
    """How far from the decision each cause's questions were: null odds − ``threshold`` per question (a
    table with ``cause``, from :func:`~xdanalysis.analysis.causes.with_causes`), one box per cause with its
    points; right of the line the model abstains (correct for these questions)."""
    from ..analysis.causes import CAUSE_ORDER

    caused = table[table["cause"].notna()]
    causes = [c for c in CAUSE_ORDER if (caused["cause"] == c).any()]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 0.55 * len(causes) + 1.6))
    margins = [caused.loc[caused["cause"] == c, "null_odds"].to_numpy(dtype=float) - threshold for c in causes]
    margins = [m[np.isfinite(m)] for m in margins]
    ax.boxplot(margins, orientation="horizontal", widths=0.55, showfliers=False)
    rng = np.random.default_rng(0)
    for i, values in enumerate(margins, start=1):
        ax.scatter(values, i + rng.uniform(-0.18, 0.18, len(values)), s=4, alpha=0.35,
                   c=np.where(values > 0, "#4c72b0", "#c44e52"))
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(range(1, len(causes) + 1), [f"{c} (n={len(m)})" for c, m in zip(causes, margins)])
    ax.invert_yaxis()  # the causes top-down, in their own order
    ax.set_xlabel(f"null odds − threshold {threshold:g} (right of 0: abstains, blue; left: answers, red)")
    ax.set_title("How far from the decision, per cause")
    return ax


def plot_plausibility(summary: pd.DataFrame, *, ax=None, measure: str = "auprc") -> Axes:
    """One bar per method (a group of bars per cause, when the summary has causes): ``measure`` (%) of
    :func:`~xdanalysis.analysis.rationales.plausibility_summary` with its bootstrap interval and its count of
    questions; the dashed line across each bar is the share of rationale words among that bar's questions
    (a random scorer's AUPRC is near it, a little above on short questions)."""
    from ..core.common import check_choice

    check_choice("measure", measure, ["auprc", "token_f1", "iou_f1"])
    methods = list(dict.fromkeys(summary["method"]))
    groups = list(dict.fromkeys(summary["cause"])) if "cause" in summary.columns else ["all questions"]
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(6.5, 0.55 * len(groups) * len(methods) + 2), 4))
    width = 0.8 / len(methods)
    for k, method in enumerate(methods):
        part = summary[summary["method"] == method]
        if "cause" in part.columns:
            part = part.set_index("cause").reindex(groups).reset_index()
        x = np.arange(len(groups)) + (k - (len(methods) - 1) / 2) * width
        values = part[f"{measure} (%)"].to_numpy(dtype=float)
        ax.bar(x, values, width, label=method, capsize=2,
               yerr=_errorbars(values, part[f"{measure} low (%)"], part[f"{measure} high (%)"]))
        ax.hlines(part["base rate (%)"], x - width / 2, x + width / 2, colors="black", linestyles="--", lw=1,
                  label="share of rationale words" if k == 0 else None)
        for xi, top, n in zip(x, part[f"{measure} high (%)"].fillna(part[f"{measure} (%)"]), part["questions"]):
            if np.isfinite(top):
                ax.text(xi, top + 1.5, f"{int(n)}", ha="center", fontsize=7)
    ax.set_xticks(range(len(groups)), [g.replace(" ", "\n") for g in groups], fontsize=8 if len(groups) > 4 else 10)
    names = {"auprc": "AUPRC", "token_f1": "token F1 (top k)", "iou_f1": "IOU F1 (≥ 0.5)"}
    ax.set_ylabel(f"{names[measure]} (%), 95% bootstrap interval")
    ax.set_ylim(0, 105)
    ax.set_title(f"Do explanations of abstaining point where humans point? ({names[measure]}; "
                 "questions above each bar)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return ax


def plot_deletion_flips(flips: pd.DataFrame, *, ax=None) -> Axes:
    """Per cause, the share (%) of abstentions that became answers when the rationale was deleted and when
    as many random words were (:func:`~xdanalysis.analysis.causes.deletion_flips`), with Wilson intervals."""
    frame = flips.reset_index(drop=True)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(max(6.5, 1.0 * len(frame) + 2), 4))
    x = np.arange(len(frame))
    for k, (name, color) in enumerate((("rationale deleted", "#c44e52"), ("random words deleted", "#8c8c8c"))):
        ax.bar(x + (k - 0.5) * 0.38, frame[f"{name} (%)"], 0.38, color=color, label=name,
               yerr=_errorbars(frame[f"{name} (%)"], frame[f"{name} low (%)"], frame[f"{name} high (%)"]),
               capsize=2)
    ax.set_xticks(x, [f"{c.replace(' ', chr(10))}\n(n={n})" for c, n in zip(frame["cause"], frame["abstained before"])],
                  fontsize=8 if len(frame) > 5 else 10)
    ax.set_ylabel("abstentions answered after (%)\n95% Wilson interval")
    highest = np.nanmax(frame[["rationale deleted high (%)", "random words deleted high (%)"]].to_numpy(dtype=float),
                        initial=0.0)
    ax.set_ylim(0, min(100, max(10, 1.25 * highest)))
    ax.set_title("Deleting the words humans marked, against deleting as many random words")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def rationale_html(words, labels, scores, *, title: str = "") -> str:
    """One question's words side by side with the human rationale and an explanation: words humans marked
    as making it unanswerable are underlined and bold; the background is the word's score (red: pushes
    toward abstaining, blue: toward answering; the strongest word of the question at full colour)."""
    import html

    scores = np.asarray(scores, dtype=float)
    peak = np.abs(scores).max() if len(scores) and np.abs(scores).max() > 0 else 1.0
    spans = []
    for word, marked, score in zip(words, labels, scores):
        alpha = min(abs(score) / peak, 1.0)
        colour = f"rgba(196,78,82,{alpha:.2f})" if score > 0 else f"rgba(76,114,176,{alpha:.2f})"
        style = f"background:{colour};padding:1px 2px;margin:0 1px" + (
            ";text-decoration:underline;font-weight:bold" if marked else "")
        spans.append(f"<span style='{style}' title='{score:+.3f}'>{html.escape(str(word))}</span>")
    head = f"<div style='font-size:85%;color:#555'>{html.escape(title)}</div>" if title else ""
    return f"<div style='margin:4px 0'>{head}{' '.join(spans)}</div>"
