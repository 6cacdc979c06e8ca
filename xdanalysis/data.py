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
from pathlib import Path

import pandas as pd

__all__ = [
    "COLUMNS",
    "DataError",
    "HubUnreachableError",
    "load_squad",
    "source_fingerprint",
    "gold_answers",
    "hub_reachable",
]

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

_MAX_NAMED = 10


class DataError(ValueError):
    """A dataset that cannot be used as it is; the message names the file and the ids."""


class HubUnreachableError(OSError):
    """The Hugging Face Hub is needed for a name that is not a local path, and cannot be reached."""


def _name_some(ids) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:_MAX_NAMED])
    more = f" and {len(ids) - _MAX_NAMED} more" if len(ids) > _MAX_NAMED else ""
    return f"{shown}{more}"


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


def _rows_from_official(payload, path: str) -> list[dict]:
    if not isinstance(payload, dict) or "data" not in payload:
        raise DataError(f"{path}: not an official SQuAD file: the top level needs a 'data' list")
    if not isinstance(payload["data"], list):
        raise DataError(f"{path}: field 'data' must be a list of articles")
    rows = []
    for a_index, article in enumerate(payload["data"]):
        where = f"{path}: data[{a_index}]"
        for field in ("title", "paragraphs"):
            if field not in article:
                raise DataError(f"{where}: missing field '{field}'")
        for p_index, paragraph in enumerate(article["paragraphs"]):
            p_where = f"{where}.paragraphs[{p_index}]"
            for field in ("context", "qas"):
                if field not in paragraph:
                    raise DataError(f"{p_where}: missing field '{field}'")
            for q_index, qa in enumerate(paragraph["qas"]):
                q_where = f"{p_where}.qas[{q_index}]"
                for field in ("id", "question", "answers"):
                    if field not in qa:
                        ident = f" (id {qa['id']!r})" if "id" in qa else ""
                        raise DataError(f"{q_where}{ident}: missing field '{field}'")
                answers = qa["answers"]
                plausible = qa.get("plausible_answers") or []
                for kind, spans in (("answers", answers), ("plausible_answers", plausible)):
                    for s_index, span in enumerate(spans):
                        if not isinstance(span, dict) or "text" not in span or "answer_start" not in span:
                            raise DataError(
                                f"{q_where} (id {qa['id']!r}): {kind}[{s_index}] needs 'text' and 'answer_start'"
                            )
                rows.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answer_texts": [s["text"] for s in answers],
                        "answer_starts": [int(s["answer_start"]) for s in answers],
                        # The official scorer decides answerability from the answers list alone.
                        "is_impossible": bool(qa.get("is_impossible", not answers)),
                        "plausible_texts": [s["text"] for s in plausible],
                        "plausible_starts": [int(s["answer_start"]) for s in plausible],
                    }
                )
    return rows


def _rows_from_hub_columns(frame: pd.DataFrame, path: str) -> list[dict]:
    missing = [c for c in ("id", "title", "context", "question", "answers") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the Hub's squad_v2 columns "
                        "id, title, context, question, answers{text, answer_start}")
    rows = []
    for record in frame.to_dict("records"):
        answers = record["answers"]
        if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
            raise DataError(f"{path}: id {record['id']!r}: 'answers' must hold 'text' and 'answer_start' lists")
        texts = [str(t) for t in list(answers["text"])]
        starts = [int(s) for s in list(answers["answer_start"])]
        if len(texts) != len(starts):
            raise DataError(f"{path}: id {record['id']!r}: answers.text and answers.answer_start differ in length")
        rows.append(
            {
                "id": record["id"],
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


def _validate(table: pd.DataFrame, source: str, strict: bool) -> None:
    if table.empty:
        raise DataError(f"{source}: no questions found (empty file or empty split)")
    bad_types = table.loc[~table["id"].map(lambda v: isinstance(v, str) and v != ""), "id"]
    if len(bad_types):
        raise DataError(f"{source}: question ids must be non-empty strings; bad: {_name_some(bad_types)}")
    duplicated = table.loc[table["id"].duplicated(keep=False), "id"].unique()
    if len(duplicated):
        raise DataError(f"{source}: {len(duplicated)} duplicate question id(s): {_name_some(duplicated)}")
    contradicting = table.loc[table["is_impossible"] & table["answer_texts"].map(len).gt(0), "id"]
    if len(contradicting):
        raise DataError(
            f"{source}: {len(contradicting)} question(s) marked is_impossible but with answers: "
            f"{_name_some(contradicting)}"
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
            f"answer text in the context: {_name_some(misaligned)}"
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
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{name}: line {line_no} is not valid JSON ({exc.msg})") from exc
        return _rows_from_hub_columns(pd.DataFrame.from_records(records), name)
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    return _rows_from_official(payload, name)


def _read_hub(name: str, split: str) -> list[dict]:
    if not hub_reachable():
        raise HubUnreachableError(
            f"Dataset {name!r} is not a local file and the Hugging Face Hub cannot be reached. "
            "Point at a local copy instead: an official SQuAD 2.0 JSON file (e.g. dev-v2.0.json), "
            "or a JSONL/parquet file with the squad_v2 columns, e.g. "
            "--data ../shared/data/squad-v2-dev-half.json"
        )
    import datasets

    dataset = datasets.load_dataset(name, split=split)
    return _rows_from_hub_columns(dataset.to_pandas(), f"{name}[{split}]")


def load_squad(source, split: str = "validation", limit: int | None = None, strict: bool = True) -> pd.DataFrame:
    """Load SQuAD 2.0 questions as a DataFrame with the columns in ``COLUMNS``.

    ``source`` is a local file (official JSON, ``.jsonl`` or ``.parquet`` with the Hub's
    ``squad_v2`` columns) or a Hub dataset name. ``limit`` keeps the first N questions in file
    order. A misaligned ``answer_start`` is an error unless ``strict=False``.

    Example::

        table = load_squad("../shared/data/squad-v2-dev-half.json", limit=5)
        table[["id", "question", "is_impossible"]].shape  # (5, 3)
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
    _validate(table, label, strict)
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"limit must be a positive number of questions, got {limit}")
        table = table.iloc[:limit].reset_index(drop=True)
    table.attrs["source"] = label
    return table


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
    """``{id: [gold answer texts]}`` in table order, the input of :func:`xdanalysis.metrics.squad_v2_scores`."""
    return {qid: list(texts) for qid, texts in zip(table["id"], table["answer_texts"])}
