"""Robustness probes: rewrite questions so that the right behaviour is known, then check the model keeps it.

A probe takes a question table (:func:`xdanalysis.core.data.load_squad`) and returns a new one with the
same columns plus ``probe``, ``source_id``, ``expect`` and ``note``. Ids are ``"<source_id>~<probe>"``;
gold and plausible answers are re-mapped to the new context and the table is validated as
``load_squad`` validates. ``expect`` is what a model that knows what it doesn't know does:

- ``"abstain"``: answer nothing;
- ``"same_answer"``: give the same answer as on the original question (abstaining counts);
- ``"answer"``: give the new gold answer (EM 1);
- ``"any_answer"``: answer something (the words that made the question unanswerable are gone, and there
  is no gold to check the answer against).

Two probes need SQuAD2-CR's rationales (``rationales=``, :func:`~xdanalysis.core.unanswerable.load_rationales`):
``delete_rationale`` deletes the words humans marked as making the question unanswerable, and
``delete_random_words`` deletes as many words drawn at random from the question's words (those with a letter
or digit, marked or not): the control that says how much deleting any words moves the model.

A question a probe cannot apply to is skipped and counted (:func:`probe_skips`, by reason),
never altered some other way. Random choices are seeded per question (``seed``, the probe and the
question's id), so a probe gives the same rewrite whatever else is in the table.

Sentence boundaries come from pysbd (rule-based, built for English prose like Wikipedia's). A
sentence an answer (or plausible answer) crosses into the next is kept together with it.

:func:`run_probes` predicts every probe as a normal run (cached, resumable) and
:func:`probe_summary` says how often each expectation was met.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ...core.common import check_choice
from ...core.data import COLUMNS, validate_table
from ...core.metrics import normalize_answer
from ...core.text import STOPWORDS, question_type, sentence_spans
from ...core.unanswerable import align_words

__all__ = ['EXPECTATIONS', 'PROBES', 'PROBE_COLUMNS', 'RATIONALE_PROBES', 'Probe', 'apply_probe', 'delete_spans',
           'expectation_met', 'probe_names', 'probe_pairs', 'probe_skips']


EXPECTATIONS = ["abstain", "same_answer", "answer", "any_answer"]


@dataclass(frozen=True)
class Probe:
    """A named rewrite: ``applies_to`` is ``"answerable"``, ``"unanswerable"`` or ``"all"``."""

    name: str
    description: str
    applies_to: str
    rewrite: Callable


def _units(context: str, spans) -> list[tuple[int, int]]:
    """Sentences, merged where an answer span crosses from one into the next."""
    units = [list(s) for s in sentence_spans(context)]
    for start, end in spans:
        touched = [i for i, (s, e) in enumerate(units) if start < e and s < end]
        if len(touched) > 1:
            first, last = touched[0], touched[-1]
            units[first:last + 1] = [[units[first][0], units[last][1]]]
    return [tuple(u) for u in units]


def _holding(units, spans) -> list[int]:
    return sorted({i for i, (s, e) in enumerate(units) for start, end in spans if start < e and s < end})


def _spans_of(texts, starts) -> list[tuple[int, int]]:
    return [(int(s), int(s) + len(t)) for t, s in zip(texts, starts)]


def _rebuild(context: str, units, pieces) -> tuple[str, dict]:
    """Join ``pieces`` (a unit index of ``units``, or new text) with single spaces. Returns the new
    context and, for each kept unit, its shift (new position − old position)."""
    parts, shifts, position = [], {}, 0
    for piece in pieces:
        if parts:
            parts.append(" ")
            position += 1
        if isinstance(piece, str):
            text = piece
        else:
            start, end = units[piece]
            text = context[start:end]
            shifts[piece] = position - start
        parts.append(text)
        position += len(text)
    return "".join(parts), shifts


def _remap(units, shifts, texts, starts):
    """Answer spans moved with their units; those in dropped units are dropped."""
    new_texts, new_starts = [], []
    for text, start in zip(texts, starts):
        unit = next((i for i, (s, e) in enumerate(units) if s <= start and start + len(text) <= e), None)
        if unit is not None and unit in shifts:
            new_texts.append(text)
            new_starts.append(int(start) + shifts[unit])
    return new_texts, new_starts


def _moved(row, units, pieces, **changes) -> dict:
    context, shifts = _rebuild(row.context, units, pieces)
    texts, starts = _remap(units, shifts, row.answer_texts, row.answer_starts)
    p_texts, p_starts = _remap(units, shifts, row.plausible_texts, row.plausible_starts)
    return {"context": context, "answer_texts": texts, "answer_starts": starts, "plausible_texts": p_texts,
            "plausible_starts": p_starts, **changes}


def _all_spans(row):
    return _spans_of(row.answer_texts, row.answer_starts) + _spans_of(row.plausible_texts, row.plausible_starts)


def _contains_any(text: str, needles) -> bool:
    low = text.lower()
    return any(n and n.lower() in low for n in needles)


def _sentence_text(row, units, indices) -> str:
    return " ".join(row.context[units[i][0]:units[i][1]] for i in indices)


# The rewrites. Each returns the changed fields (with "expect" and "note") or a skip reason (str).

def _remove_answer_sentence(row, rng, pool):
    units = _units(row.context, _all_spans(row))
    gold = _holding(units, _spans_of(row.answer_texts, row.answer_starts))
    kept = [i for i in range(len(units)) if i not in gold]
    if not kept:
        return "the answer's sentence is the whole context"
    result = _moved(row, units, kept, expect="abstain",
                    note=f"removed: {_sentence_text(row, units, gold)!r}")
    if _contains_any(result["context"], row.answer_texts):
        return "a gold answer text appears elsewhere in the context"
    return {**result, "answer_texts": [], "answer_starts": [], "plausible_texts": [], "plausible_starts": []}


def _answer_sentence_only(row, rng, pool):
    units = _units(row.context, _all_spans(row))
    gold = _holding(units, _spans_of(row.answer_texts, row.answer_starts))
    if len(gold) == len(units):
        return "the context is the answer's sentence already"
    return _moved(row, units, gold, expect="same_answer",
                  note=f"kept only: {_sentence_text(row, units, gold)!r}")


def _shuffle_sentences(row, rng, pool):
    units = _units(row.context, _all_spans(row))
    fixed = set(_holding(units, _all_spans(row)))
    others = [i for i in range(len(units)) if i not in fixed]
    if len(others) < 2:
        return "fewer than two sentences without an answer to shuffle"
    order = list(others)
    while order == others:  # a shuffle that changes nothing is no probe
        order = list(rng.permutation(others))
    placed = iter(order)
    pieces = [i if i in fixed else int(next(placed)) for i in range(len(units))]
    return _moved(row, units, pieces, expect="same_answer",
                  note=f"sentence order {[p + 1 for p in pieces]} (the answer's sentence stays)")


def _move_answer_sentence(where):
    def rewrite(row, rng, pool):
        units = _units(row.context, _all_spans(row))
        gold = _holding(units, _spans_of(row.answer_texts, row.answer_starts))
        if len(gold) != 1:
            return "the gold answers lie in different sentences"
        unit = gold[0]
        if len(units) < 2 or unit == (0 if where == "start" else len(units) - 1):
            return f"the answer's sentence is at the {where} already"
        rest = [i for i in range(len(units)) if i != unit]
        pieces = [unit] + rest if where == "start" else rest + [unit]
        return _moved(row, units, pieces, expect="same_answer",
                      note=f"moved to the {where}: {_sentence_text(row, units, [unit])!r}")
    return rewrite


def _add_irrelevant_sentence(where):
    def rewrite(row, rng, pool):
        others = [s for title, s in pool["sentences"] if title != row.title]
        if not others:
            return "no other article in the data to take a sentence from"
        needles = list(row.answer_texts) + list(row.plausible_texts)
        candidates = [s for s in others if not _contains_any(s, needles)]
        if not candidates:
            return "every other article's sentence holds an answer text"
        sentence = candidates[int(rng.integers(len(candidates)))]
        units = _units(row.context, _all_spans(row))
        pieces = [sentence] + list(range(len(units))) if where == "start" else list(range(len(units))) + [sentence]
        expect = "same_answer" if len(row.answer_texts) else "abstain"
        return _moved(row, units, pieces, expect=expect, note=f"added at the {where}: {sentence!r}")
    return rewrite


_WORD = re.compile(r"[A-Za-z]{4,}")


def _question_typo(row, rng, pool):
    words = [m for m in _WORD.finditer(row.question) if m.group().lower() not in STOPWORDS]
    choices = [(m, i) for m in words for i in range(1, len(m.group()) - 1)  # the first letter stays
               if m.group()[i].lower() != m.group()[i + 1].lower()]
    if not choices:
        return "no content word of four letters or more to misspell"
    match, i = choices[int(rng.integers(len(choices)))]
    word = match.group()
    typo = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    question = row.question[:match.start()] + typo + row.question[match.end():]
    return {"question": question, "expect": "same_answer", "note": f"{word!r} -> {typo!r}"}


def _question_lowercase(row, rng, pool):
    if row.question == row.question.lower():
        return "the question is lowercase already"
    return {"question": row.question.lower(), "expect": "same_answer", "note": "question lowercased"}


def _shape(text: str) -> tuple[bool, bool]:
    """A number stays a number, a name a name: holds a digit, starts with a capital."""
    return any(c.isdigit() for c in text), text[:1].isupper()


def _swap_answer(row, rng, pool):
    old = row.answer_texts[0]
    if _contains_any(row.question, [old]):
        return "the answer appears in the question"
    kind = question_type(row.question)
    golds = {normalize_answer(t) for t in row.answer_texts}
    fitting = {(title == row.title, text) for title, k, text in pool["answers"]
               if k == kind and _shape(text) == _shape(old) and normalize_answer(text)
               and normalize_answer(text) not in golds and not _contains_any(row.context, [text])
               and old.lower() not in text.lower()}
    if not fitting:
        return "no other answer of the same question type and shape"
    # Closest first: an answer from the same article (another paragraph), of about the same length.
    tiers = [[t for same, t in fitting if same == same_article and abs(len(t.split()) - len(old.split())) <= near]
             for same_article in (True, False) for near in (1, 1000)]
    candidates = sorted(next(tier for tier in tiers if tier))
    new = candidates[int(rng.integers(len(candidates)))]
    occurrences = [m.start() for m in re.finditer(re.escape(old), row.context)]
    context, cursor, moves = [], 0, []  # moves: the (start, end) of each replaced occurrence
    for start in occurrences:
        context.append(row.context[cursor:start] + new)
        cursor = start + len(old)
        moves.append((start, cursor))
    context.append(row.context[cursor:])
    context = "".join(context)
    delta = len(new) - len(old)

    def position(p):
        """Where old position p lands; None when it falls inside a replaced occurrence."""
        if any(start < p < end for start, end in moves):
            return None
        return p + delta * sum(end <= p for _, end in moves)

    texts, starts = [], []
    for text, start in zip(row.answer_texts, row.answer_starts):
        s, e = position(int(start)), position(int(start) + len(text))
        if s is None or e is None or new not in context[s:e]:
            continue  # a gold answer that does not hold the swapped string no longer names it
        texts.append(context[s:e])
        starts.append(s)
    if not texts:
        return "no gold answer holds the swapped string"
    return {"context": context, "answer_texts": texts, "answer_starts": starts, "plausible_texts": [],
            "plausible_starts": [], "expect": "answer", "note": f"{old!r} -> {new!r} ({len(occurrences)}x)"}


def _remove_plausible_sentence(row, rng, pool):
    if not len(row.plausible_texts):
        return "no plausible answer to remove"
    units = _units(row.context, _all_spans(row))
    plausible = _holding(units, _spans_of(row.plausible_texts, row.plausible_starts))
    kept = [i for i in range(len(units)) if i not in plausible]
    if not kept:
        return "the plausible answer's sentence is the whole context"
    return {**_moved(row, units, kept, expect="abstain",
                     note=f"removed: {_sentence_text(row, units, plausible)!r}"),
            "plausible_texts": [], "plausible_starts": []}


def delete_spans(text: str, spans) -> str:
    """``text`` without the characters at the ``(start, end)`` spans, and without the space a deleted word
    leaves doubled (or leading, or before punctuation).

    >>> delete_spans("What royalty hasn't attended Yale?", [(16, 19)])
    'What royalty has attended Yale?'
    >>> delete_spans("Who gave their name to Normandy in the 1000's?", [(39, 43), (43, 45)])
    'Who gave their name to Normandy in the?'
    """
    kept, cursor = [], 0
    for start, end in sorted(spans):
        kept.append(text[cursor:start])
        cursor = max(cursor, end)
    kept.append(text[cursor:])
    joined = re.sub(r"\s+", " ", "".join(kept)).strip()
    return re.sub(r" (?=[?.,!;:])", "", joined)


def _rationale_of(row, pool):
    """The question's rationale words, their spans in the question and the marked indices, or why not."""
    if pool.get("rationales") is None:
        return "no rationales given (rationales=)"
    found = pool["rationales"].get(row.id)
    if found is None:
        return "no rationale for this question"
    words, labels = found
    marked = [i for i, label in enumerate(labels) if label]
    if not marked:
        return "no word is marked"
    if len(marked) == len(words):
        return "every word is marked"
    try:
        spans = align_words(row.question, words)
    except ValueError:
        return "the rationale's words are not the question's"
    return words, spans, marked


