"""Training batches: seeded, length-grouped (the targets, run_qa's labels per window, are in model.windows)."""

from __future__ import annotations

import math

import numpy as np

from ..model.windows import Windows

__all__ = ['epoch_batches']


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
