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
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from ..core.common import check_choice, is_reference
from ..core.data import load_squad, source_fingerprint
from ..core.io import write_atomic
from ..core.settings import WindowSettings
from ..model.forward import batch_tensors, eager_attention
from ..model.windows import prepare_windows
from .config import DISTILL_DEFAULTS, Distilled
from .losses import attention_loss, distillation_loss
from .students import _load, cut_layers
from .targets import epoch_batches, window_labels
from .teacher import _NO_MASS, _same_tokenizer, teacher_logits

__all__ = ['distill']


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

    from ..core.io import peak_rss_mb, write_json
    from ..model.loading import model_identity, training_record
    from ..runs.run import predict_run

    out = Path(out)
    if epochs < 1 or batch_size < 1 or (max_steps is not None and max_steps < 1):
        raise ValueError(f"epochs, batch_size and max_steps must be at least 1, got {epochs}, {batch_size}, {max_steps}")
    if attention_weight < 0:
        raise ValueError(f"attention_weight must be 0 or more, got {attention_weight}")
    check_choice("precision", precision, ["float32", "bfloat16"])
    table = load_squad(data, titles=titles, exclude_titles=exclude_titles, limit=limit)
    torch.manual_seed(seed)  # before the student exists: a freshly initialised QA head is seeded too
    from ..model.device import resolve_device

    run_device = resolve_device(device)
    teacher_model, teacher_tokenizer = _load(teacher, device=run_device)
    if student is not None:
        student_model, student_tokenizer = _load(student, allow_random_head=True, device=run_device)
        init = {"student": os.fspath(student) if is_reference(student) else "in-memory"}
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
    teacher_identity = model_identity(teacher if is_reference(teacher) else (teacher_model, None))
    identity = {"teacher": teacher_identity, "data_fingerprint": source_fingerprint(table), **settings}
    if (out / "distill.json").exists():
        info = json.loads((out / "distill.json").read_text(encoding="utf-8"))
        if info.get("identity") != identity:
            raise ValueError(f"{out} holds a student made with other settings; choose another --out")
        from ..runs.run import load_run

        run = load_run(out / info["eval_run"]) if info.get("eval_run") and (out / info["eval_run"]).exists() else None
        return Distilled(out, info, pd.read_parquet(out / "training_log.parquet"), run)

    windows = prepare_windows(table, student_tokenizer, WindowSettings(max_seq_length, doc_stride))
    starts, ends = window_labels(table, windows)
    targets = None
    if alpha > 0:
        targets = teacher_logits(teacher_model, teacher_tokenizer, table, windows, student_tokenizer,
                                 cache_dir=cache_dir or out.parent / "teacher-logits", teacher_identity=teacher_identity,
                                 settings={"max_seq_length": max_seq_length, "doc_stride": doc_stride},
                                 progress=progress, engine=engine, device=run_device, ray_address=ray_address,
                                 workers=workers,
                                 teacher_path=teacher if is_reference(teacher) else None)

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
    write_json(state_file, identity, indent=2)
    every = checkpoint_every or steps_per_epoch

    def save_checkpoint():
        state = {"model": student_model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "torch_rng": torch.get_rng_state(), "step": step, "log": log,
                 "seconds": seconds}
        write_atomic(checkpoint, lambda tmp: torch.save(state, tmp))

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
    write_atomic(out / "training_log.parquet", lambda tmp: log_frame.to_parquet(tmp, index=False))
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
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # tools that flag runs over trained-on articles read this (see xdanalysis.model.loading.training_overlap)
    write_json(out / "training.json", {"trained_on_titles": trained, "made_by": "xdanalysis distill"}, indent=2)
    run = None
    if eval_data is None and (titles or exclude_titles):
        # the articles the title selection left out (not those a limit cut off), never one trained on
        from ..core.data import title_list

        eval_data = data
        eval_titles = eval_titles or title_list(exclude_titles) or [
            t for t in dict.fromkeys(load_squad(data)["title"]) if t not in set(title_list(titles))]
    if eval_data is not None:
        run = predict_run(out, eval_data, out / "eval-run", titles=eval_titles, limit=eval_limit, progress=progress,
                          device=run_device)
        info["eval_run"] = "eval-run"  # inside the student's directory
        info["eval_titles"] = list(eval_titles) if eval_titles else None
    write_json(out / "distill.json", info, indent=2)
    checkpoint.unlink(missing_ok=True)
    state_file.unlink(missing_ok=True)
    return Distilled(out, info, log_frame, run)
