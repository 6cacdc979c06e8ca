"""Teacher logits: computed once per (teacher, data, windows, student tokenizer), cached in resumable
chunks, moved across tokenizers through character offsets."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.common import is_reference, progress_bar
from ..core.data import source_fingerprint
from ..core.io import write_atomic, write_json
from ..core.settings import Execution, WindowSettings
from ..core.stats import softmax
from ..core.text import token_char
from ..model.windows import Windows, prepare_windows
from .targets import _subset

__all__ = ['TeacherPass', 'move_distribution', 'teacher_chunk', 'teacher_logits']


_NO_MASS = -30.0  # log-probability given to a student token that receives none of the teacher's mass


# The teacher's targets -------------------------------------------------------------------------

def _same_tokenizer(a, b) -> bool:
    return type(a) is type(b) and a.get_vocab() == b.get_vocab()


def move_distribution(probabilities: np.ndarray, source_offsets: np.ndarray, source_cls: int,
                      target_offsets: np.ndarray, target_cls: int, context: str, *, which: str) -> np.ndarray:
    """A start (``which="start"``) or end distribution over one tokenizer's window moved onto
    another tokenizer's window of the same context, through characters: a source token's
    probability goes to the target token holding its first (start) or last (end) non-space
    character, [CLS]'s to the target [CLS]; mass that falls outside the target window is dropped,
    and the result renormalised. The word alignment of :func:`xdanalysis.interpret.soft_targets.word_distributions`,
    onto tokens.

    >>> ctx = "ab cd"
    >>> src = np.array([[-1, -1], [0, 2], [3, 5]]); tgt = np.array([[-1, -1], [0, 1], [1, 2], [3, 5]])
    >>> move_distribution(np.array([0.2, 0.5, 0.3]), src, 0, tgt, 0, ctx, which="start").tolist()
    [0.2, 0.5, 0.0, 0.3]
    """
    token_char("", 0, 0, which=which)  # an unknown ``which`` is refused before any work
    moved = np.zeros(len(target_offsets))
    moved[target_cls] += probabilities[source_cls]
    in_target = np.flatnonzero(target_offsets[:, 0] >= 0)
    target_starts = target_offsets[in_target, 0]
    target_ends = target_offsets[in_target, 1]
    for position in np.flatnonzero(source_offsets[:, 0] >= 0):
        char = token_char(context, int(source_offsets[position, 0]), int(source_offsets[position, 1]), which=which)
        holder = np.flatnonzero((target_starts <= char) & (char < target_ends))
        if len(holder):
            moved[in_target[holder[0]]] += probabilities[position]
    total = moved.sum()
    return moved / total if total > 0 else moved


def _moved_logits(teacher_windows: Windows, teacher_outputs, student_windows: Windows, contexts: list):
    """Teacher logits moved onto the student's windows, as log-probabilities at T = 1 (exact when
    tokens map one to one; softmax(log p / T) tempers the moved distribution)."""
    by_question: dict[int, list[int]] = {}
    for w, q in enumerate(teacher_windows.question_index):
        by_question.setdefault(q, []).append(w)
    moved = []
    for w, q in enumerate(student_windows.question_index):
        target = student_windows.offsets[w]
        inside = target[target[:, 0] >= 0]
        low, high = (inside[:, 0].min(), inside[:, 1].max()) if len(inside) else (0, 0)

        def overlap(t):
            source = teacher_windows.offsets[t]
            covered = source[source[:, 0] >= 0]
            if not len(covered):
                return 0
            return max(0, min(high, covered[:, 1].max()) - max(low, covered[:, 0].min()))

        best = max(by_question[q], key=overlap)
        pair = []
        for logits, which in ((teacher_outputs[best][0], "start"), (teacher_outputs[best][1], "end")):
            mapped = move_distribution(softmax(logits), teacher_windows.offsets[best], teacher_windows.cls_index[best], target,
                                       student_windows.cls_index[w], contexts[q], which=which)
            pair.append(np.where(mapped > 0, np.log(np.maximum(mapped, 1e-30)), _NO_MASS).astype(np.float32))
        moved.append(tuple(pair))
    return moved


def _cache_key(teacher_identity: dict, table: pd.DataFrame, settings: dict, student_tokenizer) -> str:
    vocab = json.dumps(sorted(student_tokenizer.get_vocab().items()), ensure_ascii=False)
    payload = json.dumps([teacher_identity, source_fingerprint(table), settings, type(student_tokenizer).__name__,
                          hashlib.sha256(vocab.encode()).hexdigest()], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _save_logits(file: Path, logits) -> None:
    flat_start = np.concatenate([s for s, _ in logits]).astype(np.float32)
    flat_end = np.concatenate([e for _, e in logits]).astype(np.float32)
    lengths = np.array([len(s) for s, _ in logits])
    def write(tmp):
        with open(tmp, "wb") as handle:  # a handle: np.savez would add ".npz" to a name
            np.savez(handle, start=flat_start, end=flat_end, lengths=lengths)

    write_atomic(file, write)


def _load_logits(file: Path, n_windows: int) -> list | None:
    """A cached chunk's ``(start, end)`` logits per window, or None when the file cannot be read or does
    not hold ``n_windows`` windows (a damaged cache is recomputed, never trusted)."""
    try:
        with np.load(file) as saved:  # each saved["..."] reads the file again: read each array once
            start, end, lengths = saved["start"], saved["end"], saved["lengths"]
    except Exception:  # EOFError, BadZipFile, KeyError, ValueError, OSError: damaged, whatever the kind
        return None
    if len(lengths) != n_windows or lengths.sum() != len(start) or len(start) != len(end):
        return None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [(start[a:b], end[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def teacher_chunk(teacher, teacher_tokenizer, table: pd.DataFrame, student_windows: Windows, indices, *,
                  same: bool, windowing: WindowSettings, batch_size: int = 32) -> list:
    """The teacher's ``(start, end)`` logits for the student windows at ``indices``: run on the same
    windows when the tokenizers agree, else on the teacher's own windows (``windowing``) and moved onto
    the student's."""
    from ..model.forward import run_windows

    if same:
        return run_windows(teacher, _subset(student_windows, indices), batch_size=batch_size, progress=False)
    questions = sorted({student_windows.question_index[i] for i in indices})
    sub_table = table.iloc[questions].reset_index(drop=True)
    position = {q: k for k, q in enumerate(questions)}
    part = _subset(student_windows, indices, renumber=position)
    teacher_windows = prepare_windows(sub_table, teacher_tokenizer, windowing)
    outputs = run_windows(teacher, teacher_windows, batch_size=batch_size, progress=False)
    return _moved_logits(teacher_windows, outputs, part, list(sub_table["context"]))


