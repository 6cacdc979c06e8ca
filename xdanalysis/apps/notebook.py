"""Notebook settings from environment variables, with relative paths that work from any folder.

The notebooks read ``XDANALYSIS_MODEL``, ``XDANALYSIS_DATA``, ``XDANALYSIS_LIMIT``,
``XDANALYSIS_TITLES``, ``XDANALYSIS_RUN`` (and ``XDANALYSIS_ENCODER``, ``XDANALYSIS_TEACHER``,
``XDANALYSIS_STUDENT``, ``XDANALYSIS_RUNS``). A relative path is taken relative to the project
root (the folder holding ``pyproject.toml`` and ``notebooks/``), not to the kernel's working
directory (which is ``notebooks/``), so the README's ``export XDANALYSIS_MODEL=../shared/...``
means the same in a shell and in JupyterLab; runs go to the project's ``runs/``, where
``make report`` writes them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.common import rename_options

__all__ = ['LAB_SETTINGS', 'PREFIX', 'STUDENT_RECIPE', 'SettingError', 'Settings', 'WHOLE_NUMBERS', 'explain', 'notebook_settings', 'project_root', 'resolve_path']


PREFIX = "XDANALYSIS_"


# The settings that are whole numbers, each with its smallest sensible value (checked, named when wrong).
WHOLE_NUMBERS = {"LIMIT": 1, "PER_ARTICLE": 1, "LENS_TRAIN": 1, "PAIRS": 1, "LAB_LABELLED": 1, "LAB_TRANSFER": 0,
                 "LAB_FIT": 0, "LAB_WINDOWS": 1, "N_STEPS": 1, "PER_GROUP": 1, "IMPORTANCE_QUESTIONS": 1,
                 "SPEED_QUESTIONS": 1, "ATTRIBUTION_QUESTIONS": 1, "IG_QUESTIONS": 1, "DELETION_QUESTIONS": 1}

# The distillation lab's recipe, as notebook settings: XDANALYSIS_LAB_<NAME> sets LabRecipe's <name>.
LAB_SETTINGS = {"LAB_LABELLED": "labelled", "LAB_TRANSFER": "transfer", "LAB_FIT": "fit", "LAB_WINDOWS": "windows"}


# Offline there is one trained QA model in ../shared: how to get a student from it (said on screen).
STUDENT_RECIPE = (
    "Offline, point the notebook at the shared demo model as the teacher and leave the student unset: a student "
    "is distilled from it (notebook 05's soft-target student; cached), from the project root:\n"
    "  export XDANALYSIS_TEACHER=../shared/models/minilm-l6-squad2-demo "
    "XDANALYSIS_DATA=../shared/data/squad-v2-dev-half.json\n"
    "or distil one yourself: .venv/bin/xdanalysis distill --teacher ../shared/models/minilm-l6-squad2-demo "
    "--data ../shared/data/squad-v2-dev-half.json --exclude-titles French_and_Indian_War,Force --limit 2000 "
    "--out runs/students/mine, then export XDANALYSIS_STUDENT=runs/students/mine")


class SettingError(ValueError):
    """An environment setting that cannot be used; names the variable and the folders tried."""


def project_root(start=None) -> Path:
    """The project's root: the nearest folder at or above ``start`` (default: the working
    directory, then this package's folder) holding ``pyproject.toml`` and ``notebooks/``."""
    candidates = [Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent]
    for origin in candidates:
        for folder in (origin, *origin.parents):
            if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
                return folder
    return Path(os.getcwd()).resolve()


def _looks_local(value: str) -> bool:
    return value.startswith((".", os.sep, "~")) or value.count("/") > 1 or Path(value).suffix in {
        ".json", ".jsonl", ".parquet"}


def resolve_path(value: str, variable: str, root: Path | None = None) -> str:
    """``value`` as given when it is a Hub name or an absolute path; a relative path resolved
    against the project root (or, failing that, the working directory). A local path found in
    neither raises :class:`SettingError` naming the variable and both folders.

    >>> resolve_path("squad_v2", "XDANALYSIS_DATA")
    'squad_v2'
    """
    value = os.path.expanduser(str(value))
    if not _looks_local(value) or os.path.isabs(value):
        if _looks_local(value) and not os.path.exists(value):
            raise SettingError(f"{variable}={value}: no such file or directory")
        return value
    root = root or project_root()
    for base in (root, Path(os.getcwd())):
        candidate = (base / value).resolve()
        if candidate.exists():
            return str(candidate)
    raise SettingError(f"{variable}={value}: no such file or directory relative to the project root {root} "
                       f"(nor to the working directory {os.getcwd()}); relative paths are read from the project root")


