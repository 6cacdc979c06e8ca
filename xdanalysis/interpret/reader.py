"""A QA reader: a model, its tokenizer and how it reads (windows) and decides (decoding), carried whole.

The algorithms of :mod:`xdanalysis.interpret` take these four as arguments; a :class:`Reader` holds them
once (a run's own, with :meth:`Reader.from_run`) and hands them to each, so an analysis of a run reads
the questions exactly as the run did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..core.settings import DecodingSettings, WindowSettings

__all__ = ['Reader']


@dataclass(frozen=True)
class Reader:
    """A loaded extractive-QA model with its tokenizer, ``windowing`` and ``decoding``.

    Example::

        reader = Reader.from_run(run)              # the run's model, windows and threshold
        lens = reader.layer_lens(run.table)
        attention = reader.attention(question, context)
        attributor = reader.attributor(method="gradient_x_input")
    """

    model: object = field(repr=False)
    tokenizer: object = field(repr=False)
    windowing: WindowSettings = WindowSettings()
    decoding: DecodingSettings = DecodingSettings()

    @classmethod
    def load(cls, model, *, windowing: WindowSettings = WindowSettings(), decoding: DecodingSettings = DecodingSettings(),
             device: str | None = None, dtype: str | None = None, allow_random_head: bool = False) -> "Reader":
        """A reader of the model at ``model`` (a Hub id or a directory), loaded with eager attention."""
        from ..model.loading import load_qa_model

        loaded, tokenizer = load_qa_model(model, device=device or "auto", dtype=dtype or "float32",
                                          allow_random_head=allow_random_head)
        return cls(loaded, tokenizer, windowing, decoding)

    @classmethod
    def from_run(cls, run, *, device: str | None = None, allow_random_head: bool = False) -> "Reader":
        """The reader that made ``run`` (a Run or a run directory): its model, loaded as the run recorded
        (dtype; device unless given), with the run's own window and decoding settings."""
        from ..runs.run import run_or_table

        run = run_or_table(run)
        if isinstance(run, pd.DataFrame) or not isinstance(getattr(run, "info", None), dict):
            raise TypeError("Reader.from_run needs a Run or a run directory (a table does not say its model)")
        settings = run.info.get("settings", {})
        model = settings.get("model_given") or settings.get("model")
        return cls.load(model, windowing=run.windowing, decoding=run.decoding,
                        device=device or settings.get("device"), dtype=settings.get("dtype"),
                        allow_random_head=allow_random_head)

    def attention(self, question: str, context: str, **options):
        """:func:`~xdanalysis.interpret.attention.get_attention` with this reader."""
        from .attention import get_attention

        return get_attention(self.model, self.tokenizer, question, context, windowing=self.windowing,
                             decoding=self.decoding, **options)

    def head_statistics(self, run, **options) -> pd.DataFrame:
        """:func:`~xdanalysis.interpret.attention.head_statistics` of ``run``'s questions with this reader."""
        from .attention import head_statistics

        return head_statistics(run, self.model, self.tokenizer, windowing=self.windowing, **options)

    def attributor(self, *, method="integrated_gradients"):
        """An :class:`~xdanalysis.interpret.attribution.Attributor` configured with this reader."""
        from .attribution import Attributor

        return Attributor(self.model, self.tokenizer, method=method, windowing=self.windowing, decoding=self.decoding)

    def layer_lens(self, table, **options):
        """:func:`~xdanalysis.interpret.layers.layer_lens` of ``table`` (a run or a question table)."""
        from ..runs.run import table_of
        from .layers import layer_lens

        return layer_lens(self.model, self.tokenizer, table_of(table), windowing=self.windowing,
                          decoding=self.decoding, **options)

    def tuned_lens(self, table, **options):
        """:func:`~xdanalysis.interpret.layers.fit_tuned_lens` on ``table``'s questions."""
        from ..runs.run import table_of
        from .layers import fit_tuned_lens

        return fit_tuned_lens(self.model, self.tokenizer, table_of(table), windowing=self.windowing, **options)

    def patch_abstention(self, pairs: pd.DataFrame, **options) -> pd.DataFrame:
        """:func:`~xdanalysis.interpret.patching.patch_abstention` of ``pairs`` with this reader."""
        from .patching import patch_abstention

        return patch_abstention(self.model, self.tokenizer, pairs, windowing=self.windowing, decoding=self.decoding,
                                **options)

    def rank_layers(self, questions: pd.DataFrame, *, keep: int, metric: str = "HasAns_F1"):
        """:func:`~xdanalysis.interpret.representations.rank_layers_from_evidence` with this reader."""
        from .representations import rank_layers_from_evidence

        return rank_layers_from_evidence(self.model, self.tokenizer, questions, keep=keep, windowing=self.windowing,
                                         decoding=self.decoding, metric=metric)