def _delete_rationale(row, rng, pool):
    found = _rationale_of(row, pool)
    if isinstance(found, str):
        return found
    words, spans, marked = found
    return {"question": delete_spans(row.question, [spans[i] for i in marked]), "expect": "any_answer",
            "note": f"deleted the rationale: {' '.join(words[i] for i in marked)!r}"}


def _delete_random_words(row, rng, pool):
    found = _rationale_of(row, pool)
    if isinstance(found, str):
        return found
    words, spans, marked = found
    candidates = [i for i, w in enumerate(words) if any(c.isalnum() for c in w)]
    if len(candidates) <= len(marked):
        return "no more words than the rationale's to draw from"
    drawn = sorted(int(i) for i in rng.choice(candidates, size=len(marked), replace=False))
    return {"question": delete_spans(row.question, [spans[i] for i in drawn]), "expect": "abstain",
            "note": f"deleted {len(drawn)} random word(s): {' '.join(words[i] for i in drawn)!r}"}


PROBES = {p.name: p for p in [
    Probe("remove_answer_sentence", "every sentence holding a gold answer deleted", "answerable",
          _remove_answer_sentence),
    Probe("answer_sentence_only", "the context is the answer's sentence alone", "answerable", _answer_sentence_only),
    Probe("shuffle_sentences", "the sentences without an answer shuffled", "all", _shuffle_sentences),
    Probe("move_answer_sentence_start", "the answer's sentence moved to the start", "answerable",
          _move_answer_sentence("start")),
    Probe("move_answer_sentence_end", "the answer's sentence moved to the end", "answerable",
          _move_answer_sentence("end")),
    Probe("add_irrelevant_sentence_start", "a sentence of another article added at the start", "all",
          _add_irrelevant_sentence("start")),
    Probe("add_irrelevant_sentence_end", "a sentence of another article added at the end", "all",
          _add_irrelevant_sentence("end")),
    Probe("question_typo", "two adjacent letters of a content word swapped", "all", _question_typo),
    Probe("question_lowercase", "the question lowercased", "all", _question_lowercase),
    Probe("swap_answer", "the gold answer replaced everywhere by another question's answer of the same question "
          "type and shape (a number by a number, a name by a name), from the same article where possible",
          "answerable", _swap_answer),
    Probe("remove_plausible_sentence", "the plausible answer's sentence deleted", "unanswerable",
          _remove_plausible_sentence),
    Probe("delete_rationale", "the question's words that SQuAD2-CR's annotators marked as making it unanswerable "
          "deleted (needs rationales)", "unanswerable", _delete_rationale),
    Probe("delete_random_words", "as many of the question's words as its rationale has, drawn at random, deleted "
          "(the control for delete_rationale; needs rationales)", "unanswerable", _delete_random_words),
]}

