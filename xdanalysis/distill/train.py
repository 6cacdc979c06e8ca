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

The student is a normal Hugging Face checkpoint that :func:`xdanalysis.runs.run.predict_run` loads.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.common import is_reference, progress_bar
from ..core.data import Selection, load_squad, source_fingerprint
from ..core.io import file_checksum, write_atomic, write_json
from ..core.settings import Execution
from ..model.checkpoint import save_checkpoint
from ..model.forward import batch_tensors, eager_attention
from ..model.windows import prepare_windows, window_labels
from ..runs.store import locked, refuse_foreign
from .config import DistillConfig, Distilled
from .losses import attention_loss, distillation_loss
from .students import _load, cut_layers
from .targets import epoch_batches
from .teacher import _NO_MASS, _same_tokenizer, teacher_logits

__all__ = ['distill']


# The teacher layers a student keeps when none are named.
DEFAULT_LAYERS = (0, 2, 4)

# The files that mark a directory as a student's (written before anything else of a distillation).
STUDENT_MARKERS = ("distill.json", "distill-progress.json")


def distill(teacher, data, out, *, config: DistillConfig = DistillConfig(), student=None,
            selection: Selection = Selection(), transfer=None, evaluate=True, execution: Execution = Execution(),
            cache_dir=None, _stop_after: int | None = None) -> Distilled:
    """Train a student from ``teacher`` on ``data`` as ``config`` says and save it in ``out``; resume
    when ``out`` holds an unfinished training with the same settings, reuse it when finished.

    - ``student``: the teacher layers to keep (a list of indices; default 0, 2, 4: the teacher's
      embeddings, head and those layers) or a checkpoint to start from (a plain encoder is fine, its QA
      head is trained).
    - ``config``: a :class:`DistillConfig` (soft-target temperature and alpha, attention transfer,
      schedule, windows, seed, precision).
    - ``data``: a SQuAD source and its ``selection``, or a question table.
    - ``transfer`` (a source or a table, optional): more questions whose gold is not used, labelled only
      by the teacher (alpha 1 on their windows; the transfer data of XtremeDistil); needs ``config.alpha > 0``.
    - ``evaluate``: True predicts the student into ``out/eval-run`` over the articles the selection left
      out (when it chose some); a :class:`~xdanalysis.core.data.Selection` of ``data``, or a
      ``(source, Selection)`` pair, evaluates there instead; False skips it.
    - ``execution``: where the teacher and the student run (its device, recorded in ``distill.json`` as
      provenance, not identity), the engine of the teacher-logit pass (``ray``: Ray Data actors, the same
      cache files) and the progress bars. Training precision is ``config.precision``.
    - ``cache_dir``: the teacher-logit cache (default ``out/../teacher-logits``), shared by every student
      of the same teacher and data.

    Example::

        result = distill("../shared/models/minilm-l6-squad2-demo", "../shared/data/squad-v2-dev-half.json",
                         "runs/students/soft", config=DistillConfig(alpha=0.7, max_steps=200),
                         selection=Selection(exclude_titles="French_and_Indian_War,Force"))
        result.run.scores()["f1"]
    """
    import torch

    from ..model.device import resolve_device

    if execution.dtype not in (None, "float32"):
        raise ValueError(f"distill trains float32 weights (dtype {execution.dtype!r} asked for); for bf16 autocast "
                         "set DistillConfig(precision='bfloat16')")
    if execution.runtime != "torch":
        raise ValueError(f"distill trains in PyTorch (gradients; the teacher's soft targets come from the same "
                         f"forward pass): runtime {execution.runtime!r} is for predictions; leave it 'torch'")
    out = Path(out).expanduser()
    refuse_foreign(out, markers=STUDENT_MARKERS, what="a student directory")  # never a teacher's, a run's, yours
    table = selection.load(data)
    transfer = _transfer_table(transfer, table, config)
    torch.manual_seed(config.seed)  # before the student exists: a freshly initialised QA head is seeded too
    execution = replace(execution, device=resolve_device(execution.device or "auto"))
    pair = _Pair.load(teacher, student, device=execution.device, config=config)
    identity = {"teacher": pair.teacher_identity, "data_fingerprint": source_fingerprint(table), **config.recipe(),
                **pair.init}
    if transfer is not None:
        identity["transfer"] = {"questions": len(transfer), "fingerprint": source_fingerprint(transfer)}
    evaluation = _evaluation(data, selection, evaluate)
    with locked(out):  # a second process on the same --out is refused, not raced
        if (out / "distill.json").exists():
            return _finished(out, identity, evaluation, execution=execution)
        cache = Path(cache_dir).expanduser() if cache_dir else out.parent / "teacher-logits"
        return _train_and_record(out, identity, pair, (table, transfer), data, teacher, config, evaluation,
                                 cache_dir=cache, execution=execution, stop_after=_stop_after)


