"""Attention of an extractive QA model: extraction for one question, per-head statistics over
many, and the views that show them (matplotlib, offline, savable as PNG/SVG).

transformers 5 returns attention weights only with ``attn_implementation="eager"``;
:func:`eager_attention` switches a model to it for the duration and restores it after. Every
forward pass goes through :func:`xdanalysis.inference.forward_windows` (device handled there).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._common import check_choice
from .decoding import DECODING_DEFAULTS, Window, decode_question
from .inference import eager_attention, forward_windows, prepare_windows

__all__ = [
    "Attention",
    "eager_attention",
    "get_attention",
    "locate",
    "Located",
    "word_groups",
    "word_layout",
    "WordLayout",
    "to_words",
    "STATISTICS",
    "head_statistics_of",
    "head_statistics",
    "summarize_head_statistics",
    "crop_indices",
    "question_to_context",
    "plot_head_grid",
    "plot_head",
    "plot_question_to_context",
    "plot_head_statistics",
    "plot_statistic_difference",
    "plot_cls_by_layer",
]

STATISTICS = ["cls", "sep", "self", "previous", "next", "punctuation", "entropy"]


@dataclass
class Attention:
    """One window's attention. ``attentions``: ``[layers, heads, seq, seq]`` (rows attend to columns).

    ``kinds`` is ``special``, ``question`` or ``context`` per token; ``offsets`` are character
    offsets into the question or the context (``-1`` for special tokens). ``gold_tokens`` and
    ``predicted_tokens`` are inclusive token spans in this window, or None; ``predicted_tokens``
    is the model's best span, which it did not give as its answer when ``abstained`` is True.
    ``cls_index`` is where [CLS] sits (first for BERT, last for XLNet).
    """

    tokens: list
    kinds: list
    offsets: np.ndarray
    attentions: np.ndarray
    window: int
    n_windows: int
    question: str
    context: str
    gold_tokens: tuple | None = None
    predicted_tokens: tuple | None = None
    answer: str = ""
    cls_index: int = 0
    abstained: bool = False
    null_odds: float = float("nan")

    @property
    def prediction_label(self) -> str:
        """What the blue span is: the prediction, or the best span the model abstained from."""
        return "best span (abstained)" if self.abstained else "prediction"


def _char_span_to_tokens(offsets: np.ndarray, kinds: list, start: int, end: int):
    inside = [i for i, (k, (s, e)) in enumerate(zip(kinds, offsets)) if k == "context" and s < end and start < e]
    return (inside[0], inside[-1]) if inside else None


@dataclass
class Located:
    """One question tokenised, run and decoded, with the window chosen for a closer look: what
    :func:`get_attention` and :func:`xdanalysis.attribution.attribute` share."""

    windows: object
    decoded: dict
    window: int
    tokens: list
    kinds: list
    offsets: np.ndarray
    gold_tokens: tuple | None
    predicted_tokens: tuple | None


def locate(model, tokenizer, question: str, context: str, *, window: int | None = None, gold: list | None = None,
           prefer: str = "prediction", max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
           doc_stride: int = DECODING_DEFAULTS["doc_stride"],
           max_query_length: int = DECODING_DEFAULTS["max_query_length"],
           null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"]) -> Located:
    """Tokenise one question into windows, run every window (one pass), decode, and pick the window:
    ``window`` if given, else the one holding the predicted best span, or with ``prefer="gold"``
    (and ``gold``, a list of ``(answer_start, text)``) the first window holding the gold answer."""
    check_choice("prefer", prefer, ["prediction", "gold"])
    table = pd.DataFrame({"question": [question], "context": [context]})
    windows = prepare_windows(table, tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length)
    outputs = forward_windows(model, windows, range(len(windows)))
    decoded = decode_question(context, [Window(o, out.start_logits, out.end_logits, cls) for o, out, cls in
                                        zip(windows.offsets, outputs, windows.cls_index)],
                              null_score_diff_threshold=null_score_diff_threshold)
    if window is None:
        window = decoded["best_window"]
        if prefer == "gold" and gold:
            start, text = gold[0]
            for i, offsets in enumerate(windows.offsets):
                in_context = offsets[:, 0] >= 0
                if in_context.any() and offsets[in_context, 0].min() <= start and \
                        start + len(text) <= offsets[in_context, 1].max():
                    window = i
                    break
    if not 0 <= window < len(windows):
        raise IndexError(f"window {window} does not exist: this question has {len(windows)} window(s)")
    kinds = windows.kinds[window]
    is_context = np.array([k == "context" for k in kinds])[:, None]
    offsets = np.where(is_context, windows.offsets[window], windows.question_offsets[window])
    gold_tokens = None
    if gold:
        start, text = gold[0]
        gold_tokens = _char_span_to_tokens(offsets, kinds, start, start + len(text))
    predicted = None
    if decoded["best_span_text"] and decoded["best_window"] == window:
        predicted = _char_span_to_tokens(offsets, kinds, decoded["answer_start"], decoded["answer_end"])
    return Located(windows=windows, decoded=decoded, window=window,
                   tokens=tokenizer.convert_ids_to_tokens(windows.input_ids[window]), kinds=kinds, offsets=offsets,
                   gold_tokens=gold_tokens, predicted_tokens=predicted)


def get_attention(model, tokenizer, question: str, context: str, *, window: int | None = None,
                  gold: list | None = None, prefer: str = "prediction",
                  max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                  doc_stride: int = DECODING_DEFAULTS["doc_stride"],
                  max_query_length: int = DECODING_DEFAULTS["max_query_length"],
                  null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"]) -> Attention:
    """Attention of every layer and head for one question.

    ``window``: which window; by default the one holding the predicted answer, or with
    ``prefer="gold"`` (and ``gold``, a list of ``(answer_start, text)``) the first window that
    holds the gold answer. Predictions are those of the model as it is (tested unchanged): one
    pass over every window for the logits, then the chosen window again for its attention.

    Example::

        att = get_attention(model, tokenizer, "Who built it?", "Gustave Eiffel built the tower.")
        att.attentions.shape   # (layers, heads, tokens, tokens)
    """
    found = locate(model, tokenizer, question, context, window=window, gold=gold, prefer=prefer,
                   max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length,
                   null_score_diff_threshold=null_score_diff_threshold)
    windows, decoded = found.windows, found.decoded
    attentions = forward_windows(model, windows, [found.window], attentions=True)[0].attentions
    return Attention(tokens=found.tokens, kinds=found.kinds, offsets=found.offsets,
                     attentions=attentions, window=found.window, n_windows=len(windows), question=windows.questions[0],
                     context=context, gold_tokens=found.gold_tokens, predicted_tokens=found.predicted_tokens,
                     answer=decoded["answer"], cls_index=windows.cls_index[found.window],
                     abstained=decoded["answer"] == "" and bool(decoded["best_span_text"]),
                     null_odds=float(decoded["null_odds"]))


def word_groups(kinds: list, offsets, question: str, context: str) -> list[list[int]]:
    """Token indices grouped into words: pieces belong to one word when they touch (one ends where
    the next starts) with letters or digits on both sides of the seam ("gus|tave", not "who|?").
    Special tokens stay alone.

    >>> word_groups(["special", "context", "context", "context"], [[-1, -1], [0, 3], [3, 6], [6, 7]], "", "gustav.")
    [[0], [1, 2], [3]]
    """
    def text(kind):
        return context if kind == "context" else question

    groups, previous = [], None
    for i, (kind, (start, end)) in enumerate(zip(kinds, offsets)):
        joined = (previous is not None and kind != "special" and kinds[previous] == kind
                  and offsets[previous][1] == start and 0 < start < len(text(kind))
                  and text(kind)[start - 1].isalnum() and text(kind)[start].isalnum())
        if joined:
            groups[-1].append(i)
        else:
            groups.append([i])
        previous = i
    return groups


@dataclass
class WordLayout:
    """Tokens grouped into words (:func:`word_groups`): each word's text, kind and character offsets,
    and ``index`` from a token to its word."""

    groups: list
    texts: list
    kinds: list
    offsets: np.ndarray
    index: dict

    def span(self, span):
        """A token span ``(first, last)`` as the span of the words holding them (None stays None)."""
        return None if span is None else (self.index[span[0]], self.index[span[1]])


def word_layout(tokens: list, kinds: list, offsets, question: str, context: str) -> WordLayout:
    """The words of a window's tokens, shared by the attention and the attribution views."""
    groups = word_groups(kinds, offsets, question, context)

    def text_of(members):
        kind = kinds[members[0]]
        if kind == "special":
            return tokens[members[0]]
        source = context if kind == "context" else question
        return source[offsets[members[0]][0]: offsets[members[-1]][1]]

    return WordLayout(groups=groups, texts=[text_of(g) for g in groups], kinds=[kinds[g[0]] for g in groups],
                      offsets=np.array([[offsets[g[0]][0], offsets[g[-1]][1]] for g in groups], dtype=np.int64),
                      index={t: w for w, members in enumerate(groups) for t in members})


