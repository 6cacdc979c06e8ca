"""Which layer of one model plays which layer's role in another: linear CKA between every pair
of layers over the same windows' tokens, and a ranking of the teacher layers a student could keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from ..core.settings import DecodingSettings, WindowSettings
from ..model.forward import forward_windows
from ..model.windows import length_batches, prepare_windows

__all__ = ['CKAMap', 'LayerRanking', 'cka', 'cka_map', 'layer_representations', 'rank_layer_subsets',
           'rank_layers_from_evidence']


def cka(x, y) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two representations of the same
    ``n`` items, ``x`` ``[n, d1]`` and ``y`` ``[n, d2]``: 1 for the same representation, invariant
    to orthogonal transforms and isotropic scaling of either side, 0 for unrelated ones.

    >>> x = np.random.default_rng(0).normal(size=(50, 4))
    >>> round(cka(x, 3 * x), 6)
    1.0
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"cka needs two [n, d] arrays over the same n items, got {x.shape} and {y.shape}")
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    scale = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / scale) if scale > 0 else float("nan")


def layer_representations(model, tokenizer, table: pd.DataFrame, *, windowing: WindowSettings = WindowSettings(),
                          max_windows: int = 64, max_tokens: int = 6000, seed: int = 0) -> list[np.ndarray]:
    """Every layer's hidden states (0 = the embeddings) over the real tokens of the first
    ``max_windows`` windows of ``table``, at most ``max_tokens`` of them (a seeded sample, the same
    for every model given the same tokenizer): a list of ``[tokens, hidden]`` arrays."""
    windows = prepare_windows(table, tokenizer, windowing)
    picked = list(range(min(max_windows, len(windows))))
    states = [None] * len(picked)
    for batch in length_batches(windows.lengths()[picked], 16):
        for index, output in zip(batch, forward_windows(model, windows, [picked[i] for i in batch],
                                                        hidden_states=True)):
            states[index] = output.hidden_states
    stacked = np.concatenate(states, axis=1)  # [layers + 1, all tokens, hidden]
    rows = np.sort(np.random.default_rng(seed).permutation(stacked.shape[1])[:max_tokens])
    return [layer[rows] for layer in stacked]


def cka_map(model_a, model_b, tokenizer, table: pd.DataFrame, *, labels=("teacher", "student"),
            windowing: WindowSettings = WindowSettings(), max_windows: int = 64, max_tokens: int = 6000,
            seed: int = 0) -> pd.DataFrame:
    """Linear CKA between every layer of ``model_a`` (rows) and of ``model_b`` (columns) on the
    same tokens of the same windows; both models read ``tokenizer``'s ids (a student cut from its
    teacher, or two fine-tunings of one encoder).

    Example::

        cka_map(teacher, student, tokenizer, run.table)   # which student layer plays which teacher layer
    """
    sizes = {getattr(m.config, "vocab_size", None) for m in (model_a, model_b)}
    if len(sizes) > 1:
        raise ValueError(f"the two models have different vocabularies ({sorted(map(str, sizes))}): CKA needs the same "
                         "tokens through both; compare models that share a tokenizer")
    a = layer_representations(model_a, tokenizer, table, windowing=windowing, max_windows=max_windows,
                              max_tokens=max_tokens, seed=seed)
    b = layer_representations(model_b, tokenizer, table, windowing=windowing, max_windows=max_windows,
                              max_tokens=max_tokens, seed=seed)
    frame = pd.DataFrame([[cka(x, y) for y in b] for x in a])
    frame.index.name, frame.columns.name = f"{labels[0]} layer", f"{labels[1]} layer"
    return CKAMap(frame, tokens=len(a[0]), labels=tuple(labels))


@dataclass(frozen=True)
class CKAMap:
    """What :func:`cka_map` gives: the ``matrix`` of linear CKA (rows: the first model's hidden states,
    embeddings = 0; columns: the second's), over ``tokens`` tokens, the two models' ``labels``."""

    matrix: pd.DataFrame = field(repr=False)
    tokens: int
    labels: tuple


def rank_layer_subsets(per_layer: pd.DataFrame, similarity, *, keep: int,
                       metric: str = "F1") -> pd.DataFrame:
    """Rank every subset of ``keep`` teacher layers (1..L) a student could start from, by the work
    the kept layers do in the teacher: each layer's gain in the layer lens's ``metric``
    (``per_layer`` of :func:`xdanalysis.interpret.layers.layer_lens`) and how much it changes the
    representation (1 − CKA with the layer below, from the teacher's own ``cka_map``, a
    :class:`CKAMap` or its matrix), each scaled to sum to 1 over the layers, averaged. Returns one row
    per subset, best first, with its components.
    """
    similarity = getattr(similarity, "matrix", similarity)
    layers = int(per_layer["layer"].max())
    if not 1 <= keep <= layers:
        raise ValueError(f"keep must be between 1 and the teacher's {layers} layers, got {keep}")
    values = per_layer.set_index("layer")[metric]
    gain = np.array([max(0.0, values[k] - values[k - 1]) for k in range(1, layers + 1)])
    change = np.array([1 - similarity.iloc[k, k - 1] for k in range(1, layers + 1)])
    share = lambda v: v / v.sum() if v.sum() > 0 else np.full(len(v), 1 / len(v))  # noqa: E731
    work = (share(gain) + share(change)) / 2
    rows = [{"layers": ",".join(str(k - 1) for k in subset),  # student_layers count from 0, as cut_layers does
             "score": float(work[[k - 1 for k in subset]].sum()),
             "lens gain": float(share(gain)[[k - 1 for k in subset]].sum()),
             "representation change": float(share(change)[[k - 1 for k in subset]].sum())}
            for subset in combinations(range(1, layers + 1), keep)]
    return pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class LayerRanking:
    """What :func:`rank_layers_from_evidence` gives: the subsets of layers, best first (``ranked``), and the
    evidence behind it: the layer lens (``lens``) and the model's CKA with itself (``similarity``)."""

    ranked: pd.DataFrame = field(repr=False)
    lens: object = field(repr=False)
    similarity: CKAMap = field(repr=False)

    @property
    def best(self) -> list[int]:
        """The best subset, as the 0-based layer ids ``cut_layers`` takes."""
        return [int(i) for i in self.ranked["layers"].iloc[0].split(",")]

    def rank_of(self, layers) -> int:
        """The 1-based rank of a subset of layers (``[0, 2, 4]``) in the ranking."""
        key = ",".join(str(int(i)) for i in layers)
        found = self.ranked.index[self.ranked["layers"] == key]
        if not len(found):
            raise ValueError(f"layers {key} are not a ranked subset of {len(layers)} layers")
        return int(found[0]) + 1


def rank_layers_from_evidence(model, tokenizer, questions: pd.DataFrame, *, keep: int,
                              windowing: WindowSettings = WindowSettings(),
                              decoding: DecodingSettings = DecodingSettings(),
                              metric: str = "HasAns_F1") -> LayerRanking:
    """Which ``keep`` layers of ``model`` a student should start from, from the evidence of ``questions``
    (choose them outside the articles students are scored on): the layer lens and the model's CKA with
    itself, ranked by :func:`rank_layer_subsets`. The one home of the workflow notebooks 05 and 09 run.

    Example::

        ranking = rank_layers_from_evidence(teacher, tokenizer, training_questions, keep=3)
        ranking.best, ranking.rank_of([0, 2, 4])
    """
    from .layers import layer_lens

    lens = layer_lens(model, tokenizer, questions, windowing=windowing, decoding=decoding)
    itself = cka_map(model, model, tokenizer, questions, labels=("teacher", "teacher"), windowing=windowing)
    return LayerRanking(rank_layer_subsets(lens.per_layer, itself, keep=keep, metric=metric), lens, itself)