def _train_and_record(out: Path, identity: dict, pair, tables, data, teacher, config: DistillConfig,
                      evaluation, *, cache_dir: Path, execution: Execution, stop_after) -> Distilled:
    table, transfer = tables
    questions = table if transfer is None else pd.concat([table, transfer], ignore_index=True)
    questions.attrs.update(table.attrs)
    windows = prepare_windows(questions, pair.student_tokenizer, config.windowing)
    from_teacher_only = np.asarray(windows.question_index) >= len(table)  # transfer windows: no gold
    alphas = np.where(from_teacher_only, 1.0, config.alpha).astype(np.float32)
    targets, teacher_pass = None, None
    if config.alpha > 0:
        teacher_pass = teacher_logits(teacher, questions, windows, pair.student_tokenizer, cache_dir=cache_dir,
                                      windowing=config.windowing, execution=execution,
                                      loaded=(pair.teacher, pair.teacher_tokenizer))
        targets = teacher_pass.logits
    trainer = _Trainer(pair, windows, window_labels(questions, windows), targets, config, out, alphas=alphas)
    trainer.resume(identity)
    trainer.train(progress=execution.progress, stop_after=stop_after)
    log = trainer.save()
    info = _record(out, identity, pair, questions, data, teacher, trainer, log, device=execution.device)
    info["transfer_windows"] = int(from_teacher_only.sum())
    info["teacher_logits"] = teacher_pass.record() if teacher_pass else None  # cache folder, reused, computed, s
    run = _evaluate(out, info, evaluation, execution=execution)
    write_json(out / "distill.json", info, indent=2)
    trainer.clean_up()
    return Distilled(out, info, log, run)


class _Pair:
    """The teacher and the student, loaded on one device, and how the student was made."""

    @classmethod
    def load(cls, teacher, student, *, device: str, config: DistillConfig) -> "_Pair":
        from ..model.loading import model_identity

        pair = cls()
        pair.teacher, pair.teacher_tokenizer = _load(teacher, device=device)
        student_layers = DEFAULT_LAYERS if student is None else student
        if _is_layer_list(student_layers):
            pair.student, pair.student_tokenizer = cut_layers(pair.teacher, student_layers), pair.teacher_tokenizer
            pair.init = {"student_layers": [int(i) for i in student_layers]}
        else:
            pair.student, pair.student_tokenizer = _load(student, allow_random_head=True, device=device)
            pair.init = {"student": os.fspath(student) if is_reference(student) else "in-memory"}
        from ..model.loading import max_sequence_length

        for role, model in (("teacher", pair.teacher), ("student", pair.student)):
            positions = max_sequence_length(model)
            if positions is not None and config.windowing.max_seq_length > positions:
                raise ValueError(f"max_seq_length {config.windowing.max_seq_length} is longer than the {role} "
                                 f"takes ({positions} positions); use --max-seq-length {positions} or less")
        if config.attention_weight > 0 and not _same_tokenizer(pair.teacher_tokenizer, pair.student_tokenizer):
            raise ValueError("attention transfer (attention_weight > 0) compares attention token by token: the "
                             "teacher and the student must share a tokenizer; they do not here")
        pair.teacher_identity = model_identity(teacher if is_reference(teacher) else (pair.teacher, None))
        return pair


