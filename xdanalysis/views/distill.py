"""Distillation views: learning curves, soft-target entropy and the T² gradient scale."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    import numpy as np
    from matplotlib.axes import Axes

__all__ = ['LOSS_TERMS', 'plot_entropy', 'plot_gradient_scale', 'plot_lab_students', 'plot_learning_curves']


# Loss terms as a reader names them (never like a student: "soft targets" is a student of the lab).
LOSS_TERMS = {"total": ("total loss", "-"), "soft": ("KL to the teacher (soft term)", "--"),
              "hard": ("cross-entropy on gold (hard term)", ":"), "attention": ("attention KL", "-.")}


def plot_learning_curves(logs: dict, *, ax=None, window: int = 10) -> Axes:
    """Each student's losses against the step (rolling mean over ``window`` steps): colour names
    the student, line style the loss term; both legends sit outside the curves, on the right."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    used = set()
    for k, (label, log) in enumerate(logs.items()):
        for term, (_, style) in LOSS_TERMS.items():
            if term not in log or (log[term].fillna(0) == 0).all():
                continue
            used.add(term)
            ax.plot(log["step"], log[term].rolling(window, min_periods=1).mean(), style, color=f"C{k}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (rolling mean of {window} steps)")
    ax.set_title("Learning curves")
    students = ax.legend(handles=[Line2D([], [], color=f"C{k}", label=label) for k, label in enumerate(logs)],
                         title="student", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.add_artist(students)
    ax.legend(handles=[Line2D([], [], color="black", linestyle=style, label=name)
                       for term, (name, style) in LOSS_TERMS.items() if term in used],
              title="loss term", fontsize=8, title_fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0))
    return ax


def plot_entropy(frame: pd.DataFrame, *, axes=None) -> np.ndarray:
    """Soft-target entropy and the null position's probability against the temperature."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for answerable, color in ((True, "#4c72b0"), (False, "#c44e52")):
        part = frame[frame["answerable"] == answerable]
        if part.empty:  # a sample of one kind of question only
            continue
        label = f"{'answerable' if answerable else 'unanswerable'} (n={int(part['windows'].iloc[0])} windows)"
        axes[0].plot(part["temperature"], part["entropy"], "o-", color=color, label=label)
        axes[1].plot(part["temperature"], part["null_probability"], "o-", color=color, label=label)
    axes[0].plot(frame["temperature"].unique(), frame.groupby("temperature")["max_entropy"].mean(), "k:",
                 label="uniform over the window (maximum)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("temperature T")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("entropy of the start distribution (nats)")
    axes[0].set_title("Softer targets as T grows")
    axes[1].set_ylabel("probability of the null ([CLS]) position")
    axes[1].set_title("How much of the target says 'no answer'")
    return axes


def plot_gradient_scale(frame: pd.DataFrame, *, ax=None) -> Axes:
    """Gradient norm of the soft term against T, with and without the T² factor."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(frame["temperature"], frame["without T²"], "o-", label="KL at T alone")
    ax.plot(frame["temperature"], frame["with T²"], "s-", label="T² · KL at T (the loss used)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("gradient norm w.r.t. the student's logits")
    ax.set_title("Why the soft term is scaled by T²")
    ax.legend(fontsize=8)
    return ax


def plot_lab_students(table: pd.DataFrame, *, axes=None, counts: dict | None = None) -> np.ndarray:
    """What each lab student does on answerable and on unanswerable questions, at the teacher's
    threshold 0 (pale) and at its re-fitted threshold (solid): answerable F1 with a tick at its F1 when
    forced to answer (what it knows about spans), and unanswerable accuracy, where always abstaining
    scores 100. ``table`` is :func:`xdanalysis.labs.distill.lab_table`; ``counts`` (optional)
    ``{"HasAns": n, "NoAns": n}`` goes into the panel titles."""
    import matplotlib.pyplot as plt
    import numpy as np

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    students = list(dict.fromkeys(table["student"]))
    thresholds = list(dict.fromkeys(table["threshold"]))
    width = 0.8 / len(thresholds)
    x = np.arange(len(students))
    counts = counts or {}
    for ax, column, title in ((axes[0], "HasAns F1", "answerable: F1"),
                              (axes[1], "NoAns F1", "unanswerable: accuracy (abstained)")):
        for k, threshold in enumerate(thresholds):
            rows = table[table["threshold"] == threshold].set_index("student").loc[students]
            values = rows[column]
            bars = ax.bar(x + (k - (len(thresholds) - 1) / 2) * width, values, width,
                          alpha=0.4 if k == 0 else 0.9, color="C0" if column == "HasAns F1" else "C1",
                          label=f"threshold: {threshold}")
            # a bar of 2 on a 0-100 axis is read by its label: say how much the student answers beside it, in
            # short lines, so that the labels of neighbouring bars stay apart
            said = [f"{v:.1f}\nanswers\n{a:.0f}%" for v, a in zip(values, rows["answered (%)"])] \
                if column == "HasAns F1" and "answered (%)" in rows else [f"{v:.1f}" for v in values]
            ax.bar_label(bars, labels=said, fontsize=7)
        group = column.split()[0]
        ax.set_title(title + (f" (n={counts[group]})" if group in counts else ""))
        ax.set_xticks(x, students, rotation=15)
        ax.set_ylim(0, 130)  # the band above 100 holds the legend, clear of the bars
    forced = table.drop_duplicates("student").set_index("student").loc[students, "forced HasAns F1"]
    axes[0].scatter(x, forced, marker="_", s=900, color="black", zorder=3, label="forced to answer")
    axes[1].axhline(100, color="grey", linestyle="--", linewidth=1, label="always abstaining")
    axes[0].set_ylabel("score (%)")
    axes[0].set_yticks(range(0, 101, 20))
    for ax in axes:
        ax.legend(fontsize=7, loc="upper center", ncol=3, frameon=False, markerscale=0.4)
    return axes
