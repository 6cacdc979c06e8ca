"""Attribution beside attention: which input tokens drove the start, the end, the span, the null
score, or the decision itself (the null odds), computed with captum.

- :meth:`Attributor.attribute` explains one window (by default the one holding the best span) with
  ``LayerIntegratedGradients`` on the word-embedding layer against a [PAD] baseline that keeps the
  special tokens ([CLS], [SEP]), or with ``LayerGradientXActivation`` (gradient × input). Integrated
  gradients report their convergence delta and the completeness check: the attributions sum to
  ``target(input) − target(baseline)``.
- :meth:`Attributor.attribute_context` explains every window of a long context and merges them onto the
  context's words, so a 1,000-token context reads as one text.
- :meth:`Attributor.deletion_curve` measures faithfulness: delete the most attributed context words, re-run
  the model, and compare with deleting random words.

Targets, for the window's best span ``(s, e)`` (or the gold span) and its [CLS] ``c``:
``start`` = start[s], ``end`` = end[e], ``span`` = start[s] + end[e] (the span score), ``null`` =
start[c] + end[c] (the null score) and ``null_odds`` = null − span, the quantity that decides
between answering and abstaining (abstain when it exceeds the threshold): its attribution is the
explanation of an abstention.

Gradients are needed here, so the model runs outside :func:`xdanalysis.model.forward.forward_windows`
(which runs under ``inference_mode``); its inputs come from the same
:func:`xdanalysis.model.forward.batch_tensors`, on the model's own device and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..core.common import check_choice
from ..core.decoding import Window, decode_question
from ..core.settings import DecodingSettings, WindowSettings
from ..core.text import word_layout
from ..model.forward import batch_tensors, forward_windows
from ..model.runtime import require_torch
from .attention import Attention, locate
from .attention import to_words as _attention_to_words

__all__ = ['Attribution', 'Attributor', 'ContextAttribution', 'GradientXInput', 'deletion_area', 'IntegratedGradients', 'MERGES', 'METHODS', 'TARGETS', 'merge_windows', 'method_of', 'remove_words', 'to_words']


TARGETS = ["start", "end", "span", "null", "null_odds"]




@dataclass
class Attribution:
    """Per-token attributions of one window for one target.

    ``tokens``, ``kinds`` (``special``/``question``/``context``) and ``offsets`` (characters in the
    question or the context) as in :class:`xdanalysis.interpret.attention.Attention`; ``scores`` one value
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