@dataclass
class Settings:
    """What a notebook runs on; shows itself as a table, with the notes that matter."""

    values: dict
    sources: dict
    notes: list = field(default_factory=list)

    def __getitem__(self, name: str):
        return self.values[name]

    def option_names(self, model_variable: str = "MODEL") -> dict:
        """The CLI options' names as this notebook's variables, for error messages."""
        return {"--model": f"{PREFIX}{model_variable}=", "--data": f"{PREFIX}DATA=", "--limit": f"{PREFIX}LIMIT=",
                "--titles": f"{PREFIX}TITLES=", "--out": f"{PREFIX}RUN=", "--overwrite": "overwrite=True"}

    def use(self, name: str, value, why: str) -> None:
        """Set ``name`` to ``value`` (e.g. a student made here), recording why on screen."""
        self.values[name] = value
        self.sources[name] = why

    def check(self) -> None:
        """Refuse, in one message, every model and dataset of these settings that cannot be had here
        (Hub names while the Hub is unreachable, missing directories), each named by its variable."""
        from ..core.data import HubUnreachableError, data_problem
        from ..model.loading import model_problem

        problems = []
        recipe = {"TEACHER", "STUDENT"} & set(self.values)  # the recipe below says what to set them to
        for name in ("MODEL", "TEACHER", "STUDENT", "ENCODER"):
            if self.values.get(name):
                own_recipe = recipe and name in ("TEACHER", "STUDENT")
                problem = model_problem(self.values[name], advice=not own_recipe)
                if problem and own_recipe:
                    problem = f"{PREFIX}{name}: {problem}"
                if problem:
                    problems.append(rename_options(problem, self.option_names(name)))
        if self.values.get("DATA"):
            problem = data_problem(self.values["DATA"])
            if problem:
                problems.append(rename_options(problem, self.option_names()))
        if problems:
            hint = STUDENT_RECIPE if recipe else ""
            raise HubUnreachableError("\n".join(problems + ([hint] if hint else [])))

    def run(self, model: str = "MODEL", out: str | None = None, **options):
        """``predict_run`` on these settings (model from ``XDANALYSIS_<model>``), reusing the cached run;
        ``options`` are predict_run's, or fields of this notebook's :meth:`execution` (``progress=False``);
        errors name this notebook's variables."""
        from dataclasses import fields, replace

        from ..core.data import Selection
        from ..runs.run import predict_run
        from ..runs.store import default_run_dir

        self.check()
        path = self.values[model]
        target = out or (self.values["RUN"] if model == "MODEL" and "RUN" in self.values else
                         default_run_dir(path, self.values["DATA"], self.values.get("LIMIT"),
                                         titles=self.values.get("TITLES"), root=self.values.get("RUNS", "runs"),
                                         runtime=self.values.get("RUNTIME", "torch"),
                                         dtype=self.values.get("DTYPE", "float32")))
        try:
            selection = Selection(titles=self.values.get("TITLES"), limit=self.values.get("LIMIT"))
            how = {f.name for f in fields(self.execution())}
            execution = replace(self.execution(), **{k: v for k, v in options.items() if k in how})
            return predict_run(path, self.values["DATA"], target, selection=selection, execution=execution,
                               **{k: v for k, v in options.items() if k not in how})
        except (OSError, ValueError) as error:
            raise explain(error, self, model) from None

    def lab_recipe(self, **overrides):
        """The distillation lab's :class:`~xdanalysis.labs.distill.LabRecipe`: its defaults, with every
        ``XDANALYSIS_LAB_*`` setting this notebook reads (``LAB_SETTINGS``) and ``overrides`` applied."""
        from ..labs.distill import LabRecipe

        given = {field: self.values[name] for name, field in LAB_SETTINGS.items() if self.values.get(name) is not None}
        try:
            return LabRecipe(**{**given, **overrides})
        except ValueError as error:  # said with the variables that set the recipe
            message = str(error)
            for name, field in LAB_SETTINGS.items():
                if field in given and re.search(rf"\b{field}\b", message):
                    message = re.sub(rf"\b{field}\b", f"{PREFIX}{name} ({field})", message, count=1)
            raise SettingError(message) from None

    def execution(self):
        """How this notebook's runs are predicted: ``XDANALYSIS_DEVICE`` / ``XDANALYSIS_DTYPE`` /
        ``XDANALYSIS_RUNTIME`` as an :class:`~xdanalysis.core.settings.Execution`."""
        from ..core.settings import Execution

        return Execution(**self._placement(), runtime=self.values.get("RUNTIME", "torch"))

    def _placement(self) -> dict:
        """``XDANALYSIS_DEVICE`` / ``XDANALYSIS_DTYPE`` as the keywords of predict_run and load_qa_model."""
        return {"device": self.values.get("DEVICE", "auto"), "dtype": self.values.get("DTYPE", "float32")}

    def load_model(self, model: str = "MODEL", **options):
        """``load_qa_model(..., with_info=True)`` on ``XDANALYSIS_<model>``; errors name the variable. A model
        to look inside (attention, attribution, layers, training): on PyTorch whatever ``XDANALYSIS_RUNTIME``
        says, which decides how runs are predicted."""
        from ..model.loading import load_qa_model

        try:
            return load_qa_model(self.values[model], with_info=True, **{**self._placement(), **options})
        except (OSError, ValueError) as error:
            raise explain(error, self, model) from None

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| `{PREFIX}{k}` | `{v}` | {self.sources[k]} |" for k, v in self.values.items())
        notes = "".join(f"\n\n**{n}**" for n in self.notes)
        return f"| setting | value | from |\n|---|---|---|\n{rows}{notes}"


