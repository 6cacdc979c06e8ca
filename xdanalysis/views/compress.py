"""Compression-lab views: accuracy against speed and size (answerable and unanswerable panels, with
the intervals of the difference to float32), and how far each variant moves the best null threshold.
Each takes the lab's comparison table (:attr:`xdanalysis.compress.Compression.table`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.common import check_choice

__all__ = ['FRONTIER_AXES', 'plot_frontier', 'plot_threshold_shift']


# What a frontier can be drawn against: the column and its axis label.
FRONTIER_AXES = {"speed": ("speed-up", "speed-up over float32 (×, timed together)"),
                 "size": ("weights (MB)", "weights in memory (MB)")}

_SIDES = (("HasAns F1", "answerable questions: F1"), ("NoAns acc", "unanswerable questions: accuracy"))


def plot_frontier(table: pd.DataFrame, *, against: str = "speed", axes=None):
    """Two panels, answerable F1 and unanswerable accuracy, against speed-up or size: one point per
    variant, its bar the 95% paired-bootstrap interval of its difference to float32 placed around
    the variant's own score (a bar that crosses float32's dashed line is no measurable change)."""
    import matplotlib.pyplot as plt

    check_choice("against", against, list(FRONTIER_AXES))
    column, label = FRONTIER_AXES[against]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colours = plt.get_cmap("tab10")
    for ax, (side, title) in zip(axes, _SIDES):
        reference = table[side].iloc[0] - table[f"{side} diff"].iloc[0]
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=f"float32: {reference:.1f}")
        for i, row in enumerate(table.to_dict("records")):
            low = reference + row[f"{side} low"]
            high = reference + row[f"{side} high"]
            value = row[side]
            ax.errorbar([row[column]], [value], yerr=[[max(0, value - low)], [max(0, high - value)]], fmt="o",
                        color=colours(i % 10), capsize=4, label=row["variant"])
        ax.set_title(f"{title} (n={int(table[f'{side} questions'].iloc[0])})", fontsize=10)
        ax.set_xlabel(label)
        ax.set_ylabel(title.split(": ")[1] + " (%)")
        ax.set_ylim(0, 105)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return axes


def plot_threshold_shift(table: pd.DataFrame, ax=None):
    """Each variant's best-F1 null-odds threshold (the official ``best_f1_thresh`` on these questions)
    and float32's as a line: a variant that moved it needs its own threshold, or it answers and
    abstains at the wrong odds."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(table)))
    positions = np.arange(len(table))[::-1]
    reference = table["best threshold"].iloc[0]
    colours = ["#c44e52" if abs(s) > 0.5 else "#4c72b0" for s in table["threshold shift"]]
    ax.barh(positions, table["best threshold"], color=colours, alpha=0.8)
    ax.axvline(reference, color="gray", linestyle="--", linewidth=1, label=f"float32: {reference:+.2f}")
    ax.axvline(0, color="black", linewidth=0.6)
    for y, row in zip(positions, table.to_dict("records")):
        ax.annotate(f"{row['best threshold']:+.2f} (shift {row['threshold shift']:+.2f})",
                    (row["best threshold"], y), textcoords="offset points",
                    xytext=(4 if row["best threshold"] >= 0 else -4, 0),
                    ha="left" if row["best threshold"] >= 0 else "right", va="center", fontsize=8)
    ax.set_yticks(positions, table["variant"])
    ax.set_xlabel("best-F1 null-odds threshold (abstain when null odds exceed it)")
    ax.set_title(f"Where each variant's null threshold should be (n={int(table['questions'].iloc[0])}; "
                 "red: moved by more than 0.5)", fontsize=10)
    span = max(1.0, float(table["best threshold"].abs().max()) * 2.2)
    ax.set_xlim(-span, span)
    ax.legend(fontsize=8, loc="lower right")
    return ax
