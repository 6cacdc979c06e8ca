"""The distillation lab's students, distilled on first use and cached."""

from __future__ import annotations

from pathlib import Path

from .config import DistillConfig, Distilled, default_precision
from .train import distill

__all__ = ['LAB_STUDENTS', 'lab_student']


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
    config = DistillConfig(max_steps=steps, precision=precision, **LAB_STUDENTS[name])
    return distill(teacher, data, Path(runs) / "students" / f"{name.replace(' ', '-').replace('+', 'and')}-{tag}",
                   config=config, exclude_titles=held_out, limit=train_limit, eval_data=data, eval_titles=held_out,
                   student_layers=student_layers, cache_dir=Path(runs) / "teacher-logits", progress=progress)