def _transfer_table(transfer, table: pd.DataFrame, config: DistillConfig) -> pd.DataFrame | None:
    """The transfer questions (their gold dropped: only the teacher labels them), checked."""
    if transfer is None:
        return None
    if config.alpha == 0:
        raise ValueError("transfer questions are labelled only by the teacher: they need soft targets (alpha > 0); "
                         "with alpha 0 (hard labels) leave transfer out")
    transfer = transfer if isinstance(transfer, pd.DataFrame) else load_squad(transfer)
    shared = sorted(set(transfer["id"]) & set(table["id"]))
    if shared:
        raise ValueError(f"{len(shared)} transfer questions are also labelled training questions "
                         f"(e.g. {shared[0]!r}); the two sets must not share a question")
    unlabelled = transfer.assign(answer_texts=[[] for _ in range(len(transfer))],
                                 answer_starts=[[] for _ in range(len(transfer))])
    unlabelled.attrs.update(transfer.attrs)
    return unlabelled


def _finished(out: Path, identity: dict, evaluation: dict | None, *, execution: Execution) -> Distilled:
    """The student a finished distillation in ``out`` made, if it was made with these settings, with
    the evaluation asked for now (recomputed when it differs from the one recorded)."""
    from ..runs.run import load_run

    info = json.loads((out / "distill.json").read_text(encoding="utf-8"))
    if info.get("identity") != identity:
        raise ValueError(f"{out} holds a student made with other settings; choose another --out")
    log = pd.read_parquet(out / "training_log.parquet")
    recorded = info.get("evaluation")
    if recorded is None and info.get("eval_run") and evaluation is not None:  # written before evaluations were
        recorded = {**evaluation, "titles": info.get("eval_titles")}      # recorded whole: its titles decide
    if evaluation is not None and recorded != evaluation:
        run = _evaluate(out, info, evaluation, execution=execution, overwrite=True)
        write_json(out / "distill.json", info, indent=2)
        return Distilled(out, info, log, run)
    run = load_run(out / info["eval_run"]) if info.get("eval_run") and (out / info["eval_run"]).exists() else None
    return Distilled(out, info, log, run)


