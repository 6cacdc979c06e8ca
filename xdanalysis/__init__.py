"""xdanalysis: understand an extractive question-answering model on SQuAD 2.0.

Modules, one concern each: ``data`` (load and validate SQuAD), ``metrics`` (the official
SQuAD 2.0 scoring), ``decoding`` (logits to answers), ``inference`` (run a model),
``runs`` (cached run directories), ``distill`` (train a student from a teacher),
``errors`` (outcomes, slices, thresholds on a run's table), ``attention`` (extraction, statistics, views), ``compare`` (teacher vs student),
``display`` and ``plots`` (figures), ``widgets`` (ipywidgets apps), ``report`` (HTML
report), ``summary`` (the score summary), ``settings`` (notebook settings from the
environment), ``cli`` (the ``xdanalysis`` command); ``_common`` holds the small helpers every
layer shares (one sigmoid, one way to name ids).
"""

__version__ = "0.1.0"

from .data import load_squad  # noqa: E402
from .metrics import squad_v2_scores  # noqa: E402
from .runs import load_run, predict_run  # noqa: E402

__all__ = ["__version__", "load_squad", "squad_v2_scores", "load_run", "predict_run"]