# The probes that need rationales: "all" runs them only when rationales are given.
RATIONALE_PROBES = ["delete_rationale", "delete_random_words"]


def _pool(table: pd.DataFrame, rationales: pd.DataFrame | None = None) -> dict:
    """What probes borrow from other questions: sentences and gold answers, with their article; and the
    rationales by id (``{id: (words, labels)}``), when given."""
    sentences, seen = [], set()
    for title, context in zip(table["title"], table["context"]):
        if context in seen:
            continue
        seen.add(context)
        sentences.extend((title, context[s:e]) for s, e in sentence_spans(context))
    answers = [(title, question_type(q), texts[0])
               for title, q, texts in zip(table["title"], table["question"], table["answer_texts"]) if len(texts)]
    marks = None if rationales is None else \
        {qid: (list(w), list(l)) for qid, w, l in zip(rationales["id"], rationales["words"], rationales["labels"])}
    return {"sentences": sentences, "answers": answers, "rationales": marks}


def _rng(seed: int, name: str, qid: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(qid.encode())])


PROBE_COLUMNS = COLUMNS + ["probe", "source_id", "expect", "note"]


def apply_probe(table: pd.DataFrame, name: str, *, seed: int = 0,
                rationales: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rewrite the questions of ``table`` with the probe ``name`` (a key of ``PROBES``).

    Returns the probed questions (``PROBE_COLUMNS``), a plain frame; the questions the probe could not
    rewrite, by reason, are :func:`probe_skips`. Sentences and answers borrowed from other questions
    come from ``table`` itself; ``rationales`` (:func:`~xdanalysis.core.unanswerable.load_rationales`) are
    what ``RATIONALE_PROBES`` delete words by.

    >>> context = "Paris is in France. It is big. Rome is in Italy."
    >>> t = pd.DataFrame([{"id": "q", "title": "T", "context": context, "question": "Where is Paris?",
    ...     "answer_texts": ["France"], "answer_starts": [12], "is_impossible": False,
    ...     "plausible_texts": [], "plausible_starts": []}])
    >>> apply_probe(t, "move_answer_sentence_end")["context"].iloc[0]
    'It is big. Rome is in Italy. Paris is in France.'
    """
    return _rewritten(table, name, seed, rationales)[0]


def probe_pairs(data, *, probe: str = "remove_answer_sentence", limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Pairs for activation patching: each question the run answered, rewritten by ``probe``, with its
    ``original_context`` beside the ``probed_context`` (the other columns: the probed question's). ``data``
    is a run (its answers decide which questions qualify) or a run's table; ``limit`` keeps the first pairs.

    Example::

        pairs = probe_pairs(run, limit=40)
        patch_abstention(model, tokenizer, pairs)
    """
    from ...runs.run import table_of

    table = table_of(data)
    answered = set(table.loc[table["answer"] != "", "id"])
    probed = apply_probe(table, probe, seed=seed)
    pairs = (probed[probed["source_id"].isin(answered)]
             .merge(table[["id", "context"]].rename(columns={"id": "source_id", "context": "original_context"}),
                    on="source_id")
             .rename(columns={"context": "probed_context"}))
    return pairs if limit is None else pairs.head(limit)


def probe_skips(table: pd.DataFrame, name: str, *, seed: int = 0, rationales: pd.DataFrame | None = None) -> dict:
    """The questions of ``table`` the probe ``name`` cannot rewrite, counted by reason ``{reason: count}``
    (what :func:`apply_probe` leaves out; its rows and these counts add up to ``len(table)``)."""
    return _rewritten(table, name, seed, rationales)[1]


def _rewritten(table: pd.DataFrame, name: str, seed: int, rationales) -> tuple[pd.DataFrame, dict]:
    check_choice("probe", name, list(PROBES))
    probe = PROBES[name]
    pool = _pool(table, rationales)
    rows, skipped = [], {}
    for row in table.itertuples(index=False):
        answerable = len(row.answer_texts) > 0
        if probe.applies_to == "answerable" and not answerable:
            changed = "unanswerable question"
        elif probe.applies_to == "unanswerable" and answerable:
            changed = "answerable question"
        else:
            changed = probe.rewrite(row, _rng(seed, name, row.id), pool)  # the changed fields, or why not
        if isinstance(changed, str):
            skipped[changed] = skipped.get(changed, 0) + 1
            continue
        new = {c: getattr(row, c) for c in COLUMNS}
        new.update({k: v for k, v in changed.items() if k in COLUMNS})
        new["answer_texts"], new["answer_starts"] = list(new["answer_texts"]), [int(s) for s in new["answer_starts"]]
        new["plausible_texts"] = list(new["plausible_texts"])
        new["plausible_starts"] = [int(s) for s in new["plausible_starts"]]
        new["is_impossible"] = not new["answer_texts"]
        new.update(id=f"{row.id}~{name}", probe=name, source_id=row.id, expect=changed["expect"],
                   note=changed["note"])
        rows.append(new)
    result = pd.DataFrame.from_records(rows, columns=PROBE_COLUMNS)
    if len(result):
        validate_table(result, f"probe {name}", strict=True)  # a remapping bug is an error, never a bad gold
    return result, skipped


def expectation_met(expect: str, original_answer: str, probed_answer: str, probed_exact) -> bool:
    """Whether a probed prediction meets the probe's expectation.

    >>> expectation_met("same_answer", "the Normans", "Normans", 0)
    True
    >>> expectation_met("abstain", "Rollo", "Rollo", 0)
    False
    """
    check_choice("expectation", expect, EXPECTATIONS)
    if expect == "abstain":
        return probed_answer == ""
    if expect == "any_answer":
        return probed_answer != ""
    if expect == "same_answer":
        return normalize_answer(probed_answer) == normalize_answer(original_answer) and \
            (probed_answer == "") == (original_answer == "")
    return bool(probed_exact == 1)


# Running the probes and reading what they found ----------------------------------------------

def probe_names(probes="all", *, rationales: bool = False) -> list[str]:
    """``"all"``, a list of names (empty: none), or one comma-separated string, checked against ``PROBES``.
    ``"all"`` holds ``RATIONALE_PROBES`` only when ``rationales`` are given; naming one without them is
    an error.

    >>> probe_names("question_typo, question_lowercase")
    ['question_typo', 'question_lowercase']
    """
    if probes == "all" or probes is None:
        return [n for n in PROBES if rationales or n not in RATIONALE_PROBES]
    names = [p.strip() for p in probes.split(",")] if isinstance(probes, str) else list(probes)
    if not isinstance(probes, str) and not names:
        return []  # an empty list: the original run only
    unknown = [n for n in names if n not in PROBES]
    if unknown or not names:
        raise ValueError(f"unknown probe(s) {unknown}; use 'all' or some of {list(PROBES)}")
    needing = [n for n in names if n in RATIONALE_PROBES]
    if needing and not rationales:
        raise ValueError(f"probe(s) {needing} delete the words of SQuAD2-CR's rationales: give them (rationales=, "
                         "or --rationales ../shared/data/squad2-cr/rationales-dev.tsv)")
    return list(dict.fromkeys(names))
