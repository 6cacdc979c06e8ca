"""Teacher-vs-student views: trade-off, attention similarity, transitions, slice differences, soft targets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.compare import CARD_POINTS, Comparison
from ..analysis.outcomes import OUTCOMES

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['plot_attention_similarity', 'plot_slice_differences', 'plot_soft_targets', 'plot_tradeoff', 'plot_transitions']


def plot_tradeoff(frame: pd.DataFrame, *, ax=None) -> Axes:
    """F1 (circles) and answerable F1 (triangles) against measured latency with the spread of the
    timed rounds, on the whole 0–100 scale, with what always abstaining scores; marker area follows
    the parameters only when the models differ in size; published card points marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    parameters = frame["parameters (M)"]
    sized = parameters.max() > 1.05 * parameters.min()
    sizes = 40 + 360 * parameters / max(1e-9, parameters.max()) if sized else 80
    spread = None
    if {"ms low", "ms high"} <= set(frame.columns):
        spread = np.vstack([frame["ms/question"] - frame["ms low"], frame["ms high"] - frame["ms/question"]])
    ax.errorbar(frame["ms/question"], frame["F1"], xerr=spread, fmt="none", ecolor="#888888", capsize=3)
    ax.scatter(frame["ms/question"], frame["F1"], s=sizes, alpha=0.7, color="#4c72b0", label="F1, all questions")
    if "HasAns F1" in frame:
        ax.scatter(frame["ms/question"], frame["HasAns F1"], s=sizes, marker="^", alpha=0.7, color="#55a868",
                   label="F1, answerable questions")
    width = max(1e-9, frame["ms/question"].max() - frame["ms/question"].min())
    placed = []
    for number, (_, row) in enumerate(frame.iterrows(), start=1):
        # each point carries a number, its name and size in the key below: models of one size and speed
        # (a lab's students) sit on one spot, where names would print over each other; their numbers stack
        stack = sum(abs(x - row["ms/question"]) < 0.1 * width and abs(y - row["F1"]) < 4 for x, y in placed)
        placed.append((row["ms/question"], row["F1"]))
        ax.annotate(str(number), (row["ms/question"], row["F1"]), textcoords="offset points",
                    xytext=(7, 5 + 11 * stack), fontsize=8, fontweight="bold")
        ax.plot([], [], " ", label=f"{number}: {row['model']} ({row['parameters (M)']:.1f}M params)")
        card = CARD_POINTS.get(row["reference"])
        if card:
            ax.axhline(card["F1"], color="gray", linestyle=":", label=f"{card['label']}: F1 {card['F1']}")
    if "always abstaining" in frame and frame["always abstaining"].notna().any():
        floor = frame["always abstaining"].dropna().iloc[0]
        ax.axhline(floor, color="#c44e52", linestyle="--", linewidth=1, label=f"always abstaining: F1 {floor:.1f}")
    low, high = frame["ms low" if spread is not None else "ms/question"].min(), \
        frame["ms high" if spread is not None else "ms/question"].max()
    pad = max(0.15 * (high - low), 0.1 * high, 1e-3)
    ax.set_xlim(max(0, low - pad), high + pad)
    ax.set_ylim(-4, 105)  # a model at 0 (one that never answers) sits above the axis line
    ax.set_yticks(range(0, 101, 20))
    rounds = (f", median of {int(frame['timed rounds'].iloc[0])} rounds; bars: fastest to slowest round"
              if "timed rounds" in frame else "")
    ax.set_xlabel(f"measured latency (ms / question, this machine{rounds})")
    ax.set_ylabel("F1 (%)")
    ax.set_title("Size, speed and accuracy" + (" (marker area = parameters)" if sized else ""))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)  # under, over no point
    return ax


def plot_attention_similarity(distance: np.ndarray, *, ax=None, labels=("student", "teacher"),
                              n: int | None = None) -> Axes:
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


def plot_transitions(comparison: Comparison, *, ax=None) -> Axes:
    """The outcome transition matrix: counts, and row shares as colour. Every outcome is a row and a column,
    in ``OUTCOMES`` order, empty ones too (greyed), so that panels side by side compare by position."""
    import matplotlib.pyplot as plt

    counts = comparison.transitions.loc[OUTCOMES, OUTCOMES]
    rates = comparison.transition_rates.loc[OUTCOMES, OUTCOMES].fillna(0)
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.9 * len(OUTCOMES), 1 + 0.6 * len(OUTCOMES)))
    ax.imshow(rates.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                color="#bbbbbb" if value == 0 else "white" if rates.to_numpy()[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(OUTCOMES)), OUTCOMES, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(OUTCOMES)), [f"{r} ({counts.loc[r].sum()})" for r in OUTCOMES], fontsize=8)
    for label, empty in zip(ax.get_yticklabels(), counts.sum(axis=1).to_numpy() == 0):
        label.set_color("#999999" if empty else "black")
    ax.set_xlabel(f"{comparison.labels[1]} outcome")
    ax.set_ylabel(f"{comparison.labels[0]} outcome")
    ax.set_title(f"Outcome transitions (n={len(comparison.joined)}; colour = row share)")
    return ax


def plot_slice_differences(frame: pd.DataFrame, *, ax=None, labels=("teacher", "student")) -> Axes:
    """Per-bucket difference (B - A) with paired 95% intervals and counts; buckets too small for an
    interval are grey, without an error bar."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(frame) + 1.5))
    y = np.arange(len(frame))
    small = frame["low"].isna().to_numpy()  # too few questions for an interval: greyed, no error bar
    errors = np.nan_to_num(np.vstack([frame["difference"] - frame["low"], frame["high"] - frame["difference"]]))
    colors = ["#cccccc" if tiny else "#55a868" if d >= 0 else "#c44e52" for tiny, d in zip(small, frame["difference"])]
    ax.barh(y, frame["difference"], xerr=errors, color=colors, capsize=3)
    ax.set_yticks(y, [f"{b} (n={c}{', no CI' if tiny else ''})" for b, c, tiny in
                      zip(frame["bucket"], frame["count"], small)], fontsize=8)
    for label, tiny in zip(ax.get_yticklabels(), small):
        label.set_color("#888888" if tiny else "black")
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    metric = str(frame["metric"].iloc[0]).upper() if "metric" in frame and len(frame) else "F1"
    ax.set_xlabel(f"{metric} difference, {labels[1]} − {labels[0]} (points, 95% paired CI)")
    ax.set_title(f"Where the gap is, by {frame['slice'].iloc[0] if 'slice' in frame and len(frame) else 'bucket'}")
    return ax


def plot_soft_targets(table: pd.DataFrame, temperature: float, *, ax=None, which: str = "p_start",
                      top: int = 25) -> Axes:
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
    ax.set_xticks(x, [w for _, w in pivot.index], rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_xlim(-0.8, len(pivot) - 0.2)
    ax.set_ylabel(f"{'start' if which == 'p_start' else 'end'} probability")
    ax.set_xlabel(f"context words (the {len(pivot)} most probable under any model, in text order)", fontsize=8)
    ax.set_title(f"Soft {'start' if which == 'p_start' else 'end'} targets at temperature {temperature:g}", fontsize=11)
    ax.legend(fontsize=8)
    return ax