def to_words(att: Attention) -> Attention:
    """Aggregate sub-word pieces into words: attention *to* a word is the sum over its pieces,
    attention *from* a word the mean over its pieces (so rows still sum to one).

    Pieces belong to one word when they touch (one ends where the next starts) with letters or
    digits on both sides of the seam.
    """
    layout = word_layout(att.tokens, att.kinds, att.offsets, att.question, att.context)
    n, m = len(att.tokens), len(layout.groups)
    to_word = np.zeros((n, m), dtype=np.float32)
    for w, members in enumerate(layout.groups):
        to_word[members, w] = 1.0
    from_word = to_word / to_word.sum(axis=0, keepdims=True)
    attentions = from_word.T @ att.attentions @ to_word  # rows averaged, columns summed
    return replace(att, tokens=layout.texts, kinds=layout.kinds, offsets=layout.offsets, attentions=attentions,
                   gold_tokens=layout.span(att.gold_tokens), predicted_tokens=layout.span(att.predicted_tokens),
                   cls_index=layout.index[att.cls_index])


def _is_punctuation(token: str) -> bool:
    token = token.removeprefix("##").removeprefix("Ġ").removeprefix("▁")
    return bool(token) and all(ch in string.punctuation for ch in token)


def head_statistics_of(attentions: np.ndarray, tokens: list, *, cls_index: int = 0,
                       special_tokens=("[SEP]", "</s>", "<sep>")) -> dict:
    """Per-head statistics of one window (Clark et al. 2019), each a ``[layers, heads]`` array.

    ``cls``: mean attention to [CLS] (at ``cls_index``: 0 for BERT, the last token for XLNet);
    ``sep``: to separator tokens; ``self``: to the
    token itself; ``previous`` / ``next``: to the neighbouring token; ``punctuation``: to
    punctuation tokens; ``entropy``: of each row's distribution (nats). Averages are over rows.

    >>> a = np.full((1, 1, 2, 2), 0.5)
    >>> {k: float(v[0, 0]) for k, v in head_statistics_of(a, ["[CLS]", "x"]).items()}["entropy"] == float(np.log(2))
    True
    """
    attentions = np.asarray(attentions, dtype=np.float64)
    seq = attentions.shape[-1]
    sep = np.array([t in special_tokens for t in tokens])
    punctuation = np.array([_is_punctuation(t) for t in tokens])
    diagonal = np.einsum("lhii->lhi", attentions)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(attentions > 0, attentions * np.log(attentions), 0.0)
    return {
        "cls": attentions[..., :, cls_index].mean(axis=-1),
        "sep": attentions[..., :, sep].sum(axis=-1).mean(axis=-1),
        "self": diagonal.mean(axis=-1),
        "previous": (np.einsum("lhii->lhi", attentions[..., 1:, :-1]).mean(axis=-1) if seq > 1
                     else np.zeros(attentions.shape[:2])),
        "next": (np.einsum("lhii->lhi", attentions[..., :-1, 1:]).mean(axis=-1) if seq > 1
                 else np.zeros(attentions.shape[:2])),
        "punctuation": attentions[..., :, punctuation].sum(axis=-1).mean(axis=-1),
        "entropy": (-plogp.sum(axis=-1)).mean(axis=-1),
    }


