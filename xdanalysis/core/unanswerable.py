"""Why a question cannot be answered, as humans said it: SQuAD2-CR's causes and rationales (Lee et al.,
2020, "SQuAD2-CR: Semi-supervised Annotation for Cause and Rationales for Unanswerability in SQuAD 2.0").

- :func:`load_unanswerable_causes` reads ``causes-dev.tsv`` (``qid``, ``reason``: one letter per question)
  into a table ``id, cause`` with the cause in words (``CAUSES``).
- :func:`load_rationales` reads ``rationales-dev.tsv`` (``qid``, ``question``: the question split into
  PTB-style words such as ``1000 's`` and ``has n't``, ``word_att``: one 0/1 per word, 1 marking the words
  that make the question unanswerable) into ``id, question, words, labels``. A row whose count of labels
  differs from its count of words is left out and counted (:func:`rationale_skips`), with a warning.
- :func:`align_words` finds each such word in the question as the dataset writes it (character spans), so
  word scores and deletions act on the question's own text.

Both files are keyed by the official SQuAD 2.0 question ids.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataError

__all__ = ['CAUSES', 'RATIONALE_COLUMNS', 'align_words', 'load_rationales', 'load_unanswerable_causes',
           'rationale_skips', 'word_spans']

# SQuAD2-CR's cause letters, in words, in the order tables show them.
CAUSES = {"E": "entity swap", "#": "number swap", "N": "negation", "A": "antonym", "X": "mutual exclusion",
          "I": "no information"}

RATIONALE_COLUMNS = ["id", "question", "words", "labels"]


def _rows(path: Path, columns: list[str]) -> list[tuple[int, dict]]:
    """The rows of a tab-separated file with a header naming ``columns`` (its line number beside each)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (SQuAD2-CR annotations are in ../shared/data/squad2-cr/)")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: the header lacks column(s) {missing}; it has {reader.fieldnames}")
        rows = []
        for row in reader:
            line = reader.line_num
            empty = [c for c in columns if not (row.get(c) or "").strip()]
            if empty:
                raise DataError(f"{path}, line {line}: empty {', '.join(empty)}")
            rows.append((line, row))
    return rows


def load_unanswerable_causes(path) -> pd.DataFrame:
    """SQuAD2-CR's cause of unanswerability per question: a table ``id, cause`` (a categorical of
    ``CAUSES``' words: entity swap, number swap, negation, antonym, mutual exclusion, no information).

    A letter that is not a cause, or an id given twice, is an error naming the file and line.

    Example::

        causes = load_unanswerable_causes("../shared/data/squad2-cr/causes-dev.tsv")
        causes["cause"].value_counts()
    """
    path = Path(path).expanduser()
    ids, causes, seen = [], [], {}
    for line, row in _rows(path, ["qid", "reason"]):
        qid, letter = row["qid"].strip(), row["reason"].strip()
        if letter not in CAUSES:
            raise DataError(f"{path}, line {line}: unknown cause {letter!r} for question {qid}; "
                            f"SQuAD2-CR's causes are {CAUSES}")
        if qid in seen:
            raise DataError(f"{path}, line {line}: question {qid} has a cause already (line {seen[qid]})")
        seen[qid] = line
        ids.append(qid)
        causes.append(CAUSES[letter])
    return pd.DataFrame({"id": ids, "cause": pd.Categorical(causes, categories=list(CAUSES.values()))})


def _labels(path: Path, line: int, text: str) -> list[int]:
    values = [v.strip() for v in text.split(",")]
    if any(v not in ("0", "1") for v in values):
        bad = next(v for v in values if v not in ("0", "1"))
        raise DataError(f"{path}, line {line}: word_att holds {bad!r}; each label is 0 or 1")
    return [int(v) for v in values]


def _read_rationales(path: Path) -> tuple[list, list]:
    """The rows that align (``RATIONALE_COLUMNS``) and those left out (``id, line, words, labels``: counts)."""
    records, seen, uneven = [], {}, []
    for line, row in _rows(path, ["qid", "question", "word_att"]):
        qid, words = row["qid"].strip(), row["question"].split()
        labels = _labels(path, line, row["word_att"])
        if qid in seen:
            raise DataError(f"{path}, line {line}: question {qid} has a rationale already (line {seen[qid]})")
        seen[qid] = line
        if len(labels) != len(words):
            uneven.append((qid, line, len(words), len(labels)))
            continue
        records.append((qid, " ".join(words), words, labels))
    return records, uneven


