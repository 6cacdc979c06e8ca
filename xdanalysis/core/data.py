"""Load SQuAD 2.0 data into one pandas table, one row per question.

Sources: an official-format SQuAD JSON file, a JSONL or parquet file with the Hub's
``squad_v2`` columns, or a Hub dataset name (loaded through ``datasets``). Every source is
validated the same way, and every problem names the file and the ids at fault.

This module never imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.parse
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from .common import name_some
from .io import write_json

__all__ = ['COLUMNS', 'DataError', 'Selection', 'HubUnreachableError', 'data_problem', 'disjoint_samples', 'first_per_title', 'gold_answers', 'hub_reachable', 'load_squad', 'source_fingerprint', 'title_list', 'validate_table', 'write_squad']


COLUMNS = [
    "id",
    "title",
    "context",
    "question",
    "answer_texts",
    "answer_starts",
    "is_impossible",
    "plausible_texts",
    "plausible_starts",
]


class DataError(ValueError):
    """A dataset that cannot be used as it is; the message names the file and the ids."""


class HubUnreachableError(OSError):
    """The Hugging Face Hub is needed for a name that is not a local path, and cannot be reached."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hub's host answers a TCP connection within ``timeout`` seconds.

    ``huggingface_hub`` retries an unreachable host for about half a minute; this check lets
    the loaders fail in seconds with advice instead. It honours ``HF_HUB_OFFLINE`` and
    ``HF_ENDPOINT``.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urllib.parse.urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _need(value, kind, where: str, field: str):
    """``value`` when it is of ``kind`` (bool is no int here), else a DataError naming the field."""
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        names = {str: "a string", int: "an integer", list: "a list", dict: "an object"}
        raise DataError(f"{where}: field '{field}' must be {names.get(kind, kind)}, got {value!r}"[:300])
    return value


def _spans(qa: dict, kind: str, where: str) -> tuple[list, list]:
    spans = qa.get(kind)
    if spans is None and kind == "plausible_answers":
        return [], []
    _need(spans, list, where, kind)
    texts, starts = [], []
    for s_index, span in enumerate(spans):
        here = f"{where}: {kind}[{s_index}]"
        _need(span, dict, where, f"{kind}[{s_index}]")
        for field in ("text", "answer_start"):
            if field not in span:
                raise DataError(f"{here}: missing field '{field}' (needs 'text' and 'answer_start')")
        texts.append(_need(span["text"], str, here, "text"))
        starts.append(_need(span["answer_start"], int, here, "answer_start"))
    return texts, starts


def _rows_from_official(payload, path: str) -> list[dict]:
    if not isinstance(payload, dict) or "data" not in payload:
        raise DataError(f"{path}: not an official SQuAD file: the top level needs a 'data' list")
    _need(payload["data"], list, path, "data")
    rows = []
    for a_index, article in enumerate(payload["data"]):
        where = f"{path}: data[{a_index}]"
        _need(article, dict, path, f"data[{a_index}]")
        for field in ("title", "paragraphs"):
            if field not in article:
                raise DataError(f"{where}: missing field '{field}'")
        title = _need(article["title"], str, where, "title")
        for p_index, paragraph in enumerate(_need(article["paragraphs"], list, where, "paragraphs")):
            p_where = f"{where}.paragraphs[{p_index}]"
            _need(paragraph, dict, where, f"paragraphs[{p_index}]")
            for field in ("context", "qas"):
                if field not in paragraph:
                    raise DataError(f"{p_where}: missing field '{field}'")
            context = _need(paragraph["context"], str, p_where, "context")
            for q_index, qa in enumerate(_need(paragraph["qas"], list, p_where, "qas")):
                q_where = f"{p_where}.qas[{q_index}]"
                _need(qa, dict, p_where, f"qas[{q_index}]")
                for field in ("id", "question", "answers"):
                    if field not in qa:
                        ident = f" (id {qa['id']!r})" if "id" in qa else ""
                        raise DataError(f"{q_where}{ident}: missing field '{field}'")
                qid = _need(qa["id"], str, q_where, "id")
                q_where = f"{q_where} (id {qid!r})"
                question = _need(qa["question"], str, q_where, "question")
                texts, starts = _spans(qa, "answers", q_where)
                plausible_texts, plausible_starts = _spans(qa, "plausible_answers", q_where)
                impossible = qa.get("is_impossible", not texts)
                if not isinstance(impossible, bool):
                    raise DataError(f"{q_where}: field 'is_impossible' must be true or false, got {impossible!r}")
                rows.append(
                    {
                        "id": qid,
                        "title": title,
                        "context": context,
                        "question": question,
                        "answer_texts": texts,
                        "answer_starts": starts,
                        # The official scorer decides answerability from the answers list alone.
                        "is_impossible": impossible,
                        "plausible_texts": plausible_texts,
                        "plausible_starts": plausible_starts,
                    }
                )
    return rows


