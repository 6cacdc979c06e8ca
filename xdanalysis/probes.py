"""Robustness probes: rewrite questions so that the right behaviour is known, then check the model keeps it.

A probe takes a question table (:func:`xdanalysis.data.load_squad`) and returns a new one with the
same columns plus ``probe``, ``source_id``, ``expect`` and ``note``. Ids are ``"<source_id>~<probe>"``;
gold and plausible answers are re-mapped to the new context and the table is validated as
``load_squad`` validates. ``expect`` is what a model that knows what it doesn't know does:

- ``"abstain"``: answer nothing;
- ``"same_answer"``: give the same answer as on the original question (abstaining counts);
- ``"answer"``: give the new gold answer (EM 1).

A question a probe cannot apply to is skipped and counted (``table.attrs["skipped"]``, by reason),
never altered some other way. Random choices are seeded per question (``seed``, the probe and the
question's id), so a probe gives the same rewrite whatever else is in the table.

Sentence boundaries come from pysbd (rule-based, built for English prose like Wikipedia's). A
sentence an answer (or plausible answer) crosses into the next is kept together with it.

:func:`run_probes` predicts every probe as a normal run (cached, resumable) and
:func:`probe_summary` says how often each expectation was met.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ._common import check_choice
from .data import COLUMNS, _validate
from .errors import _STOPWORDS, question_type
from .metrics import normalize_answer

__all__ = ["PROBES", "PROBE_COLUMNS", "EXPECTATIONS", "Probe", "apply_probe", "sentence_spans", "expectation_met",
           "probe_names", "probe_results", "run_probes", "load_probes", "probe_summary", "probe_summary_text",
           "probe_examples"]

EXPECTATIONS = ["abstain", "same_answer", "answer"]


@dataclass(frozen=True)
class Probe:
    """A named rewrite: ``applies_to`` is ``"answerable"``, ``"unanswerable"`` or ``"all"``."""

    name: str
    description: str
    applies_to: str
    rewrite: Callable


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


@lru_cache(maxsize=4096)
def sentence_spans(text: str) -> tuple:
    """``(start, end)`` character spans of the sentences of ``text`` (pysbd), without the
    whitespace between them.

    >>> text = "Dr. Smith won in 1759. It was 3.5 km away!"
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['Dr. Smith won in 1759.', 'It was 3.5 km away!']
    """
    spans, position = [], 0
    for sentence in _segmenter().segment(text):
        piece = sentence.strip()
        if not piece:
            continue
        start = text.find(piece, position)
        if start < 0:  # the splitter changed the text: keep what is left as one sentence
            break
        spans.append((start, start + len(piece)))
        position = start + len(piece)
    rest = text[position:].strip()
    if rest:
        start = text.index(rest, position)
        spans.append((start, start + len(rest)))
    return tuple(spans)


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
    words = [m for m in _WORD.finditer(row.question) if m.group().lower() not in _STOPWORDS]
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
]}


def _pool(table: pd.DataFrame) -> dict:
    """What probes borrow from other questions: sentences and gold answers, with their article."""
    sentences, seen = [], set()
    for title, context in zip(table["title"], table["context"]):
        if context in seen:
            continue
        seen.add(context)
        sentences.extend((title, context[s:e]) for s, e in sentence_spans(context))
    answers = [(title, question_type(q), texts[0])
               for title, q, texts in zip(table["title"], table["question"], table["answer_texts"]) if len(texts)]
    return {"sentences": sentences, "answers": answers}


def _rng(seed: int, name: str, qid: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(qid.encode())])


PROBE_COLUMNS = COLUMNS + ["probe", "source_id", "expect", "note"]


def apply_probe(table: pd.DataFrame, name: str, *, seed: int = 0) -> pd.DataFrame:
    """Rewrite the questions of ``table`` with the probe ``name`` (a key of ``PROBES``).

    Returns the probed questions (``PROBE_COLUMNS``); ``.attrs``: ``probe``, ``n_source`` and
    ``skipped`` (``{reason: count}``). Sentences and answers borrowed from other questions come
    from ``table`` itself.

    >>> context = "Paris is in France. It is big. Rome is in Italy."
    >>> t = pd.DataFrame([{"id": "q", "title": "T", "context": context, "question": "Where is Paris?",
    ...     "answer_texts": ["France"], "answer_starts": [12], "is_impossible": False,
    ...     "plausible_texts": [], "plausible_starts": []}])
    >>> apply_probe(t, "move_answer_sentence_end")["context"].iloc[0]
    'It is big. Rome is in Italy. Paris is in France.'
    """
    check_choice("probe", name, list(PROBES))
    probe = PROBES[name]
    pool = _pool(table)
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
        _validate(result, f"probe {name}", strict=True)  # a remapping bug is an error, never a bad gold
    result.attrs.update(probe=name, n_source=len(table), skipped=skipped)
    return result


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
    if expect == "same_answer":
        return normalize_answer(probed_answer) == normalize_answer(original_answer) and \
            (probed_answer == "") == (original_answer == "")
    return bool(probed_exact == 1)


# Running the probes and reading what they found ----------------------------------------------

def probe_names(probes="all") -> list[str]:
    """``"all"``, a list of names (empty: none), or one comma-separated string, checked against ``PROBES``.

    >>> probe_names("question_typo, question_lowercase")
    ['question_typo', 'question_lowercase']
    """
    if probes == "all" or probes is None:
        return list(PROBES)
    names = [p.strip() for p in probes.split(",")] if isinstance(probes, str) else list(probes)
    if not isinstance(probes, str) and not names:
        return []  # an empty list: the original run only
    unknown = [n for n in names if n not in PROBES]
    if unknown or not names:
        raise ValueError(f"unknown probe(s) {unknown}; use 'all' or some of {list(PROBES)}")
    return list(dict.fromkeys(names))


_RESULT_SIDES = ["question", "context", "answer_texts", "answer", "outcome", "exact", "f1", "null_odds"]


def probe_results(original, probed: dict) -> pd.DataFrame:
    """One row per probed question: the probe, its expectation, the original and the probed
    question, context, gold, answer, outcome, EM/F1 and null odds, and ``met``.

    ``original`` is the run (or run table) of the source questions; ``probed`` maps a probe's name
    to ``(probe_table, run)`` where ``probe_table`` is :func:`apply_probe`'s result and ``run``
    its run.
    """
    from .errors import outcomes

    base = outcomes(getattr(original, "table", original)).set_index("id")
    frames = []
    for name, (probe_table, run) in probed.items():
        table = outcomes(getattr(run, "table", run)).set_index("id")
        meta = probe_table.set_index("id")[["source_id", "expect", "note"]]
        missing = sorted(set(meta.index) - set(table.index))
        if missing:
            raise ValueError(f"the run of probe {name} lacks {len(missing)} of its questions, e.g. {missing[:3]}")
        frame = pd.DataFrame({"probe": name, "id": meta.index, "source_id": meta["source_id"].to_numpy(),
                              "title": base.loc[meta["source_id"], "title"].to_numpy(),
                              "has_answer": base.loc[meta["source_id"], "has_answer"].to_numpy(dtype=bool),
                              "expect": meta["expect"].to_numpy(), "note": meta["note"].to_numpy()})
        for column in _RESULT_SIDES:
            frame[f"original_{column}"] = base.loc[meta["source_id"], column].to_numpy()
            frame[f"probed_{column}"] = table.loc[meta.index, column].to_numpy()
        frame["met"] = [expectation_met(e, a, b, x) for e, a, b, x in zip(
            frame["expect"], frame["original_answer"], frame["probed_answer"], frame["probed_exact"])]
        frames.append(frame)
    columns = ["probe", "id", "source_id", "title", "has_answer", "expect", "note"] + \
        [f"{side}_{c}" for c in _RESULT_SIDES for side in ("original", "probed")] + ["met"]
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for side in ("original", "probed"):
        result[f"{side}_outcome"] = result[f"{side}_outcome"].astype(str)
    return result[columns]


def run_probes(model, data, out, *, probes="all", seed: int = 0, split: str = "validation", limit: int | None = None,
               titles=None, exclude_titles=None, table: pd.DataFrame | None = None, allow_random_head: bool = False,
               progress: bool = True, overwrite: bool = False, device: str | None = None, dtype: str | None = None,
               **decoding) -> pd.DataFrame:
    """Run ``model`` on the original questions and on every probe's rewrite; write ``out/``:

    - ``original/``  the run of the source questions; ``<probe>/questions.json`` (official
      format) and ``<probe>/run/``, each a normal run (cached and resumable);
    - ``probes.parquet``  :func:`probe_results`; ``probes.json``  the settings and, per probe,
      how many source questions it took and how many it skipped, by reason.

    The model is loaded once, and only if some run is not finished. Results of probes run
    earlier into ``out`` on the same original run and seed are kept beside those run now. Returns
    the results, with the ``probes.json`` record in ``.attrs`` (what :func:`load_probes` gives back).

    Example::

        results = run_probes("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                             "runs/probes-demo", titles="French_and_Indian_War,Force", probes="question_typo")
        probe_summary(results)
    """
    from .data import load_squad, write_squad
    from .runs import _write_json, predict_run, run_identity

    names = probe_names(probes)
    out = Path(out)
    if table is None:
        table = load_squad(data, split=split, limit=limit, titles=titles, exclude_titles=exclude_titles)
    elif limit is not None:
        table = table.iloc[:limit].reset_index(drop=True)

    @cache
    def loaded(*, device: str, dtype: str):  # one load for every run (they share device and dtype)
        if not isinstance(model, (str, os.PathLike)):
            return model
        from .inference import load_qa_model

        return load_qa_model(model, allow_random_head=allow_random_head, device=device, dtype=dtype)

    def predict(source, where, label, given_table=None):
        return predict_run(model, source, where, table=given_table, loaded=loaded, progress=progress,
                           progress_label=label, allow_random_head=allow_random_head, overwrite=overwrite,
                           device=device, dtype=dtype, **decoding)

    out.mkdir(parents=True, exist_ok=True)
    original = predict(data, out / "original", "original", table)
    probed, record = {}, {}
    for name in names:
        rewritten = apply_probe(table, name, seed=seed)
        record[name] = {"source_questions": len(table), "probed": len(rewritten),
                        "skipped": rewritten.attrs["skipped"]}
        if rewritten.empty:
            continue
        questions = write_squad(rewritten, out / name / "questions.json")
        probed[name] = (rewritten, predict(questions, out / name / "run", name))
    results = probe_results(original, probed)
    settings = original.info["settings"]
    identity = {**run_identity(settings), "seed": seed}
    if (out / "probes.parquet").exists() and (out / "probes.json").exists():
        # Probes run earlier on the same original run and seed are kept; those run now replace theirs.
        earlier = load_probes(out)
        if earlier.attrs.get("identity") == identity:
            kept = [n for n in earlier.attrs.get("probes", {}) if n not in record]
            record = {n: earlier.attrs["probes"][n] for n in kept} | record
            results = pd.concat([earlier[earlier["probe"].isin(kept)], results], ignore_index=True)
    order = {n: i for i, n in enumerate(PROBES)}  # one order whatever was asked: the probes' own
    results = results.sort_values("probe", key=lambda c: c.map(order), kind="stable", ignore_index=True)
    record = {n: record[n] for n in sorted(record, key=order.get)}
    info = {"model": settings.get("model_given") or settings["model"], "data": settings["data"], "seed": seed,
            "original_run": "original", "identity": identity, "probes": record}
    results.to_parquet(out / "probes.parquet", index=False)
    _write_json(out / "probes.json", info, indent=2)
    results.attrs.update(info)
    results.attrs["path"] = str(out)
    return results


def load_probes(path) -> pd.DataFrame:
    """The results :func:`run_probes` wrote to ``path``, with its ``probes.json`` in ``.attrs``."""
    path = Path(path)
    files = [path / "probes.parquet", path / "probes.json"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"{path}: no probe results ({', '.join(missing)} missing); run `xdanalysis probe "
                                f"--out {path}` first")
    results = pd.read_parquet(files[0])
    results.attrs.update(json.loads(files[1].read_text(encoding="utf-8")))
    results.attrs["path"] = str(path)
    return results


def probe_summary(results: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per probe: what it expects, how many questions it probed (``n``) and skipped, the
    consistency rate (% of expectations met) with a bootstrap interval, and the same among the
    questions the model got right originally (``consistency_if_correct``, EM 1 or a correct
    abstention). ``.attrs["transitions"]``: per probe, original outcome x probed outcome counts
    (:func:`xdanalysis.compare.transition_table`).

    Example::

        probe_summary(load_probes("runs/probes-demo"))
    """
    from .compare import transition_table
    from .errors import bootstrap_interval

    record = results.attrs.get("probes", {})
    rows, transitions = [], {}
    for name in [n for n in PROBES if n in set(results["probe"]) or n in record]:
        part = results[results["probe"] == name]
        met = part["met"].to_numpy(dtype=float)
        low, high = bootstrap_interval(met, n_boot=n_boot, seed=seed, level=level)
        right = part["original_exact"].to_numpy() == 1
        skipped = record.get(name, {}).get("skipped")
        rows.append({"probe": name, "expect": "/".join(sorted(set(part["expect"]))) or "-", "n": len(part),
                     "skipped": sum(skipped.values()) if skipped is not None else np.nan,
                     "consistency": 100 * met.mean() if len(met) else np.nan,
                     "low": 100 * low, "high": 100 * high,
                     "n_correct": int(right.sum()),
                     "consistency_if_correct": 100 * met[right].mean() if right.any() else np.nan})
        transitions[name] = transition_table(part["original_outcome"], part["probed_outcome"],
                                             ("original", "probed"))[0]
    frame = pd.DataFrame(rows, columns=["probe", "expect", "n", "skipped", "consistency", "low", "high",
                                        "n_correct", "consistency_if_correct"])
    frame.attrs["transitions"] = transitions
    return frame


def probe_summary_text(summary: pd.DataFrame) -> str:
    """The probe summary as a fixed-width table for the terminal.

    >>> s = pd.DataFrame([{"probe": "question_typo", "expect": "same_answer", "n": 10, "skipped": 0,
    ...     "consistency": 90.0, "low": 70.0, "high": 100.0, "n_correct": 5, "consistency_if_correct": 80.0}])
    >>> print(probe_summary_text(s).splitlines()[1])
    question_typo                  same_answer            10        0    90.0 [ 70.0, 100.0]     80.0 (5)
    """
    lines = [f"{'probe':30s} {'expect':19s} {'n':>5s} {'skipped':>8s} {'met %':>7s} {'95% CI':>14s} "
             f"{'if correct %':>12s}"]
    for row in summary.itertuples(index=False):
        if not row.n:
            lines.append(f"{row.probe:30s} {'-':19s} {0:5d} {row.skipped:8.0f}  (nothing to probe)")
            continue
        lines.append(f"{row.probe:30s} {row.expect:19s} {row.n:5d} {row.skipped:8.0f} {row.consistency:7.1f} "
                     f"[{row.low:5.1f}, {row.high:5.1f}] {row.consistency_if_correct:8.1f} ({row.n_correct})")
    return "\n".join(lines)


def probe_examples(results: pd.DataFrame, *, probe: str | None = None, met: bool | None = None,
                   original_outcome=None) -> pd.DataFrame:
    """The probed questions behind a number: one probe (or all), met or not (or both), from some
    original outcome(s); the probe's order, then the run's.

    Example::

        probe_examples(results, probe="remove_answer_sentence", met=False, original_outcome="correct")
    """
    from .errors import OUTCOMES

    mask = pd.Series(True, index=results.index)
    if probe is not None:
        check_choice("probe", probe, list(PROBES))
        mask &= results["probe"] == probe
    if met is not None:
        mask &= results["met"] == bool(met)
    if original_outcome is not None:
        wanted = [original_outcome] if isinstance(original_outcome, str) else list(original_outcome)
        unknown = sorted(set(wanted) - set(OUTCOMES))
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown}; use {OUTCOMES}")
        mask &= results["original_outcome"].isin(wanted)
    return results[mask]
