"""A run: a model's predictions over a dataset, computed once (``predict_run``) and reused (``load_run``)."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..core.common import is_reference, name_some, progress_bar, sigmoid
from ..core.data import Selection, gold_answers, source_fingerprint
from ..core.io import finite_odds, peak_rss_mb, write_atomic, write_json
from ..core.metrics import squad_v2_scores, table_scores
from ..core.settings import DecodingSettings, Execution, Int8Settings, WindowSettings
from ..model.loading import model_identity, training_overlap
from .engines import Computation
from .store import (
    _STATE,
    CHUNK_IDENTITY,
    RunError,
    _check_chunk_identity,
    _chunk_files,
    _compare,
    _damaged_outputs,
    _read_chunks,
    _read_examples,
    _read_info,
    _remove_run_files,
    _versions,
    locked,
    output_checksums,
    refuse_foreign,
    run_identity,
)

__all__ = ['Run', 'TrainedArticlesWarning', 'load_run', 'predict_run', 'run_or_table', 'table_of']


class TrainedArticlesWarning(UserWarning):
    """A run over articles the model says (``training.json``) it was trained on: its scores are inflated."""


_PREDICTION_COLUMNS = ["answer", "best_span_text", "answer_start", "answer_end", "best_span_score",
                       "null_score", "null_odds", "n_windows", "best_window", "first_window_chars",
                       "question_truncated"]


_LENGTH_COLUMNS = ["question_tokens", "context_tokens", "answer_tokens", "prediction_tokens"]


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
    def windowing(self) -> WindowSettings:
        """The window settings the run was made with."""
        return WindowSettings.from_dict(self.info.get("settings", {}))

    @property
    def decoding(self) -> DecodingSettings:
        """The decoding settings the run's answers were decided with."""
        return DecodingSettings.from_dict(self.info.get("settings", {}))

    @property
    def threshold(self) -> float:
        """The null-odds threshold the run's answers were decided with."""
        return self.decoding.null_score_diff_threshold

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
    damaged = _damaged_outputs(path, info.get("outputs"))
    if damaged:
        raise RunError(_damage_message(path, damaged, info))
    table = _read_examples(path)
    table.attrs = {}  # parquet keeps a frame's attrs: a run written before they were cleared had its data's label
    return Run(path=path, table=table, info=info)


def run_or_table(data):
    """What an analysis was given, ready to read: a run directory (a path) loaded as its :class:`Run`; a
    :class:`Run`, a question table, or a result holding one (``.table``: a ``ProbeRuns``...) as given.

    >>> run_or_table(42)
    Traceback (most recent call last):
    ...
    TypeError: expected a Run, a run directory or a question table, got int
    """
    if isinstance(data, (str, os.PathLike)):
        return load_run(data)
    if isinstance(data, pd.DataFrame) or hasattr(data, "table"):
        return data
    raise TypeError(f"expected a Run, a run directory or a question table, got {type(data).__name__}")


def table_of(data) -> pd.DataFrame:
    """The question table of ``data`` (:func:`run_or_table`): the one first argument every analysis takes.

    >>> table_of(pd.DataFrame({"id": ["q"]}))["id"].tolist()
    ['q']
    """
    data = run_or_table(data)
    return data if isinstance(data, pd.DataFrame) else data.table


def _damage_message(path: Path, damaged: list, info: dict) -> str:
    """What is missing or damaged in a finished run, and the command that rebuilds it."""
    settings = info.get("settings", {})
    command = (f"xdanalysis predict --model {settings.get('model_given') or settings.get('model')} "
               f"--data {settings.get('data')} --out {path}")
    what = "; ".join(f"{name}: missing" if not (path / name).exists() else
                     f"{name}: changed or damaged since the run was written (size or sha256 differs from run.json's "
                     "record)" for name in damaged)
    if (path / "chunks").is_dir():
        how = (f"run the command that made it again (`{command}`, with the same selection: --titles/--limit) "
               "to rebuild it from the run's chunks, or with --overwrite to recompute the run")
    else:
        how = f"its chunks are gone: recompute it (`{command}` with the same selection and --overwrite)"
    return f"{path}: {what}. Not loaded: {how}"


