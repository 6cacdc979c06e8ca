"""Run directories: a model's predictions over a dataset, computed once and reused.

``predict_run`` writes, in ``RUN/``:

- ``predictions.json``  ``{id: answer}``, the official format;
- ``null_odds.json``  ``{id: null_score - best_span_score}`` (run_qa's file);
- ``na_probs.json``  ``{id: sigmoid(null_odds)}`` for the official ``--na-prob-file``;
- ``nbest_predictions.json``  ``{id: [candidates]}``;
- ``examples.parquet``  one row per question: the data, the prediction fields, token lengths
  and per-question EM/F1 — the table every analysis is sliced from;
- ``run.json``  provenance, parameters, versions, time, speed and peak memory; written last, so
  its presence means the run is complete.

Work is done in chunks of questions saved under ``RUN/chunks/``: a killed run resumes from its
last completed chunk. The same call on a finished run loads it instead of recomputing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .data import gold_answers, load_squad, source_fingerprint
from .metrics import question_scores, squad_v2_scores

__all__ = ["Run", "RunMismatchError", "predict_run", "load_run", "default_run_dir", "DECODING_DEFAULTS"]

DECODING_DEFAULTS = {
    "max_seq_length": 384,
    "doc_stride": 128,
    "n_best_size": 20,
    "max_answer_length": 30,
    "null_score_diff_threshold": 0.0,
}

_PREDICTION_COLUMNS = ["answer", "best_span_text", "answer_start", "answer_end", "best_span_score",
                       "null_score", "null_odds", "n_windows", "best_window", "first_window_chars"]


class RunMismatchError(ValueError):
    """The run directory holds a run with other settings; names the settings that differ."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, payload, indent=None) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=indent, ensure_ascii=False)
    _write_atomic(path, write)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _model_identity(model) -> dict:
    if not isinstance(model, (str, os.PathLike)):
        loaded, _ = model
        name = getattr(loaded, "name_or_path", None) or getattr(loaded.config, "_name_or_path", "in-memory model")
        return {"model": str(name), "model_fingerprint": "in-memory"}
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.iterdir()):
            if file.is_file():
                digest.update(file.name.encode())
                digest.update(str(file.stat().st_size).encode())
                with open(file, "rb") as handle:  # the head of each file: cheap, and catches retraining
                    digest.update(handle.read(1 << 16))
        return {"model": str(path.resolve()), "model_fingerprint": digest.hexdigest()[:16]}
    return {"model": name, "model_fingerprint": "hub"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(text).rstrip("/")).name or str(text)).strip("_")


def default_run_dir(model, data, limit=None, root="runs") -> Path:
    """Where a run of ``model`` over ``data`` lives by default: ``runs/<model>__<data>[__limitN]``.

    >>> str(default_run_dir("nbroad/xdistil-l12-h384-squad2", "squad_v2", limit=200))
    'runs/xdistil-l12-h384-squad2__squad_v2__limit200'
    """
    name = f"{_slug(model)}__{_slug(Path(str(data)).stem if os.path.exists(str(data)) else data)}"
    if limit:
        name += f"__limit{limit}"
    return Path(root) / name


@dataclass
class Run:
    """A finished run: its directory, its question table and its ``run.json``."""

    path: Path
    table: pd.DataFrame
    info: dict
    _nbest: dict | None = field(default=None, repr=False)

    @property
    def predictions(self) -> dict:
        return dict(zip(self.table["id"], self.table["answer"]))

    @property
    def na_probs(self) -> dict:
        return dict(zip(self.table["id"], self.table["na_prob"]))

    @property
    def nbest(self) -> dict:
        if self._nbest is None:
            with open(self.path / "nbest_predictions.json", encoding="utf-8") as handle:
                self._nbest = json.load(handle)
        return self._nbest

    def scores(self, with_na_probs: bool = True) -> dict:
        """The official SQuAD 2.0 scores of this run (``best_*`` from its no-answer probabilities)."""
        return squad_v2_scores(gold_answers(self.table), self.predictions,
                               self.na_probs if with_na_probs else None)


