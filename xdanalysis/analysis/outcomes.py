"""What happened to each question: outcomes (correct, partial, wrong span, false answer...) and the
answer/abstain confusion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.metrics import normalize_answer
from ..runs.run import table_of

__all__ = ['ERROR_OUTCOMES', 'OUTCOMES', 'confusion', 'outcomes']


OUTCOMES = ["correct", "partial_long", "partial_short", "partial_shifted", "wrong_span", "abstained",
            "correct_abstention", "false_answer"]


# What counts as an error: everything but a correct answer or a correct abstention.
ERROR_OUTCOMES = [o for o in OUTCOMES if o not in ("correct", "correct_abstention")]


def _spans_overlap(start: int, end: int, spans) -> bool:
    return any(start < s + len(t) and s < end for t, s in spans)


def outcomes(data) -> pd.DataFrame:
    """The run table with an ``outcome`` column and a boolean ``plausible_trap``.

    Answerable: ``correct`` (EM 1), ``partial_long`` (the prediction contains a gold answer),
    ``partial_short`` (contained in one), ``partial_shifted`` (other overlap), ``wrong_span``
    (F1 0), ``abstained``. Unanswerable: ``correct_abstention`` or ``false_answer``;
    ``plausible_trap`` marks false answers overlapping the question's plausible answer.

    Example::

        outcomes(run.table)["outcome"].value_counts()
    """
    table = table_of(data)
    result = table.copy()
    labels, traps = [], []
    for row in result.itertuples(index=False):
        answered = row.answer != ""
        if row.has_answer:
            if row.exact == 1:
                label = "correct"
            elif not answered:
                label = "abstained"
            elif row.f1 == 0:
                label = "wrong_span"
            else:
                prediction = normalize_answer(row.answer)
                golds = [normalize_answer(t) for t in row.answer_texts]
                if any(g and g in prediction for g in golds):
                    label = "partial_long"
                elif any(prediction and prediction in g for g in golds):
                    label = "partial_short"
                else:
                    label = "partial_shifted"
            trap = False
        else:
            label = "false_answer" if answered else "correct_abstention"
            trap = answered and _spans_overlap(int(row.answer_start), int(row.answer_end),
                                               zip(row.plausible_texts, row.plausible_starts))
        labels.append(label)
        traps.append(bool(trap))
    result["outcome"] = pd.Categorical(labels, categories=OUTCOMES)
    result["plausible_trap"] = traps
    return result


def confusion(data) -> pd.DataFrame:
    """Gold (has answer / no answer) against the model (answered / abstained): counts and row rates.

    >>> t = pd.DataFrame({"has_answer": [True, True, False], "answer": ["x", "", ""]})
    >>> confusion(t)["answered"].tolist()
    [1, 0, 1]
    """
    table = table_of(data)
    answered = table["answer"] != ""
    gold = np.where(table["has_answer"], "has answer", "no answer")
    counts = pd.crosstab(pd.Categorical(gold, ["has answer", "no answer"]),
                         pd.Categorical(np.where(answered, "answered", "abstained"), ["answered", "abstained"]),
                         dropna=False)
    counts.index.name, counts.columns.name = "gold", "model"
    counts = counts.reindex(index=["has answer", "no answer"], columns=["answered", "abstained"], fill_value=0)
    totals = counts.sum(axis=1).replace(0, np.nan)
    rates = counts.div(totals, axis=0).add_suffix(" rate")
    frame = pd.concat([counts, rates], axis=1)
    frame.loc["all"] = list(counts.sum(axis=0)) + list(counts.sum(axis=0) / max(1, counts.values.sum()))
    frame[["answered", "abstained"]] = frame[["answered", "abstained"]].astype(int)
    return frame
