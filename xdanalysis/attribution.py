"""Attribution beside attention: which input tokens drove the start, the end, the span, the null
score, or the decision itself (the null odds), computed with captum.

- :func:`attribute` explains one window (by default the one holding the best span) with
  ``LayerIntegratedGradients`` on the word-embedding layer against a [PAD] baseline that keeps the
  special tokens ([CLS], [SEP]), or with ``LayerGradientXActivation`` (gradient × input). Integrated
  gradients report their convergence delta and the completeness check: the attributions sum to
  ``target(input) − target(baseline)``.
- :func:`attribute_context` explains every window of a long context and merges them onto the
  context's words, so a 1,000-token context reads as one text.
- :func:`deletion_curve` measures faithfulness: delete the most attributed context words, re-run
  the model, and compare with deleting random words.

Targets, for the window's best span ``(s, e)`` (or the gold span) and its [CLS] ``c``:
``start`` = start[s], ``end`` = end[e], ``span`` = start[s] + end[e] (the span score), ``null`` =
start[c] + end[c] (the null score) and ``null_odds`` = null − span, the quantity that decides
between answering and abstaining (abstain when it exceeds the threshold): its attribution is the
explanation of an abstention.

Gradients are needed here, so the model runs outside :func:`xdanalysis.inference.forward_windows`
(which runs under ``inference_mode``); its inputs come from the same
:func:`xdanalysis.inference.batch_tensors`, on the model's own device and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._common import check_choice
from .attention import locate, word_layout
from .decoding import DECODING_DEFAULTS, Window, decode_question
from .inference import batch_tensors, forward_windows

__all__ = ["TARGETS", "METHODS", "Attribution", "attribute", "to_words", "ContextAttribution", "attribute_context",
           "merge_windows", "attention_attribution_correlation", "deletion_curve", "remove_words",
           "attribution_shares", "attribution_html", "plot_top_tokens", "plot_deletion_curves",
           "plot_layer_correlation", "DECISION_GROUPS", "attribution_statistics", "summarize_attribution_statistics"]

TARGETS = ["start", "end", "span", "null", "null_odds"]
METHODS = ["integrated_gradients", "gradient_x_input"]


@dataclass
class Attribution:
    """Per-token attributions of one window for one target.

    ``tokens``, ``kinds`` (``special``/``question``/``context``) and ``offsets`` (characters in the
    question or the context) as in :class:`xdanalysis.attention.Attention`; ``scores`` one value
    per token. ``target_value`` is the target on the input, ``baseline_value`` on the baseline;
    for integrated gradients ``delta`` is captum's convergence delta, and ``completeness_gap``
    is ``sum(scores) − (target_value − baseline_value)``.
    """

    tokens: list
    kinds: list
    offsets: np.ndarray
    scores: np.ndarray
    target: str
    method: str
    window: int
    n_windows: int
    question: str
    context: str
    target_value: float
    baseline_value: float
    delta: float
    span_tokens: tuple | None = None
    gold_tokens: tuple | None = None
    predicted_tokens: tuple | None = None
    answer: str = ""
    abstained: bool = False
    null_odds: float = float("nan")
    cls_index: int = 0
    n_steps: int = 0

    @property
    def completeness_gap(self) -> float:
        return float(self.scores.sum() - (self.target_value - self.baseline_value))

    def table(self) -> pd.DataFrame:
        """One row per token: token, kind, offsets, score."""
        return pd.DataFrame({"token": self.tokens, "kind": self.kinds, "start": self.offsets[:, 0],
                             "end": self.offsets[:, 1], "score": self.scores})


def _target_of(start, end, target: str, span, cls: int):
    """The target per batch row, from start/end logits ``[batch, seq]`` (torch or numpy)."""
    null = start[:, cls] + end[:, cls]
    if target == "null":
        return null
    if span is None:
        raise ValueError(f"target {target!r} needs a span, and this window holds no admissible span; "
                         "use target='null', or another window")
    s, e = span
    if target == "start":
        return start[:, s]
    if target == "end":
        return end[:, e]
    score = start[:, s] + end[:, e]
    return score if target == "span" else null - score


def _forward(model, target: str, span, cls: int):
    def forward(input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        output = model(**inputs)
        return _target_of(output.start_logits.float(), output.end_logits.float(), target, span, cls)
    return forward


def _explain_window(model, windows, window: int, *, target: str, method: str, span, n_steps: int,
                    internal_batch_size: int | None):
    """Attributions of one window's target: ``(scores, target_value, baseline_value, delta)``."""
    import torch
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    device = next(model.parameters()).device
    inputs = batch_tensors(windows, [window], device=device)
    ids = inputs["input_ids"]
    special = torch.as_tensor([k == "special" for k in windows.kinds[window]], device=device)[None, :]
    baseline = torch.where(special, ids, torch.full_like(ids, windows.pad_token_id))  # keeps [CLS] and [SEP]
    extra = (inputs["attention_mask"], inputs.get("token_type_ids"))
    forward = _forward(model, target, span, int(windows.cls_index[window]))
    layer = model.get_input_embeddings()
    with torch.enable_grad():
        if method == "integrated_gradients":
            explainer = LayerIntegratedGradients(forward, layer)
            scores, delta = explainer.attribute(ids, baselines=baseline, additional_forward_args=extra,
                                                n_steps=n_steps, internal_batch_size=internal_batch_size,
                                                return_convergence_delta=True)
            delta = float(delta.detach().float().abs().max())
        else:
            scores = LayerGradientXActivation(forward, layer).attribute(ids, additional_forward_args=extra)
            delta = float("nan")
    with torch.inference_mode():
        value = float(forward(ids, *extra)[0])
        base_value = float(forward(baseline, *extra)[0])
    return scores.detach().float().sum(-1)[0].cpu().numpy().astype(np.float64), value, base_value, delta


