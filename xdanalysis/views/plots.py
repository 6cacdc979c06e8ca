"""Small matplotlib figures shared by the notebooks and the report: labelled axes, counts shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.selective import curve_aurc
from ..core.common import check_choice, sigmoid

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

    from ..analysis.calibration import Reliability

__all__ = ['OUTCOME_COLORS', 'plot_confusion', 'plot_null_odds', 'plot_official_curves', 'plot_outcomes', 'plot_probe_consistency', 'plot_reliability', 'plot_risk_coverage', 'plot_scores', 'plot_slice', 'plot_threshold_curve']


def plot_scores(scores: dict, *, ax=None, title: str | None = None) -> Axes:
    """EM and F1 bars for all questions, answerable (HasAns) and unanswerable (NoAns), with counts.

    ``scores`` is the dict of :func:`xdanalysis.core.metrics.squad_v2_scores`.

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


def plot_null_odds(table: pd.DataFrame, *, ax=None, threshold: float = 0.0, bins: int = 40) -> Axes:
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


def plot_confusion(confusion_frame: pd.DataFrame, *, ax=None) -> Axes:
    """The 2x2 of gold (has answer / no answer) against the model (answered / abstained)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3.6))
    counts = confusion_frame.loc[["has answer", "no answer"], ["answered", "abstained"]].to_numpy()
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{100 * rates[i, j]:.1f}%", ha="center", va="center",
                color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks([0, 1], ["answered", "abstained"])
    ax.set_yticks([0, 1], [f"has answer\nn={counts[0].sum()}", f"no answer\nn={counts[1].sum()}"])
    ax.set_xlabel("model")
    ax.set_ylabel("gold")
    ax.set_title("Gold vs model decision (row %)")
    return ax


OUTCOME_COLORS = {
    "correct": "#55a868", "partial_long": "#8fd18f", "partial_short": "#c6e5a6", "partial_shifted": "#e6d98c",
    "wrong_span": "#c44e52", "abstained": "#8c8c8c", "correct_abstention": "#4c72b0", "false_answer": "#dd8452",
}


def plot_outcomes(table: pd.DataFrame, *, ax=None) -> Axes:
    """Counts of each outcome, answerable and unanswerable, with the plausible-answer traps."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    counts = table["outcome"].value_counts().reindex(list(OUTCOME_COLORS), fill_value=0)
    bars = ax.barh(counts.index, counts.values, color=[OUTCOME_COLORS[k] for k in counts.index])
    ax.bar_label(bars, labels=[f"{v} ({100 * v / max(1, len(table)):.1f}%)" for v in counts.values], fontsize=8)
    traps = int(table["plausible_trap"].sum())
    if traps:
        ax.barh(["false_answer"], [traps], color="none", edgecolor="black", hatch="//",
                label=f"plausible-answer trap ({traps})")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_xlim(0, max(1, counts.max()) * 1.3)  # room for the longest bar's label inside the axes
    ax.set_xlabel("questions")
    ax.set_title(f"Outcomes (n={len(table)})")
    return ax


def plot_slice(frame: pd.DataFrame, *, ax=None, metric: str = "F1") -> Axes:
    """Per-bucket score with 95% bootstrap intervals, answerable and unanswerable beside it, and counts;
    a bucket too small for an interval is pale, with its n in grey."""
    import matplotlib.pyplot as plt

    check_choice("metric", metric, ["EM", "F1"])
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.9 * len(frame) + 2), 4.2))
    x = np.arange(len(frame))
    errors = np.vstack([frame[metric] - frame[f"{metric}_low"], frame[f"{metric}_high"] - frame[metric]]).astype(float)
    small = (frame["count"] > 0) & frame[f"{metric}_low"].isna()  # too few for an interval: paler, no bar
    ax.bar(x, frame[metric], width=0.6, color=["#e6e6e6" if tiny else "#bbbbbb" for tiny in small],
           edgecolor=["#999999" if tiny else "none" for tiny in small], label=f"all {metric}",
           )
    shown = ~np.isnan(errors).any(axis=0)
    ax.errorbar(x[shown], frame[metric].to_numpy()[shown], yerr=errors[:, shown], fmt="none", ecolor="black",
                capsize=3)
    ax.plot(x, frame[f"HasAns_{metric}"], "o", color="#4c72b0", label=f"answerable {metric}")
    ax.plot(x, frame[f"NoAns_{metric}"], "s", color="#c44e52", label=f"unanswerable {metric}")
    labels = [f"{b}\nn={c} ({h}/{n})" for b, c, h, n in
              zip(frame["bucket"], frame["count"], frame["HasAns_count"], frame["NoAns_count"])]
    crowded = len(frame) > 6
    ax.set_xticks(x, labels, fontsize=8, rotation=40 if crowded else 0, ha="right" if crowded else "center",
                  rotation_mode="anchor" if crowded else "default")
    for label, tiny in zip(ax.get_xticklabels(), small):
        label.set_color("#888888" if tiny else "black")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(0, 118)  # a band above 100 for the legend: never over a bar, an interval or the title
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel(f"{metric} (%) with 95% CI")
    name = frame["slice"].iloc[0] if "slice" in frame and len(frame) else "bucket"
    ax.set_xlabel(f"{name}  (n = all (answerable/unanswerable))")
    ax.set_title(f"{metric} by {name}")
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    return ax


