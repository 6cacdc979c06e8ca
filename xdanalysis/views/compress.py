"""Compression-lab views: accuracy against speed and size (answerable and unanswerable panels, with
the intervals of the difference to float32), and how far each variant moves the best null threshold.
Each takes the lab's comparison table (:attr:`xdanalysis.compress.Compression.table`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.common import check_choice

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['FRONTIER_AXES', 'compression_display', 'plot_frontier', 'plot_head_importance', 'plot_threshold_shift']


# What a frontier can be drawn against: the column and its axis label.
FRONTIER_AXES = {"speed": ("speed-up", "speed-up over float32 (×, timed together)"),
                 "size": ("weights (MB)", "weights in memory (MB)")}

_SIDES = (("HasAns F1", "answerable questions: F1"), ("NoAns acc", "unanswerable questions: accuracy"))


def plot_frontier(table: pd.DataFrame, *, axes=None, against: str = "speed") -> np.ndarray:
    """Two panels, answerable F1 and unanswerable accuracy, against speed-up or size: one point per
    variant, its bar the 95% paired-bootstrap interval of its difference to float32 placed around
    the variant's own score (a bar that crosses float32's dashed line is no measurable change)."""
    import matplotlib.pyplot as plt

    check_choice("against", against, list(FRONTIER_AXES))
    column, label = FRONTIER_AXES[against]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colours = plt.get_cmap("tab20" if len(table) > 10 else "tab10")
    markers = "osD^v<>P"
    for ax, (side, title) in zip(axes, _SIDES):
        reference = table[side].iloc[0] - table[f"{side} diff"].iloc[0]
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label=f"float32: {reference:.1f}")
        for i, row in enumerate(table.to_dict("records")):
            low = reference + row[f"{side} low"]
            high = reference + row[f"{side} high"]
            value = row[side]
            ax.errorbar([row[column]], [value], yerr=[[max(0, value - low)], [max(0, high - value)]],
                        fmt=markers[i % len(markers)], color=colours(i % colours.N), capsize=4, label=row["variant"])
        ax.set_title(f"{title} (n={int(table[f'{side} questions'].iloc[0])})", fontsize=10)
        ax.set_xlabel(label)
        ax.set_ylabel(title.split(": ")[1] + " (%)")
        ax.set_ylim(-4, 105)  # a point at 0 (a variant that never answers) sits above the axis, not on it
        ax.set_yticks(range(0, 101, 20))
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return axes


def compression_display(table: pd.DataFrame) -> pd.DataFrame:
    """The lab's table for reading: one row per variant, size and speed, each score with its difference to
    float32 and the 95% interval in one cell, answers changed, the threshold and its shift, AURC, ECE."""
    def with_ci(diff, low, high):
        return f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]"

    shown = pd.DataFrame({"weights (MB)": table["weights (MB)"].round(1), "parameters (M)": table["parameters (M)"].round(2),
                          "speed-up": table["speed-up"].round(2)})
    for column in ("F1", "HasAns F1", "NoAns acc"):
        shown[column] = table[column].round(2)
        shown[f"{column} vs float32 [95% CI]"] = [with_ci(*v) for v in zip(
            table[f"{column} diff"], table[f"{column} low"], table[f"{column} high"])]
    for column in ("answers changed (%)", "best threshold", "threshold shift", "AURC", "ECE"):
        shown[column] = table[column].round(2)
    shown.index = table["variant"].to_numpy()
    shown.index.name = "variant"
    return shown


def plot_threshold_shift(table: pd.DataFrame, *, ax=None) -> Axes:
    """Each variant's best-F1 null-odds threshold (the official ``best_f1_thresh`` on these questions)
    and float32's as a line: a variant that moved it needs its own threshold, or it answers and
    abstains at the wrong odds. A threshold of −∞ (best to abstain on everything: every null odds
    exceed it) or +∞ (best to answer everything) is drawn to the edge, hatched."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(table)))
    thresholds = table["best threshold"].to_numpy(dtype=float)
    finite = thresholds[np.isfinite(thresholds)]
    span = max(1.0, float(np.abs(finite).max()) * 2.2 if len(finite) else 1.0)
    drawn = np.clip(thresholds, -span, span)
    positions = np.arange(len(table))[::-1]
    shifts = table["threshold shift"].to_numpy(dtype=float)
    colours = ["#c44e52" if not abs(s) <= 0.5 else "#4c72b0" for s in shifts]
    bars = ax.barh(positions, drawn, color=colours, alpha=0.8)
    for bar, value in zip(bars, thresholds):
        if not np.isfinite(value):
            bar.set_hatch("//")
    reference = thresholds[0]
    ax.axvline(reference, color="gray", linestyle="--", linewidth=1, label=f"float32: {reference:+.2f}")
    ax.axvline(0, color="black", linewidth=0.6)
    for y, value, shift, x in zip(positions, thresholds, shifts, drawn):
        text = (f"{value:+.2f} (shift {shift:+.2f})" if np.isfinite(value) else
                ("−∞: best to abstain on every question" if value < 0 else "+∞: best to answer every question"))
        if not np.isfinite(value):  # written on the other side of zero, clear of the hatching
            x = 0.0
            right = value < 0
        else:
            right = x >= 0
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4 if right else -4, 0),
                    ha="left" if right else "right", va="center", fontsize=8)
    ax.set_yticks(positions, table["variant"])
    ax.set_xlabel("best-F1 null-odds threshold (abstain when null odds exceed it)")
    ax.set_title(f"Where each variant's null threshold should be (n={int(table['questions'].iloc[0])}; "
                 "red: moved by more than 0.5)", fontsize=10)
    ax.set_xlim(-span, span)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_head_importance(importance, *, ax=None, pruned: dict | None = None) -> Axes:
    """Every head's importance (layers × heads; Michel et al.'s gradient at the head's gate, each layer
    normalised), the ``pruned`` heads (``{layer: [heads]}``) crossed out."""
    import matplotlib.pyplot as plt

    importance = np.asarray(importance)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 0.45 * importance.shape[1], 1 + 0.4 * importance.shape[0]))
    image = ax.imshow(importance, cmap="viridis", aspect="auto")
    for layer, heads in (pruned or {}).items():
        for head in heads:
            ax.text(int(head), int(layer), "×", ha="center", va="center", color="white", fontsize=12)
    ax.set_xticks(range(importance.shape[1]))
    ax.set_yticks(range(importance.shape[0]))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    removed = sum(len(v) for v in (pruned or {}).values())
    ax.set_title(f"Head importance (× = pruned: {removed} of {importance.size})", fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="importance (layer-normalised |∂loss/∂gate|)")
    return ax
