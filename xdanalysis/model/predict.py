"""Predict a question table: windows, the forward pass, and decoding, in one call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.decoding import DECODING_DEFAULTS, Window, check_decoding_settings, decode_question
from .forward import run_windows
from .windows import Windows, prepare_windows

__all__ = ['decode_windows', 'predict_chunk', 'predict_table', 'token_lengths']


def decode_windows(table: pd.DataFrame, windows: Windows, logits, *,
                   n_best_size: int = DECODING_DEFAULTS["n_best_size"],
                   max_answer_length: int = DECODING_DEFAULTS["max_answer_length"],
                   null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"]) -> list[dict]:
    """Group windows by question and decode each question (see :func:`decode_question`)."""
    per_question: list[list[Window]] = [[] for _ in range(len(table))]
    for offsets, question_index, cls, (start, end) in zip(windows.offsets, windows.question_index,
                                                           windows.cls_index, logits):
        per_question[question_index].append(Window(offsets, start, end, cls))
    contexts = list(table["context"])
    return [
        decode_question(contexts[i], per_question[i], n_best_size=n_best_size,
                        max_answer_length=max_answer_length, null_score_diff_threshold=null_score_diff_threshold)
        for i in range(len(table))
    ]


def token_lengths(table: pd.DataFrame, tokenizer) -> pd.DataFrame:
    """Model-token lengths of each question, context and first gold answer (NaN when unanswerable)."""
    def count(texts):
        encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    answers = [texts[0] if len(texts) else "" for texts in table["answer_texts"]]
    answer_tokens = np.array(count(answers), dtype=float)
    answer_tokens[[len(t) == 0 for t in table["answer_texts"]]] = np.nan
    return pd.DataFrame(
        {
            "question_tokens": count(str(q).lstrip() for q in table["question"]),
            "context_tokens": count(table["context"]),
            "answer_tokens": answer_tokens,
        },
        index=table.index,
    )


def predict_table(model, tokenizer, table: pd.DataFrame, *,
                  max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
                  doc_stride: int = DECODING_DEFAULTS["doc_stride"],
                  max_query_length: int = DECODING_DEFAULTS["max_query_length"],
                  n_best_size: int = DECODING_DEFAULTS["n_best_size"],
                  max_answer_length: int = DECODING_DEFAULTS["max_answer_length"],
                  null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"],
                  batch_size: int = 32, progress: bool = True) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Predict every question of ``table``; returns ``(predictions, nbest)``.

    ``predictions`` has one row per question (same index as ``table``) with ``answer``,
    ``answer_start``, ``answer_end``, ``best_span_text``, ``best_span_score``, ``null_score``,
    ``null_odds``, ``n_windows``, ``best_window``, ``question_truncated``; ``nbest`` holds each
    question's n-best list.

    Example::

        predictions, nbest = predict_table(model, tokenizer, load_squad(path, limit=8))
    """
    check_decoding_settings(n_best_size=n_best_size, max_answer_length=max_answer_length,
                            max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length)
    windows = prepare_windows(table, tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
                              max_query_length=max_query_length)
    logits = run_windows(model, windows, batch_size=batch_size, progress=progress)
    decoded = decode_windows(table, windows, logits, n_best_size=n_best_size, max_answer_length=max_answer_length,
                             null_score_diff_threshold=null_score_diff_threshold)
    nbest = [d.pop("nbest") for d in decoded]
    predictions = pd.DataFrame(decoded, index=table.index)
    predictions["question_truncated"] = np.isin(np.arange(len(table)), windows.truncated)
    return predictions, nbest


def predict_chunk(model, tokenizer, part: pd.DataFrame, *, decoding: dict, batch_size: int = 32):
    """One chunk of a run (see :mod:`xdanalysis.runs`), as both engines compute it: the questions'
    predictions, token lengths and n-best lists (as JSON) in one frame, and the seconds it took.
    ``decoding`` holds the keywords of :func:`predict_table`."""
    import json
    import time

    started = time.perf_counter()
    predictions, nbest = predict_table(model, tokenizer, part, batch_size=batch_size, progress=False, **decoding)
    seconds = time.perf_counter() - started
    lengths = token_lengths(part, tokenizer)
    lengths["prediction_tokens"] = [len(ids) for ids in tokenizer(
        list(predictions["answer"]), add_special_tokens=False)["input_ids"]]
    frame = pd.concat([part[["id"]].reset_index(drop=True), predictions.reset_index(drop=True),
                       lengths.reset_index(drop=True)], axis=1)
    frame["nbest"] = [json.dumps(n, ensure_ascii=False) for n in nbest]
    return frame, seconds