@dataclass(frozen=True)
class TeacherPass:
    """What :func:`teacher_logits` gives: the ``(start, end)`` logits per student window, and where they
    came from: the cache ``folder``, the windows ``reused`` from it and ``computed`` now, the ``seconds``."""

    logits: list = field(repr=False)
    folder: str
    reused: int
    computed: int
    seconds: float

    def record(self) -> dict:
        """The pass as ``distill.json`` records it."""
        return {"folder": self.folder, "reused": self.reused, "computed": self.computed, "seconds": self.seconds}


def teacher_logits(teacher, table: pd.DataFrame, student_windows: Windows, student_tokenizer, *, cache_dir,
                   windowing: WindowSettings = WindowSettings(), execution: Execution = Execution(), loaded=None,
                   chunk_windows: int = 2048) -> TeacherPass:
    """The teacher's ``(start, end)`` logits for every student window, from the cache when it
    holds them. Computed chunk by chunk (``cache_dir/<key>/chunk-*.npz``), so a killed pass
    resumes; the key covers the teacher, the data, the window settings and the student's tokenizer.

    ``teacher`` is a Hub id or a directory (loaded here on ``execution.device``, unless ``loaded`` gives the
    ``(model, tokenizer)`` pair already loaded), or a loaded pair. ``windowing`` makes the teacher's own
    windows when its tokenizer differs from the student's. ``execution.engine == "ray"`` computes the
    missing chunks on Ray Data actors that load the teacher by name
    (:func:`xdanalysis.distill.on_ray.teacher_chunks_on_ray`); the cache files are the same.

    Example::

        targets = teacher_logits((teacher, tok), table, windows, tok, cache_dir="runs/teacher-logits").logits
    """
    import time

    started = time.perf_counter()
    model, tokenizer = _teacher_pair(teacher, loaded, execution)
    key_settings = windowing.as_dict()
    folder = _cache_folder(teacher, model, table, key_settings, student_tokenizer, cache_dir, len(student_windows))
    same = _same_tokenizer(tokenizer, student_tokenizer)
    n_chunks = max(1, math.ceil(len(student_windows) / chunk_windows))
    cached = sum(min(chunk_windows, len(student_windows) - c * chunk_windows) for c in range(n_chunks)
                 if (folder / f"chunk-{c:05d}.npz").exists())
    if execution.engine == "ray":
        pending = [c for c in range(n_chunks) if not (folder / f"chunk-{c:05d}.npz").exists()]
        if pending:
            _chunks_on_ray(teacher, table, student_windows, pending, folder, chunk_windows=chunk_windows, same=same,
                           windowing=windowing, execution=execution)
    results = _read_or_compute(folder, (model, tokenizer), table, student_windows, n_chunks,
                               chunk_windows=chunk_windows, same=same, windowing=windowing, execution=execution)
    if any(len(s) != len(ids) for (s, _), ids in zip(results, student_windows.input_ids)):
        raise ValueError(f"{folder}: cached teacher logits do not match these windows; delete the folder")
    return TeacherPass(results, folder=str(folder), reused=cached, computed=len(student_windows) - cached,
                       seconds=round(time.perf_counter() - started, 2))


