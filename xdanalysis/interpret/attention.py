"""Attention of an extractive QA model: extraction for one question, per-head statistics over
many, and the views that show them (matplotlib, offline, savable as PNG/SVG).

transformers 5 returns attention weights only with ``attn_implementation="eager"``;
:func:`eager_attention` switches a model to it for the duration and restores it after. Every
forward pass goes through :func:`xdanalysis.model.forward.forward_windows` (device handled there).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..core.common import check_choice, progress_bar
from ..core.decoding import Window, decode_question
from ..core.settings import DecodingSettings, WindowSettings
from ..core.stats import bootstrap_ci
from ..core.text import word_layout
from ..model.forward import forward_windows
from ..model.predict import question_windows
from ..model.windows import prepare_windows

__all__ = ['STATISTICS', 'Attention', 'Located', 'cls_by_layer', 'crop_indices', 'get_attention', 'head_differences',
           'head_statistics', 'head_statistics_of', 'locate', 'question_to_context', 'summarize_head_statistics',
           'to_words']


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
    :func:`get_attention` and :func:`xdanalysis.interpret.attribution.attribute` share."""

    windows: object
    decoded: dict
    window: int
    tokens: list
    kinds: list
    offsets: np.ndarray
    gold_tokens: tuple | None
    predicted_tokens: tuple | None


def locate(model, tokenizer, question: str, context: str, *, window: int | None = None, gold: list | None = None,
           prefer: str = "prediction", windowing: WindowSettings = WindowSettings(),
           decoding: DecodingSettings = DecodingSettings()) -> Located:
    """Tokenise one question into windows, run every window (one pass), decode, and pick the window:
    ``window`` if given, else the one holding the predicted best span, or with ``prefer="gold"``
    (and ``gold``, a list of ``(answer_start, text)``) the first window holding the gold answer."""
    check_choice("prefer", prefer, ["prediction", "gold"])
    windows, outputs = question_windows(model, tokenizer, question, context, windowing)
    decoded = decode_question(context, [Window(o, out.start_logits, out.end_logits, cls) for o, out, cls in
                                        zip(windows.offsets, outputs, windows.cls_index)],
                              decoding=decoding)
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
                  windowing: WindowSettings = WindowSettings(),
                  decoding: DecodingSettings = DecodingSettings()) -> Attention:
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
                   windowing=windowing, decoding=decoding)
    windows, decoded = found.windows, found.decoded
    attentions = forward_windows(model, windows, [found.window], attentions=True)[0].attentions
    return Attention(tokens=found.tokens, kinds=found.kinds, offsets=found.offsets,
                     attentions=attentions, window=found.window, n_windows=len(windows), question=windows.questions[0],
                     context=context, gold_tokens=found.gold_tokens, predicted_tokens=found.predicted_tokens,
                     answer=decoded["answer"], cls_index=windows.cls_index[found.window],
                     abstained=decoded["answer"] == "" and bool(decoded["best_span_text"]),
                     null_odds=float(decoded["null_odds"]))


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


def head_statistics(run, model, tokenizer, *, ids=None, batch_size: int = 8, windowing: WindowSettings | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """Per-question head statistics over many questions, in batches (no full tensors kept).

    Uses each question's best window (the run's ``best_window``), windowed as the run was unless
    ``windowing`` says otherwise. Returns a tidy DataFrame
    ``(id, layer, head, statistic, value)``; see :func:`summarize_head_statistics`.

    Example::

        stats = head_statistics(run, model, tokenizer, ids=examples(table, outcome="false_answer")["id"])
    """

    table = run.table if ids is None else run.table[run.table["id"].isin(set(ids))]
    table = table.reset_index(drop=True)
    windows = prepare_windows(table, tokenizer, windowing or run.windowing)
    seen: dict[int, int] = {}
    chosen = []
    for w, q in enumerate(windows.question_index):
        position = seen.get(q, 0)
        seen[q] = position + 1
        if position == int(table.loc[q, "best_window"]):
            chosen.append(w)
    records = []
    for begin in progress_bar(range(0, len(chosen), batch_size), desc="attention", unit="batch", disable=not progress):
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
    from ..core.stats import bootstrap_interval

    pivot = per_question.pivot_table(index="id", columns=["statistic", "layer", "head"], values="value")
    values = pivot.to_numpy()
    low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed, level=level)
    frame = pd.DataFrame({"mean": values.mean(axis=0), "low": low, "high": high},
                         index=pivot.columns).reset_index()
    frame["n"] = len(values)
    return frame


def head_differences(per_question_a: pd.DataFrame, per_question_b: pd.DataFrame, *, n_boot: int = 200,
                     seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Slice A minus slice B per (statistic, layer, head), from two :func:`head_statistics` frames (different
    questions): the difference of means, its interval from resampling each slice's questions on its own
    (``low``, ``high``), and ``excludes_zero``. With 72 heads about 5% of the intervals exclude 0 by chance
    alone: read a handful of marked heads as noise unless they are many more than that.

    >>> a = pd.DataFrame({"id": ["q1", "q2"], "layer": 0, "head": 0, "statistic": "cls", "value": [0.9, 0.8]})
    >>> b = pd.DataFrame({"id": ["q3", "q4"], "layer": 0, "head": 0, "statistic": "cls", "value": [0.1, 0.2]})
    >>> row = head_differences(a, b, n_boot=50).iloc[0]
    >>> round(float(row["difference"]), 2), bool(row["excludes_zero"])
    (0.7, True)
    """
    from ..core.stats import bootstrap_means

    pivots = [p.pivot_table(index="id", columns=["statistic", "layer", "head"], values="value")
              for p in (per_question_a, per_question_b)]
    if any(p.empty for p in pivots):
        raise ValueError("no questions to compare: a slice is empty")
    columns = pivots[0].columns.intersection(pivots[1].columns)
    a, b = (p[columns].to_numpy() for p in pivots)
    spread = bootstrap_means(a, n_boot=n_boot, seed=seed) - bootstrap_means(b, n_boot=n_boot, seed=seed + 1)
    alpha = (1 - level) / 2
    frame = pd.DataFrame({"difference": a.mean(axis=0) - b.mean(axis=0),
                          "low": np.quantile(spread, alpha, axis=0), "high": np.quantile(spread, 1 - alpha, axis=0)},
                         index=columns).reset_index()
    frame["excludes_zero"] = (frame["low"] > 0) | (frame["high"] < 0)
    frame["n_a"], frame["n_b"] = len(a), len(b)
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


def cls_by_layer(per_question: pd.DataFrame, table: pd.DataFrame, *, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Attention to [CLS] per layer (mean over heads and questions) for the questions the model
    abstained on and those it answered, with bootstrap 95% intervals over questions: SQuAD 2.0
    models predict "no answer" at [CLS]. ``per_question`` is :func:`head_statistics`' frame.
    One row per (group, layer): ``group``, ``layer``, ``mean``, ``low``, ``high``, ``n``."""
    cls = per_question[per_question["statistic"] == "cls"].groupby(["id", "layer"])["value"].mean().unstack()
    abstained = table.set_index("id").loc[cls.index, "answer"].eq("").to_numpy()
    rows = []
    for flag, group in ((True, "abstained"), (False, "answered")):
        part = cls[abstained == flag]
        for layer in part.columns if len(part) else []:
            low, high = bootstrap_ci(part[layer].to_numpy(), n_boot, seed)
            rows.append({"group": group, "layer": int(layer), "mean": float(part[layer].mean()), "low": low,
                         "high": high, "n": len(part)})
    return pd.DataFrame(rows, columns=["group", "layer", "mean", "low", "high", "n"])