def _listed(value, where: str, field: str) -> list:
    """A column's per-question list (a list, a tuple or an array), or a DataError naming the field."""
    if value is None:
        return [None]  # refused, with the field named, by the type check that follows
    if isinstance(value, (str, bytes, int, float)) or not hasattr(value, "__iter__"):
        raise DataError(f"{where}: field '{field}' must be a list (one entry per gold answer), got {value!r}"[:300])
    return list(value)


def _rows_from_hub_columns(frame: pd.DataFrame, path: str) -> list[dict]:
    missing = [c for c in ("id", "title", "context", "question", "answers") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the Hub's squad_v2 columns "
                        "id, title, context, question, answers{text, answer_start}")
    rows = []
    for number, record in enumerate(frame.to_dict("records")):
        where = f"{path}: row {number + 1}" + (f" (id {record['id']!r})" if isinstance(record["id"], str) else "")
        qid = _need(record["id"], str, where, "id")
        for field in ("title", "context", "question"):
            _need(record[field], str, where, field)
        answers = record["answers"]
        if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
            raise DataError(f"{where}: field 'answers' must hold 'text' and 'answer_start' lists, got {answers!r}"[:300])
        texts = _listed(answers["text"], where, "answers.text")
        starts = _listed(answers["answer_start"], where, "answers.answer_start")
        for text in texts:
            _need(text, str, where, "answers.text")
        starts = [_need(s.item() if hasattr(s, "item") else s, int, where, "answers.answer_start")
                  for s in starts]
        if len(texts) != len(starts):
            raise DataError(f"{where}: answers.text and answers.answer_start differ in length")
        rows.append(
            {
                "id": qid,
                "title": record["title"],
                "context": record["context"],
                "question": record["question"],
                "answer_texts": texts,
                "answer_starts": starts,
                "is_impossible": len(texts) == 0,
                "plausible_texts": [],
                "plausible_starts": [],
            }
        )
    return rows


def validate_table(table: pd.DataFrame, source: str, strict: bool) -> None:
    if table.empty:
        raise DataError(f"{source}: no questions found (empty file or empty split)")
    bad_types = table.loc[~table["id"].map(lambda v: isinstance(v, str) and v != ""), "id"]
    if len(bad_types):
        raise DataError(f"{source}: question ids must be non-empty strings; bad: {name_some(bad_types)}")
    duplicated = table.loc[table["id"].duplicated(keep=False), "id"].unique()
    if len(duplicated):
        raise DataError(f"{source}: {len(duplicated)} duplicate question id(s): {name_some(duplicated)}")
    contradicting = table.loc[table["is_impossible"] & table["answer_texts"].map(len).gt(0), "id"]
    if len(contradicting):
        raise DataError(
            f"{source}: {len(contradicting)} question(s) marked is_impossible but with answers: "
            f"{name_some(contradicting)}"
        )
    misaligned = []
    for row in table.itertuples(index=False):
        for texts, starts in ((row.answer_texts, row.answer_starts), (row.plausible_texts, row.plausible_starts)):
            for text, start in zip(texts, starts):
                if row.context[start : start + len(text)] != text:
                    misaligned.append(row.id)
                    break
    if misaligned:
        message = (
            f"{source}: {len(misaligned)} question(s) have an answer_start that does not point at its "
            f"answer text in the context: {name_some(misaligned)}"
        )
        if strict:
            raise DataError(message + " (pass strict=False to load them anyway)")
        warnings.warn(message, stacklevel=3)


def _read_local(path: Path) -> list[dict]:
    name = str(path)
    if path.stat().st_size == 0:
        raise DataError(f"{name}: the file is empty")
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet"):
        return _rows_from_hub_columns(pd.read_parquet(path), name)
    if suffixes.endswith(".jsonl"):
        records = []
        for line_no, line in enumerate(_read_text(path).splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{name}: line {line_no} is not valid JSON ({exc.msg})") from exc
        if not all(isinstance(r, dict) for r in records):
            raise DataError(f"{name}: every line must be a JSON object with the squad_v2 columns")
        return _rows_from_hub_columns(pd.DataFrame.from_records(records), name)
    try:
        payload = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    return _rows_from_official(payload, name)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark is accepted and dropped)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}, line {line}: {raw[exc.start:exc.start + 1]!r}); "
                        "save the file as UTF-8") from None