def head_statistics(run, model, tokenizer, *, ids=None, batch_size: int = 8, max_seq_length: int | None = None,
                    doc_stride: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Per-question head statistics over many questions, in batches (no full tensors kept).

    Uses each question's best window (the run's ``best_window``). Returns a tidy DataFrame
    ``(id, layer, head, statistic, value)``; see :func:`summarize_head_statistics`.

    Example::

        stats = head_statistics(run, model, tokenizer, ids=examples(table, outcome="false_answer")["id"])
    """
    from tqdm.auto import tqdm

    table = run.table if ids is None else run.table[run.table["id"].isin(set(ids))]
    table = table.reset_index(drop=True)
    settings = getattr(run, "info", {}).get("settings", {})
    windows = prepare_windows(
        table, tokenizer,
        max_seq_length=max_seq_length or settings.get("max_seq_length", DECODING_DEFAULTS["max_seq_length"]),
        doc_stride=doc_stride or settings.get("doc_stride", DECODING_DEFAULTS["doc_stride"]),
        max_query_length=settings.get("max_query_length", DECODING_DEFAULTS["max_query_length"]))
    seen: dict[int, int] = {}
    chosen = []
    for w, q in enumerate(windows.question_index):
        position = seen.get(q, 0)
        seen[q] = position + 1
        if position == int(table.loc[q, "best_window"]):
            chosen.append(w)
    records = []
    for begin in tqdm(range(0, len(chosen), batch_size), desc="attention", unit="batch", disable=not progress):
        batch = chosen[begin: begin + batch_size]
        for w, output in zip(batch, forward_windows(model, windows, batch, attentions=True)):
            stats = head_statistics_of(output.attentions, tokenizer.convert_ids_to_tokens(windows.input_ids[w]),
                                       cls_index=windows.cls_index[w])
            qid = table.loc[windows.question_index[w], "id"]
            for name, values in stats.items():
                layers, heads = np.indices(values.shape)
                records.append(pd.DataFrame({"id": qid, "layer": layers.ravel(), "head": heads.ravel(),
                                             "statistic": name, "value": values.ravel()}))
    if not records:
        return pd.DataFrame(columns=["id", "layer", "head", "statistic", "value"])
    return pd.concat(records, ignore_index=True)


def summarize_head_statistics(per_question: pd.DataFrame, n_boot: int = 200, seed: int = 0,
                              level: float = 0.95) -> pd.DataFrame:
    """Mean of each (layer, head, statistic) over questions, with a bootstrap interval over
    questions and the number of questions ``n``."""
    if per_question.empty:
        raise ValueError("no questions to summarise: the slice is empty")
    from .errors import bootstrap_interval

    pivot = per_question.pivot_table(index="id", columns=["statistic", "layer", "head"], values="value")
    values = pivot.to_numpy()
    low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed, level=level)
    frame = pd.DataFrame({"mean": values.mean(axis=0), "low": low, "high": high},
                         index=pivot.columns).reset_index()
    frame["n"] = len(values)
    return frame


def crop_indices(att: Attention, around: int = 12) -> np.ndarray:
    """Token indices worth showing: special and question tokens, and the context within
    ``around`` tokens of the gold and predicted spans (the whole context if neither is known)."""
    keep = {i for i, k in enumerate(att.kinds) if k != "context"}
    spans = [s for s in (att.gold_tokens, att.predicted_tokens) if s is not None]
    context = [i for i, k in enumerate(att.kinds) if k == "context"]
    if not spans:
        return np.array(sorted(keep | set(context)))
    for start, end in spans:
        keep.update(i for i in context if start - around <= i <= end + around)
    return np.array(sorted(keep))


def question_to_context(att: Attention, layer: int | None = None, head: int | None = None) -> np.ndarray:
    """Attention each context token receives from the question tokens (mean over question rows;
    over all layers and/or heads when ``layer``/``head`` is None). Zero outside the context."""
    attentions = att.attentions
    attentions = attentions if layer is None else attentions[layer: layer + 1]
    attentions = attentions if head is None else attentions[:, head: head + 1]
    rows = np.array([k == "question" for k in att.kinds])
    columns = np.array([k == "context" for k in att.kinds])
    received = attentions[:, :, rows, :].mean(axis=(0, 1, 2))
    return np.where(columns, received, 0.0)


# Views: one focused job each, matplotlib only.

def _token_labels(att: Attention, indices) -> list:
    return [att.tokens[i] for i in indices]


def _span_color(att: Attention, i: int):
    in_gold = att.gold_tokens is not None and att.gold_tokens[0] <= i <= att.gold_tokens[1]
    in_pred = att.predicted_tokens is not None and att.predicted_tokens[0] <= i <= att.predicted_tokens[1]
    return "purple" if in_gold and in_pred else "green" if in_gold else "blue" if in_pred else "black"


def plot_head_grid(att: Attention, ax=None, max_tokens: int = 96):
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


def plot_head(att: Attention, layer: int, head: int, crop: bool = True, around: int = 12, ax=None):
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
    ax.set_xlabel(f"attended token (gold answer green, {att.prediction_label} blue)")
    ax.set_ylabel("attending token")
    ax.set_title(f"Layer {layer}, head {head}" + (" (cropped)" if crop and len(indices) < len(att.tokens) else ""))
    ax.figure.colorbar(image, ax=ax, fraction=0.03, label="attention weight")
    return ax


def plot_question_to_context(att: Attention, layer: int | None = None, head: int | None = None, ax=None,
                             per_row: int = 14):
    """View 3: the context, each token shaded by the attention it receives from the question
    (one head, one layer, or averaged); gold answer boxed green, prediction underlined blue."""
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
        if color in ("green", "purple"):
            ax.add_patch(plt.Rectangle((x, y), 0.96, 0.8, fill=False, edgecolor="green", linewidth=2))
        if color in ("blue", "purple"):
            ax.plot([x + 0.05, x + 0.91], [y + 0.05, y + 0.05], color="blue", linewidth=2)
        ax.text(x + 0.48, y + 0.4, att.tokens[i], ha="center", va="center", fontsize=7)
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, rows)
    ax.axis("off")
    where = ("all layers and heads" if layer is None and head is None else
             f"layer {layer}, all heads" if head is None else
             f"all layers, head {head}" if layer is None else f"layer {layer}, head {head}")
    ax.set_title(f"Attention from the question to each context token ({where}; darker = more; "
                 f"gold boxed green, {att.prediction_label} underlined blue)", fontsize=9)
    return ax


def plot_head_statistics(stats, figure=None, title: str = "", colorbars: bool = True):
    """View 4: a layers x heads heatmap for each statistic.

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
    # constrained layout keeps each colour bar's ticks off the next panel and the title off the panels
    figure = figure or plt.figure(figsize=(3.4 * len(names), 3.4), layout="constrained")
    for ax, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
        values = np.asarray(stats[name])
        image = ax.imshow(values, cmap="magma", interpolation="nearest", aspect="auto")
        ax.set_title(name if colorbars else f"{name} ({values.min():.2f} dark – {values.max():.2f} light)",
                     fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        if colorbars:
            bar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
            bar.ax.tick_params(labelsize=7)
            bar.locator = MaxNLocator(4)
            bar.update_ticks()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title or "Per-head attention statistics (mean attention to ..., entropy in nats)", fontsize=10)
    return figure