def notebook_settings(*, defaults: dict, paths=("MODEL", "DATA", "ENCODER", "TEACHER", "STUDENT"),
                      title_model: str = "MODEL", environ=None) -> Settings:
    """Read ``XDANALYSIS_<NAME>`` for every name in ``defaults`` (a value of None: optional), and
    ``XDANALYSIS_DEVICE`` (default auto), ``XDANALYSIS_DTYPE`` (default float32) and ``XDANALYSIS_RUNTIME``
    (default torch: how runs are predicted) for every notebook.

    Paths are resolved (:func:`resolve_path`); ``LIMIT`` becomes an int; ``TITLES`` a list. When
    ``TITLES`` is not set and the model named by ``title_model`` is a local directory whose
    ``training.json`` lists ``held_out_titles``, the notebook defaults to those articles (and says
    so): figures on articles a model trained on would flatter it. ``RUN`` defaults to the project's
    ``runs/<model>__<data>...``.

    Example::

        settings = notebook_settings(defaults={"MODEL": DEFAULT_MODEL, "DATA": "squad_v2", "LIMIT": None,
                                               "TITLES": None, "RUN": None})
    """
    from ..model.loading import training_record
    from ..runs.store import default_run_dir

    environ = os.environ if environ is None else environ
    root = project_root()
    values, sources, notes = {}, {}, []
    for name, default in defaults.items():
        raw = environ.get(PREFIX + name) or None
        sources[name] = "environment" if raw is not None else "default"
        value = raw if raw is not None else default
        if value is not None and name in ("RUN", "RUNS"):  # outputs: need not exist yet
            value = str((root / os.path.expanduser(value)).resolve())
        elif value is not None and name in paths:
            value = resolve_path(value, PREFIX + name, root)
        if name in WHOLE_NUMBERS and value is not None:
            value = _whole_number(name, value)
        if name == "TITLES" and isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()] or None
        values[name] = value
    from ..model.device import DEVICES, DTYPES

    from ..core.settings import RUNTIMES

    for name, default, choices in (("DEVICE", "auto", DEVICES), ("DTYPE", "float32", DTYPES),
                                   ("RUNTIME", "torch", RUNTIMES)):  # every model here
        if name not in values:
            raw = environ.get(PREFIX + name) or None
            values[name], sources[name] = raw or default, "environment" if raw else "default"
        if values[name] not in choices:
            raise SettingError(f"{PREFIX}{name}={values[name]}: not one of {', '.join(choices)}")
    if values["RUNTIME"] != "torch":
        notes.append(f"Runs are predicted on {values['RUNTIME']} ({PREFIX}RUNTIME); the models this notebook looks "
                     "inside (attention, attribution, layers, training) load on PyTorch, the only runtime that gives "
                     "attention weights, hidden states and gradients.")
    if "TITLES" in values and values["TITLES"] is None and values.get(title_model):
        held_out = list(training_record(values[title_model]).get("held_out_titles") or []) or None
        if held_out:
            values["TITLES"] = held_out
            sources["TITLES"] = f"the model's training.json (held-out articles; set {PREFIX}TITLES to change)"
            notes.append(f"Only the articles {', '.join(held_out)} are used: the model was trained on the others, "
                         "where its figures would be inflated.")
    if "RUN" in values and values["RUN"] is None:
        values["RUN"] = str(default_run_dir(values[title_model], values["DATA"], values.get("LIMIT"),
                                            titles=values.get("TITLES"), root=root / "runs",
                                            runtime=values["RUNTIME"], dtype=values["DTYPE"]))
        sources["RUN"] = "default (the project's runs/)"
    if "RUNS" in values and values["RUNS"] is None:
        values["RUNS"] = str(root / "runs")
        sources["RUNS"] = "default (the project's runs/)"
    return Settings(values=values, sources=sources, notes=notes)


def _whole_number(name: str, value) -> int:
    """A whole-number setting, at least its smallest sensible value (``WHOLE_NUMBERS``), or a message
    naming the variable."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingError(f"{PREFIX}{name}={value}: not a whole number") from None
    if number < WHOLE_NUMBERS[name]:
        raise SettingError(f"{PREFIX}{name}={value}: must be at least {WHOLE_NUMBERS[name]}")
    return number


def explain(error: Exception, settings: Settings, model_variable: str = "MODEL") -> Exception:
    """The same error, its message naming the notebook's variables instead of CLI options."""
    message = rename_options(str(error), settings.option_names(model_variable))
    try:
        return type(error)(message)
    except TypeError:  # an exception type that needs other arguments
        return SettingError(message)
