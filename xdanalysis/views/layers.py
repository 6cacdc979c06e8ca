"""Inside the model: accuracy by layer, one question's answer forming, CKA maps, patching (data in, figure out)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['plot_cka_map', 'plot_layer_accuracy', 'plot_layer_distributions', 'plot_patching']


def plot_layer_accuracy(per_layer, *, ax=None) -> Axes:
    """F1 by layer, answerable (solid) and unanswerable (dashed), for one lens's ``per_layer`` or
    ``{label: per_layer}`` (teacher and student, logit and tuned lens) side by side."""
    import matplotlib.pyplot as plt

    if isinstance(per_layer, pd.DataFrame):
        per_layer = {"model": per_layer}
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4))
    for k, (label, frame) in enumerate(per_layer.items()):
        ax.plot(frame["layer"], frame["HasAns_F1"], "o-", color=f"C{k}", label=f"{label}: answerable F1")
        ax.plot(frame["layer"], frame["NoAns_F1"], "s--", color=f"C{k}", label=f"{label}: unanswerable (abstained)")
    ax.set_xlabel("layer the QA head reads (0 = the embeddings)")
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 105)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Where the answer forms: the head applied at every layer")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # beside, over no line
    return ax


def plot_layer_distributions(distributions: pd.DataFrame, tokens, *, ax=None, title: str = "", top: int = 40) -> Axes:
    """One question's start (or end) distribution at every layer (rows) over its window's tokens
    (columns): the ``top`` tokens with the most probability at any layer, in text order."""
    import matplotlib.pyplot as plt

    keep = np.sort(np.argsort(distributions.max(axis=0).to_numpy())[::-1][:top])
    values = distributions.to_numpy()[:, keep]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(7, 0.28 * len(keep) + 2), 0.4 * len(values) + 2))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(keep)), [tokens[i] for i in keep], rotation=70, ha="right", rotation_mode="anchor",
                  fontsize=7)
    ax.set_yticks(range(len(values)))
    ax.set_ylabel("layer")
    ax.set_xlabel(f"tokens (the {len(keep)} most probable at any layer, in text order)")
    ax.set_title(title or "The start distribution, layer by layer", fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="probability", fraction=0.03)
    return ax


def plot_cka_map(similarity, *, ax=None) -> Axes:
    """Linear CKA between every layer of two models: a :class:`~xdanalysis.interpret.representations.CKAMap`
    (:func:`~xdanalysis.interpret.representations.cka_map`), or its matrix."""
    import matplotlib.pyplot as plt

    frame, tokens = getattr(similarity, "matrix", similarity), getattr(similarity, "tokens", None)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * frame.shape[1] + 2.5, 0.45 * frame.shape[0] + 1.8))
    image = ax.imshow(frame.to_numpy(), cmap="magma", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(frame.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if value > 0.6 else "white")
    ax.set_xticks(range(frame.shape[1]))
    ax.set_yticks(range(frame.shape[0]))
    ax.set_xlabel(frame.columns.name or "layer")
    ax.set_ylabel(frame.index.name or "layer")
    over = f"{tokens} tokens; " if tokens is not None else ""
    ax.set_title(f"Linear CKA between layers ({over}1 = the same representation)", fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="CKA", fraction=0.04)
    return ax


def plot_patching(summary: pd.DataFrame, *, ax=None) -> Axes:
    """The share of the gap in null odds that patching each layer restores, per site, with 95%
    intervals over pairs (:func:`xdanalysis.interpret.patching.patching_summary`)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4))
    for k, (site, part) in enumerate(summary.groupby("site", sort=False)):
        errors = np.vstack([part["restored"] - part["restored_low"], part["restored_high"] - part["restored"]])
        ax.errorbar(part["layer"] + 0.08 * (k - 1), part["restored"], yerr=np.nan_to_num(errors), fmt="o-",
                    capsize=3, label=f"{site} (n={int(part['pairs'].max())} pairs)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(1, color="gray", linestyle=":", linewidth=1, label="the whole decision")
    ax.set_xlabel("layer whose output is patched from the rewrite")
    ax.set_ylabel("share of the null-odds gap restored")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Which layers carry the decision to abstain (activation patching)", fontsize=10)
    ax.legend(fontsize=7)
    return ax
