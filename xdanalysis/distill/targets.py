"""Training targets: run_qa's start/end labels per window, and seeded length-grouped batches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..model.windows import Windows

__all__ = ['epoch_batches', 'window_labels']


# Targets -------------------------------------------------------------------------------------

def window_labels(table: pd.DataFrame, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Start and end token of the first gold answer in every window, as run_qa trains: the
    answer's tokens when the window holds all of it, else the window's [CLS] position (also for
    unanswerable questions). Returns two int arrays, one entry per window.

    Example::

        starts, ends = window_labels(table, prepare_windows(table, tokenizer))
    """
    starts = np.empty(len(windows), dtype=np.int64)
    ends = np.empty(len(windows), dtype=np.int64)
    answer_texts = list(table["answer_texts"])
    answer_starts = list(table["answer_starts"])
    for w, (question, offsets, cls) in enumerate(zip(windows.question_index, windows.offsets, windows.cls_index)):
        starts[w] = ends[w] = cls
        if not len(answer_texts[question]):
            continue
        char_start = int(answer_starts[question][0])
        char_end = char_start + len(answer_texts[question][0])
        inside = np.flatnonzero(offsets[:, 0] >= 0)
        if not len(inside) or offsets[inside[0], 0] > char_start or offsets[inside[-1], 1] < char_end:
            continue  # the answer is not (wholly) in this window
        covering = inside[(offsets[inside, 0] < char_end) & (offsets[inside, 1] > char_start)]
        starts[w], ends[w] = covering[0], covering[-1]
    return starts, ends


def _subset(windows: Windows, indices, renumber=None) -> Windows:
    pick = lambda values: [values[i] for i in indices]  # noqa: E731
    questions = pick(windows.question_index)
    return Windows(input_ids=pick(windows.input_ids), offsets=pick(windows.offsets), kinds=pick(windows.kinds),
                   question_offsets=pick(windows.question_offsets),
                   question_index=[renumber[q] for q in questions] if renumber else questions,
                   cls_index=pick(windows.cls_index), pad_token_id=windows.pad_token_id,
                   token_type_ids=pick(windows.token_type_ids) if windows.token_type_ids is not None else None)


def epoch_batches(lengths, *, batch_size: int, seed: int, group: int = 50) -> list[np.ndarray]:
    """One epoch's batches of window indices: shuffled (seeded), then sorted by length within
    groups of ``group`` batches, so that a batch pads little while the order stays random (the
    length-grouped sampling of transformers' Trainer); the batches themselves are shuffled too.

    >>> sorted(int(i) for batch in epoch_batches([5, 9, 7, 3, 8], batch_size=2, seed=0) for i in batch)
    [0, 1, 2, 3, 4]
    """
    lengths = np.asarray(lengths)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    span = batch_size * group
    grouped = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")]
                              for chunk in np.array_split(order, max(1, math.ceil(len(order) / span)))])
    batches = [grouped[i: i + batch_size] for i in range(0, len(grouped), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
