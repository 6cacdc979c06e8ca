"""A question table as overlapping token windows (run_qa's windowing), and length-sorted batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.settings import WindowSettings

__all__ = ['Windows', 'length_batches', 'prepare_windows', 'window_labels']


@dataclass
class Windows:
    """Every window of a question table, as the tokenizer made them (one entry per window).

    ``input_ids`` (and ``token_type_ids`` when the model has them) are lists of token ids;
    ``offsets`` int arrays ``[tokens, 2]`` of character offsets into the context (``-1`` outside
    it); ``kinds`` per token ``"special"``, ``"question"`` or ``"context"``; ``question_offsets``
    character offsets into the (stripped, possibly truncated) question, ``-1`` outside it;
    ``question_index`` the row position in the table; ``cls_index`` where [CLS] sits (first for
    BERT, last for XLNet); ``truncated`` the row positions whose question was cut to
    ``max_query_length`` tokens. ``windows["input_ids"]`` works as well as ``windows.input_ids``.
    """

    input_ids: list
    offsets: list
    kinds: list
    question_offsets: list
    question_index: list
    cls_index: list
    pad_token_id: int = 0
    token_type_ids: list | None = None
    truncated: list = field(default_factory=list)
    questions: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, name: str):
        return getattr(self, name)

    def __contains__(self, name: str) -> bool:
        return getattr(self, name, None) is not None

    def get(self, name: str, default=None):
        value = getattr(self, name, None)
        return default if value is None else value

    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])


def _question_budget(tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int) -> int:
    """How many question tokens a window can hold and still leave ``doc_stride + 1`` context tokens."""
    room = max_seq_length - tokenizer.num_special_tokens_to_add(pair=True) - doc_stride - 1
    if room < 1:
        raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the question: with doc_stride "
                         f"{doc_stride} and the model's special tokens, a window needs max_seq_length > "
                         f"{max_seq_length - room + 1}")
    return min(max_query_length, room)


def _truncate_questions(questions: list, tokenizer, budget: int) -> tuple[list, list]:
    """Cut questions longer than ``budget`` tokens at a token boundary; returns (questions, cut rows)."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    cut = []
    for i, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
        if len(ids) <= budget:
            continue
        keep = budget
        while keep > 0:  # re-tokenising a prefix can give a different count: shrink until it fits
            text = questions[i][: offsets[keep - 1][1]]
            if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget:
                break
            keep -= 1
        questions[i] = text
        cut.append(i)
    return questions, cut


def _window_layout(encoded, tokenizer, *, context_id: int) -> tuple[list, list, list, list]:
    """Per window: the context tokens' character offsets (others -1), the question tokens' (others -1),
    each token's kind and the position of its [CLS]."""
    offsets, question_offsets, kinds, cls_index = [], [], [], []
    for i, mapping in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        array = np.array(mapping, dtype=np.int64).reshape(-1, 2)
        window_kinds = ["special" if s is None else ("context" if s == context_id else "question")
                        for s in sequence_ids]
        is_context = np.array([k == "context" for k in window_kinds], dtype=bool)
        is_question = np.array([k == "question" for k in window_kinds], dtype=bool)
        context_offsets, q_offsets = array.copy(), array.copy()
        context_offsets[~is_context] = -1
        q_offsets[~is_question] = -1
        offsets.append(context_offsets)
        question_offsets.append(q_offsets)
        kinds.append(window_kinds)
        # [CLS] among the tokens outside both texts: the literal text "[CLS]" in a context is not it
        found = [t for t, (s, token) in enumerate(zip(sequence_ids, encoded["input_ids"][i]))
                 if s is None and token == tokenizer.cls_token_id]
        if not found:
            raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')}: a window holds no "
                             f"{tokenizer.cls_token} token; cannot take the null score")
        cls_index.append(found[0])
    return offsets, question_offsets, kinds, cls_index


def prepare_windows(table: pd.DataFrame, tokenizer, windowing: WindowSettings = WindowSettings()) -> Windows:
    """Tokenise every question into overlapping windows (see :class:`Windows`).

    Only the context is split into windows; a question longer than ``max_query_length`` tokens
    (or than a window leaves room for) is cut to fit, as the original SQuAD scripts do, and its
    row is listed in ``truncated``, so one long question never stops a run.

    Example::

        windows = prepare_windows(load_squad(path, limit=4), tokenizer, WindowSettings(128, 32))
        len(windows), windows.cls_index[0]
    """
    max_seq_length, doc_stride = windowing.max_seq_length, windowing.doc_stride
    if tokenizer.cls_token_id is None:
        raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')}: no [CLS] token, so there is no "
                         "null (no-answer) score; extractive SQuAD 2.0 models need one")
    pad_on_right = tokenizer.padding_side == "right"
    budget = _question_budget(tokenizer, max_seq_length, doc_stride, windowing.max_query_length)
    questions = [str(q).lstrip() for q in table["question"]]  # leading spaces waste window room
    questions, truncated = _truncate_questions(questions, tokenizer, budget)
    contexts = list(table["context"])
    encoded = tokenizer(
        questions if pad_on_right else contexts,
        contexts if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    layout = _window_layout(encoded, tokenizer, context_id=1 if pad_on_right else 0)
    offsets, question_offsets, kinds, cls_index = layout
    return Windows(
        input_ids=encoded["input_ids"],
        offsets=offsets,
        kinds=kinds,
        question_offsets=question_offsets,
        question_index=list(encoded["overflow_to_sample_mapping"]),
        cls_index=cls_index,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        token_type_ids=encoded["token_type_ids"] if "token_type_ids" in encoded else None,
        truncated=truncated,
        questions=questions,
    )


def length_batches(lengths, batch_size: int = 32, max_batch_tokens: int | None = 2048) -> list[np.ndarray]:
    """Window indices grouped into batches, longest windows first.

    A batch holds at most ``batch_size`` windows and, when ``max_batch_tokens`` is set, at most
    that many tokens once padded to its longest window (always at least one window). On a CPU,
    batches of ~2k tokens keep the feed-forward activations in cache; bigger ones run slower.

    >>> [b.tolist() for b in length_batches([5, 9, 7, 3], batch_size=2, max_batch_tokens=None)]
    [[1, 2], [0, 3]]
    >>> [b.tolist() for b in length_batches([5, 9, 7, 3], batch_size=4, max_batch_tokens=18)]
    [[1, 2], [0, 3]]
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, current = [], []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        too_many = len(current) >= batch_size
        too_long = max_batch_tokens is not None and (len(current) + 1) * width > max_batch_tokens
        if current and (too_many or too_long):
            batches.append(np.array(current))
            current = []
        current.append(index)
    if current:
        batches.append(np.array(current))
    return batches


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