def _teacher_pair(teacher, loaded, execution: Execution):
    """The teacher as a loaded ``(model, tokenizer)`` pair."""
    if loaded is not None:
        return loaded
    if not is_reference(teacher):
        return teacher
    from ..model.loading import load_qa_model

    from ..model.device import resolve_device

    return load_qa_model(teacher, device=resolve_device(execution.device or "auto"))


def _cache_folder(teacher, model, table, settings: dict, student_tokenizer, cache_dir, n_windows: int) -> Path:
    """The cache folder of this pass, with a ``key.json`` saying what it holds."""
    from ..model.loading import model_identity

    identity = model_identity(teacher if is_reference(teacher) else (model, None))
    folder = Path(cache_dir).expanduser() / _cache_key(identity, table, settings, student_tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "key.json", {"teacher": identity, "data_fingerprint": source_fingerprint(table),
                                     "settings": settings, "windows": n_windows}, indent=2)
    return folder


def _chunks_on_ray(teacher, table, student_windows, pending, folder: Path, *, chunk_windows, same, windowing,
                   execution: Execution) -> None:
    """The pending chunks computed on Ray Data actors, each saved as it arrives (a killed pass resumes)."""
    from .on_ray import teacher_chunks_on_ray

    if not is_reference(teacher):
        raise ValueError("engine='ray' needs the teacher as a Hub id or a directory every worker can load")
    for c, logits in teacher_chunks_on_ray(teacher, table, student_windows, pending, compute=teacher_chunk,
                                           chunk_windows=chunk_windows, same=same, windowing=windowing,
                                           execution=execution):
        _save_logits(folder / f"chunk-{c:05d}.npz", logits)


def _read_or_compute(folder: Path, pair, table, student_windows, n_chunks: int, *, chunk_windows, same, windowing,
                     execution: Execution) -> list:
    """Every chunk's logits: read from the cache, or computed (and saved) when missing or damaged."""

    results: list = []
    with progress_bar(total=len(student_windows), desc="teacher logits", unit="win",
                      disable=not execution.progress) as bar:
        for c in range(n_chunks):
            indices = list(range(c * chunk_windows, min(len(student_windows), (c + 1) * chunk_windows)))
            file = folder / f"chunk-{c:05d}.npz"
            chunk = _load_logits(file, len(indices)) if file.exists() else None
            if chunk is None:  # not computed yet, or damaged: (re)computed and saved
                if file.exists():
                    warnings.warn(f"{file}: damaged (unreadable or not these windows' logits); recomputed",
                                  stacklevel=3)
                chunk = teacher_chunk(*pair, table, student_windows, indices, same=same, windowing=windowing,
                                      batch_size=execution.batch_size)
                _save_logits(file, chunk)
            results += chunk
            bar.update(len(indices))
    return results
