"""The run directory as storage: its files, lock, damage checks and identity."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..core.common import name_some

__all__ = ['RUN_OUTPUTS', 'RunBusyError', 'RunError', 'RunMismatchError', 'default_run_dir', 'run_identity']


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

    versions = {"python": platform.python_version(), "xdanalysis": md.version("xdanalysis")}
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