def attribute(model, tokenizer, question: str, context: str, *, target: str = "span",
              method: str = "integrated_gradients", n_steps: int = 50, internal_batch_size: int | None = 16,
              window: int | None = None, gold: list | None = None, prefer: str = "prediction",
              max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
              doc_stride: int = DECODING_DEFAULTS["doc_stride"],
              max_query_length: int = DECODING_DEFAULTS["max_query_length"],
              null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"]) -> Attribution:
    """Attributions over the input tokens of one window for ``target`` (see the module's docstring).

    The window is the one holding the best span, or ``window``; with ``prefer="gold"`` (and
    ``gold``, a list of ``(answer_start, text)``) the window holding the gold answer, and the span
    targets then use the gold span. ``internal_batch_size`` bounds how many interpolation steps run
    in one batch (None: all at once). Measured with the l12-h384 shape, 50 steps, 2 CPU threads:
    16 runs as fast as all 50 at once with 1.7 GB peak RSS instead of 3.9 GB
    (``benchmarks/bench_attribution.py``).

    Example::

        attr = attribute(model, tokenizer, "Who built it?", "Gustave Eiffel built the tower.", target="null_odds")
        attr.completeness_gap, attr.delta
    """
    check_choice("target", target, TARGETS)
    check_choice("method", method, METHODS)
    if n_steps < 1:
        raise ValueError(f"n_steps must be at least 1, got {n_steps}")
    found = locate(model, tokenizer, question, context, window=window, gold=gold, prefer=prefer,
                   max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length,
                   null_score_diff_threshold=null_score_diff_threshold)
    span = found.gold_tokens if prefer == "gold" and found.gold_tokens else found.predicted_tokens
    if span is None and target != "null":
        span = _window_best_span(model, found.windows, found.window, context)
    scores, value, base_value, delta = _explain_window(model, found.windows, found.window, target=target,
                                                       method=method, span=span, n_steps=n_steps,
                                                       internal_batch_size=internal_batch_size)
    decoded = found.decoded
    return Attribution(tokens=found.tokens, kinds=found.kinds, offsets=found.offsets, scores=scores, target=target,
                       method=method, window=found.window, n_windows=len(found.windows),
                       question=found.windows.questions[0], context=context, target_value=value,
                       baseline_value=base_value, delta=delta, span_tokens=span, gold_tokens=found.gold_tokens,
                       predicted_tokens=found.predicted_tokens, answer=decoded["answer"],
                       abstained=decoded["answer"] == "" and bool(decoded["best_span_text"]),
                       null_odds=float(decoded["null_odds"]), cls_index=int(found.windows.cls_index[found.window]),
                       n_steps=n_steps if method == "integrated_gradients" else 0)


def _window_best_span(model, windows, window: int, context: str):
    """The best admissible span of one window on its own, as token indices (None when it has none)."""
    out = forward_windows(model, windows, [window])[0]
    offsets = windows.offsets[window]
    decoded = decode_question(context, [Window(offsets, out.start_logits, out.end_logits,
                                               int(windows.cls_index[window]))], n_best_size=1)
    if decoded["answer_start"] < 0:
        return None
    starts = np.flatnonzero(offsets[:, 0] == decoded["answer_start"])
    ends = np.flatnonzero(offsets[:, 1] == decoded["answer_end"])
    return (int(starts[0]), int(ends[-1])) if len(starts) and len(ends) else None


def to_words(attr: Attribution) -> Attribution:
    """Word-level attributions: the sum over each word's sub-word pieces (the total is unchanged).
    Spans map to the words holding their first and last pieces."""
    layout = word_layout(attr.tokens, attr.kinds, attr.offsets, attr.question, attr.context)
    return replace(attr, tokens=layout.texts, kinds=layout.kinds, offsets=layout.offsets,
                   scores=np.array([attr.scores[g].sum() for g in layout.groups]),
                   span_tokens=layout.span(attr.span_tokens), gold_tokens=layout.span(attr.gold_tokens),
                   predicted_tokens=layout.span(attr.predicted_tokens), cls_index=layout.index[attr.cls_index])


# Across windows --------------------------------------------------------------------------------

MERGES = ["max", "best"]


def merge_windows(per_window: dict, *, merge: str = "max", best: int | None = None) -> dict:
    """Merge word attributions of several windows: ``{window: {(kind, start, end): score}}`` into
    ``{(kind, start, end): score}``. ``"max"``: the score of largest magnitude among the windows
    holding the word (its sign kept); ``"best"``: the ``best`` window's score where it holds the
    word, the ``"max"`` of the others elsewhere.

    >>> merge_windows({0: {("context", 0, 5): 0.2, ("context", 6, 9): -0.9}, 1: {("context", 6, 9): 0.5}})
    {('context', 0, 5): 0.2, ('context', 6, 9): -0.9}
    >>> merge_windows({0: {("context", 6, 9): -0.9}, 1: {("context", 6, 9): 0.5}}, merge="best", best=1)
    {('context', 6, 9): 0.5}
    """
    check_choice("merge", merge, MERGES)
    if merge == "best" and best not in per_window:
        raise ValueError(f"merge='best' needs best= one of the windows {sorted(per_window)}, got {best}")
    merged: dict = {}
    for window, scores in per_window.items():
        for key, value in scores.items():
            if key not in merged or abs(value) > abs(merged[key]):
                merged[key] = value
    if merge == "best":
        merged.update(per_window[best])
    return dict(sorted(merged.items(), key=lambda item: (item[0][0] != "question", item[0][1])))


@dataclass
class ContextAttribution:
    """Word attributions over the whole question and context, merged across windows.

    ``words``: one row per word (``kind``, ``start``, ``end``, ``text``, ``score``, ``windows``:
    how many windows hold it); ``per_window``: each window's own :class:`Attribution` (words)."""

    question: str
    context: str
    target: str
    method: str
    merge: str
    best_window: int
    words: pd.DataFrame
    per_window: dict


def attribute_context(model, tokenizer, question: str, context: str, *, target: str = "null_odds",
                      method: str = "integrated_gradients", merge: str = "max", n_steps: int = 50,
                      internal_batch_size: int | None = 16,
                      max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                      doc_stride: int = DECODING_DEFAULTS["doc_stride"],
                      max_query_length: int = DECODING_DEFAULTS["max_query_length"]) -> ContextAttribution:
    """Attribute every window of a question (each window explains its own target: its own best span
    and its own [CLS]) and merge the word attributions onto the question and context
    (:func:`merge_windows`). With one window this is :func:`attribute` in words.

    Example::

        merged = attribute_context(model, tokenizer, question, long_context, target="null_odds")
        merged.words.sort_values("score").tail(10)
    """
    check_choice("merge", merge, MERGES)
    options = {"max_seq_length": max_seq_length, "doc_stride": doc_stride, "max_query_length": max_query_length}
    first = attribute(model, tokenizer, question, context, target=target, method=method, n_steps=n_steps,
                      internal_batch_size=internal_batch_size, **options)
    per_window = {first.window: to_words(first)}
    for window in range(first.n_windows):
        if window not in per_window:
            per_window[window] = to_words(attribute(model, tokenizer, question, context, target=target, method=method,
                                                    n_steps=n_steps, internal_batch_size=internal_batch_size,
                                                    window=window, **options))
    keyed = {w: {(k, int(s), int(e)): float(v) for k, (s, e), v in zip(a.kinds, a.offsets, a.scores) if k != "special"}
             for w, a in per_window.items()}
    merged = merge_windows(keyed, merge=merge, best=first.window)
    counts = {}
    for scores in keyed.values():
        for key in scores:
            counts[key] = counts.get(key, 0) + 1
    words = pd.DataFrame([{"kind": k, "start": s, "end": e,
                           "text": (context if k == "context" else first.question)[s:e], "score": v,
                           "windows": counts[(k, s, e)]} for (k, s, e), v in merged.items()])
    return ContextAttribution(question=first.question, context=context, target=target, method=method, merge=merge,
                              best_window=first.window, words=words, per_window=per_window)


# Statistics and faithfulness --------------------------------------------------------------------

def attribution_shares(attr: Attribution, gold_sentence: tuple | None = None) -> dict:
    """Shares of the absolute attribution on question tokens, context tokens and (when given as a
    ``(start, end)`` character span of the context) the evidence sentence: the gold answer's, or
    for an unanswerable question the plausible answer's.

    >>> a = Attribution(["[CLS]", "q", "c1", "c2"], ["special", "question", "context", "context"],
    ...     np.array([[-1, -1], [0, 1], [0, 2], [3, 5]]), np.array([0.0, 1.0, -2.0, 1.0]), "span", "x", 0, 1, "q",
    ...     "c1 c2", 0.0, 0.0, 0.0)
    >>> attribution_shares(a, (0, 2))
    {'question': 0.25, 'context': 0.75, 'evidence sentence': 0.5}
    """
    weights = np.abs(attr.scores)
    total = weights.sum() or np.nan
    kinds = np.array(attr.kinds)
    shares = {"question": float(weights[kinds == "question"].sum() / total),
              "context": float(weights[kinds == "context"].sum() / total)}
    if gold_sentence is not None:
        start, end = gold_sentence
        inside = (kinds == "context") & (attr.offsets[:, 0] >= start) & (attr.offsets[:, 1] <= end)
        shares["evidence sentence"] = float(weights[inside].sum() / total)
    return shares


def attention_attribution_correlation(attention, attr: Attribution) -> pd.DataFrame:
    """Per layer, the Spearman rank correlation between the head-averaged attention each token
    receives from the span positions (the best span's tokens, or [CLS] when the window has none)
    and the magnitude of its attribution. Both must come from the same window.

    Example::

        attention_attribution_correlation(get_attention(m, t, q, c), attribute(m, t, q, c))
    """
    if attention.window != attr.window or len(attention.tokens) != len(attr.tokens):
        raise ValueError(f"attention of window {attention.window} ({len(attention.tokens)} tokens) and attribution "
                         f"of window {attr.window} ({len(attr.tokens)} tokens) do not describe the same tokens")
    span = attr.span_tokens or attention.predicted_tokens
    rows = list(range(span[0], span[1] + 1)) if span else [attr.cls_index]
    magnitude = pd.Series(np.abs(attr.scores))
    result = []
    for layer in range(attention.attentions.shape[0]):
        received = attention.attentions[layer][:, rows, :].mean(axis=(0, 1))  # heads, then span rows
        # Spearman: Pearson on average ranks (pandas' own "spearman" needs scipy)
        result.append({"layer": layer, "spearman": pd.Series(received).rank().corr(magnitude.rank())})
    return pd.DataFrame(result)


def remove_words(context: str, spans) -> str:
    """The context without the words at the ``(start, end)`` character spans (and one space beside each).

    >>> remove_words("The war ended in 1763.", [(8, 13), (17, 21)])
    'The war in.'
    """
    text = context
    for start, end in sorted(spans, reverse=True):
        if end < len(text) and text[end] == " ":
            end += 1
        elif start > 0 and text[start - 1] == " ":
            start -= 1
        text = text[:start] + text[end:]
    return text


def deletion_curve(model, tokenizer, question: str, context: str, words: pd.DataFrame, *, target: str = "span",
                   max_words: int = 10, random_repeats: int = 5, seed: int = 0,
                   max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                   doc_stride: int = DECODING_DEFAULTS["doc_stride"]) -> pd.DataFrame:
    """Delete the ``k`` context words with the highest attribution (those pushing ``target`` up),
    ``k = 0..max_words``, re-run the model on each shortened context (one batched prediction) and
    read the question's ``target`` again: ``"span"`` (the best span score) or ``"null_odds"``.
    The same for ``random_repeats`` random orders of the context words. ``words`` is
    :attr:`ContextAttribution.words` (or any frame with ``kind``, ``start``, ``end``, ``score``).

    Returns ``k``, ``order`` (``"attribution"``, ``"random"``), ``value`` (random: the mean) and
    ``change`` (value − value at k=0); ``.attrs["area"]``: the mean change over k = 1..max_words
    per order (more negative: the deleted words mattered more).
    """
    from .inference import predict_table

    check_choice("deletion target", target, ["span", "null_odds"])
    context_words = words[words["kind"] == "context"].reset_index(drop=True)
    k_max = min(max_words, len(context_words))
    ranked = context_words.sort_values("score", ascending=False, kind="stable")
    orders = {"attribution": [list(ranked.index)]}
    rng = np.random.default_rng(seed)
    orders["random"] = [list(rng.permutation(len(context_words))) for _ in range(random_repeats)]
    rows = []
    for order, permutations in orders.items():
        for r, permutation in enumerate(permutations):
            for k in range(k_max + 1):
                picked = context_words.loc[permutation[:k], ["start", "end"]].to_numpy()
                rows.append({"order": order, "repeat": r, "k": k, "question": question,
                             "context": remove_words(context, [tuple(p) for p in picked])})
    variants = pd.DataFrame(rows)
    predictions, _ = predict_table(model, tokenizer, variants, max_seq_length=max_seq_length, doc_stride=doc_stride,
                                   progress=False)
    variants["value"] = predictions["best_span_score" if target == "span" else "null_odds"].to_numpy(dtype=float)
    curve = variants.groupby(["order", "k"], as_index=False)["value"].mean()
    start = curve[curve["k"] == 0].set_index("order")["value"]
    curve["change"] = curve["value"] - curve["order"].map(start)
    curve.attrs["area"] = {o: float(part.loc[part["k"] > 0, "change"].mean()) if k_max else float("nan")
                           for o, part in curve.groupby("order")}
    curve.attrs["target"] = target
    return curve


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


def plot_top_tokens(attr, top: int = 12, ax=None):
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


def plot_deletion_curves(curves: dict, ax=None):
    """Deletion curves, ``{label: deletion_curve(...)}`` (e.g. one per method): the change of the
    target as the top-k words are deleted, solid; random deletions, dotted; area in the legend."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    target = None
    for label, curve in curves.items():
        target = curve.attrs.get("target", target)
        for order, style in (("attribution", "-o"), ("random", ":")):
            part = curve[curve["order"] == order]
            area = curve.attrs["area"].get(order, float("nan"))
            name = f"{label}: top attributed first (area {area:+.2f})" if order == "attribution" else \
                f"{label}: random words (area {area:+.2f})"
            ax.plot(part["k"], part["change"], style, label=name, markersize=3)
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_xlabel("context words deleted")
    ax.set_ylabel(f"change of {'the best span score' if target == 'span' else 'the null odds'}")
    ax.set_title("Deletion curves: does removing the attributed words matter more than random ones?")
    ax.legend(fontsize=7)
    return ax


def plot_layer_correlation(frame: pd.DataFrame, ax=None):
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


# Over a slice -----------------------------------------------------------------------------------

DECISION_GROUPS = {"correct answer": ["correct"], "false answer": ["false_answer"],
                   "correct abstention": ["correct_abstention"]}


def _evidence_sentence(row) -> tuple | None:
    """The character span of the sentence holding the gold answer (or, unanswerable, the plausible one)."""
    from .probes import sentence_spans

    starts = list(row["answer_starts"]) or list(row["plausible_starts"])
    if not starts:
        return None
    start = int(starts[0])
    return next(((s, e) for s, e in sentence_spans(row["context"]) if s <= start < e), None)


def attribution_statistics(run, model, tokenizer, *, per_group: int = 10, groups=None, target: str = "null_odds",
                           method: str = "integrated_gradients", n_steps: int = 32, with_attention: bool = True,
                           seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Statistics only, over a few questions of each decision group (``DECISION_GROUPS``: correct
    answers, false answers, correct abstentions; ``per_group`` drawn with ``seed``): the shares of
    |attribution| on the question, the context and the evidence sentence (gold, or plausible for
    unanswerable questions), and per layer the rank correlation with the attention received from
    the span (:func:`attention_attribution_correlation`). One row per question and layer.

    Example::

        stats = attribution_statistics(run, model, tokenizer, per_group=20)
        stats.groupby("group")[["question", "context", "evidence sentence"]].mean()
    """
    from tqdm.auto import tqdm

    from .attention import get_attention
    from .errors import outcomes

    table = outcomes(getattr(run, "table", run))
    groups = DECISION_GROUPS if groups is None else groups
    settings = getattr(run, "info", {}).get("settings", {})
    options = {k: settings[k] for k in ("max_seq_length", "doc_stride", "max_query_length") if k in settings}
    picked = []
    for name, members in groups.items():
        part = table[table["outcome"].isin(members)]
        part = part.sample(n=min(per_group, len(part)), random_state=seed) if len(part) else part
        picked.extend((name, row) for _, row in part.iterrows())
    rows = []
    for name, row in tqdm(picked, desc="attributions", unit="q", disable=not progress):
        attr = attribute(model, tokenizer, row["question"], row["context"], target=target, method=method,
                         n_steps=n_steps, **options)
        base = {"id": row["id"], "group": name, "outcome": str(row["outcome"]), "n_windows": attr.n_windows,
                **attribution_shares(attr, _evidence_sentence(row))}
        if with_attention:
            attention = get_attention(model, tokenizer, row["question"], row["context"], window=attr.window, **options)
            for layer in attention_attribution_correlation(attention, attr).itertuples():
                rows.append({**base, "layer": layer.layer, "spearman": layer.spearman})
        else:
            rows.append({**base, "layer": np.nan, "spearman": np.nan})
    frame = pd.DataFrame(rows)
    frame.attrs.update(target=target, method=method, n_steps=n_steps)
    return frame


def summarize_attribution_statistics(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per decision group: questions, and the mean share of |attribution| on the question, the
    context and the evidence sentence, each with a bootstrap 95% interval."""
    from .errors import bootstrap_interval

    per_question = frame.drop_duplicates("id")
    rows = []
    for group, part in per_question.groupby("group", sort=False):
        row = {"group": group, "questions": len(part)}
        for column in ("question", "context", "evidence sentence"):
            values = part[column].dropna().to_numpy(dtype=float) if column in part else np.array([])
            low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed)
            row.update({column: 100 * values.mean() if len(values) else np.nan,
                        f"{column}_low": 100 * low, f"{column}_high": 100 * high})
        rows.append(row)
    return pd.DataFrame(rows)