class _Trainer:
    """The training loop: AdamW with 10% warm-up and linear decay, gradient clipping, length-grouped
    seeded batches, checkpoints that resume to the same weights."""

    def __init__(self, pair: _Pair, windows, labels, targets, config: DistillConfig, out: Path, *, alphas):
        import torch

        self.pair, self.windows, self.targets, self.config, self.out = pair, windows, targets, config, out
        self.alphas = alphas
        self.starts, self.ends = labels
        self.steps_per_epoch = math.ceil(len(windows) / config.batch_size)
        epochs_steps = self.steps_per_epoch * config.epochs
        self.total_steps = min(config.max_steps or epochs_steps, epochs_steps)
        self.optimizer = torch.optim.AdamW(pair.student.parameters(), lr=config.learning_rate)
        warmup, total = max(1, self.total_steps // 10), self.total_steps
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
        self.checkpoint, self.state_file = out / "checkpoint.pt", out / "distill-progress.json"
        self.step, self.log, self.seconds = 0, [], 0.0

    def resume(self, identity: dict) -> None:
        """Continue an unfinished training with these settings; mark ``out`` as one in progress. The
        checkpoint is read as data only (``weights_only=True``), and only when its checksum is the one
        recorded when it was written; otherwise the training starts over, with a warning naming it."""
        import torch

        self.out.mkdir(parents=True, exist_ok=True)
        if self.checkpoint.exists() and self.state_file.exists():
            recorded = _read_state(self.state_file)
            if {k: v for k, v in recorded.items() if k != "checkpoint"} != identity:
                raise ValueError(f"{self.out} holds an unfinished training with other settings; choose another --out")
            if recorded.get("checkpoint") == file_checksum(self.checkpoint):
                saved = torch.load(self.checkpoint, weights_only=True,
                                   map_location=next(self.pair.student.parameters()).device)
                self.pair.student.load_state_dict(saved["model"])
                self.optimizer.load_state_dict(saved["optimizer"])
                self.schedule.load_state_dict(saved["schedule"])
                torch.set_rng_state(saved["torch_rng"])
                self.step, self.log, self.seconds = saved["step"], saved["log"], saved["seconds"]
            else:
                warnings.warn(f"{self.checkpoint}: not the checkpoint this training wrote (its checksum differs "
                              f"from the one in {self.state_file.name}); training starts over", stacklevel=3)
        self.identity = identity
        write_json(self.state_file, identity, indent=2)

    def save_checkpoint(self) -> None:
        import torch

        state = {"model": self.pair.student.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "schedule": self.schedule.state_dict(), "torch_rng": torch.get_rng_state(), "step": self.step,
                 "log": self.log, "seconds": self.seconds}
        write_atomic(self.checkpoint, lambda tmp: torch.save(state, tmp))
        write_json(self.state_file, {**self.identity, "checkpoint": file_checksum(self.checkpoint)}, indent=2)

    def train(self, *, progress: bool, stop_after: int | None = None) -> None:

        config, pair = self.config, self.pair
        every = config.checkpoint_every or self.steps_per_epoch
        pair.teacher.eval()
        pair.student.train()
        eager = ExitStack()
        if config.attention_weight > 0:  # attention weights come only from eager attention
            eager.enter_context(eager_attention(pair.student))
            eager.enter_context(eager_attention(pair.teacher))
        with eager, progress_bar(total=self.total_steps, initial=self.step, desc="distil", unit="step",
                                 disable=not progress) as bar:
            while self.step < self.total_steps:
                self.one_step()
                bar.update(1)
                if self.step % every == 0 or self.step == self.total_steps:
                    self.save_checkpoint()
                if stop_after is not None and self.step >= stop_after:  # tests: an interruption at a known step
                    raise KeyboardInterrupt

    def one_step(self) -> None:
        import torch

        config, student = self.config, self.pair.student
        epoch, position = divmod(self.step, self.steps_per_epoch)
        batch = epoch_batches(self.windows.lengths(), batch_size=config.batch_size, seed=config.seed + epoch)[position]
        started = time.perf_counter()
        device = next(student.parameters()).device
        inputs = batch_tensors(self.windows, batch, device=device)
        autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bfloat16")
        with autocast:
            output = student(**inputs, output_attentions=config.attention_weight > 0)
        losses = self.losses(output, inputs, batch, device, autocast)
        self.optimizer.zero_grad()
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        self.seconds += time.perf_counter() - started
        self.log.append({"step": self.step, "epoch": epoch, "windows": len(batch), "total": losses["total"].item(),
                         "soft": losses["soft"].item() if self.targets is not None else float("nan"),
                         "hard": losses["hard"].item(), "attention": losses["attention"].item(),
                         "learning_rate": float(self.schedule.get_last_lr()[0]), "seconds": self.seconds})

    def losses(self, output, inputs, batch, device, autocast) -> dict:
        """The batch's loss terms (:func:`distillation_loss`, plus attention transfer when asked for)."""
        import torch

        config, mask = self.config, inputs["attention_mask"]
        if self.targets is not None:
            t_start = torch.full((len(batch), mask.shape[1]), _NO_MASS)
            t_end = torch.full((len(batch), mask.shape[1]), _NO_MASS)
            for row, w in enumerate(batch):
                n = len(self.targets[w][0])
                t_start[row, :n] = torch.as_tensor(self.targets[w][0])
                t_end[row, :n] = torch.as_tensor(self.targets[w][1])
        else:  # hard labels only: no teacher; the soft term is not computed (logged as NaN)
            t_start, t_end = output.start_logits.detach().float(), output.end_logits.detach().float()
        losses = distillation_loss(output.start_logits.float(), output.end_logits.float(), t_start.to(device),
                                   t_end.to(device), torch.as_tensor(self.starts[batch], device=device),
                                   torch.as_tensor(self.ends[batch], device=device), temperature=config.temperature,
                                   alpha=torch.as_tensor(self.alphas[batch], device=device), mask=mask)
        losses["attention"] = torch.zeros(())
        if config.attention_weight > 0:
            with torch.no_grad(), eager_attention(self.pair.teacher), autocast:
                teacher_attention = self.pair.teacher(**inputs, output_attentions=True).attentions[-1]
            losses["attention"] = attention_loss(output.attentions[-1].float(), teacher_attention.float(), mask)
            losses["total"] = losses["total"] + config.attention_weight * losses["attention"]
        return losses

    def save(self) -> pd.DataFrame:
        """The student and its tokenizer as a normal checkpoint, and the loss log."""
        self.pair.student.eval()
        save_checkpoint(self.pair.student, self.pair.student_tokenizer, self.out)
        log = pd.DataFrame(self.log)
        write_atomic(self.out / "training_log.parquet", lambda tmp: log.to_parquet(tmp, index=False))
        return log

    def clean_up(self) -> None:
        self.checkpoint.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)


