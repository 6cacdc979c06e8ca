"""Distil a student extractive-QA model from a teacher, on a laptop CPU, and keep what happened.

The pieces, each usable alone:

- :func:`window_labels`: run_qa's training targets for every window (the answer's first and
  last token when the window holds the whole answer; the window's [CLS] otherwise);
- :func:`teacher_logits`: the teacher's start/end logits for every training window, computed
  once per (teacher, data, window settings, student tokenizer), cached on disk in chunks (a
  killed pass resumes) and reused by every student trained from that teacher; a teacher with
  another tokenizer has its distributions moved onto the student's tokens through character
  offsets (:func:`move_distribution`);
- :func:`distillation_loss`: ``alpha · T² · ½[KL(p_t‖p_s)_start + KL(p_t‖p_s)_end]
  + (1 − alpha) · ½[CE_start + CE_end]`` over each window's real tokens;
- :func:`attention_loss`: MiniLM-style KL between the teacher's and the student's last-layer
  self-attention;
- :func:`distill`: the training itself, seeded, checkpointed (a killed training resumes), with a
  loss log, a ``distill.json`` of everything that made the student, and an evaluation run.

The student is a normal Hugging Face checkpoint that :func:`xdanalysis.runs.predict_run` loads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._common import check_choice
from .data import load_squad, source_fingerprint
from .inference import Windows, batch_tensors, eager_attention, forward_windows, length_batches, prepare_windows

__all__ = [
    "DISTILL_DEFAULTS",
    "window_labels",
    "distillation_loss",
    "attention_loss",
    "move_distribution",
    "teacher_logits",
    "cut_layers",
    "epoch_batches",
    "distill",
    "Distilled",
    "LAB_STUDENTS",
    "default_precision",
    "lab_student",
    "soft_target_entropy",
    "soft_gradient_scale",
    "plot_learning_curves",
    "plot_entropy",
    "plot_gradient_scale",
]

# The one source of the distillation defaults (the CLI and the notebook use these).
DISTILL_DEFAULTS = {
    "temperature": 2.0,
    "alpha": 0.5,
    "attention_weight": 0.0,
    "epochs": 1,
    "max_steps": None,
    "learning_rate": 1e-4,
    "batch_size": 16,
    "max_seq_length": 256,
    "doc_stride": 128,
    "seed": 0,
}
_NO_MASS = -30.0  # log-probability given to a student token that receives none of the teacher's mass


# Targets -------------------------------------------------------------------------------------

def window_labels(table: pd.DataFrame, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
    """Start and end token of the first gold answer in every window, as run_qa trains: the
    answer's tokens when the window holds all of it, else the window's [CLS] position (also for
    unanswerable questions). Returns two int arrays, one entry per window.

    Example::

        starts, ends = window_labels(table, prepare_windows(table, tokenizer))
    """
    starts = np.empty(len(windows), dtype=np.int64)
    ends = np.empty(len(windows), dtype=np.int64)
    answer_texts = list(table["answer_texts"])
    answer_starts = list(table["answer_starts"])
    for w, (question, offsets, cls) in enumerate(zip(windows.question_index, windows.offsets, windows.cls_index)):
        starts[w] = ends[w] = cls
        if not len(answer_texts[question]):
            continue
        char_start = int(answer_starts[question][0])
        char_end = char_start + len(answer_texts[question][0])
        inside = np.flatnonzero(offsets[:, 0] >= 0)
        if not len(inside) or offsets[inside[0], 0] > char_start or offsets[inside[-1], 1] < char_end:
            continue  # the answer is not (wholly) in this window
        covering = inside[(offsets[inside, 0] < char_end) & (offsets[inside, 1] > char_start)]
        starts[w], ends[w] = covering[0], covering[-1]
    return starts, ends


# Losses --------------------------------------------------------------------------------------

def distillation_loss(student_start, student_end, teacher_start, teacher_end, start_positions, end_positions, *,
                      temperature: float = DISTILL_DEFAULTS["temperature"], alpha: float = DISTILL_DEFAULTS["alpha"],
                      mask=None) -> dict:
    """The soft-target distillation loss of a batch of windows (tensors ``[batch, tokens]``).

    ``alpha · T² · ½[KL(p_t‖p_s)_start + KL(p_t‖p_s)_end] + (1 − alpha) · ½[CE_start + CE_end]``
    with ``p = softmax(logits / T)`` over each window's real tokens (``mask`` 1 for real tokens,
    padding excluded), KL summed over positions and averaged over the batch (``kl_div`` with
    ``reduction="batchmean"``), CE the usual cross-entropy on the hard positions. The T² keeps the
    soft term's gradients at the scale of the hard term's as T grows (Hinton et al. 2015).
    Returns ``{"total", "soft", "hard"}`` (``soft`` and ``hard`` unweighted).

    Example::

        losses = distillation_loss(s_start, s_end, t_start, t_end, y_start, y_end, temperature=2.0, alpha=0.5)
        losses["total"].backward()
    """
    import torch
    import torch.nn.functional as F

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if mask is None:
        mask = torch.ones_like(student_start, dtype=torch.bool)
    mask = mask.bool()
    very_negative = -1e4  # finite: exp(-1e4 / T) is 0 for any usable T, and 0 · log 0 stays 0 in kl_div

    def masked(logits):
        return logits.masked_fill(~mask, very_negative)

    def soft(student, teacher):
        log_p_student = F.log_softmax(masked(student) / temperature, dim=-1)
        p_teacher = F.softmax(masked(teacher.to(student.dtype)) / temperature, dim=-1)
        return F.kl_div(log_p_student, p_teacher, reduction="batchmean")

    soft_loss = 0.5 * (soft(student_start, teacher_start) + soft(student_end, teacher_end))
    hard_loss = 0.5 * (F.cross_entropy(masked(student_start), start_positions)
                       + F.cross_entropy(masked(student_end), end_positions))
    total = alpha * temperature**2 * soft_loss + (1 - alpha) * hard_loss
    return {"total": total, "soft": soft_loss, "hard": hard_loss}


def attention_loss(student_attention, teacher_attention, mask):
    """MiniLM-style attention transfer: KL(teacher‖student) between the last layer's attention
    distributions (``[batch, heads, tokens, tokens]``), per head when the head counts agree, heads
    averaged otherwise; summed over the attended tokens, averaged over real query rows and heads.

    Example::

        attention_loss(student_out.attentions[-1], teacher_out.attentions[-1], batch["attention_mask"])
    """
    import torch

    if student_attention.shape[1] != teacher_attention.shape[1]:
        student_attention = student_attention.mean(dim=1, keepdim=True)
        teacher_attention = teacher_attention.mean(dim=1, keepdim=True)
    eps = 1e-9
    kl = (teacher_attention * (torch.log(teacher_attention + eps) - torch.log(student_attention + eps))).sum(-1)
    rows = mask.bool()[:, None, :].expand_as(kl)
    return kl[rows].mean()


# The teacher's targets -------------------------------------------------------------------------

def _same_tokenizer(a, b) -> bool:
    return type(a) is type(b) and a.get_vocab() == b.get_vocab()


def move_distribution(probabilities: np.ndarray, source_offsets: np.ndarray, source_cls: int,
                      target_offsets: np.ndarray, target_cls: int, context: str, *, which: str) -> np.ndarray:
    """A start (``which="start"``) or end distribution over one tokenizer's window moved onto
    another tokenizer's window of the same context, through characters: a source token's
    probability goes to the target token holding its first (start) or last (end) non-space
    character, [CLS]'s to the target [CLS]; mass that falls outside the target window is dropped,
    and the result renormalised. The word alignment of :func:`xdanalysis.compare.word_distributions`,
    onto tokens.

    >>> ctx = "ab cd"
    >>> src = np.array([[-1, -1], [0, 2], [3, 5]]); tgt = np.array([[-1, -1], [0, 1], [1, 2], [3, 5]])
    >>> move_distribution(np.array([0.2, 0.5, 0.3]), src, 0, tgt, 0, ctx, which="start").tolist()
    [0.2, 0.5, 0.0, 0.3]
    """
    if which not in ("start", "end"):
        raise ValueError(f"unknown which {which!r}; use 'start' or 'end'")
    moved = np.zeros(len(target_offsets))
    moved[target_cls] += probabilities[source_cls]
    in_target = np.flatnonzero(target_offsets[:, 0] >= 0)
    target_starts = target_offsets[in_target, 0]
    target_ends = target_offsets[in_target, 1]
    for position in np.flatnonzero(source_offsets[:, 0] >= 0):
        start, end = int(source_offsets[position, 0]), int(source_offsets[position, 1])
        if which == "start":
            while start < end - 1 and context[start].isspace():
                start += 1
            char = start
        else:
            while end - 1 > start and context[end - 1].isspace():
                end -= 1
            char = end - 1
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
            z = np.asarray(logits, dtype=np.float64)
            p = np.exp(z - z.max())
            p /= p.sum()
            mapped = move_distribution(p, teacher_windows.offsets[best], teacher_windows.cls_index[best], target,
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
    tmp = file.with_name(file.name + ".tmp.npz")
    np.savez(tmp, start=flat_start, end=flat_end, lengths=lengths)
    os.replace(tmp, file)


def teacher_chunk(teacher, teacher_tokenizer, table: pd.DataFrame, student_windows: Windows, indices, *,
                  same: bool, settings: dict, batch_size: int = 32) -> list:
    """The teacher's ``(start, end)`` logits for the student windows at ``indices``: run on the same
    windows when the tokenizers agree, else on the teacher's own windows and moved onto the student's."""
    from .inference import run_windows

    if same:
        return run_windows(teacher, _subset(student_windows, indices), batch_size=batch_size, progress=False)
    questions = sorted({student_windows.question_index[i] for i in indices})
    sub_table = table.iloc[questions].reset_index(drop=True)
    position = {q: k for k, q in enumerate(questions)}
    part = _subset(student_windows, indices, renumber=position)
    teacher_windows = prepare_windows(sub_table, teacher_tokenizer,
                                      max_seq_length=settings.get("max_seq_length", DISTILL_DEFAULTS["max_seq_length"]),
                                      doc_stride=settings.get("doc_stride", DISTILL_DEFAULTS["doc_stride"]))
    outputs = run_windows(teacher, teacher_windows, batch_size=batch_size, progress=False)
    return _moved_logits(teacher_windows, outputs, part, list(sub_table["context"]))


def teacher_logits(teacher, teacher_tokenizer, table: pd.DataFrame, student_windows: Windows, student_tokenizer, *,
                   cache_dir, teacher_identity: dict | None = None, settings: dict | None = None,
                   batch_size: int = 32, chunk_windows: int = 2048, progress: bool = True, engine: str = "local",
                   teacher_path=None, device: str = "cpu", ray_address: str | None = None,
                   workers: int | None = None) -> list:
    """The teacher's ``(start, end)`` logits for every student window, from the cache when it
    holds them. Computed chunk by chunk (``cache_dir/<key>/chunk-*.npz``), so a killed pass
    resumes; the key covers the teacher, the data, the window settings and the student's tokenizer.
    ``engine="ray"`` computes the missing chunks on Ray Data actors that load ``teacher_path``
    (:func:`xdanalysis.scale.teacher_chunks_on_ray`); the cache files are the same.

    Example::

        targets = teacher_logits(teacher, tok, table, windows, tok, cache_dir="runs/teacher-logits")
    """
    from tqdm.auto import tqdm

    settings = settings or {}
    identity = teacher_identity or {"model": getattr(teacher.config, "_name_or_path", "in-memory")}
    key = _cache_key(identity, table, settings, student_tokenizer)
    folder = Path(cache_dir) / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps({"teacher": identity, "data_fingerprint": source_fingerprint(table),
                                                 "settings": settings, "windows": len(student_windows)}, indent=2))
    same = _same_tokenizer(teacher_tokenizer, student_tokenizer)
    n_chunks = max(1, math.ceil(len(student_windows) / chunk_windows))
    from .inference import ENGINES

    check_choice("engine", engine, ENGINES)
    if engine == "ray":
        from .scale import teacher_chunks_on_ray

        pending = [c for c in range(n_chunks) if not (folder / f"chunk-{c:05d}.npz").exists()]
        if pending:
            if not isinstance(teacher_path, (str, os.PathLike)):
                raise ValueError("engine='ray' needs the teacher as a Hub id or a directory every worker can load")
            for c, logits in teacher_chunks_on_ray(teacher_path, table, student_windows, pending,
                                                   compute=teacher_chunk, chunk_windows=chunk_windows, same=same, settings=settings,
                                                   batch_size=batch_size, device=device, address=ray_address,
                                                   workers=workers):
                _save_logits(folder / f"chunk-{c:05d}.npz", logits)  # as it arrives: a killed pass resumes
    results: list = []
    bar = tqdm(total=len(student_windows), desc="teacher logits", unit="win", disable=not progress)
    for c in range(n_chunks):
        indices = list(range(c * chunk_windows, min(len(student_windows), (c + 1) * chunk_windows)))
        file = folder / f"chunk-{c:05d}.npz"
        if not file.exists():
            _save_logits(file, teacher_chunk(teacher, teacher_tokenizer, table, student_windows, indices, same=same,
                                             settings=settings, batch_size=batch_size))
        with np.load(file) as saved:  # each saved["..."] reads the file again: read each array once
            start, end, lengths = saved["start"], saved["end"], saved["lengths"]
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        results += [(start[a:b], end[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        bar.update(len(indices))
    bar.close()
    if any(len(s) != len(ids) for (s, _), ids in zip(results, student_windows.input_ids)):
        raise ValueError(f"{folder}: cached teacher logits do not match these windows; delete the folder")
    return results


def _subset(windows: Windows, indices, renumber=None) -> Windows:
    pick = lambda values: [values[i] for i in indices]  # noqa: E731
    questions = pick(windows.question_index)
    return Windows(input_ids=pick(windows.input_ids), offsets=pick(windows.offsets), kinds=pick(windows.kinds),
                   question_offsets=pick(windows.question_offsets),
                   question_index=[renumber[q] for q in questions] if renumber else questions,
                   cls_index=pick(windows.cls_index), pad_token_id=windows.pad_token_id,
                   token_type_ids=pick(windows.token_type_ids) if windows.token_type_ids is not None else None)


def epoch_batches(lengths, *, batch_size: int, seed: int, group: int = 50) -> list[np.ndarray]:
    """One epoch's batches of window indices: shuffled (seeded), then sorted by length within
    groups of ``group`` batches, so that a batch pads little while the order stays random (the
    length-grouped sampling of transformers' Trainer); the batches themselves are shuffled too.

    >>> sorted(int(i) for batch in epoch_batches([5, 9, 7, 3, 8], batch_size=2, seed=0) for i in batch)
    [0, 1, 2, 3, 4]
    """
    lengths = np.asarray(lengths)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    span = batch_size * group
    grouped = np.concatenate([chunk[np.argsort(-lengths[chunk], kind="stable")]
                              for chunk in np.array_split(order, max(1, math.ceil(len(order) / span)))])
    batches = [grouped[i: i + batch_size] for i in range(0, len(grouped), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# Students ------------------------------------------------------------------------------------

def cut_layers(model, layers):
    """A copy of ``model`` keeping its embeddings, its head and the encoder ``layers`` listed (the
    way DistilBERT initialises its student); the model given is not changed.

    Example::

        student = cut_layers(teacher, (0, 2, 4))
    """
    import copy

    model = copy.deepcopy(model)
    encoder = getattr(model.base_model, "encoder", None)
    stack = getattr(encoder, "layer", None)
    if stack is None:
        raise ValueError(f"{type(model).__name__}: no encoder.layer stack to cut layers from; pass a student "
                         "checkpoint instead (--student)")
    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < len(stack) for i in layers):
        raise ValueError(f"layers {layers} must be indices of the teacher's {len(stack)} layers")
    encoder.layer = type(stack)([stack[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


# Training ------------------------------------------------------------------------------------

@dataclass
class Distilled:
    """What :func:`distill` made: the student's directory, its ``distill.json``, the loss log and
    the evaluation run (None when not evaluated)."""

    path: Path
    info: dict
    log: pd.DataFrame
    run: object = None


def _load(model, **kwargs):
    from .inference import load_qa_model

    return load_qa_model(model, **kwargs) if isinstance(model, (str, os.PathLike)) else model


def distill(teacher, data, out, *, student=None, student_layers=(0, 2, 4), titles=None, exclude_titles=None,
            limit: int | None = None, temperature: float = DISTILL_DEFAULTS["temperature"],
            alpha: float = DISTILL_DEFAULTS["alpha"], attention_weight: float = DISTILL_DEFAULTS["attention_weight"],
            epochs: int = DISTILL_DEFAULTS["epochs"], max_steps: int | None = DISTILL_DEFAULTS["max_steps"],
            learning_rate: float = DISTILL_DEFAULTS["learning_rate"], batch_size: int = DISTILL_DEFAULTS["batch_size"],
            max_seq_length: int = DISTILL_DEFAULTS["max_seq_length"], doc_stride: int = DISTILL_DEFAULTS["doc_stride"],
            seed: int = DISTILL_DEFAULTS["seed"], eval_data=None, eval_titles=None, eval_limit: int | None = None,
            precision: str = "float32", cache_dir=None, checkpoint_every: int | None = None,
            device: str = "auto", engine: str = "local", ray_address: str | None = None, workers: int | None = None,
            progress: bool = True, _stop_after: int | None = None) -> Distilled:
    """Train a student from ``teacher`` on ``data`` and save it in ``out``; resume when ``out``
    holds an unfinished training with the same settings, reuse it when finished.

    The student is ``student`` (a checkpoint; a plain encoder is fine, its QA head is trained) or,
    by default, the teacher's embeddings, head and ``student_layers``. ``alpha`` weighs the soft
    targets against the hard labels (0: hard labels only); ``attention_weight`` adds attention
    transfer (same tokenizer only). ``eval_data`` (default: the same data, without the articles
    trained on, when ``titles`` was given) is predicted with the student into ``out/eval-run``.
    ``precision="bfloat16"`` trains under bf16 autocast (weights stay fp32; faster where the CPU has
    AVX512-BF16 or AMX, see ``benchmarks/bench_distill.py``); the default is float32. ``device``
    (auto: CUDA, then MPS, then the CPU) is where the teacher and the student run; it is recorded
    in ``distill.json`` (provenance, not identity: the recipe is the same on any device).
    ``engine="ray"`` computes the teacher-logit pass on Ray Data actors (``ray_address``,
    ``workers``; the same cache files).

    Example::

        result = distill("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                         "runs/students/soft", exclude_titles="French_and_Indian_War,Force", max_steps=200)
        result.run.scores()["f1"]
    """
    import torch

    from .runs import _model_identity, _peak_rss_mb, _write_json, predict_run, training_record

    out = Path(out)
    if epochs < 1 or batch_size < 1 or (max_steps is not None and max_steps < 1):
        raise ValueError(f"epochs, batch_size and max_steps must be at least 1, got {epochs}, {batch_size}, {max_steps}")
    if attention_weight < 0:
        raise ValueError(f"attention_weight must be 0 or more, got {attention_weight}")
    check_choice("precision", precision, ["float32", "bfloat16"])
    table = load_squad(data, titles=titles, exclude_titles=exclude_titles, limit=limit)
    torch.manual_seed(seed)  # before the student exists: a freshly initialised QA head is seeded too
    from .inference import resolve_device

    run_device = resolve_device(device)
    teacher_model, teacher_tokenizer = _load(teacher, device=run_device)
    if student is not None:
        student_model, student_tokenizer = _load(student, allow_random_head=True, device=run_device)
        init = {"student": os.fspath(student) if isinstance(student, (str, os.PathLike)) else "in-memory"}
    else:
        student_model, student_tokenizer = cut_layers(teacher_model, student_layers), teacher_tokenizer
        init = {"student_layers": [int(i) for i in student_layers]}
    same_tokenizer = _same_tokenizer(teacher_tokenizer, student_tokenizer)
    if attention_weight > 0 and not same_tokenizer:
        raise ValueError("attention transfer (attention_weight > 0) compares attention token by token: the teacher "
                         "and the student must share a tokenizer; they do not here")
    settings = {"temperature": temperature, "alpha": alpha, "attention_weight": attention_weight, "epochs": epochs,
                "max_steps": max_steps, "learning_rate": learning_rate, "batch_size": batch_size,
                "max_seq_length": max_seq_length, "doc_stride": doc_stride, "seed": seed, "precision": precision,
                **init}
    teacher_identity = _model_identity(teacher if isinstance(teacher, (str, os.PathLike)) else (teacher_model, None))
    identity = {"teacher": teacher_identity, "data_fingerprint": source_fingerprint(table), **settings}
    if (out / "distill.json").exists():
        info = json.loads((out / "distill.json").read_text(encoding="utf-8"))
        if info.get("identity") != identity:
            raise ValueError(f"{out} holds a student made with other settings; choose another --out")
        from .runs import load_run

        run = load_run(out / info["eval_run"]) if info.get("eval_run") and (out / info["eval_run"]).exists() else None
        return Distilled(out, info, pd.read_parquet(out / "training_log.parquet"), run)

    windows = prepare_windows(table, student_tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride)
    starts, ends = window_labels(table, windows)
    targets = None
    if alpha > 0:
        targets = teacher_logits(teacher_model, teacher_tokenizer, table, windows, student_tokenizer,
                                 cache_dir=cache_dir or out.parent / "teacher-logits", teacher_identity=teacher_identity,
                                 settings={"max_seq_length": max_seq_length, "doc_stride": doc_stride},
                                 progress=progress, engine=engine, device=run_device, ray_address=ray_address,
                                 workers=workers,
                                 teacher_path=teacher if isinstance(teacher, (str, os.PathLike)) else None)

    lengths = windows.lengths()
    steps_per_epoch = math.ceil(len(windows) / batch_size)
    total_steps = min(max_steps or steps_per_epoch * epochs, steps_per_epoch * epochs)
    optimizer = torch.optim.AdamW(student_model.parameters(), lr=learning_rate)
    warmup = max(1, total_steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))))
    checkpoint = out / "checkpoint.pt"
    state_file = out / "distill-progress.json"
    out.mkdir(parents=True, exist_ok=True)
    step, log, seconds = 0, [], 0.0
    if checkpoint.exists() and state_file.exists():
        if json.loads(state_file.read_text(encoding="utf-8")) != identity:
            raise ValueError(f"{out} holds an unfinished training with other settings; choose another --out")
        saved = torch.load(checkpoint, weights_only=False, map_location=next(student_model.parameters()).device)
        student_model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        torch.set_rng_state(saved["torch_rng"])
        step, log, seconds = saved["step"], saved["log"], saved["seconds"]
    _write_json(state_file, identity, indent=2)
    every = checkpoint_every or steps_per_epoch

    def save_checkpoint():
        tmp = checkpoint.with_name("checkpoint.pt.tmp")
        torch.save({"model": student_model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "torch_rng": torch.get_rng_state(), "step": step,
                    "log": log, "seconds": seconds}, tmp)
        os.replace(tmp, checkpoint)

    from tqdm.auto import tqdm

    device = next(student_model.parameters()).device
    teacher_model.eval()
    student_model.train()
    bar = tqdm(total=total_steps, initial=step, desc="distil", unit="step", disable=not progress)
    eager = ExitStack()
    if attention_weight > 0:  # attention weights come only from eager attention
        eager.enter_context(eager_attention(student_model))
        eager.enter_context(eager_attention(teacher_model))
    with eager:
        while step < total_steps:
            epoch, position = divmod(step, steps_per_epoch)
            batch = epoch_batches(lengths, batch_size=batch_size, seed=seed + epoch)[position]
            started = time.perf_counter()
            inputs = batch_tensors(windows, batch, device=device)
            mask = inputs["attention_mask"]
            autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
            with autocast:
                output = student_model(**inputs, output_attentions=attention_weight > 0)
            width = mask.shape[1]
            if targets is not None:
                t_start = torch.full((len(batch), width), _NO_MASS)
                t_end = torch.full((len(batch), width), _NO_MASS)
                for row, w in enumerate(batch):
                    n = len(targets[w][0])
                    t_start[row, :n] = torch.as_tensor(targets[w][0])
                    t_end[row, :n] = torch.as_tensor(targets[w][1])
            else:  # hard labels only: no teacher; the soft term is not computed (logged as NaN)
                t_start, t_end = output.start_logits.detach().float(), output.end_logits.detach().float()
            losses = distillation_loss(output.start_logits.float(), output.end_logits.float(), t_start.to(device),
                                       t_end.to(device),
                                       torch.as_tensor(starts[batch], device=device),
                                       torch.as_tensor(ends[batch], device=device), temperature=temperature,
                                       alpha=alpha, mask=mask)
            total = losses["total"]
            attention = torch.zeros(())
            if attention_weight > 0:
                with torch.no_grad(), eager_attention(teacher_model), autocast:
                    teacher_attention = teacher_model(**inputs, output_attentions=True).attentions[-1]
                attention = attention_loss(output.attentions[-1].float(), teacher_attention.float(), mask)
                total = total + attention_weight * attention
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(student_model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            seconds += time.perf_counter() - started
            log.append({"step": step, "epoch": epoch, "windows": len(batch), "total": total.item(),
                        "soft": losses["soft"].item() if targets is not None else float("nan"),
                        "hard": losses["hard"].item(), "attention": attention.item(),
                        "learning_rate": float(schedule.get_last_lr()[0]), "seconds": seconds})
            bar.update(1)
            if step % every == 0 or step == total_steps:
                save_checkpoint()
            if _stop_after is not None and step >= _stop_after:  # tests: an interruption at a known step
                raise KeyboardInterrupt
    bar.close()
    student_model.eval()
    student_model.save_pretrained(out)
    student_tokenizer.save_pretrained(out)
    log_frame = pd.DataFrame(log)
    log_frame.to_parquet(out / "training_log.parquet", index=False)
    # a distilled student writes training.json too, so a teacher that was itself distilled is covered
    trained = sorted(set(table["title"]) | set(training_record(teacher).get("trained_on_titles") or []))
    info = {
        "identity": identity,
        "teacher": teacher_identity.get("model"),
        "data": str(table.attrs.get("source", data)),
        "trained_on_titles": trained,
        "trained_on_questions": int(len(table)),
        "device": run_device,
        "windows": len(windows),
        "steps": step,
        "training_seconds": round(seconds, 2),
        "windows_per_second": round(float(log_frame["windows"].sum()) / seconds, 2) if seconds else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # tools that flag runs over trained-on articles read this (see xdanalysis.runs.training_overlap)
    _write_json(out / "training.json", {"trained_on_titles": trained, "made_by": "xdanalysis distill"}, indent=2)
    run = None
    if eval_data is None and (titles or exclude_titles):
        # the articles the title selection left out (not those a limit cut off), never one trained on
        from .data import _title_list

        eval_data = data
        eval_titles = eval_titles or _title_list(exclude_titles) or [
            t for t in dict.fromkeys(load_squad(data)["title"]) if t not in set(_title_list(titles))]
    if eval_data is not None:
        run = predict_run(out, eval_data, out / "eval-run", titles=eval_titles, limit=eval_limit, progress=progress,
                          device=run_device)
        info["eval_run"] = "eval-run"  # inside the student's directory
        info["eval_titles"] = list(eval_titles) if eval_titles else None
    _write_json(out / "distill.json", info, indent=2)
    checkpoint.unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)
    return Distilled(out, info, log_frame, run)


# The lab's students, shared by the notebooks --------------------------------------------------

def default_precision() -> str:
    """``"bfloat16"`` where bf16 arithmetic is fast (a CUDA GPU; a CPU with AVX512-BF16 or AMX),
    else ``"float32"``: bf16 autocast on a CPU without them is slower than fp32.

    >>> default_precision() in ("float32", "bfloat16")
    True
    """
    from .inference import resolve_device, resolve_dtype

    return resolve_dtype("auto", resolve_device("auto"))


LAB_STUDENTS = {"hard labels": {"alpha": 0.0},
                "soft targets": {"alpha": 0.7, "temperature": 2.0},
                "soft + attention": {"alpha": 0.7, "temperature": 2.0, "attention_weight": 1.0}}


def lab_student(name: str, teacher, data, *, runs, held_out, train_limit: int | None = 2000,
                steps: int | None = None, student_layers=(0, 2, 4), precision: str | None = None,
                progress: bool = True) -> Distilled:
    """One of the distillation lab's students (``LAB_STUDENTS``), trained on the teacher's data
    without the ``held_out`` articles and evaluated on them; cached under ``runs/students/``, so
    notebook 05 and notebook 04 (its offline student) share it. ``precision`` defaults to
    :func:`default_precision` (bf16 autocast where the hardware runs it fast).

    Example::

        soft = lab_student("soft targets", "../shared/models/minilm-l6-squad2-demo",
                           "../shared/data/squad-v2-dev-half.json", runs="runs",
                           held_out=["French_and_Indian_War", "Force"])
    """
    if name not in LAB_STUDENTS:
        raise ValueError(f"unknown lab student {name!r}; use one of {list(LAB_STUDENTS)}")
    if not held_out:
        raise ValueError("the lab evaluates on held-out articles: name the articles to hold out from training "
                         "(XDANALYSIS_TITLES / held_out=[...]); without them it would score students on their own "
                         "training questions")
    precision = precision or default_precision()
    tag = (f"layers{'-'.join(str(i) for i in student_layers)}-limit{train_limit}-steps{steps or 'epoch'}"
           f"-{precision}")
    return distill(teacher, data, Path(runs) / "students" / f"{name.replace(' ', '-').replace('+', 'and')}-{tag}",
                   exclude_titles=held_out, limit=train_limit, max_steps=steps, eval_data=data, eval_titles=held_out,
                   student_layers=student_layers, cache_dir=Path(runs) / "teacher-logits", precision=precision,
                   progress=progress, **LAB_STUDENTS[name])


# What temperature does ------------------------------------------------------------------------

def soft_target_entropy(model, tokenizer, table: pd.DataFrame, temperatures=(0.5, 1, 2, 4, 8), *,
                        max_seq_length: int = DISTILL_DEFAULTS["max_seq_length"],
                        doc_stride: int = DISTILL_DEFAULTS["doc_stride"]) -> pd.DataFrame:
    """How soft a model's start distributions are at each temperature, over ``table``'s windows:
    mean entropy (nats, over each window's real tokens) and mean probability of the null
    ([CLS]) position, answerable and unanswerable questions apart.

    Example::

        soft_target_entropy(teacher, tokenizer, run.table.head(50))
    """
    windows = prepare_windows(table, tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride)
    outputs = []
    for batch in length_batches(windows.lengths(), 32):
        outputs += list(zip(batch, forward_windows(model, windows, batch)))
    has_answer = np.array([len(t) > 0 for t in table["answer_texts"]])
    rows = []
    for temperature in temperatures:
        for w, out in outputs:
            z = out.start_logits.astype(np.float64) / temperature
            p = np.exp(z - z.max())
            p /= p.sum()
            rows.append({"temperature": float(temperature), "answerable": bool(has_answer[windows.question_index[w]]),
                         "entropy": float(-(p * np.log(np.maximum(p, 1e-300))).sum()),
                         "null_probability": float(p[windows.cls_index[w]]), "tokens": len(p)})
    frame = pd.DataFrame(rows)
    return frame.groupby(["temperature", "answerable"], as_index=False).agg(
        entropy=("entropy", "mean"), null_probability=("null_probability", "mean"), windows=("entropy", "size"),
        max_entropy=("tokens", lambda n: float(np.mean(np.log(n)))))


def soft_gradient_scale(student_logits, teacher_logits, temperatures=(1, 2, 4, 8)) -> pd.DataFrame:
    """Why the soft term is multiplied by T²: the norm of its gradient with respect to the
    student's logits, with and without the T² factor, at each temperature (the gradient of the
    KL at T shrinks as 1/T² for large T; the factor restores it). ``*_logits``: ``[windows, tokens]``.

    >>> frame = soft_gradient_scale(np.array([[1.0, 2.0, 0.0]]), np.array([[0.0, 3.0, 1.0]]), [1, 8])
    >>> bool(frame["without T²"].iloc[1] < frame["without T²"].iloc[0])
    True
    """
    import torch

    teacher = torch.as_tensor(np.asarray(teacher_logits, dtype=np.float64))
    rows = []
    for temperature in temperatures:
        student = torch.as_tensor(np.asarray(student_logits, dtype=np.float64)).clone().requires_grad_(True)
        loss = distillation_loss(student, student.detach(), teacher, teacher.detach(),
                                 torch.zeros(len(teacher), dtype=torch.long), torch.zeros(len(teacher), dtype=torch.long),
                                 temperature=float(temperature), alpha=1.0)["soft"] * 2  # the start term alone
        (gradient,) = torch.autograd.grad(loss, student)
        norm = float(gradient.norm())
        rows.append({"temperature": float(temperature), "without T²": norm, "with T²": norm * temperature**2})
    return pd.DataFrame(rows)


def plot_learning_curves(logs: dict, ax=None, window: int = 10):
    """Each student's losses against the step (rolling mean over ``window`` steps): total (solid),
    soft (dashed), hard (dotted), attention (dash-dot) where present."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    styles = {"total": "-", "soft": "--", "hard": ":", "attention": "-."}
    for k, (label, log) in enumerate(logs.items()):
        color = f"C{k}"
        for term, style in styles.items():
            if term not in log or (log[term].fillna(0) == 0).all():
                continue
            ax.plot(log["step"], log[term].rolling(window, min_periods=1).mean(), style, color=color,
                    label=f"{label}: {term}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (rolling mean of {window} steps)")
    ax.set_title("Learning curves: total —, soft targets – –, hard labels ···, attention –·")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_entropy(frame: pd.DataFrame, axes=None):
    """Soft-target entropy and the null position's probability against the temperature."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for answerable, color in ((True, "#4c72b0"), (False, "#c44e52")):
        part = frame[frame["answerable"] == answerable]
        label = f"{'answerable' if answerable else 'unanswerable'} (n={int(part['windows'].iloc[0])} windows)"
        axes[0].plot(part["temperature"], part["entropy"], "o-", color=color, label=label)
        axes[1].plot(part["temperature"], part["null_probability"], "o-", color=color, label=label)
    axes[0].plot(frame["temperature"].unique(), frame.groupby("temperature")["max_entropy"].mean(), "k:",
                 label="uniform over the window (maximum)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("temperature T")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("entropy of the start distribution (nats)")
    axes[0].set_title("Softer targets as T grows")
    axes[1].set_ylabel("probability of the null ([CLS]) position")
    axes[1].set_title("How much of the target says 'no answer'")
    return axes


def plot_gradient_scale(frame: pd.DataFrame, ax=None):
    """Gradient norm of the soft term against T, with and without the T² factor."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(frame["temperature"], frame["without T²"], "o-", label="KL at T alone")
    ax.plot(frame["temperature"], frame["with T²"], "s-", label="T² · KL at T (the loss used)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("gradient norm w.r.t. the student's logits")
    ax.set_title("Why the soft term is scaled by T²")
    ax.legend(fontsize=8)
    return ax