def load_rationales(path) -> pd.DataFrame:
    """SQuAD2-CR's rationales: ``id, question, words, labels`` (``question`` the words joined by spaces as
    the file has them; ``words`` a list of PTB-style words; ``labels`` one 0/1 per word, 1 for the words
    that make the question unanswerable).

    Rows whose count of labels differs from their count of words cannot be aligned: they are left out with
    a warning naming them (:func:`rationale_skips` lists them). A label other than 0/1 or an id given twice
    is an error naming the file and line.

    Example::

        rationales = load_rationales("../shared/data/squad2-cr/rationales-dev.tsv")
    """
    path = Path(path).expanduser()
    records, uneven = _read_rationales(path)
    if uneven:
        named = [f"{qid} (line {line}: {words} words, {labels} labels)" for qid, line, words, labels in uneven[:3]]
        warnings.warn(f"{path}: {len(uneven)} row(s) left out, their count of labels differs from their count of "
                      f"words: {', '.join(named)}{' ...' if len(uneven) > 3 else ''}", stacklevel=2)
    return pd.DataFrame.from_records(records, columns=RATIONALE_COLUMNS)


def rationale_skips(path) -> pd.DataFrame:
    """The rows of the rationale file ``path`` that :func:`load_rationales` leaves out: ``id, line, words,
    labels`` (their counts of words and of labels, which differ)."""
    return pd.DataFrame(_read_rationales(Path(path).expanduser())[1], columns=["id", "line", "words", "labels"])


def align_words(question: str, words) -> list[tuple[int, int]]:
    """The character span of each PTB-style word in ``question`` as the dataset writes it, in order: each
    word is found where the last one ended, past whitespace only (``"hasn't"`` holds ``has`` then ``n't``;
    ``"1000's"`` holds ``1000`` then ``'s``). PTB's quotes (````, ``''``) and brackets (``-LRB-``) match the
    characters they stand for. A word that is not there is an error naming it.

    >>> align_words("What royalty hasn't attended Yale?", ["What", "royalty", "has", "n't", "attended", "Yale", "?"])
    [(0, 4), (5, 12), (13, 16), (16, 19), (20, 28), (29, 33), (33, 34)]
    """
    spans, cursor = [], 0
    for word in words:
        found = None
        for form in _forms(word):
            at = question.find(form, cursor)
            if at >= 0 and not question[cursor:at].strip() and (found is None or at < found[0]):
                found = (at, at + len(form))
        if found is None:
            raise ValueError(f"word {word!r} is not next in the question {question!r} after character {cursor} "
                             f"(aligned so far: {words[:len(spans)]})")
        spans.append(found)
        cursor = found[1]
    return spans


_PTB = {"``": ['"', "“"], "''": ['"', "”"], "-LRB-": ["("], "-RRB-": [")"], "-LSB-": ["["], "-RSB-": ["]"],
        "-LCB-": ["{"], "-RCB-": ["}"], "`": ["'", "‘"]}


def _forms(word: str) -> list[str]:
    return [word] + _PTB.get(word, [])


def word_spans(questions: pd.DataFrame, rationales: pd.DataFrame) -> pd.DataFrame:
    """The rationales of the questions in ``questions`` (a table with ``id`` and ``question``), each word
    aligned to the question's own text: ``RATIONALE_COLUMNS`` + ``spans`` (a list of ``(start, end)``).
    Ids without a rationale are not joined; a question whose words cannot be aligned is an error naming it."""
    joined = rationales.drop(columns=["question"]).merge(questions[["id", "question"]], on="id")
    spans = []
    for qid, question, words in zip(joined["id"], joined["question"], joined["words"]):
        try:
            spans.append(align_words(question, list(words)))
        except ValueError as error:
            raise ValueError(f"question {qid}: {error}") from None
    joined["spans"] = spans
    joined["labels"] = [np.asarray(labels, dtype=int).tolist() for labels in joined["labels"]]
    return joined[RATIONALE_COLUMNS + ["spans"]]