def predict_run(
    model,
    data,
    out,
    *,
    selection: Selection = Selection(),
    windowing: WindowSettings = WindowSettings(),
    decoding: DecodingSettings = DecodingSettings(),
    execution: Execution = Execution(),
    overwrite: bool = False,
    loaded=None,
    calibration=None,
) -> Run:
    """Predict ``data`` with ``model`` into the run directory ``out``, or reuse it if done.

    - ``model``: a Hub id, a local directory, or an already loaded ``(model, tokenizer)`` pair.
    - ``data``: any source :func:`xdanalysis.core.data.load_squad` takes, or a question table;
      ``selection`` (:class:`~xdanalysis.core.data.Selection`) keeps or drops whole articles, then
      cuts to its ``limit``.
    - ``windowing`` / ``decoding``: how questions become windows and logits answers.
    - ``execution`` (:class:`~xdanalysis.core.settings.Execution`): where and how the model runs (device,
      dtype and int8 are recorded in ``run.json`` and are part of the run's identity; a loaded model runs
      where it is), on which engine (``ray``: the chunks on Ray Data actors, same chunk files, same run),
      with which batch and chunk sizes, with a progress bar or not.
    - ``overwrite`` replaces a run in ``out`` (deleting only the run's own files); a directory that holds
      anything else is refused.
    - ``loaded``: a ``(model, tokenizer)`` pair, or a function ``loaded(device=, dtype=)`` that returns one,
      to compute with instead of loading ``model`` (which still names the run); called only when there
      is something to compute, so several runs share one load.
    - ``calibration``: for OpenVINO int8, the questions its scales are measured on (a
      :class:`~xdanalysis.model.openvino.Calibration`; default: chosen by
      :func:`~xdanalysis.runs.calibration.calibration_for`, outside the run's data). Runs that must share one
      int8 model (the probes of one original run) pass the same one.

    Example::

        run = predict_run("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                          "runs/demo", selection=Selection(titles=["French_and_Indian_War", "Force"], limit=50))
        run.scores()["exact"]
    """
    if execution.engine == "ray" and not is_reference(model):
        raise ValueError("engine='ray' needs the model as a Hub id or a directory every worker can load, "
                         "not a loaded (model, tokenizer) pair")
    out = Path(out).expanduser()
    table = _question_table(model, data, selection)
    execution = _placed(model, execution)
    if calibration is None:
        from .calibration import run_calibration

        calibration = run_calibration(model, data, table, selection=selection, windowing=windowing,
                                      execution=execution)
    settings = _run_settings(model, data, table, windowing=windowing, decoding=decoding, execution=execution,
                             calibration=calibration)
    identity = run_identity(settings)
    refuse_foreign(out)  # before anything is written or deleted there
    if overwrite and out.exists():
        with locked(out):
            _remove_run_files(out)
    chunk_files = _chunk_files(out, max(1, math.ceil(len(table) / execution.chunk_size)))
    if (out / "run.json").exists():
        return _reuse(out, table, identity, settings, chunk_files)
    compute = Computation(model=model, loaded=loaded, windowing=windowing, decoding=decoding, execution=execution,
                          calibration=calibration)
    return _compute(out, table, chunk_files, identity, settings, compute)


def _compute(out: Path, table: pd.DataFrame, chunk_files: list, identity: dict, settings: dict,
             compute: Computation) -> Run:
    """The run made: its missing chunks computed (a resumed run's finished ones kept), then assembled."""
    execution = compute.execution
    with locked(out):
        timings = _resumed_timings(out, identity, chunk_files)
        pending = [c for c, f in enumerate(chunk_files) if not f.exists()]
        if pending:
            with compute.prepared(settings["model"]):
                # Settings checked, model loaded, Ray reached: only now is this directory a run in progress.
                _start_chunks(out, identity, first=len(pending) == len(chunk_files))
                _write_chunks(compute.chunks(table, pending), out, chunk_files, timings, progress=execution.progress,
                              total=len(table),
                              done_before=min(len(table), (len(chunk_files) - len(pending)) * execution.chunk_size))
        chunks = _read_chunks(out, table, chunk_files)
        info = {"batch_size": execution.batch_size, "inference_seconds": round(float(sum(timings.values())), 3)}
        return _assemble(out, table, chunks, settings, info)


def _start_chunks(out: Path, identity: dict, *, first: bool) -> None:
    """The marks of a run in progress: its state (when nothing was computed yet) and what made its chunks."""
    if first:
        write_json(out / _STATE, identity, indent=2)
    (out / "chunks").mkdir(exist_ok=True)
    write_json(out / "chunks" / CHUNK_IDENTITY, identity, indent=2)  # the chunks say what made them


