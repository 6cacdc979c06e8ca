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
    if not windows:
        raise ValueError("a question needs at least one window")
    null_entry = _null_entry(windows)
    candidates = _span_candidates(context, windows, decoding)
    # The null entry competes for a place among the n best, and is kept even when it loses.
    nbest = sorted(candidates + [null_entry], key=lambda c: c["score"], reverse=True)[:decoding.n_best_size]
    if not any(c is null_entry for c in nbest):
        nbest.append(null_entry)
    for candidate, probability in zip(nbest, softmax([c["score"] for c in nbest])):
        candidate["probability"] = float(probability)
    if candidates:
        best = candidates[0]
        null_odds = null_entry["score"] - best["score"]
        decided = {"answer": "" if null_odds > decoding.null_score_diff_threshold else best["text"],
                   "best_span_text": best["text"], "answer_start": best["char_start"], "answer_end": best["char_end"],
                   "best_span_score": best["score"], "null_odds": null_odds, "best_window": best["window"]}
    else:  # no admissible span anywhere: the model can only abstain
        decided = {"answer": "", "best_span_text": "", "answer_start": -1, "answer_end": -1,
                   "best_span_score": float("-inf"), "null_odds": float("inf"), "best_window": null_entry["window"]}
    return {**decided, "null_score": null_entry["score"], "n_windows": len(windows),
            "first_window_chars": int(windows[0].offsets[:, 1].max(initial=0)), "nbest": nbest}


def _null_entry(windows: list[Window]) -> dict:
    """The null candidate: the smallest [CLS] start + end over the question's windows (utils_qa's
    ``min_null_prediction``), each read at the window's own [CLS]."""
    index = min(range(len(windows)),
                key=lambda i: windows[i].start_logits[windows[i].cls_index] + windows[i].end_logits[windows[i].cls_index])
    window = windows[index]
    start, end = window.start_logits[window.cls_index], window.end_logits[window.cls_index]
    return {"text": "", "start_logit": float(start), "end_logit": float(end), "score": float(start + end),
            "window": index, "char_start": -1, "char_end": -1}  # the sum in the logits' own dtype, as utils_qa


def _span_candidates(context: str, windows: list[Window], decoding: DecodingSettings) -> list[dict]:
    """The ``n_best_size`` best admissible spans over every window, best first (ties: window order,
    then start rank, as utils_qa loops)."""
    found = [(index, *_window_spans(w, decoding.n_best_size, decoding.max_answer_length))
             for index, w in enumerate(windows)]
    span_windows = np.concatenate([np.full(len(s), index) for index, s, *_ in found])
    char_starts = np.concatenate([windows[index].offsets[s, 0] for index, s, *_ in found])
    char_ends = np.concatenate([windows[index].offsets[e, 1] for index, _, e, *_ in found])
    start_scores = np.concatenate([ls for *_, ls, _ in found])
    end_scores = np.concatenate([le for *_, le in found])
    scores = start_scores + end_scores
    return [{"text": context[char_starts[i]: char_ends[i]], "start_logit": float(start_scores[i]),
             "end_logit": float(end_scores[i]), "score": float(scores[i]), "window": int(span_windows[i]),
             "char_start": int(char_starts[i]), "char_end": int(char_ends[i])}
            for i in np.argsort(-scores, kind="stable")[:decoding.n_best_size]]
