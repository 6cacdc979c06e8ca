"""Distillation views: learning curves, soft-target entropy and the T² gradient scale."""

from __future__ import annotations

import pandas as pd

__all__ = ['plot_entropy', 'plot_gradient_scale', 'plot_learning_curves']


def plot_learning_curves(logs: dict, ax=None, window: int = 10):
    """Each student's losses against the step (rolling mean over ``window`` steps): total (solid),
    soft (dashed), hard (dotted), attention (dash-dot) where present."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    styles = {"total": "-", "soft": "--", "hard": ":", "attention": "-."}
    for k, (label, log) in enumerate(logs.items()):
        color = f"C{k}"
        for term, style in styles.items():
            if term not in log or (log[term].fillna(0) == 0).all():
                continue
            ax.plot(log["step"], log[term].rolling(window, min_periods=1).mean(), style, color=color,
                    label=f"{label}: {term}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (rolling mean of {window} steps)")
    ax.set_title("Learning curves: total —, soft targets – –, hard labels ···, attention –·")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_entropy(frame: pd.DataFrame, axes=None):
    """Soft-target entropy and the null position's probability against the temperature."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for answerable, color in ((True, "#4c72b0"), (False, "#c44e52")):
        part = frame[frame["answerable"] == answerable]
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


def plot_gradient_scale(frame: pd.DataFrame, ax=None):
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