def _record(out: Path, identity: dict, pair: _Pair, table, data, teacher, trainer: _Trainer, log, *,
            device: str) -> dict:
    """What ``distill.json`` says; writes ``training.json`` (the articles trained on, so runs over them
    are flagged; a distilled teacher's articles included)."""
    from ..core.io import peak_rss_mb
    from ..model.loading import training_record

    trained = sorted(set(table["title"]) | set(training_record(teacher).get("trained_on_titles") or []))
    seconds = trainer.seconds
    info = {
        "identity": identity,
        "teacher": pair.teacher_identity.get("model"),
        "data": str(table.attrs.get("source", data)),
        "trained_on_titles": trained,
        "trained_on_questions": int(len(table)),
        "device": device,
        "windows": len(trainer.windows),
        "steps": trainer.step,
        "training_seconds": round(seconds, 2),
        "windows_per_second": round(float(log["windows"].sum()) / seconds, 2) if seconds else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # tools that flag runs over trained-on articles read this (see xdanalysis.model.loading.training_overlap)
    write_json(out / "training.json", {"trained_on_titles": trained, "made_by": "xdanalysis distill"}, indent=2)
    return info


def _evaluation(data, selection: Selection, evaluate) -> dict | None:
    """What the student is evaluated on (``distill``'s ``evaluate``): by default the articles the title
    selection left out (not those a limit cut off), never one trained on. None when there is nothing to
    evaluate on, or ``evaluate`` is False."""
    if evaluate is False:
        return None
    if isinstance(evaluate, Selection):
        evaluate = (data, evaluate)
    if isinstance(evaluate, tuple):
        source, chosen = evaluate
        if not isinstance(chosen, Selection):
            raise ValueError(f"evaluate: give True, False, a Selection or a (source, Selection) pair, got {evaluate!r}")
        return {"data": str(source), "titles": list(chosen.titles) if chosen.titles else None, "limit": chosen.limit}
    if evaluate is not True:
        raise ValueError(f"evaluate: give True, False, a Selection or a (source, Selection) pair, got {evaluate!r}")
    if isinstance(data, pd.DataFrame) or not (selection.titles or selection.exclude_titles):
        return None
    titles = selection.exclude_titles or [t for t in dict.fromkeys(load_squad(data)["title"])
                                          if t not in set(selection.titles)]
    return {"data": str(data), "titles": list(titles), "limit": None}


def _evaluate(out: Path, info: dict, evaluation: dict | None, *, execution: Execution, overwrite: bool = False):
    """The student's run over ``evaluation`` into ``out/eval-run``, recorded in ``info``; None when there
    is nothing to evaluate on."""
    from ..runs.run import predict_run

    if evaluation is None:
        return None
    chosen = Selection(titles=evaluation["titles"], limit=evaluation["limit"])
    run = predict_run(out, evaluation["data"], out / "eval-run", selection=chosen, overwrite=overwrite,
                      execution=Execution(device=execution.device, progress=execution.progress))
    info["eval_run"] = "eval-run"  # inside the student's directory
    info["eval_titles"] = evaluation["titles"]
    info["evaluation"] = evaluation
    return run


def _is_layer_list(student) -> bool:
    """``student`` names teacher layers to keep (a list of whole numbers), not a checkpoint."""
    return isinstance(student, (list, tuple, range)) and bool(student) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in student)


def _read_state(file: Path) -> dict:
    """An unfinished training's ``distill-progress.json``; a damaged one names itself."""
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: damaged ({exc}); delete it (the training then starts over) or choose another "
                         "--out") from None
    if not isinstance(state, dict):
        raise ValueError(f"{file}: damaged (not a JSON object); delete it or choose another --out")
    return state

