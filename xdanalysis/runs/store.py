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
from ..core.io import file_checksum

__all__ = ['CHUNK_IDENTITY', 'output_checksums', 'RUN_MARKERS', 'locked', 'refuse_foreign', 'RUN_OUTPUTS', 'RunBusyError', 'RunError', 'RunMismatchError', 'default_run_dir', 'run_identity']


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


def default_run_dir(model, data, limit=None, *, titles=None, exclude_titles=None, root="runs",
                    runtime: str = "torch", dtype: str | None = "float32") -> Path:
    """Where a run of ``model`` over ``data`` lives by default:
    ``runs/<model>__<data>[__<titles>][__without_<titles>][__limitN][__<runtime>-<dtype>]``: every selection of
    questions, and every way of running the model other than PyTorch float32, has a folder of its own.

    >>> str(default_run_dir("nbroad/xdistil-l12-h384-squad2", "squad_v2", limit=200))
    'runs/xdistil-l12-h384-squad2__squad_v2__limit200'
    >>> str(default_run_dir("m", "d.json", titles=["Force", "French_and_Indian_War"]))
    'runs/m__d.json__Force+French_and_Indian_War'
    >>> str(default_run_dir("m", "d.json", exclude_titles=["Force"]))
    'runs/m__d.json__without_Force'
    >>> str(default_run_dir("m", "d.json", runtime="openvino", dtype="int8"))
    'runs/m__d.json__openvino-int8'
    """
    name = f"{_slug(model)}__{_slug(Path(str(data)).stem if os.path.exists(str(data)) else data)}"
    if titles:
        name += "__" + "+".join(_slug(t) for t in titles)
    if exclude_titles:
        name += "__without_" + "+".join(_slug(t) for t in exclude_titles)
    if limit:
        name += f"__limit{limit}"
    if (runtime, dtype or "float32") != ("torch", "float32"):
        name += f"__{runtime}-{dtype or 'float32'}"
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
_PROVENANCE = ("data", "model_given", "trained_on_overlap", "calibration")


def run_identity(settings: dict) -> dict:
    """What makes two runs the same run: their ``run.json`` settings without the provenance.

    >>> run_identity({"model": "m", "data": "a/dev.json", "model_given": "m", "max_seq_length": 384})
    {'model': 'm', 'max_seq_length': 384}
    """
    return {k: v for k, v in settings.items() if k not in _PROVENANCE}


