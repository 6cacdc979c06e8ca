"""Run directories: a model's predictions over a dataset, computed once and reused.

``predict_run`` writes, in ``RUN/``:

- ``predictions.json``  ``{id: answer}``, the official format;
- ``null_odds.json``  ``{id: null_score - best_span_score}`` (run_qa's file); a question with no
  admissible span anywhere (the model can only abstain) has null odds +inf, written as the
  largest finite double (``NULL_ODDS_NO_SPAN`` = 1.7976931348623157e+308) because JSON has no
  infinity: every threshold abstains on it, as on +inf; ``read_null_odds`` reads it back as +inf;
- ``na_probs.json``  ``{id: sigmoid(null_odds)}`` for the official ``--na-prob-file``;
- ``nbest_predictions.json``  ``{id: [candidates]}``;
- ``examples.parquet``  one row per question: the data, the prediction fields, token lengths
  and per-question EM/F1 — the table every analysis is sliced from;
- ``run.json``  provenance, parameters, versions, time, speed and peak memory; written last, so
  its presence means the run is complete;
- ``chunks/``  the raw results, chunk by chunk: a killed run resumes from its last completed
  chunk, and a deleted or damaged output above is rebuilt from them.

The same call on a finished run loads it instead of recomputing. ``progress.json`` marks a run
in progress (written once the settings are checked and the model is loaded); ``lock`` holds the
pid of the process writing the run, so two processes never compute one run twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import platform
import re
import resource
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__
from ._common import check_choice, name_some, sigmoid
from .data import gold_answers, load_squad, source_fingerprint
from .decoding import DECODING_DEFAULTS, check_decoding_settings
from .metrics import question_scores, squad_v2_scores

__all__ = ["Run", "RunError", "RunMismatchError", "RunBusyError", "predict_run", "load_run", "default_run_dir",
           "DECODING_DEFAULTS", "NULL_ODDS_NO_SPAN", "read_null_odds", "RUN_OUTPUTS", "training_overlap",
           "training_record", "run_identity"]

# +inf null odds (no admissible span: the model can only abstain) as valid JSON.
NULL_ODDS_NO_SPAN = sys.float_info.max

_PREDICTION_COLUMNS = ["answer", "best_span_text", "answer_start", "answer_end", "best_span_score",
                       "null_score", "null_odds", "n_windows", "best_window", "first_window_chars",
                       "question_truncated"]
_LENGTH_COLUMNS = ["question_tokens", "context_tokens", "answer_tokens", "prediction_tokens"]
# What a finished run holds (run.json last); what the CLI adds beside it; what a run in progress uses.
RUN_OUTPUTS = ["predictions.json", "null_odds.json", "na_probs.json", "nbest_predictions.json", "examples.parquet"]
_ADDED_FILES = ["scores.json", "summary.txt", "report.html"]
_STATE_FILES = ["progress.json", "timing.json", "lock"]
_STATE = "progress.json"


class RunError(ValueError):
    """A run directory that cannot be used as it is; names the file and what to do."""


class RunMismatchError(RunError):
    """The run directory holds a run with other settings; names the settings that differ."""


class RunBusyError(RunError):
    """Another process is writing this run directory (its pid is in the lock file)."""


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, payload, indent=None) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=indent, ensure_ascii=False, allow_nan=False)
    _write_atomic(path, write)


def _finite_odds(value: float) -> float:
    if math.isnan(value):
        raise ValueError("null odds are NaN: the model produced NaN logits")
    return NULL_ODDS_NO_SPAN if value == math.inf else (-NULL_ODDS_NO_SPAN if value == -math.inf else float(value))


def read_null_odds(path) -> dict:
    """``{id: null odds}`` from a run's ``null_odds.json``, the no-span stand-in read back as +inf.

    Example::

        odds = read_null_odds("runs/demo/null_odds.json")
    """
    with open(path, encoding="utf-8") as handle:
        payload = json.load(handle)
    return {k: math.inf if v >= NULL_ODDS_NO_SPAN else (-math.inf if v <= -NULL_ODDS_NO_SPAN else v)
            for k, v in payload.items()}


# Files beside a checkpoint that say how it was made and cannot change its answers.
_NOT_MODEL_FILES = {"training.json", "distill.json", "training_log.parquet", "checkpoint.pt", "distill-progress.json"}


def _model_files(path: Path):
    # Everything that can change the model's answers; notes, provenance and hidden files are not part of it.
    return [f for f in sorted(path.iterdir())
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() != ".md"
            and f.name not in _NOT_MODEL_FILES and not f.name.endswith(".tmp")]


def _model_identity(model) -> dict:
    if not isinstance(model, (str, os.PathLike)):
        loaded = model[0]
        name = getattr(loaded, "name_or_path", None) or getattr(loaded.config, "_name_or_path", "in-memory model")
        return {"model": str(name), "model_fingerprint": "in-memory"}
    name = os.fspath(model)
    path = Path(name).expanduser()
    if path.is_dir():
        # Whole files, streamed: weights edited in place change the fingerprint (about 0.1 s for
        # a 130 MB checkpoint once the file is in the page cache).
        digest = hashlib.sha256()
        for file in _model_files(path):
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        return {"model": str(path.resolve()), "model_fingerprint": digest.hexdigest()[:16]}
    return {"model": name, "model_fingerprint": "hub"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(text).rstrip("/")).name or str(text)).strip("_")


def default_run_dir(model, data, limit=None, *, titles=None, root="runs") -> Path:
    """Where a run of ``model`` over ``data`` lives by default:
    ``runs/<model>__<data>[__<titles>][__limitN]``.

    >>> str(default_run_dir("nbroad/xdistil-l12-h384-squad2", "squad_v2", limit=200))
    'runs/xdistil-l12-h384-squad2__squad_v2__limit200'
    >>> str(default_run_dir("m", "d.json", titles=["Force", "French_and_Indian_War"]))
    'runs/m__d.json__Force+French_and_Indian_War'
    """
    name = f"{_slug(model)}__{_slug(Path(str(data)).stem if os.path.exists(str(data)) else data)}"
    if titles:
        name += "__" + "+".join(_slug(t) for t in titles)
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
    def threshold(self) -> float:
        """The null-odds threshold the run's answers were decided with."""
        return float(self.info.get("settings", {}).get("null_score_diff_threshold",
                                                       DECODING_DEFAULTS["null_score_diff_threshold"]))

    @property
    def nbest(self) -> dict:
        if self._nbest is None:
            file = self.path / "nbest_predictions.json"
            try:
                with open(file, encoding="utf-8") as handle:
                    self._nbest = json.load(handle)
            except (OSError, json.JSONDecodeError) as exc:
                raise RunError(f"{file}: missing or damaged ({exc}); run the same predict command again to "
                               "rebuild it, or with --overwrite to recompute the run") from None
        return self._nbest

    def scores(self, with_na_probs: bool = True) -> dict:
        """The official SQuAD 2.0 scores of this run (``best_*`` from its no-answer probabilities)."""
        return squad_v2_scores(gold_answers(self.table), self.predictions,
                               self.na_probs if with_na_probs else None)