def load_run(path) -> Run:
    """Load a finished run directory.

    Example::

        run = load_run("runs/minilm-l6-squad2-demo__squad-v2-dev-half__limit200")
        run.scores()["f1"]
    """
    path = Path(path)
    info_file = path / "run.json"
    if not info_file.exists():
        state = "an unfinished run (resume it with the same predict command)" if (path / "chunks").exists() \
            else "no run"
        raise FileNotFoundError(f"{path}: {state}; run.json is missing")
    with open(info_file, encoding="utf-8") as handle:
        info = json.load(handle)
    table = pd.read_parquet(path / "examples.parquet")
    return Run(path=path, table=table, info=info)


def _compare(expected: dict, found: dict, path: Path) -> None:
    differing = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    if differing:
        detail = "; ".join(f"{k}: {old!r} there, {new!r} asked" for k, (old, new) in differing.items())
        raise RunMismatchError(f"{path} holds a run with other settings ({detail}). Use another --out "
                               "directory, or pass overwrite=True (CLI: --overwrite) to replace it.")


def _chunk_frame(table, predictions, nbest, lengths) -> pd.DataFrame:
    frame = pd.concat([table[["id"]].reset_index(drop=True), predictions.reset_index(drop=True),
                       lengths.reset_index(drop=True)], axis=1)
    frame["nbest"] = [json.dumps(n, ensure_ascii=False) for n in nbest]
    return frame


