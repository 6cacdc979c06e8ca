"""Attribution views: coloured text, top tokens, deletion curves, layer correlation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..interpret.attribution import Attribution, deletion_area, to_words

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

__all__ = ['attribution_html', 'plot_deletion_curves', 'plot_layer_correlation', 'plot_top_tokens']


# Views ------------------------------------------------------------------------------------------

def _shade(value: float, scale: float) -> str:
    """A diverging colour: red pushes the target up, blue pushes it down."""
    strength = 0.0 if not scale else min(1.0, abs(value) / scale)
    red, blue = (255, int(255 * (1 - strength)), int(255 * (1 - strength))), \
        (int(255 * (1 - strength)), int(255 * (1 - 0.6 * strength)), 255)
    r, g, b = red if value > 0 else blue
    return f"rgb({r},{g},{b})"


def attribution_html(attr, *, gold: list | None = None, plausible: list | None = None) -> str:
    """The question and the context with each word shaded by its attribution (red: pushes the
    target up; blue: down; white: nothing). The best span is boxed, the gold answer underlined in
    green and a plausible answer (``[(start, text)]``) in orange.

    ``attr``: an :class:`Attribution` (shown in words) or a :class:`ContextAttribution`.
    """
    import html as h

    if isinstance(attr, Attribution):
        words = to_words(attr)
        frame = pd.DataFrame({"kind": words.kinds, "start": words.offsets[:, 0], "end": words.offsets[:, 1],
                              "score": words.scores})
        frame = frame[frame["kind"] != "special"]
        title = f"{attr.method.replace('_', ' ')} · target {attr.target} · window {attr.window + 1} of {attr.n_windows}"
    else:
        frame = attr.words
        words = attr.per_window[attr.best_window]  # the best span lies in the best span's window
        title = f"{attr.method.replace('_', ' ')} · target {attr.target} · {len(attr.per_window)} window(s), merged ({attr.merge})"
    span = words.span_tokens
    best = (int(words.offsets[span[0]][0]), int(words.offsets[span[1]][1])) if span else None
    scale = float(frame["score"].abs().max()) if len(frame) else 0.0
    marks = {"gold": [(s, s + len(t)) for s, t in (gold or [])],
             "plausible": [(s, s + len(t)) for s, t in (plausible or [])]}

    def render(kind: str, text: str) -> str:
        part = frame[frame["kind"] == kind].sort_values("start")
        pieces, cursor = [], 0
        for row in part.itertuples():
            pieces.append(h.escape(text[cursor:row.start]))
            style = [f"background:{_shade(row.score, scale)}"]
            if kind == "context":
                if best and best[0] <= row.start and row.end <= best[1]:
                    style.append("outline:2px solid #333")
                if any(s <= row.start and row.end <= e for s, e in marks["gold"]):
                    style.append("border-bottom:3px solid #2b8a3e")
                elif any(s <= row.start and row.end <= e for s, e in marks["plausible"]):
                    style.append("border-bottom:3px solid #f08c00")
            pieces.append(f'<span title="{row.score:+.3f}" style="{";".join(style)}">'
                          f"{h.escape(text[row.start:row.end])}</span>")
            cursor = row.end
        pieces.append(h.escape(text[cursor:]))
        return "".join(pieces)

    question = attr.question
    legend = ("<span style='background:rgb(255,80,80);padding:0 4px'>pushes up</span> "
              "<span style='background:rgb(80,150,255);padding:0 4px'>pushes down</span> "
              "<span style='outline:2px solid #333;padding:0 4px'>best span</span> "
              "<span style='border-bottom:3px solid #2b8a3e'>gold</span> "
              "<span style='border-bottom:3px solid #f08c00'>plausible</span>")
    return (f'<div style="font-family:sans-serif;max-width:60em;border:1px solid #ddd;padding:8px">'
            f"<div><b>{h.escape(title)}</b> · {legend}</div>"
            f"<p><b>Q:</b> {render('question', question)}</p>"
            f'<p style="line-height:1.7">{render("context", attr.context)}</p></div>')


def plot_top_tokens(attr, *, ax=None, top: int = 12) -> Axes:
    """The ``top`` words with the largest |attribution|, signed bars (red up, blue down)."""
    import matplotlib.pyplot as plt

    if isinstance(attr, Attribution):
        words = to_words(attr)
        frame = pd.DataFrame({"text": words.tokens, "kind": words.kinds, "score": words.scores})
        frame = frame[frame["kind"] != "special"]
        target, method = attr.target, attr.method
    else:
        frame, target, method = attr.words, attr.target, attr.method
    picked = frame.reindex(frame["score"].abs().sort_values(ascending=False).index[:top])[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(picked) + 1.2))
    colors = ["#c44e52" if v > 0 else "#4c72b0" for v in picked["score"]]
    ax.barh(range(len(picked)), picked["score"], color=colors)
    ax.set_yticks(range(len(picked)), [f"{t} ({k[0]})" for t, k in zip(picked["text"], picked["kind"])], fontsize=8)
    ax.axvline(0, color="#888888", linewidth=0.8)
    ax.set_xlabel(f"attribution to {target} ({method.replace('_', ' ')})")
    ax.set_title(f"Top {len(picked)} words (q: question, c: context)")
    return ax


def plot_deletion_curves(curves: dict, *, ax=None) -> Axes:
    """Deletion curves, ``{label: deletion_curve(...)}`` (e.g. one per method): the change of the
    target as the top-k words are deleted, solid; random deletions, dotted; area in the legend."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    target = None
    for label, curve in curves.items():
        target = curve["target"].iloc[0] if "target" in curve and len(curve) else target
        areas = deletion_area(curve)
        for order, style in (("attribution", "-o"), ("random", ":")):
            part = curve[curve["order"] == order]
            area = areas.get(order, float("nan"))
            name = f"{label}: top attributed first (area {area:+.2f})" if order == "attribution" else \
                f"{label}: random words (area {area:+.2f})"
            ax.plot(part["k"], part["change"], style, label=name, markersize=3)
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xlabel("context words deleted")
    ax.set_ylabel(f"change of {'the best span score' if target == 'span' else 'the null odds'}")
    ax.set_title("Deletion curves: does removing the attributed words matter more than random ones?")
    ax.legend(fontsize=7)
    return ax


def plot_layer_correlation(frame: pd.DataFrame, *, ax=None) -> Axes:
    """Spearman correlation between attention received from the span and |attribution|, per layer;
    ``frame`` has ``layer`` and ``spearman`` (one row per question and layer: mean and spread)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    grouped = frame.groupby("layer")["spearman"]
    mean, low, high, n = grouped.mean(), grouped.quantile(0.1), grouped.quantile(0.9), grouped.count()
    ax.plot(mean.index, mean.values, "o-", label="mean over questions")
    if n.max() > 1:
        ax.fill_between(mean.index, low.values, high.values, alpha=0.2, label="10th–90th percentile")
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xticks(list(mean.index))
    ax.set_xlabel("layer")
    ax.set_ylabel("Spearman ρ (attention from span, |attribution|)")
    ax.set_title(f"Attention vs attribution by layer (n={int(n.max())} question(s))")
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=8)
    return ax
