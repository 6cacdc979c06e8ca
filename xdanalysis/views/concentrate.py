"""Where errors concentrate: the error tree's leaves and a two-slice grid (data in, figure out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import textwrap

import numpy as np
import pandas as pd

from ..analysis.error_tree import NO_RULE
from ..core.common import check_choice

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['plot_error_tree', 'plot_slice_grid']

_VERDICT_COLORS = {"held": "#c44e52", "held in direction only": "#e08e8f", "weaker out of sample": "#dd8452",
                   "did not hold": "#aaaaaa", "too few held-out questions": "#dddddd", NO_RULE: "#dddddd"}


def plot_error_tree(tree, *, ax=None) -> Axes:
    """One row per leaf of :func:`xdanalysis.analysis.error_tree.error_tree`: its rule, the error
    rate on the half it was found on (bar, 95% CI) and on the half it never saw (diamond, 95% CI),
    the run's error rate (dashed), each leaf's count and share of all errors; the bar's colour is
    whether the rule held out of sample."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    leaves = tree.leaves
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 0.75 * len(leaves) + 1.6))
    y = np.arange(len(leaves))[::-1]
    fit_errors = np.vstack([leaves["error_rate"] - leaves["low"], leaves["high"] - leaves["error_rate"]])
    ax.barh(y, leaves["error_rate"], height=0.55, xerr=np.nan_to_num(fit_errors), capsize=3,
            color=[_VERDICT_COLORS[v] for v in leaves["verdict"]], alpha=0.85, error_kw={"ecolor": "#777777"})
    held_errors = np.vstack([leaves["held_out_error_rate"] - leaves["held_out_low"],
                             leaves["held_out_high"] - leaves["held_out_error_rate"]])
    ax.errorbar(leaves["held_out_error_rate"], y, xerr=np.nan_to_num(held_errors), fmt="D", color="black",
                markersize=5, capsize=2, label="on the held-out half")
    ax.axvline(tree.base_rate, color="black", linestyle="--", linewidth=1, label=f"run's rate {tree.base_rate:.1f}%")
    labels = [f"{textwrap.fill(rule, 60)}\nn={n} · {share:.1f}% of errors" for rule, n, share in
              zip(leaves["rule"], leaves["count"], leaves["share of errors (%)"])]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel(f"{tree.target.replace('_', ' ')} rate (%): bar on the half the rule was found on, "
                  "diamond on the other half (95% CI)")
    side = "" if getattr(tree, "side", "all") == "all" else f" among {tree.side} questions"
    ax.set_title(f"Where {tree.target.replace('_', ' ')}s concentrate{side}: a depth-{tree.model.get_depth()} tree, "
                 "cross-fitted on two halves of the contexts", fontsize=10)
    handles = [Patch(color=c, label=v) for v, c in _VERDICT_COLORS.items() if v in set(leaves["verdict"])]
    ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    return ax


ERRORS = "share of errors (%)"  # the grid's column a heatmap of where the errors are reads


def plot_slice_grid(grid: pd.DataFrame, *, ax=None, value: str = "F1") -> Axes:
    """A two-slice grid (:func:`xdanalysis.analysis.slices.slice_grid`) as a heatmap of ``value``
    (``"F1"``, ``"EM"`` or ``"share of errors (%)"``), each cell with its count; cells under the
    minimum for an interval are hatched, empty ones blank. The share of errors is shown beside the
    cell's share of questions: a cell matters when the first is larger."""
    import matplotlib.pyplot as plt

    check_choice("value", value, ["F1", "EM", ERRORS])
    rows, columns = grid.columns[:2]  # the cell's two buckets, named after the slices
    order_rows, order_columns = list(dict.fromkeys(grid[rows])), list(dict.fromkeys(grid[columns]))
    values = grid.pivot(index=rows, columns=columns, values=value).loc[order_rows, order_columns]
    counts = grid.pivot(index=rows, columns=columns, values="count").loc[order_rows, order_columns]
    small = grid.pivot(index=rows, columns=columns, values="F1_low").loc[order_rows, order_columns].isna()
    shares = grid.pivot(index=rows, columns=columns, values="share (%)").loc[order_rows, order_columns]
    shown = values.to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(order_columns) + 3, 0.45 * len(order_rows) + 1.8))
    image = ax.imshow(np.where(counts.to_numpy() > 0, shown, np.nan), cmap="Reds" if value == ERRORS
                      else "RdYlGn", vmin=0, vmax=np.nanmax(shown) if value == ERRORS else 100,
                      aspect="auto")
    for (i, j), n in np.ndenumerate(counts.to_numpy()):
        if n == 0:
            continue
        if small.to_numpy()[i, j]:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#999999",
                                       linewidth=0))
        dark = value == ERRORS and shown[i, j] > 0.6 * np.nanmax(shown)
        extra = f"\nof {shares.to_numpy()[i, j]:.0f}% of q." if value == ERRORS else ""
        ax.text(j, i, f"{shown[i, j]:.0f}{extra}\nn={int(n)}", ha="center", va="center", fontsize=7,
                color="#555555" if small.to_numpy()[i, j] else "white" if dark else "black")
    ax.set_xticks(range(len(order_columns)), order_columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(order_rows)), order_rows, fontsize=8)
    ax.set_xlabel(columns)
    ax.set_ylabel(rows)
    name = {ERRORS: "share of all errors (%)"}.get(value, f"{value} (%)")
    ax.set_title(f"{name} by {rows} and {columns} (hatched: too few questions for an interval)", fontsize=10)
    ax.figure.colorbar(image, ax=ax, label=name, fraction=0.04)
    return ax