def _versions() -> dict:
    import importlib.metadata as md

    versions = {"python": platform.python_version(), "xdanalysis": __version__}
    for package in ("torch", "transformers", "tokenizers", "datasets", "numpy", "pandas"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def predict_run(
    model,
    data,
    out,
    split: str = "validation",
    limit: int | None = None,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
    batch_size: int = 32,
    chunk_size: int = 512,
    allow_random_head: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    table: pd.DataFrame | None = None,
) -> Run:
    """Predict ``data`` with ``model`` into the run directory ``out``, or reuse it if done.

    ``model`` is a Hub id, a local directory, or an already loaded ``(model, tokenizer)`` pair.
    ``data`` is any source :func:`xdanalysis.data.load_squad` takes (or pass ``table``).

    Example::

        run = predict_run("../shared/models/minilm-l6-squad2-demo",
                          "../shared/data/squad-v2-dev-half.json", "runs/demo", limit=50)
        run.scores()["exact"]
    """
    out = Path(out)
    if table is None:
        table = load_squad(data, split=split, limit=limit)
    elif limit is not None:
        table = table.iloc[:limit].reset_index(drop=True)
    settings = {
        **_model_identity(model),
        "data": str(table.attrs.get("source", data)),
        "data_fingerprint": source_fingerprint(table),
        "n_questions": int(len(table)),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "n_best_size": n_best_size,
        "max_answer_length": max_answer_length,
        "null_score_diff_threshold": null_score_diff_threshold,
    }
    # Where the data came from is provenance, not identity: the same questions from a copy match.
    identity = {k: v for k, v in settings.items() if k != "data"}
    if overwrite and out.exists():
        shutil.rmtree(out)
    if (out / "run.json").exists():
        run = load_run(out)
        _compare(identity, {k: run.info.get("settings", {}).get(k) for k in identity}, out)
        return run

    chunk_dir = out / "chunks"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    state_file = out / "progress.json"
    if state_file.exists():
        with open(state_file, encoding="utf-8") as handle:
            _compare(identity, json.load(handle), out)
    else:
        _write_json(state_file, identity, indent=2)

    n_chunks = max(1, math.ceil(len(table) / chunk_size))
    pending = [c for c in range(n_chunks) if not (chunk_dir / f"chunk-{c:05d}.parquet").exists()]
    timing_file = out / "timing.json"
    timings = {}
    if timing_file.exists():
        with open(timing_file, encoding="utf-8") as handle:
            timings = json.load(handle)
    if pending:
        from tqdm.auto import tqdm

        from .inference import load_qa_model, predict_table, token_lengths

        loaded_model, tokenizer = (load_qa_model(model, allow_random_head=allow_random_head)
                                   if isinstance(model, (str, os.PathLike)) else model)
        resumed = n_chunks - len(pending)
        bar = tqdm(total=len(table), initial=min(len(table), resumed * chunk_size), desc="questions",
                   unit="q", disable=not progress)
        for c in pending:
            part = table.iloc[c * chunk_size : (c + 1) * chunk_size]
            started = time.perf_counter()
            predictions, nbest = predict_table(
                loaded_model, tokenizer, part, max_seq_length=max_seq_length, doc_stride=doc_stride,
                n_best_size=n_best_size, max_answer_length=max_answer_length,
                null_score_diff_threshold=null_score_diff_threshold, batch_size=batch_size, progress=False)
            seconds = time.perf_counter() - started
            lengths = token_lengths(part, tokenizer)
            lengths["prediction_tokens"] = [len(ids) for ids in tokenizer(
                list(predictions["answer"]), add_special_tokens=False)["input_ids"]]
            frame = _chunk_frame(part, predictions, nbest, lengths)
            _write_atomic(chunk_dir / f"chunk-{c:05d}.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
            timings[str(c)] = seconds
            _write_json(timing_file, timings)
            bar.update(len(part))
        bar.close()
    inference_seconds = float(sum(timings.values()))

    chunks = pd.concat([pd.read_parquet(chunk_dir / f"chunk-{c:05d}.parquet") for c in range(n_chunks)],
                       ignore_index=True)
    if list(chunks["id"]) != list(table["id"]):
        raise RunMismatchError(f"{chunk_dir}: the saved chunks do not hold this data's questions in order; "
                               "remove the directory or pass overwrite=True")
    return _assemble(out, table, chunks, settings, inference_seconds, batch_size)


def _assemble(out: Path, table: pd.DataFrame, chunks: pd.DataFrame, settings: dict, inference_seconds: float,
              batch_size: int) -> Run:
    examples = table.reset_index(drop=True).copy()
    for column in _PREDICTION_COLUMNS + ["question_tokens", "context_tokens", "answer_tokens", "prediction_tokens"]:
        examples[column] = chunks[column].to_numpy()
    examples["has_answer"] = examples["answer_texts"].map(len) > 0
    examples["na_prob"] = [_sigmoid(x) for x in examples["null_odds"]]
    predictions = dict(zip(examples["id"], examples["answer"]))
    exact, f1 = question_scores(gold_answers(examples), predictions)
    examples["exact"] = examples["id"].map(exact).astype(int)
    examples["f1"] = examples["id"].map(f1).astype(float)

    nbest = {qid: json.loads(n) for qid, n in zip(chunks["id"], chunks["nbest"])}
    _write_json(out / "predictions.json", predictions, indent=2)
    _write_json(out / "null_odds.json", dict(zip(examples["id"], examples["null_odds"].astype(float))), indent=2)
    _write_json(out / "na_probs.json", dict(zip(examples["id"], examples["na_prob"].astype(float))), indent=2)
    _write_json(out / "nbest_predictions.json", nbest)
    _write_atomic(out / "examples.parquet", lambda tmp: examples.to_parquet(tmp, index=False))

    n = len(examples)
    info = {
        "settings": settings,
        "batch_size": batch_size,
        "versions": _versions(),
        "inference_seconds": round(inference_seconds, 3),
        "questions_per_second": round(n / inference_seconds, 3) if inference_seconds else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "threads": _torch_threads(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_json(out / "run.json", info, indent=2)
    shutil.rmtree(out / "chunks", ignore_errors=True)
    for leftover in ("progress.json", "timing.json"):
        (out / leftover).unlink(missing_ok=True)
    return Run(path=out, table=examples, info=info, _nbest=nbest)


def _torch_threads():
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None