def _question_table(model, data, selection: Selection) -> pd.DataFrame:
    """The questions of the run: ``data`` loaded and selected, or the table given, cut to the selection's limit."""
    if isinstance(data, pd.DataFrame):
        return selection.load(data)
    return _load_data_and_check_model(model, data, selection)


def _run_settings(model, data, table, *, windowing, decoding, execution: Execution, calibration=None) -> dict:
    """What ``run.json`` records as the run's settings: its identity, plus its provenance (and a warning
    when the model trained on some of these articles)."""
    settings = {
        **model_identity(model),
        "device": execution.device,
        "dtype": execution.dtype,
        "runtime": execution.runtime,
        **({"int8": _int8_of(model, execution.int8)} if execution.dtype == "int8" and execution.runtime == "torch"
           else {}),
        **_openvino_of(model, execution, calibration),
        "model_given": os.fspath(model) if is_reference(model) else None,
        "data": str(table.attrs.get("source", "a question table" if isinstance(data, pd.DataFrame) else data)),
        "data_fingerprint": source_fingerprint(table),
        "n_questions": int(len(table)),
        **windowing.as_dict(),
        **decoding.as_dict(),
    }
    overlap = training_overlap(model, table)
    if overlap and overlap["questions"]:
        settings["trained_on_overlap"] = overlap
        warnings.warn(f"{overlap['questions']} of {overlap['of']} questions come from articles the model was "
                      f"trained on ({name_some(overlap['titles'], 4)}): its scores there are inflated. Keep "
                      "held-out articles with --titles / Selection(titles=[...]).", TrainedArticlesWarning,
                      stacklevel=3)
    return settings


def _int8_of(model, int8: Int8Settings) -> dict | None:
    """How an int8 run's model is quantised: as asked for a model given by name, as it was for a loaded one."""
    from ..model.quantize import int8_settings_of, resolve_int8

    if is_reference(model):
        return resolve_int8(int8).as_dict()

    return int8_settings_of(model[0])


def _openvino_of(model, execution: Execution, calibration) -> dict:
    """What an OpenVINO int8 run records of its quantisation: the recipe and the calibration set's fingerprint
    (identity), and the calibration set in words (provenance); as asked for a model given by name, as it was
    made for a loaded one. Nothing for any other run."""
    if execution.runtime != "openvino" or execution.dtype != "int8":
        return {}
    if calibration is not None:
        recipe, described = execution.openvino.int8_recipe(), calibration.describe()
    else:
        recipe, described = model[0].record.get("recipe"), model[0].record.get("calibration") or {}
    return {"openvino": recipe, "calibration_fingerprint": described.get("fingerprint"), "calibration": described}


def _reuse(out: Path, table, identity: dict, settings: dict, chunk_files: list) -> Run:
    """A finished run with these settings: loaded, or its damaged outputs rebuilt from its chunks."""
    info = _read_info(out)
    _compare(identity, {k: info["settings"].get(k) for k in identity}, out)
    damaged = _damaged_outputs(out, info.get("outputs"))
    if not damaged:
        return load_run(out)
    missing_chunks = [f.name for f in chunk_files if not f.exists()]
    if missing_chunks:
        raise RunError(f"{out}: {', '.join(damaged)} missing or damaged, and the chunks to rebuild them from "
                       f"are gone ({name_some(missing_chunks, 3)}); recompute the run with --overwrite")
    _check_chunk_identity(out, identity, required=False)
    with locked(out):
        return _assemble(out, table, _read_chunks(out, table, chunk_files), settings, info)


def _resumed_timings(out: Path, identity: dict, chunk_files: list) -> dict:
    """The seconds of the chunks an interrupted run finished, after checking they were made with these
    settings; empty for a new run."""
    if not any(f.exists() for f in chunk_files):
        return {}
    _check_chunk_identity(out, identity, required=True)
    timing_file = out / "timing.json"
    if not timing_file.exists():
        return {}
    with open(timing_file, encoding="utf-8") as handle:
        return json.load(handle)


