"""Teacher-vs-student views: trade-off, attention similarity, transitions, slice differences, soft targets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.compare import CARD_POINTS, Comparison
from ..analysis.outcomes import OUTCOMES

__all__ = ['plot_attention_similarity', 'plot_slice_differences', 'plot_soft_targets', 'plot_tradeoff', 'plot_transitions']


def plot_tradeoff(frame: pd.DataFrame, ax=None):
    """F1 against latency, marker area proportional to parameters; published card points marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    sizes = 30 + 400 * frame["parameters (M)"] / max(1e-9, frame["parameters (M)"].max())
    ax.scatter(frame["ms/question"], frame["F1"], s=sizes, alpha=0.6, color="#4c72b0")
    for _, row in frame.iterrows():
        ax.annotate(f"{row['model']}\n{row['parameters (M)']:.1f}M params", (row["ms/question"], row["F1"]),
                    textcoords="offset points", xytext=(8, 4), fontsize=8)
        card = CARD_POINTS.get(row["reference"])
        if card:
            ax.axhline(card["F1"], color="gray", linestyle=":", label=f"{card['label']}: F1 {card['F1']}")
    ax.set_xlabel("measured latency (ms / question, this machine)")
    ax.set_ylabel("F1 (%)")
    ax.set_title("Size, speed and accuracy (marker area = parameters)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def plot_attention_similarity(distance: np.ndarray, labels=("student", "teacher"), ax=None, n: int | None = None):
    """Student-layer x teacher-layer heatmap of attention JS distance (darker = more alike)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    image = ax.imshow(distance, cmap="viridis_r", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(distance.shape[1]))  # layers are whole numbers
    ax.set_yticks(range(distance.shape[0]))
    ax.set_xlabel(f"{labels[1]} layer")
    ax.set_ylabel(f"{labels[0]} layer")
    ax.set_title("Attention JS distance, heads averaged" + (f" (n={n} questions)" if n else ""))
    ax.figure.colorbar(image, ax=ax, label="Jensen-Shannon distance (lower = more alike)")
    return ax


def plot_transitions(comparison: Comparison, ax=None):
    """The outcome transition matrix: counts, and row shares as colour."""
    import matplotlib.pyplot as plt

    counts = comparison.transitions
    rows = [o for o in OUTCOMES if counts.loc[o].sum() > 0]
    columns = [o for o in OUTCOMES if counts[o].sum() > 0]
    counts = counts.loc[rows, columns]
    rates = comparison.transition_rates.loc[rows, columns].fillna(0)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.9 * len(columns), 1 + 0.6 * len(rows)))
    ax.imshow(rates.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                color="white" if rates.to_numpy()[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{r} ({counts.loc[r].sum()})" for r in rows], fontsize=8)
    ax.set_xlabel(f"{comparison.labels[1]} outcome")
    ax.set_ylabel(f"{comparison.labels[0]} outcome")
    ax.set_title(f"Outcome transitions (n={len(comparison.joined)}; colour = row share)")
    return ax


def plot_slice_differences(frame: pd.DataFrame, labels=("teacher", "student"), ax=None):
    """Per-bucket difference (B - A) with paired 95% intervals, sorted by the gap, with counts."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(frame) + 1.5))
    y = np.arange(len(frame))
    errors = np.vstack([frame["difference"] - frame["low"], frame["high"] - frame["difference"]])
    colors = ["#55a868" if d >= 0 else "#c44e52" for d in frame["difference"]]
    ax.barh(y, frame["difference"], xerr=errors, color=colors, capsize=3)
    ax.set_yticks(y, [f"{b} (n={c})" for b, c in zip(frame["bucket"], frame["count"])], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    metric = frame.attrs.get("metric", "f1").upper()
    ax.set_xlabel(f"{metric} difference, {labels[1]} − {labels[0]} (points, 95% paired CI)")
    ax.set_title(f"Where the gap is, by {frame.attrs.get('slice', 'bucket')}")
    return ax


def plot_soft_targets(table: pd.DataFrame, temperature: float, which: str = "p_start", ax=None, top: int = 25):
    """Side by side, each model's word-aligned distribution at one temperature (the words with
    the most probability under any model, in text order)."""
    import matplotlib.pyplot as plt

    part = table[np.isclose(table["temperature"], temperature)]
    best = part.groupby("char_start")[which].max().nlargest(top).index
    part = part[part["char_start"].isin(best)]
    pivot = part.pivot_table(index=["char_start", "word"], columns="model", values=which).sort_index()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(7, 0.4 * len(pivot) + 2), 3.8))
    x = np.arange(len(pivot))
    width = 0.8 / max(1, len(pivot.columns))
    for k, model in enumerate(pivot.columns):
        ax.bar(x + k * width - 0.4 + width / 2, pivot[model], width=width, label=model)
    ax.set_xticks(x, [w for _, w in pivot.index], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"{'start' if which == 'p_start' else 'end'} probability")
    ax.set_title(f"Soft targets at T={temperature:g} (word-aligned; a distillation loss minimises "
                 "KL(student‖teacher) of these)", fontsize=9)
    ax.legend()
    return ax