def plot_threshold_curve(curve: pd.DataFrame, *, ax=None, summary: pd.DataFrame | None = None,
                         metric: str = "F1") -> Axes:
    """Score against the null-odds threshold, overall / answerable / unanswerable, current and best marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(curve["threshold"], curve[metric], color="black", label=f"all {metric}")
    ax.plot(curve["threshold"], curve[f"HasAns_{metric}"], color="#4c72b0", label=f"answerable {metric}")
    ax.plot(curve["threshold"], curve[f"NoAns_{metric}"], color="#c44e52", label=f"unanswerable {metric}")
    if summary is not None:
        rows = summary[summary["metric"] == metric].set_index("threshold")
        for name, style in (("current", "--"), ("best", ":")):
            t, value = rows.loc[name, "null_odds_threshold"], rows.loc[name, "overall"]
            ax.axvline(t, color="gray", linestyle=style, label=f"{name} threshold {t:+.2f}: {metric} {value:.2f}")
    ax.set_xlabel("null-odds threshold (abstain when null odds > threshold)")
    ax.set_ylabel(f"{metric} (%)")
    n = f" (n={int(curve['questions'].iloc[0])})" if "questions" in curve and len(curve) else ""
    ax.set_title(f"{metric} as a function of the no-answer threshold{n}")
    ax.legend(fontsize=7)
    return ax


def plot_official_curves(table: pd.DataFrame, *, axes=None) -> np.ndarray:
    """The official PR curve (F1) and no-answer probability histograms, in one figure."""
    import matplotlib.pyplot as plt

    from ..core.metrics import precision_recall_curve

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    na_probs = dict(zip(table["id"], [sigmoid(x) for x in table["null_odds"]]))  # as na_probs.json holds them
    has_answer = dict(zip(table["id"], table["has_answer"]))
    f1 = dict(zip(table["id"], table["f1"]))  # the run's per-question F1, scored by xdanalysis.metrics
    if any(has_answer.values()):
        precisions, recalls, ap = precision_recall_curve(f1, na_probs, has_answer)
        axes[0].step(recalls, precisions, where="post", color="#4c72b0")
        axes[0].fill_between(recalls, precisions, step="post", alpha=0.2, color="#4c72b0")
        axes[0].set_title(f"Official precision-recall curve, F1 (AP {ap:.1f})")
    axes[0].set_xlabel("recall (answerable questions answered correctly)")
    axes[0].set_ylabel("precision")
    axes[0].set_xlim(0, 1.05)
    axes[0].set_ylim(0, 1.05)
    probs = np.array([na_probs[q] for q in table["id"]])
    has = table["has_answer"].to_numpy(dtype=bool)
    for mask, label, color in ((has, "answerable", "#4c72b0"), (~has, "unanswerable", "#c44e52")):
        if mask.any():
            axes[1].hist(probs[mask], bins=20, range=(0, 1), weights=np.ones(mask.sum()) / mask.sum(),
                         alpha=0.6, color=color, label=f"{label} (n={mask.sum()})")
    axes[1].set_xlabel("model probability of no-answer = sigmoid(null odds)")
    axes[1].set_ylabel("proportion of questions")
    axes[1].set_title("No-answer probability, as the official histograms")
    axes[1].legend()
    return axes


def plot_risk_coverage(curves, *, ax=None) -> Axes:
    """Risk (1 − F1 of the answered questions) against coverage, one line per run, AURC in the legend.

    ``curves``: a :func:`xdanalysis.analysis.selective.risk_coverage` frame, or ``{label: frame}`` to overlay
    runs (teacher and student). The dotted line is the risk of answering everything.

    Example::

        plot_risk_coverage({"teacher": risk_coverage(teacher), "student": risk_coverage(student)})
    """
    import matplotlib.pyplot as plt

    if isinstance(curves, pd.DataFrame):
        curves = {"model": curves}
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for label, curve in curves.items():
        line, = ax.plot(curve["coverage"], 100 * curve["risk"],
                        label=f"{label}: AURC {100 * curve_aurc(curve):.1f} (n={len(curve)})")
        ax.axhline(100 * curve["risk"].iloc[-1], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("coverage (share of questions answered, most confident first)")
    ax.set_ylabel("risk = 100 − F1 of the answered (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.set_title("Risk–coverage (lower is better; dotted: answer everything)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_reliability(result: Reliability, *, ax=None, groups=("answerable", "unanswerable")) -> Axes:
    """Reliability diagram of :func:`xdanalysis.analysis.calibration.reliability`: accuracy against confidence
    per bin and group, the diagonal of perfect calibration, ECE / Brier in the legend, and the
    questions per bin on an axis of their own below. Returns the accuracy axes (``.counts_axes``
    holds the counts)."""
    import matplotlib.pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    counts = make_axes_locatable(ax).append_axes("bottom", size="28%", pad=0.12, sharex=ax)
    frame, summary = result.bins, result.summary
    colors = {"all": "#555555", "answerable": "#4c72b0", "unanswerable": "#c44e52"}
    ax.plot([0, 1], [0, 1], color="#aaaaaa", linestyle="--", linewidth=1, label="perfect calibration")
    width = (frame["high"] - frame["low"]).iloc[0]
    for k, group in enumerate(groups):
        part = frame[(frame["group"] == group) & (frame["count"] > 0)]
        s = summary.set_index("group").loc[group]
        label = f"{group} (n={int(s['count'])}, ECE {s['ECE']:.3f}, Brier {s['Brier']:.3f})"
        ax.plot(part["confidence"], part["accuracy"], "o-", color=colors.get(group), label=label)
        bars = counts.bar(part["low"] + width * (0.25 + 0.5 * k), part["count"], width=width / 2,
                          color=colors.get(group), alpha=0.6)
        counts.bar_label(bars, fontsize=6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.tick_params(labelbottom=False)
    ax.set_ylabel("accuracy (EM)")
    ax.set_title("Reliability of the model's decisions")
    ax.legend(fontsize=7, loc="upper left")
    counts.set_ylim(0, 1.3 * max(1, frame[frame["group"].isin(groups)]["count"].max()))
    counts.set_ylabel("questions", fontsize=8)
    counts.tick_params(labelsize=7)
    counts.set_xlabel("confidence in the decision (span probability, or no-answer probability)")
    ax.counts_axes = counts
    return ax


def plot_probe_consistency(summary: pd.DataFrame, *, ax=None) -> Axes:
    """Consistency (% of expectations met) per probe with 95% bootstrap intervals, counts, and the
    rate among originally correct questions; from :func:`xdanalysis.analysis.probes.summary.probe_summary`."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    summary = summary[summary["n"] > 0].reset_index(drop=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(9.5, 0.42 * len(summary) + 1.5))
    y = np.arange(len(summary))[::-1]
    colors = {"abstain": "#c44e52", "same_answer": "#4c72b0", "answer": "#55a868"}
    errors = np.vstack([summary["consistency"] - summary["low"], summary["high"] - summary["consistency"]])
    ax.barh(y, summary["consistency"], xerr=np.nan_to_num(errors), capsize=3, height=0.6,
            color=[colors.get(e, "#999999") for e in summary["expect"]])
    ax.plot(summary["consistency_if_correct"], y, "k|", markersize=12, label="among originally correct")
    ax.set_yticks(y, [f"{p}\n(expect {e}, n={n})" for p, e, n in zip(summary["probe"], summary["expect"], summary["n"])],
                  fontsize=7)
    for yy, value in zip(y, summary["consistency"]):
        ax.text(1, yy, f"{value:.0f}%", va="center", fontsize=7, color="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("expectation met (%) with 95% CI")
    ax.set_title("Robustness probes: does the model behave as it should?")
    shown = [e for e in colors if e in set(summary["expect"])]
    handles = [Patch(color=colors[e], label=f"expect {e}") for e in shown]
    if (~summary["expect"].isin(shown)).any():
        handles.append(Patch(color="#999999", label="expect abstain (unanswerable) / same answer"))
    marker, = [line for line in ax.lines if line.get_label() == "among originally correct"]
    ax.legend(handles=handles + [marker], fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3,
              frameon=False)  # below the axes: tight layouts keep the long probe labels whole
    return ax
