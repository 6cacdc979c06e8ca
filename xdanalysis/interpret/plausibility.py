"""Word scores of a model's abstention on the words of SQuAD2-CR's rationales, for
:func:`xdanalysis.analysis.rationales.rationale_agreement` to score against the humans' marks.

Each method explains the question's **null odds** (null score − best span score: what decides to abstain,
higher = more toward abstaining) in the window that decides it, the one :class:`~xdanalysis.interpret.
attribution.Attributor` picks:

- ``"integrated_gradients"`` and ``"gradient_x_input"``: the Attributor's attributions (signed; a word
  pushing toward abstaining scores high);
- ``"attention"``: the last layer's attention from [CLS] to each token, averaged over heads;
- ``"random"``: uniform random scores, seeded per question (the baseline every method is read against).

Only the question's words are annotated, so only question tokens count: context tokens and special tokens
are left out of the ranking (``question share`` says how much of the attribution's magnitude lay on the
question at all). A token's score goes to the rationale words it overlaps, shared by characters
(``"hasn't"`` is one WordPiece ``hasn`` over the words ``has`` and ``n't``: 3/4 of its score to ``has``,
1/4 to ``n't``), so a word's score is the sum of its share of every token over it.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ..core.common import progress_bar
from ..core.settings import DecodingSettings, WindowSettings
from ..core.unanswerable import align_words
from .attention import get_attention
from .attribution import Attributor, method_of

__all__ = ['PLAUSIBILITY_METHODS', 'explain_rationales', 'tokens_to_words']

PLAUSIBILITY_METHODS = ["integrated_gradients", "gradient_x_input", "attention", "random"]


def tokens_to_words(offsets, kinds, scores, spans) -> np.ndarray:
    """Question-token scores onto words at character ``spans`` of the question: each token's score is
    shared among the words it overlaps by characters; context and special tokens count for nothing.

    >>> tokens_to_words([(0, 4), (4, 5), (5, 6)], ["question"] * 3, [4.0, 1.0, 1.0], [(0, 3), (3, 6)]).tolist()
    [3.0, 3.0]
    """
    words = np.zeros(len(spans))
    for (start, end), kind, score in zip(np.asarray(offsets), kinds, np.asarray(scores, dtype=float)):
        if kind != "question" or end <= start:
            continue
        for i, (s, e) in enumerate(spans):
            overlap = min(end, e) - max(start, s)
            if overlap > 0:
                words[i] += score * overlap / (end - start)
    return words


def _question_share(kinds, scores) -> float:
    magnitude = np.abs(np.asarray(scores, dtype=float))
    question = np.array([k == "question" for k in kinds])
    inside = magnitude[question | np.array([k == "context" for k in kinds])].sum()
    return float(magnitude[question].sum() / inside) if inside else float("nan")


def _sample(joined: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    if limit is None or limit >= len(joined):
        return joined
    picked = np.sort(np.random.default_rng(seed).choice(len(joined), size=limit, replace=False))
    return joined.iloc[picked].reset_index(drop=True)


class _Explainers:
    """Each method configured once, then ``scores(name, question, context)`` -> (tokens' offsets, kinds,
    scores, the question text the offsets refer to, whether the model abstained, its null odds)."""

    def __init__(self, model, tokenizer, methods, *, windowing, decoding, seed: int):
        self.model, self.tokenizer, self.seed = model, tokenizer, seed
        self.windowing, self.decoding = windowing, decoding
        self.attributors = {method_of(m).name: Attributor(model, tokenizer, method=m, windowing=windowing,
                                                          decoding=decoding)
                            for m in methods if m not in ("attention", "random")}
        self._last = (None, None)

    def scores(self, name: str, qid: str, question: str, context: str):
        if name in self.attributors:
            found = self.attributors[name].attribute(question, context, target="null_odds")
            return found.offsets, found.kinds, found.scores, found.question, found.abstained, found.null_odds
        if self._last[0] != qid:  # attention and random share one pass
            self._last = (qid, get_attention(self.model, self.tokenizer, question, context,
                                             windowing=self.windowing, decoding=self.decoding))
        att = self._last[1]
        if name == "attention":
            scores = att.attentions[-1].mean(axis=0)[att.cls_index]
        else:  # random, seeded per question
            scores = np.random.default_rng([self.seed, zlib.crc32(qid.encode())]).random(len(att.tokens))
        return att.offsets, att.kinds, scores, att.question, att.abstained or att.answer == "", att.null_odds


def explain_rationales(model, tokenizer, questions: pd.DataFrame, rationales: pd.DataFrame, *,
                       methods=("gradient_x_input", "attention", "random"), limit: int | None = None, seed: int = 0,
                       windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
                       progress: bool = True) -> pd.DataFrame:
    """Word scores of every method for the questions of ``questions`` (a question table or a run's table:
    ``id``, ``question``, ``context``) that have a rationale (:func:`~xdanalysis.core.unanswerable.
    load_rationales`), ``limit`` of them drawn with ``seed`` (None: all). ``methods``: names of
    ``PLAUSIBILITY_METHODS`` or attribution method objects (e.g. ``IntegratedGradients(n_steps=16)``).

    Returns one row per question and method: ``id``, ``method``, ``words`` (the rationale's), ``scores``
    (one per word), ``question share`` and the model's ``abstained`` and ``null_odds``; what
    :func:`~xdanalysis.analysis.rationales.rationale_agreement` takes. A question where a method has nothing
    to explain (no admissible span in the deciding window) is left out for that method, with a warning.

    Example::

        scores = explain_rationales(model, tokenizer, run.table, rationales, limit=200)
        plausibility_summary(rationale_agreement(scores, rationales))
    """
    import warnings


    unknown = [m for m in methods if isinstance(m, str) and m not in PLAUSIBILITY_METHODS]
    if unknown:  # before any name is resolved: the message lists every method, attention and random included
        raise ValueError(f"unknown method(s) {unknown}; use some of {PLAUSIBILITY_METHODS} or attribution method "
                         "objects")
    names = [m if isinstance(m, str) and m in ("attention", "random") else method_of(m).name for m in methods]
    joined = _sample(rationales[["id", "words"]].merge(questions[["id", "question", "context"]], on="id"),
                     limit, seed)
    explainers = _Explainers(model, tokenizer, methods, windowing=windowing, decoding=decoding, seed=seed)
    rows, skipped = [], []
    for row in progress_bar(joined.itertuples(index=False), total=len(joined), desc="rationales", disable=not progress):
        for name in names:
            try:
                offsets, kinds, scores, text, abstained, odds = explainers.scores(name, row.id, row.question,
                                                                                  row.context)
            except ValueError as error:  # e.g. no admissible span to take the null odds against
                skipped.append(f"{row.id} ({name}: {error})")
                continue
            words = tokens_to_words(offsets, kinds, scores, align_words(text, list(row.words)))
            rows.append({"id": row.id, "method": name, "words": list(row.words), "scores": words.tolist(),
                         "question share": _question_share(kinds, scores) if name != "random" else np.nan,
                         "abstained": bool(abstained), "null_odds": float(odds)})
    if skipped:
        warnings.warn(f"{len(skipped)} explanation(s) left out: {'; '.join(skipped[:3])}", stacklevel=2)
    return pd.DataFrame(rows, columns=["id", "method", "words", "scores", "question share", "abstained",
                                       "null_odds"])