def plot_statistic_difference(summary_a: pd.DataFrame, summary_b: pd.DataFrame, statistic: str = "cls",
                              labels=("A", "B"), ax=None):
    """Slice comparison: mean statistic of slice A minus slice B, per layer x head, with the counts."""
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
    ax.set_title(f"{statistic}: {labels[0]} (n={int(summary_a['n'].iloc[0])}) minus "
                 f"{labels[1]} (n={int(summary_b['n'].iloc[0])})", fontsize=9)
    ax.figure.colorbar(image, ax=ax, label=f"difference in {statistic}")
    return ax


def plot_cls_by_layer(per_question: pd.DataFrame, table: pd.DataFrame, ax=None, n_boot: int = 200, seed: int = 0):
    """View 5: attention to [CLS] per layer (mean over heads) for abstained vs answered questions,
    with bootstrap 95% intervals: SQuAD 2.0 models predict "no answer" at [CLS]."""
    import matplotlib.pyplot as plt

    from .errors import bootstrap_ci

    cls = per_question[per_question["statistic"] == "cls"].groupby(["id", "layer"])["value"].mean().unstack()
    abstained = table.set_index("id").loc[cls.index, "answer"].eq("")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    for flag, label, color in ((True, "abstained", "#c44e52"), (False, "answered", "#4c72b0")):
        part = cls[abstained.to_numpy() == flag]
        if part.empty:
            continue
        means = part.mean(axis=0)
        intervals = np.array([bootstrap_ci(part[c].to_numpy(), n_boot, seed) for c in part.columns])
        ax.plot(means.index, means.values, "o-", color=color, label=f"{label} (n={len(part)})")
        ax.fill_between(means.index, intervals[:, 0], intervals[:, 1], color=color, alpha=0.2)
    ax.set_xlabel("layer")
    ax.set_ylabel("mean attention to [CLS]")
    ax.set_title("Attention to [CLS], abstained vs answered (95% CI)")
    ax.legend()
    return ax
