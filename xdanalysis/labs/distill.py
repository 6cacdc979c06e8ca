"""The distillation lab: students trained under one recipe, their null threshold re-fitted on training
articles, evaluated on held-out ones, cached, and recorded in ``lab_results.json``."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.common import is_reference
from ..core.data import Selection, disjoint_samples, load_squad
from ..core.io import write_json
from ..core.settings import DecodingSettings, Execution
from ..core.thresholds import answered_at, best_f1_threshold, scores_at, span_scores
from ..distill.config import DistillConfig, Distilled, default_precision
from ..distill.train import distill

__all__ = ['LAB_RESULTS', 'LAB_STUDENTS', 'NAIVE_RECIPE', 'LabRecipe', 'lab_checkpoints', 'lab_questions',
           'lab_results_table', 'lab_scores', 'lab_student', 'lab_table', 'read_lab_results']


# How each lab student learns; the rest of its recipe is the LabRecipe's.
LAB_STUDENTS = {"hard labels": {"alpha": 0.0},
                "soft targets": {"alpha": 0.7, "temperature": 2.0},
                "soft + attention": {"alpha": 0.7, "temperature": 2.0, "attention_weight": 1.0}}

LAB_RESULTS = "lab_results.json"  # in the lab's runs directory


@dataclass(frozen=True)
class LabRecipe:
    """What every lab student is trained with, drawn from the training articles only (seeded, no
    question in two roles): ``labelled`` questions with their gold; ``transfer`` more questions
    labelled only by the teacher (XtremeDistil's transfer data; used by students with soft targets,
    a hard-label student cannot use them); ``fit`` questions, trained on by none, on which each
    student's null threshold is re-fitted (``refit_threshold``; else it keeps the teacher's 0).
    The budget is ``windows`` training windows seen (the same for every student, whatever its data),
    at ``learning_rate``; ``layers`` are the teacher layers the student starts from.

    >>> LabRecipe(labelled=0)
    Traceback (most recent call last):
    ...
    ValueError: labelled must be a whole number above 0, got 0
    """

    labelled: int = 300
    transfer: int = 1200
    fit: int = 400
    windows: int = 1000
    learning_rate: float = 5e-4
    refit_threshold: bool = True
    layers: tuple = (0, 2, 4)
    seed: int = 0

    def __post_init__(self):
        for name in ("labelled", "windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a whole number above 0, got {value!r}")
        for name in ("transfer", "fit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number, 0 or more, got {value!r}")
        if self.refit_threshold and self.fit == 0:
            raise ValueError("refit_threshold needs fit questions (fit > 0)")
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    def as_dict(self) -> dict:
        return {**asdict(self), "layers": list(self.layers)}


# The lab before its cure (its students at threshold 0): many labelled questions, no transfer data, lr 1e-4.
NAIVE_RECIPE = LabRecipe(labelled=2000, transfer=0, fit=400, windows=2400, learning_rate=1e-4)


def lab_student(name: str, teacher, data, *, runs, held_out, recipe: LabRecipe = LabRecipe(),
                precision: str | None = None, progress: bool = True) -> Distilled:
    """One of the lab's students (``LAB_STUDENTS``) under ``recipe``: trained on the teacher's data
    without the ``held_out`` articles, its null threshold re-fitted on the recipe's ``fit`` questions,
    evaluated on the held-out articles at that threshold (``.run``); cached under ``runs/students/``
    (notebooks 04, 05 and 09 share it) and recorded in ``runs/lab_results.json``. ``.info["lab"]``
    holds the recipe, the threshold and :func:`lab_scores`. ``precision`` defaults to
    :func:`default_precision`.

    Example::

        soft = lab_student("soft targets", "../shared/models/minilm-l6-squad2-demo",
                           "../shared/data/squad-v2-dev-half.json", runs="runs",
                           held_out=["French_and_Indian_War", "Force"])
        soft.info["lab"]["scores"]["HasAns_f1"]
    """
    from ..runs.run import predict_run

    if name not in LAB_STUDENTS:
        raise ValueError(f"unknown lab student {name!r}; use one of {list(LAB_STUDENTS)}")
    if not held_out:
        raise ValueError("the lab evaluates on held-out articles: name the articles to hold out from training "
                         "(XDANALYSIS_TITLES / held_out=[...]); without them it would score students on their own "
                         "training questions")
    precision = precision or default_precision()
    soft = LAB_STUDENTS[name].get("alpha", 0) > 0
    recipe = recipe if soft else replace(recipe, transfer=0)  # hard labels cannot use teacher-labelled questions
    samples = lab_questions(data, held_out, recipe)
    config = _config(name, recipe, precision)
    runs = Path(runs).expanduser()
    out = runs / "students" / _folder(name, recipe, precision, teacher=teacher, samples=samples)
    made = distill(teacher, samples["labelled"], out, config=config, transfer=samples.get("transfer"),
                   evaluate=False, student=recipe.layers, cache_dir=runs / "teacher-logits",
                   execution=Execution(progress=progress))
    threshold = 0.0
    if recipe.refit_threshold:
        with warnings.catch_warnings():  # the student trained on these articles, not on these questions
            warnings.filterwarnings("ignore", message=".*from articles the model was trained on")
            fitted = predict_run(made.path, samples["fit"], made.path / "fit-run",
                                 execution=Execution(progress="fit questions" if progress else False))
        threshold = _refitted(fitted.table)
    made.run = predict_run(made.path, data, made.path / "eval-run", selection=Selection(titles=held_out),
                           decoding=DecodingSettings(null_score_diff_threshold=threshold),
                           execution=Execution(progress=progress))
    made.info["lab"] = {"name": name, "recipe": {**recipe.as_dict(), **LAB_STUDENTS[name]}, "threshold": threshold,
                        "scores": lab_scores(made.run)}
    _record(runs / LAB_RESULTS, made)
    return made


def lab_scores(run) -> dict:
    """A lab student's held-out figures: the official EM/F1 (overall, HasAns, NoAns) at its own
    threshold, the same at the teacher's threshold 0 (``at_zero``, with the share answered there), the
    share of questions it answers, and ``forced_HasAns_f1``, the answerable questions' F1 when it must
    give its best span (what it learned about spans, whatever its null decision)."""
    table = run.table
    odds = table["null_odds"].to_numpy(dtype=float)
    has = table["has_answer"].to_numpy(dtype=bool)
    exact, f1 = span_scores(table)
    official = run.scores(with_na_probs=False)
    scores = {key: float(official[key]) for key in ("exact", "f1", "HasAns_f1", "NoAns_f1", "total")
              if key in official}
    at_zero = {metric: scores_at([0.0], odds, span, has)[0] for metric, span in (("exact", exact), ("f1", f1))}
    answered = answered_at([0.0], odds)[0]
    scores["at_zero"] = {"exact": 100 * float(at_zero["exact"].mean()), "f1": 100 * float(at_zero["f1"].mean()),
                         "HasAns_f1": 100 * float(at_zero["f1"][has].mean()) if has.any() else None,
                         "NoAns_f1": 100 * float(at_zero["f1"][~has].mean()) if (~has).any() else None,
                         "answered": float(answered.mean())}
    scores["answered"] = float((table["answer"] != "").mean())
    scores["forced_HasAns_f1"] = 100 * float(f1[has].mean()) if has.any() else None
    return scores


def lab_questions(data, held_out, recipe: LabRecipe) -> dict:
    """The recipe's disjoint question tables from the training articles (all but ``held_out``):
    ``labelled``, ``fit`` and, when the recipe has any, ``transfer`` (drawn in that order, so students
    with and without transfer data share their labelled and fit questions)."""
    training = load_squad(data, exclude_titles=held_out)
    samples = disjoint_samples(training, {"labelled": recipe.labelled, "fit": recipe.fit,
                                          "transfer": recipe.transfer}, seed=recipe.seed)
    if recipe.transfer == 0:
        samples.pop("transfer")
    return samples


def _config(name: str, recipe: LabRecipe, precision: str) -> DistillConfig:
    """The distillation settings of ``name`` under ``recipe``: enough epochs to see ``recipe.windows``."""
    steps = math.ceil(recipe.windows / DistillConfig.batch_size)
    return DistillConfig(max_steps=steps, epochs=max(1, steps), learning_rate=recipe.learning_rate,
                         seed=recipe.seed, precision=precision, **LAB_STUDENTS[name])


def _folder(name: str, recipe: LabRecipe, precision: str, *, teacher, samples: dict) -> str:
    """The student's folder: its name and layers to read, and a hash of everything that makes it (the
    recipe, the precision, the teacher's weights and the questions it learns from), so that one ``runs/``
    holds the labs of several teachers or datasets side by side."""
    from ..core.data import source_fingerprint
    from ..model.loading import model_identity

    made_from = {"name": name, "recipe": recipe.as_dict(), "precision": precision,
                 "teacher": model_identity(teacher)["model_fingerprint"] if is_reference(teacher) else str(teacher),
                 "questions": {role: source_fingerprint(table) for role, table in sorted(samples.items())}}
    key = json.dumps(made_from, sort_keys=True)
    slug = name.replace(" ", "-").replace("+", "and")
    return f"{slug}-layers{'-'.join(map(str, recipe.layers))}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _refitted(table) -> float:
    """The F1-best null-odds threshold on the fit questions, kept finite (a run's threshold is a number)."""
    odds = table["null_odds"].to_numpy(dtype=float)
    _, f1 = span_scores(table)
    threshold = best_f1_threshold(odds, f1, table["has_answer"].to_numpy(dtype=bool))
    finite = odds[np.isfinite(odds)]
    if math.isinf(threshold):
        threshold = float(finite.max() + 1 if threshold > 0 else finite.min() - 1) if len(finite) else 0.0
    return float(threshold)


def _record(file: Path, made: Distilled) -> None:
    """Add (or replace) this student's entry in the lab's ``lab_results.json``; paths relative to it. A
    damaged record is kept aside (``lab_results.json.damaged``, with a warning) and a new one started."""
    students = read_lab_results(file, keep_damaged=True)
    checkpoint = made.path.relative_to(file.parent).as_posix() if made.path.is_relative_to(file.parent) \
        else str(made.path.resolve())
    entry = {"name": made.info["lab"]["name"], "recipe": made.info["lab"]["recipe"], "checkpoint": checkpoint,
             "eval_run": f"{checkpoint}/{made.run.path.name}", "windows": int(made.log["windows"].sum()),
             "seconds": made.info["training_seconds"], "teacher_logits": made.info.get("teacher_logits"),
             "threshold": made.info["lab"]["threshold"],
             "scores": made.info["lab"]["scores"]}
    students = [s for s in students if s.get("checkpoint") != checkpoint] + [entry]
    write_json(file, {"students": students}, indent=2)


# What each student entry of lab_results.json must hold to be read.
_ENTRY_KEYS = {"name": str, "recipe": dict, "checkpoint": str}


def read_lab_results(file, *, keep_damaged: bool = False) -> list:
    """The student entries of a lab's ``lab_results.json`` (``[]`` when there is none). A file that is not
    JSON or has no ``students`` list is damaged: a warning names it and no entry is read (with
    ``keep_damaged`` it is moved aside to ``.damaged``, losing nothing); an entry without its name, recipe
    or checkpoint is left out with a warning naming it."""
    file = Path(file).expanduser()
    if not file.exists():
        return []
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
        students = payload["students"]
        if not isinstance(students, list):
            raise TypeError("'students' is not a list")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        aside = file.with_name(file.name + ".damaged")
        if keep_damaged:
            file.replace(aside)
        warnings.warn(f"{file}: damaged ({type(exc).__name__}: {exc}); no student read from it"
                      + (f" (kept as {aside.name}; a new record is started)" if keep_damaged else ""), stacklevel=3)
        return []
    sound = [s for s in students
             if isinstance(s, dict) and all(isinstance(s.get(k), t) for k, t in _ENTRY_KEYS.items())]
    if len(sound) < len(students):
        warnings.warn(f"{file}: {len(students) - len(sound)} student entr(ies) without a name, recipe or checkpoint "
                      "left out", stacklevel=3)
    return sound


def lab_results_table(runs) -> pd.DataFrame:
    """Every student the lab recorded in ``runs``' ``lab_results.json`` (:func:`read_lab_results`), one row
    each: its name, layers, training windows and seconds, threshold, the F1 recorded and the F1 read back
    from its evaluation run (they agree unless a file changed), and its checkpoint (an absolute path)."""
    from ..runs.run import load_run

    folder = Path(runs).expanduser()
    rows = [{"name": e["name"], "layers": ",".join(map(str, e["recipe"].get("layers", []))), "windows": e.get("windows"),
             "training s": e.get("seconds"), "threshold": e.get("threshold"),
             "F1 recorded": e.get("scores", {}).get("f1"),
             "F1 from its run": load_run(folder / e["eval_run"]).scores()["f1"] if e.get("eval_run") else np.nan,
             "checkpoint": str((folder / e["checkpoint"]).resolve())} for e in read_lab_results(folder / LAB_RESULTS)]
    return pd.DataFrame(rows, columns=["name", "layers", "windows", "training s", "threshold", "F1 recorded",
                                       "F1 from its run", "checkpoint"])


def lab_checkpoints(runs, *, teacher=None) -> dict:
    """``{"soft targets (layers 0,2,4)": checkpoint, ...}``: the students the lab recorded in
    ``runs/lab_results.json`` whose checkpoint is still there, only those distilled from ``teacher``
    when it is given (a local path, compared resolved); ``{}`` when the lab has not run."""
    file = Path(runs).expanduser() / LAB_RESULTS
    found = {}
    for student in read_lab_results(file):
        checkpoint = file.parent / student["checkpoint"]
        record = checkpoint / "distill.json"
        if not record.exists():
            continue
        try:
            made_from = json.loads(record.read_text(encoding="utf-8")).get("teacher")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue  # a student whose own record is damaged is not offered
        if teacher is not None and Path(str(made_from)).expanduser().resolve() != Path(str(teacher)).expanduser().resolve():
            continue
        layers = ",".join(str(i) for i in student["recipe"].get("layers", []))
        found[f"{student['name']} (layers {layers})"] = str(checkpoint)
    return found


def lab_table(students: dict) -> pd.DataFrame:
    """One row per lab student (``{name: Distilled}`` from :func:`lab_student`) and threshold (the
    teacher's 0, then the student's re-fitted one): the threshold, overall / answerable F1, unanswerable
    accuracy (NoAns F1), the share answered (%), and the answerable F1 when forced to answer."""
    rows = []
    for name, made in students.items():
        lab = made.info["lab"]
        scores = lab["scores"]
        for label, figures, threshold in (("teacher's 0", scores["at_zero"], 0.0),
                                          ("re-fitted", scores, lab["threshold"])):
            rows.append({"student": name, "threshold": label, "null-odds threshold": threshold,
                         "F1": figures["f1"], "HasAns F1": figures["HasAns_f1"], "NoAns F1": figures["NoAns_f1"],
                         "answered (%)": 100 * figures["answered"], "forced HasAns F1": scores["forced_HasAns_f1"]})
    return pd.DataFrame(rows)