def data_problem(source) -> str | None:
    """Why ``source`` cannot be loaded here (a Hub name while the Hub is unreachable), or None.

    Local files are not opened here: their problems are named when they are read.
    """
    path = Path(os.fspath(source))
    if path.exists() or path.suffix.lower() in {".json", ".jsonl", ".parquet"} or \
            str(source).startswith((".", os.sep, "~")):
        return None
    if hub_reachable():
        return None
    return (f"Dataset {str(source)!r} is not a local file and the Hugging Face Hub cannot be reached. "
            "Point at a local copy instead: an official SQuAD 2.0 JSON file (e.g. dev-v2.0.json), "
            "or a JSONL/parquet file with the squad_v2 columns, e.g. "
            "--data ../shared/data/squad-v2-dev-half.json")


def _read_hub(name: str, split: str) -> list[dict]:
    problem = data_problem(name)
    if problem:
        raise HubUnreachableError(problem)
    import datasets

    dataset = datasets.load_dataset(name, split=split)
    return _rows_from_hub_columns(dataset.to_pandas(), f"{name}[{split}]")


def load_squad(source, *, split: str = "validation", limit: int | None = None, titles=None,
               exclude_titles=None, strict: bool = True) -> pd.DataFrame:
    """Load SQuAD 2.0 questions as a DataFrame with the columns in ``COLUMNS``.

    ``source`` is a local file (official JSON, ``.jsonl`` or ``.parquet`` with the Hub's
    ``squad_v2`` columns) or a Hub dataset name. ``titles`` keeps only those articles,
    ``exclude_titles`` drops those (a list, or one comma-separated string); then ``limit`` keeps
    the first N questions in file order. A misaligned ``answer_start`` is an error unless
    ``strict=False``.

    Example::

        table = load_squad("../shared/data/squad-v2-dev-half.json", titles="French_and_Indian_War,Force")
        table["title"].unique().tolist()  # ['French_and_Indian_War', 'Force']
    """
    path = Path(os.fspath(source))
    if path.exists():
        if path.is_dir():
            raise DataError(f"{path}: is a directory; give a SQuAD JSON, JSONL or parquet file")
        rows = _read_local(path)
        label = str(path)
    elif path.suffix.lower() in {".json", ".jsonl", ".parquet"} or str(source).startswith((".", os.sep, "~")):
        raise DataError(f"{source}: no such file (a local path was given; a Hub dataset name looks like 'squad_v2')")
    else:
        rows = _read_hub(str(source), split)
        label = f"{source}[{split}]"
    table = pd.DataFrame.from_records(rows, columns=COLUMNS)
    validate_table(table, label, strict)
    table = _select_titles(table, label, titles, exclude_titles)
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"limit must be a positive number of questions, got {limit}")
        table = table.iloc[:limit].reset_index(drop=True)
    table.attrs["source"] = label
    return table


@dataclass(frozen=True)
class Selection:
    """Which questions of a SQuAD source a run, a probe or a distillation takes: the ``split`` (of a Hub
    dataset), whole articles kept (``titles``) or dropped (``exclude_titles``; each a list or one
    comma-separated string), then the first ``limit`` questions in file order.

    >>> Selection(titles="Force, Oxygen").titles
    ('Force', 'Oxygen')
    >>> Selection(limit=0)
    Traceback (most recent call last):
    ...
    ValueError: limit must be a positive number of questions, got 0
    """

    split: str = "validation"
    titles: tuple[str, ...] | None = None
    exclude_titles: tuple[str, ...] | None = None
    limit: int | None = None

    def __post_init__(self):
        for name in ("titles", "exclude_titles"):
            given = title_list(getattr(self, name))
            object.__setattr__(self, name, tuple(given) if given else None)
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit <= 0):
            raise ValueError(f"limit must be a positive number of questions, got {self.limit}")

    def load(self, source) -> pd.DataFrame:
        """The selected questions of ``source`` (:func:`load_squad`); a question table given instead
        is cut to ``limit`` (its articles are taken as chosen)."""
        if isinstance(source, pd.DataFrame):
            return source if self.limit is None else source.iloc[:self.limit].reset_index(drop=True)
        return load_squad(source, **self.as_dict())

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, record: dict) -> "Selection":
        """The selection ``as_dict`` wrote; other keys are ignored."""
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})


def title_list(titles) -> list[str] | None:
    if titles is None:
        return None
    if isinstance(titles, str):
        titles = titles.split(",")
    return [t.strip() for t in titles if t.strip()]


