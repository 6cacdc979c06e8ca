"""xdanalysis: understand an extractive question-answering model on SQuAD 2.0.

The folder tree is the architecture; each floor imports only the floors below it
(``tests/test_layers.py`` enforces it):

- ``core``: no torch — SQuAD data, the official metrics, decoding logits into answers, the window
  and decoding settings, the one bootstrap, text features, atomic files;
- ``model``: loading, device and dtype (int8 too), head pruning, windows, the one forward pass, predicting
  a table;
- ``runs``: run directories (cache, resume, provenance), computed locally or on Ray;
- ``analysis`` (a run's table, no model), ``interpret`` (inside the model: attention,
  attribution, soft targets), ``distill`` (training a student);
- ``compress``: the compression lab (int8, pruned heads, dropped layers, students against float32);
- ``views``: every figure and HTML view, data in, figure out;
- ``apps``: ipywidgets explorers, the HTML report, notebook settings, the ``xdanalysis`` command.
"""

__version__ = "0.1.0"

from .core.data import load_squad  # noqa: E402
from .core.metrics import squad_v2_scores  # noqa: E402
from .runs.run import load_run, predict_run  # noqa: E402

__all__ = ["__version__", "load_squad", "squad_v2_scores", "load_run", "predict_run"]
