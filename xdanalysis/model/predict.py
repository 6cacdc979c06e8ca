"""Predict a question table: windows, the forward pass, and decoding, in one call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.decoding import Window, decode_question
from ..core.settings import DecodingSettings, WindowSettings
from .forward import forward_windows, run_windows
from .windows import Windows, prepare_windows

__all__ = ['question_windows', 'decode_windows', 'predict_chunk', 'predict_table', 'token_lengths']


def decode_windows(table: pd.DataFrame, windows: Windows, logits, *,
                   decoding: DecodingSettings = DecodingSettings()) -> list[dict]:
    """Group windows by question and decode each question (see :func:`decode_question`)."""
    per_question: list[list[Window]] = [[] for _ in range(len(table))]
    for offsets, question_index, cls, (start, end) in zip(windows.offsets, windows.question_index,
                                                           windows.cls_index, logits):
        per_question[question_index].append(Window(offsets, start, end, cls))
    contexts = list(table["context"])
    return [
        decode_question(contexts[i], per_question[i], decoding=decoding) for i in range(len(table))
    ]


def token_lengths(table: pd.DataFrame, tokenizer) -> pd.DataFrame:
    """Model-token lengths of each question, context and first gold answer (NaN when unanswerable)."""
    def count(texts):
        # lengths only, never fed to the model: no "longer than the maximum sequence length" warning
        encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
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
                  windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
                  batch_size: int = 32, progress: bool = True) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Predict every question of ``table``; returns ``(predictions, nbest)``.

    ``predictions`` has one row per question (same index as ``table``) with ``answer``,
    ``answer_start``, ``answer_end``, ``best_span_text``, ``best_span_score``, ``null_score``,
    ``null_odds``, ``n_windows``, ``best_window``, ``question_truncated``; ``nbest`` holds each
    question's n-best list.

    Example::

        predictions, nbest = predict_table(model, tokenizer, load_squad(path, limit=8))
    """
    windows = prepare_windows(table, tokenizer, windowing)
    logits = run_windows(model, windows, batch_size=batch_size, progress=progress)
    decoded = decode_windows(table, windows, logits, decoding=decoding)
    nbest = [d.pop("nbest") for d in decoded]
    predictions = pd.DataFrame(decoded, index=table.index)
    predictions["question_truncated"] = np.isin(np.arange(len(table)), windows.truncated)
    return predictions, nbest


def predict_chunk(model, tokenizer, part: pd.DataFrame, *, windowing: WindowSettings, decoding: DecodingSettings,
                  batch_size: int = 32):
    """One chunk of a run (see :mod:`xdanalysis.runs.run`), as both engines compute it: the questions'
    predictions, token lengths and n-best lists (as JSON) in one frame, and the seconds it took.
    """
    import json
    import time

    started = time.perf_counter()
    predictions, nbest = predict_table(model, tokenizer, part, windowing=windowing, decoding=decoding,
                                       batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - started
    lengths = token_lengths(part, tokenizer)
    lengths["prediction_tokens"] = [len(ids) for ids in tokenizer(
        list(predictions["answer"]), add_special_tokens=False)["input_ids"]]
    frame = pd.concat([part[["id"]].reset_index(drop=True), predictions.reset_index(drop=True),
                       lengths.reset_index(drop=True)], axis=1)
    frame["nbest"] = [json.dumps(n, ensure_ascii=False) for n in nbest]
    return frame, seconds


def question_windows(model, tokenizer, question: str, context: str, windowing: WindowSettings = WindowSettings()):
    """One question's windows and the model's output on each (one batched pass): what the views of a
    single question (attention, attribution, soft targets) start from. Returns ``(windows, outputs)``."""
    windows = prepare_windows(pd.DataFrame({"question": [question], "context": [context]}), tokenizer, windowing)
    return windows, forward_windows(model, windows, range(len(windows)))