def _select_titles(table: pd.DataFrame, label: str, titles, exclude_titles) -> pd.DataFrame:
    keep, drop = title_list(titles), title_list(exclude_titles)
    present = list(dict.fromkeys(table["title"]))
    unknown = [t for t in (keep or []) + (drop or []) if t not in set(present)]
    if unknown:
        raise DataError(f"{label}: no article titled {name_some(unknown)}; its articles are {name_some(present, 20)}")
    if keep:
        table = table[table["title"].isin(keep)]
    if drop:
        table = table[~table["title"].isin(drop)]
    if table.empty:
        raise DataError(f"{label}: no questions left after selecting articles")
    return table.reset_index(drop=True)


def source_fingerprint(table: pd.DataFrame) -> str:
    """A content hash of the questions in ``table`` (ids, contexts, questions and answers).

    Two runs over the same questions share it, whatever file they came from.
    """
    digest = hashlib.sha256()
    for row in table[["id", "context", "question", "answer_texts", "answer_starts"]].itertuples(index=False):
        digest.update(json.dumps([row.id, row.context, row.question, list(row.answer_texts),
                                  [int(s) for s in row.answer_starts]], ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def gold_answers(table: pd.DataFrame) -> dict[str, list[str]]:
    """``{id: [gold answer texts]}`` in table order, the input of :func:`xdanalysis.core.metrics.squad_v2_scores`."""
    return {qid: list(texts) for qid, texts in zip(table["id"], table["answer_texts"])}


def write_squad(table: pd.DataFrame, path) -> Path:
    """Write a question table as an official SQuAD 2.0 JSON file (articles and paragraphs in table
    order) that :func:`load_squad` reads back to the same table. The table is validated first, as
    :func:`load_squad` validates, so a file that is written can be read.

    Example::

        write_squad(load_squad("dev.json", limit=10), "dev-10.json")
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"cannot write {path}: the table lacks the column(s) {missing}")
    validate_table(table.reset_index(drop=True), f"table for {path}", strict=True)
    articles: dict = {}
    for row in table.itertuples(index=False):
        paragraphs = articles.setdefault(row.title, {})
        qas = paragraphs.setdefault(row.context, [])
        qas.append({
            "id": row.id, "question": row.question, "is_impossible": bool(row.is_impossible),
            "answers": [{"text": t, "answer_start": int(s)} for t, s in zip(row.answer_texts, row.answer_starts)],
            "plausible_answers": [{"text": t, "answer_start": int(s)}
                                  for t, s in zip(row.plausible_texts, row.plausible_starts)],
        })
    payload = {"version": "v2.0", "data": [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
        for title, paragraphs in articles.items()]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)
    return path


def first_per_title(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` questions of every article, in table order: a small sample that keeps every
    article (``limit`` keeps the first articles only).

    >>> t = pd.DataFrame({"id": list("abcde"), "title": ["A", "A", "A", "B", "B"]})
    >>> first_per_title(t, 2)["id"].tolist()
    ['a', 'b', 'd', 'e']
    """
    if n is None or n <= 0:
        raise ValueError(f"n must be a positive number of questions per article, got {n}")
    picked = table[table.groupby("title", sort=False).cumcount() < n].reset_index(drop=True)
    picked.attrs.update(table.attrs)
    return picked


def disjoint_samples(table: pd.DataFrame, sizes: dict, *, seed: int = 0) -> dict:
    """Seeded random samples of ``table`` that share no question: ``sizes`` maps a name to a number
    of questions (None: every question the earlier samples left), taken in that order from one
    permutation, each sample in table order. Too few questions is an error naming the sample.

    >>> t = pd.DataFrame({"id": list("abcdef"), "title": ["A"] * 6})
    >>> parts = disjoint_samples(t, {"train": 2, "fit": 3}, seed=0)
    >>> [len(p) for p in parts.values()], set(parts["train"]["id"]) & set(parts["fit"]["id"])
    ([2, 3], set())
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(table))
    samples, used = {}, 0
    for name, size in sizes.items():
        size = len(table) - used if size is None else int(size)
        if size < 0 or used + size > len(table):
            raise ValueError(f"sample {name!r}: {size} questions asked for, {len(table) - used} left of "
                             f"{len(table)} in {table.attrs.get('source', 'the table')}")
        picked = table.iloc[np.sort(order[used: used + size])].reset_index(drop=True)
        picked.attrs.update(table.attrs)
        samples[name], used = picked, used + size
    return samples
