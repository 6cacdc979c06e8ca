"""Attention views: the head grid, one head, question-to-context, head statistics (data in, figure out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..interpret.attention import STATISTICS, Attention, crop_indices, question_to_context

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ['STATISTIC_LABELS', 'plot_cls_by_layer', 'plot_head', 'plot_head_grid', 'plot_head_statistics',
           'plot_question_to_context', 'plot_statistic_difference']


# Views: one focused job each, matplotlib only.

def _token_labels(att: Attention, indices) -> list:
    return [att.tokens[i] for i in indices]


def _span_color(att: Attention, i: int):
    in_gold = att.gold_tokens is not None and att.gold_tokens[0] <= i <= att.gold_tokens[1]
    in_pred = att.predicted_tokens is not None and att.predicted_tokens[0] <= i <= att.predicted_tokens[1]
    return "purple" if in_gold and in_pred else "green" if in_gold else "blue" if in_pred else "black"


def plot_head_grid(att: Attention, *, ax=None, max_tokens: int = 96) -> Axes:
    """View 1: every layer x head as a small attention map (rows attend to columns), tiled in
    one image. Maps longer than ``max_tokens`` are shown over the cropped tokens (question and
    the context around the answers) so that each tile stays readable."""
    import matplotlib.pyplot as plt

    layers, heads, n, _ = att.attentions.shape
    indices = crop_indices(att) if n > max_tokens else np.arange(n)
    indices = indices[:max_tokens]
    size = len(indices)
    gap = max(1, size // 12)
    mosaic = np.full((layers * (size + gap) - gap, heads * (size + gap) - gap), np.nan)
    for layer in range(layers):
        for head in range(heads):
            tile = att.attentions[layer, head][np.ix_(indices, indices)]
            top, left = layer * (size + gap), head * (size + gap)
            mosaic[top: top + size, left: left + size] = tile
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 1.1 * heads + 1), min(16, 1.1 * layers + 1)))
    image = ax.imshow(mosaic, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    centers = np.arange(heads) * (size + gap) + size / 2
    ax.set_xticks(centers, [f"h{h}" for h in range(heads)], fontsize=7)
    ax.set_yticks(np.arange(layers) * (size + gap) + size / 2, [f"L{layer}" for layer in range(layers)], fontsize=7)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    cropped = " (cropped to question and answer context)" if size < n else ""
    ax.set_title(f"Every layer x head: {size} of {n} tokens{cropped}, window {att.window + 1}/{att.n_windows}",
                 fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="attention weight")
    return ax


def plot_head(att: Attention, layer: int, head: int, *, ax=None, crop: bool = True, around: int = 12) -> Axes:
    """View 2: one head as a token-by-token heatmap; gold tokens green, predicted blue on the axes.

    ``crop`` keeps the question and the context around the gold and predicted answers.
    """
    import matplotlib.pyplot as plt

    indices = crop_indices(att, around) if crop else np.arange(len(att.tokens))
    matrix = att.attentions[layer, head][np.ix_(indices, indices)]
    if ax is None:
        size = min(16, 2 + 0.16 * len(indices))
        _, ax = plt.subplots(figsize=(size, size))
    from matplotlib.colors import PowerNorm

    # One fixed scale for every head (comparable), square-root stretched so weak links still show.
    image = ax.imshow(matrix, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=1), interpolation="nearest")
    labels = _token_labels(att, indices)
    ax.set_xticks(range(len(indices)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(indices)), labels, fontsize=6)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for tick, i in zip(ticks, indices):
            tick.set_color(_span_color(att, i))
    ax.set_xlabel(f"attended token (gold answer green, {att.prediction_label} blue, both purple)")
    ax.set_ylabel("attending token")
    ax.set_title(f"Layer {layer}, head {head}" + (" (cropped)" if crop and len(indices) < len(att.tokens) else ""))
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="attention weight")
    return ax


def plot_question_to_context(att: Attention, *, ax=None, layer: int | None = None, head: int | None = None,
                             per_row: int = 14) -> Axes:
    """View 3: the context, each token shaded by the attention it receives from the question
    (one head, one layer, or averaged); gold answer boxed green, prediction underlined blue, a token
    of both boxed purple (the legend below says so)."""
    import matplotlib.pyplot as plt

    received = question_to_context(att, layer, head)
    context_tokens = [i for i, k in enumerate(att.kinds) if k == "context"]
    rows = max(1, int(np.ceil(len(context_tokens) / per_row)))
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 0.42 * rows + 1))
    top = received[context_tokens].max() if context_tokens else 1.0
    cmap = plt.get_cmap("Oranges")
    for n, i in enumerate(context_tokens):
        x, y = n % per_row, rows - 1 - n // per_row
        value = received[i] / top if top > 0 else 0.0
        color = _span_color(att, i)
        ax.add_patch(plt.Rectangle((x, y), 0.96, 0.8, color=cmap(value)))
        if color in ("green", "purple"):  # purple: gold and prediction agree, as in the other views
            ax.add_patch(plt.Rectangle((x, y), 0.96, 0.8, fill=False, edgecolor=color, linewidth=2))
        if color == "blue":
            ax.plot([x + 0.05, x + 0.91], [y + 0.05, y + 0.05], color="blue", linewidth=2)
        ax.text(x + 0.48, y + 0.4, att.tokens[i], ha="center", va="center", fontsize=7,
                color="white" if value > 0.6 else "black")
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, rows)
    ax.axis("off")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="none", edgecolor="green", linewidth=2, label="gold answer"),
                       Line2D([], [], color="blue", linewidth=2, label=att.prediction_label),
                       Patch(facecolor="none", edgecolor="purple", linewidth=2,
                             label=f"gold answer and {att.prediction_label} both"),
                       Patch(color=cmap(1.0), label="most attention")],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=8, frameon=False)
    where = ("all layers and heads" if layer is None and head is None else
             f"layer {layer}, all heads" if head is None else
             f"all layers, head {head}" if layer is None else f"layer {layer}, head {head}")
    ax.set_title(f"Attention from the question to each context token ({where}; darker = more; "
                 "legend below)", fontsize=10)
    return ax


# Each statistic of ``STATISTICS`` as a panel title.
STATISTIC_LABELS = {"cls": "attention to [CLS]", "sep": "attention to [SEP]", "self": "attention to itself",
                    "previous": "to the previous token", "next": "to the next token",
                    "punctuation": "to punctuation", "entropy": "entropy (nats)"}


def plot_head_statistics(stats, *, figure=None, title: str = "", colorbars: bool = True, columns: int = 4) -> Figure:
    """View 4: a layers x heads heatmap for each statistic, ``columns`` panels to a row.

    ``stats``: a dict from :func:`head_statistics_of`, or a summary from
    :func:`summarize_head_statistics` (its means are drawn). Without ``colorbars`` (faster to
    draw) each title gives its range.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if isinstance(stats, pd.DataFrame):
        stats = {name: part.pivot(index="layer", columns="head", values="mean").to_numpy()
                 for name, part in stats.groupby("statistic")}
    names = [s for s in STATISTICS if s in stats]
    columns = min(columns, len(names))
    rows = int(np.ceil(len(names) / columns))
    # constrained layout keeps each colour bar's ticks off the next panel and the title off the panels
    figure = figure or plt.figure(figsize=(4.2 * columns, 3.6 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        values = np.asarray(stats[name])
        image = ax.imshow(values, cmap="magma", interpolation="nearest", aspect="auto")
        label = STATISTIC_LABELS.get(name, name)
        ax.set_title(label if colorbars else f"{label}\n{values.min():.2f} (dark) to {values.max():.2f} (light)",
                     fontsize=10)
        ax.set_xlabel("head", fontsize=9)
        ax.set_ylabel("layer", fontsize=9)
        ax.tick_params(labelsize=8)
        if colorbars:
            bar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=8)
            bar.locator = MaxNLocator(4)
            bar.update_ticks()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    figure.suptitle(title or "Per-head attention statistics: the mean share of each token's attention going to "
                    "[CLS], [SEP], itself, its neighbours and punctuation, and the entropy of its attention",
                    fontsize=11)
    return figure


def plot_statistic_difference(summary_a: pd.DataFrame, summary_b: pd.DataFrame, *, ax=None, statistic: str = "cls",
                              labels=("A", "B"), differences: pd.DataFrame | None = None) -> Axes:
    """Slice comparison: mean statistic of slice A minus slice B, per layer x head, with the counts. With
    ``differences`` (:func:`~xdanalysis.interpret.attention.head_differences`) the heads whose 95% interval
    excludes 0 are dotted, and the title says how many, beside how many chance alone would give."""
    import matplotlib.pyplot as plt

    def grid(summary):
        part = summary[summary["statistic"] == statistic]
        return part.pivot(index="layer", columns="head", values="mean").to_numpy()

    difference = grid(summary_a) - grid(summary_b)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    bound = np.abs(difference).max() or 1.0
    image = ax.imshow(difference, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest", aspect="auto")
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    title = (f"{statistic}: {labels[0]} (n={int(summary_a['n'].iloc[0])}) minus "
             f"{labels[1]} (n={int(summary_b['n'].iloc[0])})")
    if differences is not None:
        part = differences[differences["statistic"] == statistic]
        marked = part[part["excludes_zero"]]
        ax.scatter(marked["head"], marked["layer"], s=14, color="black", marker="o", label="95% CI excludes 0")
        title += (f"\n{len(marked)} of {len(part)} heads' intervals exclude 0 (dotted); "
                  f"chance alone: about {0.05 * len(part):.1f}")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, label=f"difference in {statistic}")
    return ax


def plot_cls_by_layer(frame: pd.DataFrame, *, ax=None) -> Axes:
    """View 5: attention to [CLS] per layer, abstained vs answered, with 95% intervals
    (:func:`xdanalysis.interpret.attention.cls_by_layer`'s frame)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    for group, color in (("abstained", "#c44e52"), ("answered", "#4c72b0")):
        part = frame[frame["group"] == group]
        if part.empty:
            continue
        ax.plot(part["layer"], part["mean"], "o-", color=color, label=f"{group} (n={int(part['n'].iloc[0])})")
        ax.fill_between(part["layer"], part["low"], part["high"], color=color, alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("mean attention to [CLS]")
    ax.set_title("Attention to [CLS], abstained vs answered (95% CI)")
    ax.legend()
    return ax