def _read_info(path: Path) -> dict:
    info_file = path / "run.json"
    try:
        with open(info_file, encoding="utf-8") as handle:
            info = json.load(handle)
    except json.JSONDecodeError as exc:
        raise RunError(f"{info_file}: damaged, not valid JSON ({exc.msg}, line {exc.lineno}); recompute the run "
                       "with the same predict command and --overwrite") from None
    if not isinstance(info, dict) or not isinstance(info.get("settings"), dict):
        raise RunError(f"{info_file}: damaged, no 'settings' object; recompute the run with --overwrite")
    return info


def _read_examples(path: Path) -> pd.DataFrame:
    file = path / "examples.parquet"
    if not file.exists():
        raise RunError(f"{file}: missing; run the same predict command again to rebuild it from "
                       f"{path / 'chunks'}, or with --overwrite to recompute the run")
    try:
        return pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several kinds for a truncated file
        raise RunError(f"{file}: damaged ({type(exc).__name__}: {exc}); run the same predict command again to "
                       "rebuild it, or with --overwrite to recompute the run") from None


def load_run(path) -> Run:
    """Load a finished run directory.

    Example::

        run = load_run("runs/minilm-l6-squad2-demo__squad-v2-dev-half__limit200")
        run.scores()["f1"]
    """
    path = Path(path)
    if not (path / "run.json").exists():
        state = "an unfinished run (resume it with the same predict command)" if (path / _STATE).exists() \
            else "no run"
        raise FileNotFoundError(f"{path}: {state}; run.json is missing")
    info = _read_info(path)
    table = _read_examples(path)
    table.attrs["null_score_diff_threshold"] = float(info["settings"].get("null_score_diff_threshold", 0.0))
    return Run(path=path, table=table, info=info)