@dataclass(frozen=True)
class IntegratedGradients:
    """Layer integrated gradients on the word embeddings (captum), ``n_steps`` interpolation steps,
    at most ``internal_batch_size`` at once (None: all). Measured with the l12-h384 shape, 50 steps,
    2 CPU threads: 16 at once runs as fast as 50 with 1.7 GB peak RSS instead of 3.9 GB
    (``benchmarks/bench_attribution.py``). Reports captum's convergence delta."""

    n_steps: int = 50
    internal_batch_size: int | None = 16
    name = "integrated_gradients"

    def __post_init__(self):
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be at least 1, got {self.n_steps}")

    @classmethod
    def with_steps(cls, n_steps: int) -> "IntegratedGradients":
        return cls(n_steps=n_steps)

    def explain(self, forward, layer, ids, baseline, extra):
        from captum.attr import LayerIntegratedGradients

        scores, delta = LayerIntegratedGradients(forward, layer).attribute(
            ids, baselines=baseline, additional_forward_args=extra, n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        return scores, float(delta.detach().float().abs().max())


@dataclass(frozen=True)
class GradientXInput:
    """Gradient × input on the word embeddings (captum's ``LayerGradientXActivation``): one backward
    pass, no completeness guarantee (delta NaN)."""

    name = "gradient_x_input"
    n_steps = 0

    @classmethod
    def with_steps(cls, n_steps: int) -> "GradientXInput":
        return cls()  # one backward pass: no steps to set

    def explain(self, forward, layer, ids, baseline, extra):
        from captum.attr import LayerGradientXActivation

        return LayerGradientXActivation(forward, layer).attribute(ids, additional_forward_args=extra), float("nan")


# The methods by name (the explorers' picker); any object with ``name``, ``n_steps`` and ``explain`` works.
METHODS = {"integrated_gradients": IntegratedGradients, "gradient_x_input": GradientXInput}


def method_of(method, n_steps: int | None = None) -> IntegratedGradients | GradientXInput:
    """A method object from its name (with ``n_steps`` where the method takes steps) or as given.

    >>> method_of("integrated_gradients", n_steps=8)
    IntegratedGradients(n_steps=8, internal_batch_size=16)
    """
    if isinstance(method, str):
        check_choice("method", method, METHODS)
        return METHODS[method]() if n_steps is None else METHODS[method].with_steps(n_steps)
    return method


# Model families whose word embeddings come out [tokens, batch, hidden]: gradient x input reads them the
# right way round; integrated gradients cannot interpolate them.
_SEQUENCE_FIRST_EMBEDDINGS = {"xlnet"}


def _model_type(model) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def _explain_window(model, windows, window: int, *, target: str, method, span):
    """Attributions of one window's target: ``(scores, target_value, baseline_value, delta)``."""
    import torch

    device = next(model.parameters()).device
    inputs = batch_tensors(windows, [window], device=device)
    ids = inputs["input_ids"]
    special = torch.as_tensor([k == "special" for k in windows.kinds[window]], device=device)[None, :]
    baseline = torch.where(special, ids, torch.full_like(ids, windows.pad_token_id))  # keeps [CLS] and [SEP]
    extra = (inputs["attention_mask"], inputs.get("token_type_ids"))
    forward = _forward(model, target, span, int(windows.cls_index[window]))
    if method.n_steps and _model_type(model) in _SEQUENCE_FIRST_EMBEDDINGS:
        raise ValueError(f"model type {_model_type(model)!r} embeds its tokens sequence-first, and integrated "
                         "gradients (captum) interpolate along the batch axis: use method='gradient_x_input' for it")
    with torch.enable_grad():
        scores, delta = method.explain(forward, model.get_input_embeddings(), ids, baseline, extra)
    with torch.inference_mode():
        value = float(forward(ids, *extra)[0])
        base_value = float(forward(baseline, *extra)[0])
    per_token = scores.detach().float().sum(-1)
    if _model_type(model) in _SEQUENCE_FIRST_EMBEDDINGS:
        per_token = per_token.T
    if per_token.shape != ids.shape:
        raise ValueError(f"{type(model).__name__}: its input embeddings come out as {tuple(scores.shape)}, neither "
                         f"[batch, tokens, hidden] nor [tokens, batch, hidden] for {tuple(ids.shape)} token ids; "
                         "attribution on the word embeddings is not supported for this model type")
    return per_token[0].cpu().numpy().astype(np.float64), value, base_value, delta


class Attributor:
    """Attribution of one model's decisions, configured once (captum's way): the model and its
    tokenizer, the ``method`` (a name in ``METHODS`` or a method object such as
    ``IntegratedGradients(n_steps=32)``), and the window and decoding settings (a run's own:
    ``run.windowing``, ``run.decoding``). Then :meth:`attribute` explains one window,
    :meth:`attribute_context` every window of a long context, :meth:`deletion_curve` checks
    faithfulness.

    Example::

        attributor = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=32))
        attr = attributor.attribute("Who built it?", "Gustave Eiffel built the tower.", target="null_odds")
        attr.completeness_gap, attr.delta
    """

    def __init__(self, model, tokenizer, *, method="integrated_gradients", windowing: WindowSettings = WindowSettings(),
                 decoding: DecodingSettings = DecodingSettings()):
        require_torch(model, "Attributions (gradients through the model)")
        self.model, self.tokenizer = model, tokenizer
        self.method = method_of(method)
        self.windowing, self.decoding = windowing, decoding

    def attribute(self, question: str, context: str, *, target: str = "span", window: int | None = None,
                  gold: list | None = None, prefer: str = "prediction") -> Attribution:
        """Attributions over the input tokens of one window for ``target`` (see the module's docstring).

        The window is the one holding the best span, or ``window``; with ``prefer="gold"`` (and
        ``gold``, a list of ``(answer_start, text)``) the window holding the gold answer, and the span
        targets then use the gold span."""
        check_choice("target", target, TARGETS)
        model, method = self.model, self.method
        found = locate(model, self.tokenizer, question, context, window=window, gold=gold, prefer=prefer,
                       windowing=self.windowing, decoding=self.decoding)
        span = found.gold_tokens if prefer == "gold" and found.gold_tokens else found.predicted_tokens
        if span is None and target != "null":
            span = _window_best_span(model, found.windows, found.window, context, self.decoding)
        scores, value, base_value, delta = _explain_window(model, found.windows, found.window, target=target,
                                                           method=method, span=span)
        decoded = found.decoded
        return Attribution(tokens=found.tokens, kinds=found.kinds, offsets=found.offsets, scores=scores,
                           target=target, method=method.name, window=found.window, n_windows=len(found.windows),
                           question=found.windows.questions[0], context=context, target_value=value,
                           baseline_value=base_value, delta=delta, span_tokens=span, gold_tokens=found.gold_tokens,
                           predicted_tokens=found.predicted_tokens, answer=decoded["answer"],
                           abstained=decoded["answer"] == "" and bool(decoded["best_span_text"]),
                           null_odds=float(decoded["null_odds"]),
                           cls_index=int(found.windows.cls_index[found.window]), n_steps=method.n_steps)

    def attribute_context(self, question: str, context: str, *, target: str = "null_odds",
                          merge: str = "max") -> "ContextAttribution":
        """Attribute every window of a question (each window explains its own target: its own best span
        and its own [CLS]) and merge the word attributions onto the question and context
        (:func:`merge_windows`). With one window this is :meth:`attribute` in words."""
        check_choice("merge", merge, MERGES)
        first = self.attribute(question, context, target=target)
        per_window = {first.window: to_words(first)}
        for window in range(first.n_windows):
            if window not in per_window:
                per_window[window] = to_words(self.attribute(question, context, target=target, window=window))
        return _merged(first, per_window, context, target=target, method=self.method.name, merge=merge)

    def deletion_curve(self, question: str, context: str, words: pd.DataFrame, *, target: str = "span",
                       max_words: int = 10, random_repeats: int = 5, seed: int = 0) -> pd.DataFrame:
        """Delete the ``k`` context words with the highest attribution (those pushing ``target`` up),
        ``k = 0..max_words``, re-run the model on each shortened context (one batched prediction) and
        read the question's ``target`` again: ``"span"`` (the best span score) or ``"null_odds"``.
        The same for ``random_repeats`` random orders of the context words. ``words`` is
        :attr:`ContextAttribution.words` (or any frame with ``kind``, ``start``, ``end``, ``score``).

        Returns ``k``, ``order`` (``"attribution"``, ``"random"``), ``target``, ``value`` (random: the
        mean) and ``change`` (value − value at k=0); :func:`deletion_area` gives the mean change over
        k = 1..max_words per order (more negative: the deleted words mattered more)."""
        from ..model.predict import predict_table

        check_choice("deletion target", target, ["span", "null_odds"])
        variants = _deletion_variants(question, context, words, max_words=max_words, random_repeats=random_repeats,
                                      seed=seed)
        predictions, _ = predict_table(self.model, self.tokenizer, variants, windowing=self.windowing,
                                       decoding=self.decoding, progress=False)
        variants["value"] = predictions["best_span_score" if target == "span" else "null_odds"].to_numpy(dtype=float)
        return _deletion_curve(variants, target)


def _window_best_span(model, windows, window: int, context: str, decoding: DecodingSettings):
    """The best admissible span of one window on its own, as token indices (None when it has none),
    among the ``n_best_size`` best starts and ends, as a run decodes."""
    out = forward_windows(model, windows, [window])[0]
    offsets = windows.offsets[window]
    decoded = decode_question(context, [Window(offsets, out.start_logits, out.end_logits,
                                               int(windows.cls_index[window]))], decoding=decoding)
    if decoded["answer_start"] < 0:
        return None
    starts = np.flatnonzero(offsets[:, 0] == decoded["answer_start"])
    ends = np.flatnonzero(offsets[:, 1] == decoded["answer_end"])
    return (int(starts[0]), int(ends[-1])) if len(starts) and len(ends) else None


def to_words(attr: Attribution | Attention) -> Attribution | Attention:
    """Word-level attributions: the sum over each word's sub-word pieces (the total is unchanged).
    Spans map to the words holding their first and last pieces. An :class:`Attention` given here is
    aggregated as :func:`xdanalysis.interpret.attention.to_words` does (one name for both token views)."""
    if isinstance(attr, Attention):
        return _attention_to_words(attr)
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


def _merged(first: Attribution, per_window: dict, context: str, **about) -> ContextAttribution:
    keyed = {w: {(k, int(s), int(e)): float(v) for k, (s, e), v in zip(a.kinds, a.offsets, a.scores) if k != "special"}
             for w, a in per_window.items()}
    merged = merge_windows(keyed, merge=about["merge"], best=first.window)
    counts = {}
    for scores in keyed.values():
        for key in scores:
            counts[key] = counts.get(key, 0) + 1
    words = pd.DataFrame([{"kind": k, "start": s, "end": e,
                           "text": (context if k == "context" else first.question)[s:e], "score": v,
                           "windows": counts[(k, s, e)]} for (k, s, e), v in merged.items()])
    return ContextAttribution(question=first.question, context=context, best_window=first.window, words=words,
                              per_window=per_window, **about)


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


def _deletion_variants(question: str, context: str, words: pd.DataFrame, *, max_words: int, random_repeats: int,
                       seed: int) -> pd.DataFrame:
    """The contexts with the top ``k`` attributed words deleted, and with ``k`` random words deleted."""
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
    return pd.DataFrame(rows)


def _deletion_curve(variants: pd.DataFrame, target: str) -> pd.DataFrame:
    curve = variants.groupby(["order", "k"], as_index=False)["value"].mean()
    start = curve[curve["k"] == 0].set_index("order")["value"]
    curve["change"] = curve["value"] - curve["order"].map(start)
    curve.insert(2, "target", target)
    return curve


def deletion_area(curve: pd.DataFrame) -> dict:
    """The area of a deletion curve per order: its mean ``change`` over k = 1..max (NaN when no word was
    deleted); more negative: the deleted words mattered more.

    >>> deletion_area(pd.DataFrame({"order": ["random"] * 3, "k": [0, 1, 2], "change": [0.0, -1.0, -3.0]}))
    {'random': -2.0}
    """
    return {order: float(part.loc[part["k"] > 0, "change"].mean()) if (part["k"] > 0).any() else float("nan")
            for order, part in curve.groupby("order")}