# Runs written before device, dtype and runtime were recorded ran on the CPU in float32, on PyTorch.
_UNRECORDED = {"device": "cpu", "dtype": "float32", "runtime": "torch"}


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
    for package in ("torch", "transformers", "tokenizers", "datasets", "numpy", "pandas", "openvino", "nncf"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


# Beside the chunks, what made them (the run's identity), kept until the run is replaced: chunks are
# never reused for another model, data or settings, even when run.json and progress.json are gone.
CHUNK_IDENTITY = "identity.json"


# A directory is a run's when it holds one of these: written before anything else of the run.
RUN_MARKERS = ("run.json", _STATE, f"chunks/{CHUNK_IDENTITY}")


def refuse_foreign(out: Path, *, markers=RUN_MARKERS, what: str = "a run directory") -> None:
    """Refuse a directory that exists, is not empty and holds none of ``markers``: its files are
    somebody else's, even when their names are ours (a user's own ``predictions.json``), so nothing
    there is written over or deleted. Shared by runs and distillation (``markers`` the files that
    mark a directory as made by it); only a lock or a temporary file left by a crash is ignored."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a directory; choose another --out")
    if out.is_dir() and not any((out / m).exists() for m in markers):
        foreign = sorted(p.name for p in out.iterdir() if p.name != "lock" and not p.name.endswith(".tmp"))
        if foreign:
            raise RunError(f"{out}: not {what} (no {' or '.join(markers)}) and not empty: it holds "
                           f"{name_some(foreign, 5)}. Nothing was deleted or overwritten; choose a new or empty directory for --out.")


def _remove_run_files(out: Path) -> None:
    """Delete a run's own files, and nothing else, from ``out``."""
    refuse_foreign(out)
    if not out.exists():
        return
    for name in RUN_OUTPUTS + ["run.json"] + _ADDED_FILES + [n for n in _STATE_FILES if n != "lock"]:
        for file in (out / name, out / f"{name}.tmp", *out.glob(f".{name}.*.tmp")):
            file.unlink(missing_ok=True)
    if (out / "chunks").is_dir():
        chunks = out / "chunks"
        for file in [*chunks.glob("chunk-*.parquet*"), *chunks.glob(".chunk-*.tmp"),
                     *chunks.glob(f".{CHUNK_IDENTITY}.*.tmp"), chunks / CHUNK_IDENTITY]:
            file.unlink(missing_ok=True)
        try:
            (out / "chunks").rmdir()
        except OSError:
            pass  # something else was put there: leave it


@contextmanager
def locked(out: Path):
    """Hold ``out/lock`` for the block (an flock, released if the process dies); refuse when held.
    Every command that writes a directory of its own (a run, a student) holds it."""
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


def output_checksums(out: Path) -> dict:
    """``{output: {"bytes", "sha256"}}`` of a run's outputs, recorded in ``run.json`` when they are
    written, so that damage anywhere in a file is seen when it is read again (about 0.05 s for the dev set's)."""
    return {name: file_checksum(out / name) for name in RUN_OUTPUTS}


# Files whose checksum matched, by (path, size, mtime, inode): a file unchanged since it was checked is
# not hashed again in this process (a notebook loading a run a second time pays for a stat, not a hash).
_VERIFIED: set = set()


def _unchanged_and_whole(file: Path, recorded) -> bool:
    try:
        stat = file.stat()
        if not isinstance(recorded, dict) or stat.st_size != recorded.get("bytes"):
            return False  # the size is always checked
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, recorded.get("sha256"))
        if key in _VERIFIED:
            return True
        if file_checksum(file) != recorded:
            return False
    except OSError:
        return False
    _VERIFIED.add(key)
    return True


def _damaged_outputs(out: Path, recorded: dict | None = None) -> list[str]:
    """The outputs that are missing or damaged: compared with the checksums ``run.json`` recorded
    (``recorded``), or, for runs written before they were, checked for being whole without parsing
    them: a JSON file must end with its closing brace, a parquet file must have a readable footer."""
    if recorded:
        damaged = []
        for name in RUN_OUTPUTS:
            if not _unchanged_and_whole(out / name, recorded.get(name)):
                damaged.append(name)
        return damaged
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


def _check_chunk_identity(out: Path, identity: dict, *, required: bool) -> None:
    """Refuse chunks made by another model, data or settings: their ``identity.json`` (or, for runs
    written before chunks carried one, the run's ``progress.json``) must match; chunks of unknown
    origin are refused when ``required``."""
    for source in (out / "chunks" / CHUNK_IDENTITY, out / _STATE):
        if source.exists():
            try:
                with open(source, encoding="utf-8") as handle:
                    found = json.load(handle)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RunError(f"{source}: damaged; remove the directory or pass --overwrite") from None
            _compare(identity, found, out)
            return
    if required:
        raise RunError(f"{out / 'chunks'}: chunks of a run whose settings are not recorded (no {CHUNK_IDENTITY} "
                       f"or {_STATE}): they may come from another model or data. Pass overwrite=True (CLI: "
                       "--overwrite) to recompute the run.")


def _read_chunks(out: Path, table: pd.DataFrame, chunk_files: list) -> pd.DataFrame:
    frames = []
    for file in chunk_files:
        try:
            frames.append(pd.read_parquet(file))
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise RunError(f"{file}: damaged ({type(exc).__name__}); delete it and run the same command again: "
                           "that chunk is recomputed (or pass --overwrite to recompute the whole run)") from None
    chunks = pd.concat(frames, ignore_index=True)
    if list(chunks["id"]) != list(table["id"]):
        raise RunMismatchError(f"{out / 'chunks'}: the saved chunks do not hold this data's questions in order; "
                               "pass overwrite=True (CLI: --overwrite) to recompute the run")
    return chunks