def _write_chunks(done, out: Path, chunk_files: list, timings: dict, *, progress: bool | str, total: int,
                  done_before: int = 0) -> None:
    """Each chunk on disk as soon as it is computed, with its time: a killed run resumes from there."""
    label = progress if isinstance(progress, str) else "questions"
    with progress_bar(total=total, initial=done_before, desc=label, unit="q", disable=not progress) as bar:
        for c, frame, seconds in done:
            write_atomic(chunk_files[c], lambda tmp: frame.to_parquet(tmp, index=False))
            timings[str(c)] = seconds
            write_json(out / "timing.json", timings)
            bar.update(len(frame))


def _placed(model, execution: Execution) -> Execution:
    """The execution with its device and dtype resolved: for a model given by name, as asked; for a loaded
    model, where it is (asking for something else is an error: moving the caller's model is theirs to do)."""
    from ..model.device import model_device_dtype, resolve_placement
    from ..model.runtime import model_runtime

    if is_reference(model):
        device, dtype = resolve_placement(execution.device, execution.dtype, execution.runtime)
        return replace(execution, device=device, dtype=dtype)
    have = model_device_dtype(model[0])
    runtime = model_runtime(model[0])
    if execution.runtime != runtime:
        raise ValueError(f"runtime {execution.runtime!r} asked for, but the model given runs on {runtime!r}; load it "
                         f"with runtime={execution.runtime!r}, or ask for runtime={runtime!r}")
    for name, asked, present in (("device", execution.device, have[0]), ("dtype", execution.dtype, have[1])):
        if asked not in (None, "auto") and asked != present:
            raise ValueError(f"{name} {asked!r} asked for, but the model given is loaded with {name} {present!r}; "
                             f"move it first (model.to(...)) or leave {name} unset")
    return replace(execution, device=have[0], dtype=have[1])


def _load_data_and_check_model(model, data, selection: Selection) -> pd.DataFrame:
    """Load the data; when it fails because the Hub is unreachable, say at once whether the model
    is unreachable too, so that both are fixed in one round."""
    from ..core.data import HubUnreachableError

    try:
        return selection.load(data)
    except HubUnreachableError as data_error:
        if is_reference(model):
            from ..model.loading import model_problem

            problem = model_problem(model)
            if problem:
                raise HubUnreachableError(f"{data_error}\n{problem}") from None
        raise


def _assemble(out: Path, table: pd.DataFrame, chunks: pd.DataFrame, settings: dict, info: dict) -> Run:
    examples = table.reset_index(drop=True).copy()
    examples.attrs = {}  # the data's label is the run's settings' "data"; a run's table is a plain frame
    for column in _PREDICTION_COLUMNS + _LENGTH_COLUMNS:
        examples[column] = chunks[column].to_numpy()
    examples["has_answer"] = examples["answer_texts"].map(len) > 0
    examples["na_prob"] = [sigmoid(x) for x in examples["null_odds"]]
    exact, f1 = table_scores(examples)  # the official per-question scores (core.metrics)
    examples["exact"], examples["f1"] = exact.astype(int), f1
    predictions = dict(zip(examples["id"], examples["answer"]))

    nbest = {qid: json.loads(n) for qid, n in zip(chunks["id"], chunks["nbest"])}
    write_json(out / "predictions.json", predictions, indent=2)
    write_json(out / "null_odds.json", {k: finite_odds(v) for k, v in zip(examples["id"], examples["null_odds"])},
                indent=2)
    write_json(out / "na_probs.json", dict(zip(examples["id"], examples["na_prob"].astype(float))), indent=2)
    write_json(out / "nbest_predictions.json", nbest)
    write_atomic(out / "examples.parquet", lambda tmp: examples.to_parquet(tmp, index=False))

    n = len(examples)
    seconds = info.get("inference_seconds") or 0.0
    info = {
        "settings": settings,
        "batch_size": info.get("batch_size"),
        "versions": info.get("versions") or _versions(),
        "inference_seconds": seconds,
        "questions_per_second": info.get("questions_per_second") or (round(n / seconds, 3) if seconds else None),
        "peak_rss_mb": info.get("peak_rss_mb") or round(peak_rss_mb(), 1),
        "threads": info.get("threads") or _torch_threads(),
        "questions_truncated": int(examples["question_truncated"].sum()),
        "created": info.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "outputs": output_checksums(out),  # damage anywhere in an output is seen on reuse
    }
    write_json(out / "run.json", info, indent=2)
    for leftover in (_STATE, "timing.json"):
        (out / leftover).unlink(missing_ok=True)
    return Run(path=out, table=examples, info=info, _nbest=nbest)


def _torch_threads():
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None
