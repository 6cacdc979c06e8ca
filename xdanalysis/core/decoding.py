"""Turn start/end logits of a question's windows into an answer, SQuAD 2.0 style.

The semantics are those of transformers' ``utils_qa.postprocess_qa_predictions`` with
``version_2_with_negative=True``: in every window, the ``n_best_size`` best starts times the
``n_best_size`` best ends; a span must lie in the context, end at or after its start and hold at
most ``max_answer_length`` tokens; its score is start logit + end logit. The null score is the
smallest [CLS] start + end over the question's windows (taken at each window's own [CLS] position:
first for BERT, last for XLNet), ``null_odds = null_score -
best_span_score``, and the answer is ``""`` when ``null_odds > null_score_diff_threshold``.

Numpy only: no torch here, so the decoding is testable on hand-made logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .settings import DecodingSettings
from .stats import softmax

__all__ = ['Window', 'decode_question']


@dataclass
class Window:
    """One window of a question: its logits and, per token, the character span it covers.

    ``offsets`` is an int array ``[tokens, 2]``; tokens outside the context (question, special
    tokens) hold ``(-1, -1)``. ``cls_index`` is the position of the [CLS] token, whose logits give
    the null score: 0 for BERT-like models, the last token for XLNet (``input_ids.index(cls_id)``).
    """

    offsets: np.ndarray
    start_logits: np.ndarray
    end_logits: np.ndarray
    cls_index: int = 0


def _window_spans(window: Window, n_best_size: int, max_answer_length: int):
    start_logits = np.asarray(window.start_logits)
    end_logits = np.asarray(window.end_logits)
    in_context = window.offsets[:, 0] >= 0
    starts = np.argsort(-start_logits, kind="stable")[:n_best_size]
    ends = np.argsort(-end_logits, kind="stable")[:n_best_size]
    start_grid, end_grid = np.meshgrid(starts, ends, indexing="ij")  # start rank major, as utils_qa loops
    start_grid, end_grid = start_grid.ravel(), end_grid.ravel()
    length = end_grid - start_grid + 1
    valid = in_context[start_grid] & in_context[end_grid] & (length >= 1) & (length <= max_answer_length)
    start_grid, end_grid = start_grid[valid], end_grid[valid]
    return start_grid, end_grid, start_logits[start_grid], end_logits[end_grid]


def decode_question(
    context: str,
    windows: list[Window],
    *,
    decoding: DecodingSettings = DecodingSettings(),
) -> dict:
    """Decode one question's windows into its answer and the evidence behind it.

    Returns a dict with ``answer`` (``""`` when abstaining), ``answer_start`` / ``answer_end``
    (character span of the best non-null span, -1 when there is none), ``best_span_score``,
    ``null_score``, ``null_odds``, ``best_window``, ``n_windows``, ``first_window_chars`` (where the first window's context
    ends) and ``nbest``: up to
    ``n_best_size`` candidates (plus the null one if it fell outside them), best first, each
    ``{text, start_logit, end_logit, score, probability, window}`` with the probability a softmax
    over the list's scores, as utils_qa computes it.

    Example: one window ``[CLS] q [SEP] c0 c1 [SEP]``, context ``"ab cd"``.

    >>> w = Window(np.array([[-1, -1], [-1, -1], [-1, -1], [0, 2], [3, 5], [-1, -1]]),
    ...            np.array([0.0, 0, 0, 3, 1, 0]), np.array([0.0, 0, 0, 1, 4, 0]))
    >>> decode_question("ab cd", [w])["answer"]
    'ab cd'
    """
    n_best_size, max_answer_length = decoding.n_best_size, decoding.max_answer_length
    if not windows:
        raise ValueError("a question needs at least one window")
    null_score, null_start, null_end, null_window = None, 0.0, 0.0, 0
    span_windows, span_starts, span_ends, start_scores, end_scores = [], [], [], [], []
    for index, window in enumerate(windows):
        cls = window.cls_index
        cls_score = window.start_logits[cls] + window.end_logits[cls]
        if null_score is None or cls_score < null_score:
            null_score = cls_score
            null_start, null_end, null_window = window.start_logits[cls], window.end_logits[cls], index
        s, e, ls, le = _window_spans(window, n_best_size, max_answer_length)
        span_windows.append(np.full(len(s), index))
        span_starts.append(window.offsets[s, 0])
        span_ends.append(window.offsets[e, 1])
        start_scores.append(ls)
        end_scores.append(le)

    span_windows = np.concatenate(span_windows)
    char_starts = np.concatenate(span_starts)
    char_ends = np.concatenate(span_ends)
    start_scores = np.concatenate(start_scores)
    end_scores = np.concatenate(end_scores)
    scores = start_scores + end_scores
    order = np.argsort(-scores, kind="stable")[:n_best_size]

    candidates = [
        {
            "text": context[char_starts[i] : char_ends[i]],
            "start_logit": float(start_scores[i]),
            "end_logit": float(end_scores[i]),
            "score": float(scores[i]),
            "window": int(span_windows[i]),
            "char_start": int(char_starts[i]),
            "char_end": int(char_ends[i]),
        }
        for i in order
    ]
    null_entry = {
        "text": "",
        "start_logit": float(null_start),
        "end_logit": float(null_end),
        "score": float(null_score),
        "window": int(null_window),
        "char_start": -1,
        "char_end": -1,
    }
    # The null entry competes for a place among the n best, and is kept even when it loses.
    nbest = sorted(candidates + [null_entry], key=lambda c: c["score"], reverse=True)[:n_best_size]
    if not any(c is null_entry for c in nbest):
        nbest.append(null_entry)
    for candidate, probability in zip(nbest, softmax([c["score"] for c in nbest])):
        candidate["probability"] = float(probability)

    if candidates:
        best = candidates[0]
        best_span_score = best["score"]
        null_odds = float(null_score) - best_span_score
        answer = "" if null_odds > decoding.null_score_diff_threshold else best["text"]
        answer_start, answer_end, best_window = best["char_start"], best["char_end"], best["window"]
        best_text = best["text"]
    else:  # no admissible span anywhere: the model can only abstain
        best_span_score, null_odds = float("-inf"), float("inf")
        answer, best_text, answer_start, answer_end, best_window = "", "", -1, -1, null_window
    return {
        "answer": answer,
        "best_span_text": best_text,
        "answer_start": answer_start,
        "answer_end": answer_end,
        "best_span_score": best_span_score,
        "null_score": float(null_score),
        "null_odds": null_odds,
        "best_window": best_window,
        "n_windows": len(windows),
        "first_window_chars": int(windows[0].offsets[:, 1].max(initial=0)),
        "nbest": nbest,
    }
