"""xdanalysis: understand an extractive question-answering model on SQuAD 2.0.

Modules, one concern each: ``data`` (load and validate SQuAD), ``metrics`` (the official
SQuAD 2.0 scoring), ``decoding`` (logits to answers), ``inference`` (run a model),
``runs`` (cached run directories), ``cli`` (the ``xdanalysis`` command).
"""

__version__ = "0.1.0"

from .data import load_squad  # noqa: E402
from .metrics import squad_v2_scores  # noqa: E402
from .runs import load_run, predict_run  # noqa: E402

__all__ = ["__version__", "load_squad", "squad_v2_scores", "load_run", "predict_run"]