# Where the data and the model came from, and what that implies, is provenance, not identity:
# the same questions from a copy of the file, or the same weights by another path, match.
_PROVENANCE = ("data", "model_given", "trained_on_overlap")


def run_identity(settings: dict) -> dict:
    """What makes two runs the same run: their ``run.json`` settings without the provenance.

    >>> run_identity({"model": "m", "data": "a/dev.json", "model_given": "m", "max_seq_length": 384})
    {'model': 'm', 'max_seq_length': 384}
    """
    return {k: v for k, v in settings.items() if k not in _PROVENANCE}


# Runs written before device and dtype were recorded ran on the CPU in float32.
_UNRECORDED = {"device": "cpu", "dtype": "float32"}


def _compare(expected: dict, found: dict, path: Path) -> None:
    found = {**_UNRECORDED, **{k: v for k, v in found.items() if v is not None}}
    differing = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    if differing:
        detail = "; ".join(f"{k}: {old!r} there, {new!r} asked" for k, (old, new) in differing.items())
        raise RunMismatchError(f"{path} holds a run with other settings ({detail}). Use another --out "
                               "directory, or pass overwrite=True (CLI: --overwrite) to replace it.")


def _versions() -> dict:
    import importlib.metadata as md

    versions = {"python": platform.python_version(), "xdanalysis": __version__}
    for package in ("torch", "transformers", "tokenizers", "datasets", "numpy", "pandas"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def _is_run_dir(out: Path) -> bool:
    return (out / "run.json").exists() or (out / _STATE).exists()


def _refuse_foreign(out: Path) -> None:
    """Refuse a directory that exists, is not empty and holds no run: it is somebody else's."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and not _is_run_dir(out):
        own = set(RUN_OUTPUTS) | set(_ADDED_FILES) | set(_STATE_FILES) | {"chunks"}
        foreign = sorted(p.name for p in out.iterdir() if p.name not in own and not p.name.endswith(".tmp"))
        if foreign:
            raise RunError(f"{out}: not a run directory (no run.json or {_STATE}) and not empty: it holds "
                           f"{name_some(foreign, 5)}. Nothing was deleted; choose a new or empty directory for --out.")


def _remove_run_files(out: Path) -> None:
    """Delete a run's own files, and nothing else, from ``out``."""
    _refuse_foreign(out)
    if not out.exists():
        return
    for name in RUN_OUTPUTS + ["run.json"] + _ADDED_FILES + [n for n in _STATE_FILES if n != "lock"]:
        for file in (out / name, out / f"{name}.tmp"):
            file.unlink(missing_ok=True)
    if (out / "chunks").is_dir():
        for file in (out / "chunks").glob("chunk-*.parquet*"):
            file.unlink()
        try:
            (out / "chunks").rmdir()
        except OSError:
            pass  # something else was put there: leave it


@contextmanager
def _locked(out: Path):
    """Hold ``out/lock`` for the block (an flock, released if the process dies); refuse when held."""
    out.mkdir(parents=True, exist_ok=True)
    lock_file = out / "lock"
    handle = open(lock_file, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunBusyError(f"{out} is being written by another process (pid {holder}, see {lock_file}); wait "
                               "for it to finish, then run the same command again to reuse its result") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        try:
            if lock_file.exists():
                with open(lock_file, encoding="utf-8") as current:
                    if current.read().strip() == str(os.getpid()):
                        lock_file.unlink()
        finally:
            handle.close()


def _chunk_files(out: Path, n_chunks: int) -> list[Path]:
    return [out / "chunks" / f"chunk-{c:05d}.parquet" for c in range(n_chunks)]


def _damaged_outputs(out: Path) -> list[str]:
    """The outputs that are missing or cut short. Checked without parsing them (a finished run is
    reused on every call, and nbest_predictions.json of the dev set is tens of MB): a JSON file
    must end with its closing brace, a parquet file must have a readable footer."""
    import pyarrow.parquet as pq

    damaged = []
    for name in RUN_OUTPUTS:
        file = out / name
        try:
            if name.endswith(".json"):
                with open(file, "rb") as handle:
                    handle.seek(max(0, file.stat().st_size - 64))
                    whole = handle.read().rstrip().endswith(b"}")
            else:
                whole = pq.read_metadata(file).num_rows >= 0
        except Exception:  # missing, or not parquet at all
            whole = False
        if not whole:
            damaged.append(name)
    return damaged


def training_record(model) -> dict:
    """What a model directory's ``training.json`` says it was trained on (``trained_on_titles``,
    ``held_out_titles``, ...); ``{}`` for a Hub id, a loaded model, or a directory that says nothing.
    The one reader of that file.

    >>> training_record("nbroad/xdistil-l12-h384-squad2")
    {}
    """
    if not isinstance(model, (str, os.PathLike)):
        return {}
    file = Path(os.fspath(model)).expanduser() / "training.json"
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def training_overlap(model, table: pd.DataFrame) -> dict | None:
    """Which of ``table``'s articles the model was trained on, if its directory says so
    (``training.json`` with ``trained_on_titles``); None when it does not say.

    Example::

        training_overlap("../shared/models/minilm-l6-squad2-demo", table)["questions"]
    """
    record = training_record(model)
    if "trained_on_titles" not in record:
        return None
    seen = table["title"].isin(set(record["trained_on_titles"] or []))
    return {"titles": sorted(set(table.loc[seen, "title"])), "questions": int(seen.sum()),
            "of": int(len(table))}


def predict_run(
    model,
    data,
    out,
    *,
    split: str = "validation",
    limit: int | None = None,
    titles=None,
    exclude_titles=None,
    max_seq_length: int = DECODING_DEFAULTS["max_seq_length"],
    doc_stride: int = DECODING_DEFAULTS["doc_stride"],
    max_query_length: int = DECODING_DEFAULTS["max_query_length"],
    n_best_size: int = DECODING_DEFAULTS["n_best_size"],
    max_answer_length: int = DECODING_DEFAULTS["max_answer_length"],
    null_score_diff_threshold: float = DECODING_DEFAULTS["null_score_diff_threshold"],
    batch_size: int = 32,
    chunk_size: int = 512,
    allow_random_head: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    progress_label: str = "questions",
    table: pd.DataFrame | None = None,
    loaded=None,
    device: str | None = None,
    dtype: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> Run:
    """Predict ``data`` with ``model`` into the run directory ``out``, or reuse it if done.

    ``model`` is a Hub id, a local directory, or an already loaded ``(model, tokenizer)`` pair.
    ``data`` is any source :func:`xdanalysis.data.load_squad` takes (or pass ``table``);
    ``titles`` / ``exclude_titles`` keep or drop whole articles before ``limit``.
    ``overwrite`` replaces a run in ``out`` (deleting only the run's own files); a directory
    that holds anything else is refused. ``loaded``: a ``(model, tokenizer)`` pair, or a function
    ``loaded(device=, dtype=)`` that returns one (called with the run's resolved device and
    dtype), to compute with instead of loading ``model`` (which still names the run); it is called
    only when there is something to compute, so several runs share one load.
    ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``; default auto) and ``dtype`` (``auto``,
    ``float32``, ``bfloat16``, ``float16``; default float32, the dtype of the official figures)
    are where and how a model given by name runs; a loaded model runs where it is. Both are
    recorded in ``run.json`` and are part of the run's identity. ``engine="ray"`` computes the
    chunks on Ray Data (:mod:`xdanalysis.scale`; ``ray_address`` a cluster, default a local one;
    ``workers`` actors, each loading the model once): same chunk files, same run.

    Example::

        run = predict_run("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                          "runs/demo", titles=["French_and_Indian_War", "Force"], limit=50)
        run.scores()["exact"]
    """
    check_decoding_settings(n_best_size=n_best_size, max_answer_length=max_answer_length,
                            max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length)
    from .inference import ENGINES

    check_choice("engine", engine, ENGINES)
    if engine == "ray" and not isinstance(model, (str, os.PathLike)):
        raise ValueError("engine='ray' needs the model as a Hub id or a directory every worker can load, "
                         "not a loaded (model, tokenizer) pair")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be at least 1, got {batch_size} and {chunk_size}")
    out = Path(out)
    if table is None:
        table = _load_data_and_check_model(model, data, split=split, limit=limit, titles=titles,
                                           exclude_titles=exclude_titles)
    elif limit is not None:
        table = table.iloc[:limit].reset_index(drop=True)
    run_device, run_dtype = _device_and_dtype(model, device, dtype)
    settings = {
        **_model_identity(model),
        "device": run_device,
        "dtype": run_dtype,
        "model_given": os.fspath(model) if isinstance(model, (str, os.PathLike)) else None,
        "data": str(table.attrs.get("source", data)),
        "data_fingerprint": source_fingerprint(table),
        "n_questions": int(len(table)),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "max_query_length": max_query_length,
        "n_best_size": n_best_size,
        "max_answer_length": max_answer_length,
        "null_score_diff_threshold": null_score_diff_threshold,
    }
    identity = run_identity(settings)
    overlap = training_overlap(model, table)
    if overlap and overlap["questions"]:
        settings["trained_on_overlap"] = overlap
        warnings.warn(f"{overlap['questions']} of {overlap['of']} questions come from articles the model was "
                      f"trained on ({name_some(overlap['titles'], 4)}): its scores there are inflated. Keep "
                      "held-out articles with --titles / titles=[...].", stacklevel=2)
    _refuse_foreign(out)  # before anything is written or deleted there
    if overwrite and out.exists():
        with _locked(out):
            _remove_run_files(out)
    n_chunks = max(1, math.ceil(len(table) / chunk_size))
    if (out / "run.json").exists():
        info = _read_info(out)
        _compare(identity, {k: info["settings"].get(k) for k in identity}, out)
        damaged = _damaged_outputs(out)
        if not damaged:
            return load_run(out)
        chunk_files = _chunk_files(out, n_chunks)
        missing_chunks = [f.name for f in chunk_files if not f.exists()]
        if missing_chunks:
            raise RunError(f"{out}: {', '.join(damaged)} missing or damaged, and the chunks to rebuild them from "
                           f"are gone ({name_some(missing_chunks, 3)}); recompute the run with --overwrite")
        with _locked(out):
            chunks = pd.concat([pd.read_parquet(f) for f in chunk_files], ignore_index=True)
            return _assemble(out, table, chunks, settings, info)

    with _locked(out):
        state_file = out / _STATE
        chunk_files = _chunk_files(out, n_chunks)
        finished = [f for f in chunk_files if f.exists()]
        if state_file.exists() and finished:
            try:
                with open(state_file, encoding="utf-8") as handle:
                    found = json.load(handle)
            except json.JSONDecodeError:
                raise RunError(f"{state_file}: damaged; remove the directory or pass --overwrite") from None
            _compare(identity, found, out)
        pending = [c for c, f in enumerate(chunk_files) if not f.exists()]
        timing_file = out / "timing.json"
        timings = {}
        if finished and timing_file.exists():
            with open(timing_file, encoding="utf-8") as handle:
                timings = json.load(handle)
        if pending:
            from tqdm.auto import tqdm

            from . import inference

            decoding = {"max_seq_length": max_seq_length, "doc_stride": doc_stride,
                        "max_query_length": max_query_length, "n_best_size": n_best_size,
                        "max_answer_length": max_answer_length,
                        "null_score_diff_threshold": null_score_diff_threshold}
            if engine == "ray":  # the workers load the model; here only its configuration is read
                from .scale import model_config, require_ray

                require_ray()
                loaded_model = model_config(model)
            elif loaded is not None:
                loaded_model, tokenizer = loaded(device=run_device, dtype=run_dtype) if callable(loaded) else loaded
            elif isinstance(model, (str, os.PathLike)):
                loaded_model, tokenizer = inference.load_qa_model(model, allow_random_head=allow_random_head,
                                                                  device=run_device, dtype=run_dtype)
            else:
                loaded_model, tokenizer = model
            limit_tokens = inference.max_sequence_length(loaded_model)
            if limit_tokens is not None and max_seq_length > limit_tokens:
                raise ValueError(f"max_seq_length {max_seq_length} is longer than the model takes "
                                 f"({settings['model']}: {limit_tokens} positions); use --max-seq-length "
                                 f"{limit_tokens} or less")
            # Settings checked and model loaded: only now is this directory a run in progress.
            if not finished:
                _write_json(state_file, identity, indent=2)
            (out / "chunks").mkdir(exist_ok=True)
            bar = tqdm(total=len(table), initial=min(len(table), len(finished) * chunk_size),
                       desc=progress_label, unit="q", disable=not progress)
            if engine == "ray":
                from .scale import predict_chunks_on_ray

                done = predict_chunks_on_ray(
                    model, table, pending, chunk_size=chunk_size, decoding=decoding, batch_size=batch_size,
                    device=run_device, dtype=run_dtype, allow_random_head=allow_random_head, address=ray_address,
                    workers=workers)
            else:
                done = ((c, *inference.predict_chunk(loaded_model, tokenizer,
                                                     table.iloc[c * chunk_size: (c + 1) * chunk_size],
                                                     decoding=decoding, batch_size=batch_size)) for c in pending)
            for c, frame, seconds in done:  # each chunk is on disk as soon as it is done: a killed run resumes
                _write_atomic(chunk_files[c], lambda tmp: frame.to_parquet(tmp, index=False))
                timings[str(c)] = seconds
                _write_json(timing_file, timings)
                bar.update(len(frame))
            bar.close()
        chunks = pd.concat([pd.read_parquet(f) for f in chunk_files], ignore_index=True)
        if list(chunks["id"]) != list(table["id"]):
            raise RunMismatchError(f"{out / 'chunks'}: the saved chunks do not hold this data's questions in order; "
                                   "pass overwrite=True (CLI: --overwrite) to recompute the run")
        info = {"batch_size": batch_size, "inference_seconds": round(float(sum(timings.values())), 3)}
        return _assemble(out, table, chunks, settings, info)


def _device_and_dtype(model, device, dtype) -> tuple[str, str]:
    """Where and in what a run computes: resolved for a model given by name; for a loaded model,
    where it is (asking for something else is an error: moving the caller's model is theirs to do)."""
    from .inference import model_device_dtype, resolve_device, resolve_dtype

    if isinstance(model, (str, os.PathLike)):
        where = resolve_device(device or "auto")
        return where, resolve_dtype(dtype or "float32", where)
    have = model_device_dtype(model[0])
    for name, asked, present in (("device", device, have[0]), ("dtype", dtype, have[1])):
        if asked not in (None, "auto") and asked != present:
            raise ValueError(f"{name} {asked!r} asked for, but the model given is loaded with {name} {present!r}; "
                             f"move it first (model.to(...)) or leave {name} unset")
    return have


def _load_data_and_check_model(model, data, **options) -> pd.DataFrame:
    """Load the data; when it fails because the Hub is unreachable, say at once whether the model
    is unreachable too, so that both are fixed in one round."""
    from .data import HubUnreachableError

    try:
        return load_squad(data, **options)
    except HubUnreachableError as data_error:
        if isinstance(model, (str, os.PathLike)):
            from .inference import model_problem

            problem = model_problem(model)
            if problem:
                raise HubUnreachableError(f"{data_error}\n{problem}") from None
        raise


def _assemble(out: Path, table: pd.DataFrame, chunks: pd.DataFrame, settings: dict, info: dict) -> Run:
    examples = table.reset_index(drop=True).copy()
    for column in _PREDICTION_COLUMNS + _LENGTH_COLUMNS:
        examples[column] = chunks[column].to_numpy()
    examples["has_answer"] = examples["answer_texts"].map(len) > 0
    examples["na_prob"] = [sigmoid(x) for x in examples["null_odds"]]
    predictions = dict(zip(examples["id"], examples["answer"]))
    exact, f1 = question_scores(gold_answers(examples), predictions)
    examples["exact"] = examples["id"].map(exact).astype(int)
    examples["f1"] = examples["id"].map(f1).astype(float)

    nbest = {qid: json.loads(n) for qid, n in zip(chunks["id"], chunks["nbest"])}
    _write_json(out / "predictions.json", predictions, indent=2)
    _write_json(out / "null_odds.json", {k: _finite_odds(v) for k, v in zip(examples["id"], examples["null_odds"])},
                indent=2)
    _write_json(out / "na_probs.json", dict(zip(examples["id"], examples["na_prob"].astype(float))), indent=2)
    _write_json(out / "nbest_predictions.json", nbest)
    _write_atomic(out / "examples.parquet", lambda tmp: examples.to_parquet(tmp, index=False))

    n = len(examples)
    seconds = info.get("inference_seconds") or 0.0
    info = {
        "settings": settings,
        "batch_size": info.get("batch_size"),
        "versions": info.get("versions") or _versions(),
        "inference_seconds": seconds,
        "questions_per_second": info.get("questions_per_second") or (round(n / seconds, 3) if seconds else None),
        "peak_rss_mb": info.get("peak_rss_mb") or round(_peak_rss_mb(), 1),
        "threads": info.get("threads") or _torch_threads(),
        "questions_truncated": int(examples["question_truncated"].sum()),
        "created": info.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_json(out / "run.json", info, indent=2)
    for leftover in (_STATE, "timing.json"):
        (out / leftover).unlink(missing_ok=True)
    examples.attrs["null_score_diff_threshold"] = float(settings["null_score_diff_threshold"])
    return Run(path=out, table=examples, info=info, _nbest=nbest)


def _torch_threads():
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None
