"""Plausibility: do the words that explain a model's abstention match the words humans mark as making the
question unanswerable (SQuAD2-CR's rationales)? Scored with the ERASER benchmark's measures (DeYoung et al.,
2020, "ERASER: A Benchmark to Evaluate Rationalized NLP Models"), per question:

- ``auprc``: the area under the precision-recall curve of the word scores against the 0/1 rationale
  (average precision, as scikit-learn's ``average_precision_score``);
- ``token_f1``: the F1 of the ``k`` highest-scoring words against the rationale's words, ``k`` the number
  of rationale words (ties go to the earlier word);
- ``iou_f1``: the same ``k`` words as contiguous spans; a predicted span matches when its intersection over
  union with some rationale span is at least 0.5; F1 of matched predicted spans over both span counts.

The word scores come from anywhere (:func:`xdanalysis.interpret.plausibility.explain_rationales` computes
them from attributions and attention): a table ``id, words, scores`` aligned to the rationale's words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.stats import N_BOOT, bootstrap_interval
from .causes import CAUSE_ORDER, NOT_ANNOTATED, _causes_of

__all__ = ['AGREEMENT_MEASURES', 'against_random', 'iou_f1', 'plausibility_summary', 'rationale_agreement',
           'top_k_words']

AGREEMENT_MEASURES = ["auprc", "token_f1", "iou_f1"]


def top_k_words(scores, k: int) -> np.ndarray:
    """A 0/1 mask of the ``k`` highest scores (ties: the earlier word first).

    >>> top_k_words([0.1, 0.5, 0.5, -1.0], 2).tolist()
    [0, 1, 1, 0]
    """
    scores = np.asarray(scores, dtype=float)
    order = np.lexsort((np.arange(len(scores)), -scores))  # by score, descending, then by position
    mask = np.zeros(len(scores), dtype=int)
    mask[order[:k]] = 1
    return mask


def _runs(mask) -> list[tuple[int, int]]:
    """The contiguous runs of 1 in a 0/1 mask, as ``(start, end)`` word indices (end exclusive)."""
    runs, start = [], None
    for i, value in enumerate(list(mask) + [0]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i))
            start = None
    return runs


def iou_f1(predicted, truth, *, threshold: float = 0.5) -> float:
    """ERASER's IOU F1 of one question: predicted and true rationale spans (runs of 1 in the 0/1 masks);
    a predicted span is a match when its best intersection over union with a true span is at least
    ``threshold``; precision = matches / predicted spans, recall = matches / true spans.

    >>> iou_f1([0, 1, 1, 0, 0], [0, 1, 1, 1, 0])   # one span, IOU 2/3
    1.0
    >>> iou_f1([1, 0, 0, 0, 1], [0, 1, 1, 1, 0])
    0.0
    """
    spans, gold = _runs(predicted), _runs(truth)
    if not spans or not gold:
        return 0.0
    matched = 0
    for start, end in spans:
        best = max(len(set(range(start, end)) & set(range(s, e))) / len(set(range(start, end)) | set(range(s, e)))
                   for s, e in gold)
        matched += best >= threshold
    precision, recall = matched / len(spans), matched / len(gold)
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def _agreement(scores, labels) -> dict:
    from sklearn.metrics import average_precision_score

    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    k = int(labels.sum())
    predicted = top_k_words(scores, k)
    return {"words": len(labels), "rationale words": k, "auprc": float(average_precision_score(labels, scores)),
            "token_f1": float((predicted & labels).sum() / k), "iou_f1": iou_f1(predicted, labels)}


def rationale_agreement(scores: pd.DataFrame, rationales: pd.DataFrame) -> pd.DataFrame:
    """One row per question (and ``method``, when ``scores`` has one) with ``auprc``, ``token_f1`` and
    ``iou_f1`` (0 to 1; see the module), ``words`` and ``rationale words`` (``k``).

    ``scores``: ``id, words, scores`` (and optionally ``method``), one score per rationale word, in the
    rationale's order; ``rationales``: :func:`~xdanalysis.core.unanswerable.load_rationales`' table. Only
    ids in both count. A question whose words differ from its rationale's is an error naming it;
    questions where no word is marked (nothing to find) are left out.

    Example::

        rationale_agreement(explain_rationales(model, tokenizer, questions, rationales), rationales)
    """
    truth = rationales.set_index("id")
    rows = []
    for row in scores.itertuples(index=False):
        if row.id not in truth.index:
            continue
        words, labels = list(truth.at[row.id, "words"]), np.asarray(truth.at[row.id, "labels"], dtype=int)
        if list(row.words) != words:
            raise ValueError(f"question {row.id}: the scored words {list(row.words)[:6]}... are not the rationale's "
                             f"words {words[:6]}...; give one score per rationale word, in its order")
        if labels.sum() == 0:
            continue
        rows.append({"id": row.id, **({"method": row.method} if hasattr(row, "method") else {}),
                     **_agreement(row.scores, labels)})
    columns = ["id"] + (["method"] if "method" in scores.columns else []) + \
        ["words", "rationale words"] + AGREEMENT_MEASURES
    return pd.DataFrame(rows, columns=columns)


def plausibility_summary(agreement: pd.DataFrame, *, causes=None, n_boot: int = N_BOOT, seed: int = 0,
                         level: float = 0.95) -> pd.DataFrame:
    """Per method (and per cause, with ``causes``: the table of
    :func:`~xdanalysis.core.unanswerable.load_unanswerable_causes` or its file): questions, and each of
    ``AGREEMENT_MEASURES`` as a mean in % with its bootstrap interval, beside the share of rationale words
    (``base rate (%)``: what a random scorer's AUPRC is near).

    Example::

        plausibility_summary(rationale_agreement(scores, rationales), causes=causes)
    """
    frame = agreement.copy()
    if "method" not in frame.columns:
        frame["method"] = "given"
    groups = ["method"]
    if causes is not None:
        given = _causes_of(causes).drop_duplicates("id").set_index("id")["cause"]
        frame["cause"] = pd.Categorical(frame["id"].map(given).astype(object).fillna(NOT_ANNOTATED), CAUSE_ORDER)
        groups.append("cause")
    rows = []
    for key, part in frame.groupby(groups, observed=True, sort=False):  # methods in the order given
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(groups, key), questions=len(part),
                   **{"base rate (%)": 100 * (part["rationale words"] / part["words"]).mean()})
        for measure in AGREEMENT_MEASURES:
            values = part[measure].to_numpy(dtype=float)
            low, high = bootstrap_interval(values, n_boot=n_boot, seed=seed, level=level)
            row.update({f"{measure} (%)": 100 * values.mean(), f"{measure} low (%)": 100 * low,
                        f"{measure} high (%)": 100 * high})
        rows.append(row)
    result = pd.DataFrame(rows)
    if causes is not None and len(result):  # within a method, the causes in their own order
        methods = {m: i for i, m in enumerate(dict.fromkeys(frame["method"]))}
        result = result.sort_values(["method", "cause"], kind="stable", key=lambda c: c.map(
            methods if c.name == "method" else {name: i for i, name in enumerate(CAUSE_ORDER)}))
    return result.reset_index(drop=True)


def against_random(agreement: pd.DataFrame, *, measure: str = "auprc", baseline: str = "random",
                   n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Each method's ``measure`` against the ``baseline`` method's on the same questions (those both
    scored): questions, both means in %, and the paired difference (method − baseline, points) with its
    paired bootstrap interval. One row per method other than the baseline, in the order given.

    Example::

        against_random(rationale_agreement(scores, rationales), measure="token_f1")
    """
    from ..core.common import check_choice
    from ..core.stats import paired_bootstrap

    check_choice("measure", measure, AGREEMENT_MEASURES)
    if baseline not in set(agreement["method"]):
        raise ValueError(f"no {baseline!r} scores to compare with: explain with methods=[..., {baseline!r}]")
    base = agreement[agreement["method"] == baseline].set_index("id")[measure]
    rows = []
    for method in [m for m in dict.fromkeys(agreement["method"]) if m != baseline]:
        own = agreement[agreement["method"] == method].set_index("id")[measure]
        shared = own.index.intersection(base.index)
        if len(shared) == 0:
            continue
        result = paired_bootstrap(base[shared].to_numpy(), own[shared].to_numpy(), n_boot, seed, level)
        rows.append({"method": method, "questions": len(shared), f"{measure} (%)": 100 * own[shared].mean(),
                     f"{baseline} (%)": 100 * base[shared].mean(), "difference (points)": 100 * result["difference"],
                     "low": 100 * result["low"], "high": 100 * result["high"]})
    return pd.DataFrame(rows, columns=["method", "questions", f"{measure} (%)", f"{baseline} (%)",
                                       "difference (points)", "low", "high"])
