"""When the gold itself is in doubt: how far a question's gold answers agree, the model's "errors"
that match a minority gold or sit inside the annotators' own disagreement, and unanswerable
questions answered with their plausible answer at high confidence (a disputed label?)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from ..core.common import check_choice
from ..runs.run import table_of
from ..core.metrics import compute_exact, compute_f1, normalize_answer

__all__ = ['AGREEMENT_BUCKETS', 'GOLD_KINDS', 'GoldAudit', 'agreement_bucket', 'gold_agreement', 'gold_audit',
           'majority_gold', 'official_golds']


def _agreement(golds) -> float:
    """Mean pairwise F1 between one question's gold answers (1 for a single gold, NaN for none)."""
    golds = list(golds)
    if not golds:
        return np.nan
    if len(golds) == 1:
        return 1.0
    return float(np.mean([compute_f1(a, b) for a, b in combinations(golds, 2)]))


def gold_agreement(data) -> pd.Series:
    """Each question's ``gold_agreement``: the mean token F1 between every pair of its gold
    answers (the annotators' agreement; SQuAD's F1 is symmetric): 1 when all agree (or there is
    one gold), lower when they differ, NaN for unanswerable questions.

    >>> gold_agreement(pd.DataFrame({"answer_texts": [["1889", "1889"], ["in 1889", "1889"], []]})).tolist()
    [1.0, 0.6666666666666666, nan]
    """
    table = table_of(data)
    return pd.Series([_agreement(g) for g in table["answer_texts"]], index=table.index, name="gold_agreement",
                     dtype=float)


def majority_gold(golds) -> str:
    """The gold answer most annotators gave (after SQuAD's normalisation; the first on a tie), or
    "" for an unanswerable question.

    >>> majority_gold(["the tower", "Tower", "Eiffel Tower"])
    'the tower'
    """
    golds = list(golds)
    if not golds:
        return ""
    counts = Counter(normalize_answer(g) for g in golds)
    best = max(counts.values())
    return next(g for g in golds if counts[normalize_answer(g)] == best)


# A question's agreement as a slice bucket (the ``gold agreement`` slice).
AGREEMENT_BUCKETS = ["one gold answer", "all golds agree", "golds partly agree", "golds disagree",
                     "no gold answer"]


def agreement_bucket(table) -> pd.Series:
    """``AGREEMENT_BUCKETS`` for every question: one gold, all agree (agreement 1), partly agree
    (at least 0.5), disagree (below 0.5), or no gold answer."""
    table = table_of(table)
    agreement = gold_agreement(table)
    n = table["answer_texts"].map(len)
    labels = np.select([n == 0, n == 1, agreement >= 1 - 1e-9, agreement >= 0.5], [AGREEMENT_BUCKETS[4],
                       AGREEMENT_BUCKETS[0], AGREEMENT_BUCKETS[1], AGREEMENT_BUCKETS[2]], AGREEMENT_BUCKETS[3])
    return pd.Series(pd.Categorical(labels, AGREEMENT_BUCKETS), index=table.index)


# The audit's kinds of question worth a second look, as ``GoldAudit.examples`` takes them.
GOLD_KINDS = {
    "minority gold": "the model's answer is a gold answer, but not the one most annotators gave",
    "within disagreement": "an error no further from the golds than the annotators are from each other",
    "disputed unanswerable": "unanswerable, yet answered with its plausible answer at high confidence",
}


@dataclass
class GoldAudit:
    """The result of :func:`gold_audit`: ``table`` (one row per question), ``summary`` (one row
    per figure, with the count it is out of) and the confidence used."""

    table: pd.DataFrame
    summary: pd.DataFrame
    confident: float

    def examples(self, kind: str) -> pd.DataFrame:
        """The questions of one of ``GOLD_KINDS``, most confident first."""
        check_choice("kind", kind, list(GOLD_KINDS))
        picked = self.table[self.table[kind.replace(" ", "_")]]
        return picked.sort_values("answer_probability", ascending=False, kind="stable")


def official_golds(golds) -> list[str]:
    """The golds a question is scored against, as the official ``evaluate-v2.0.py`` does: golds that
    normalise to nothing (a gold of ``"."``) are dropped, and an answerable question left without any is
    scored against ``""`` (abstaining matches it).

    >>> official_golds([".", "the loss"]), official_golds(["."]), official_golds([])
    (['the loss'], [''], [])
    """
    kept = [g for g in golds if normalize_answer(g)]
    return kept or ([""] if golds else [])


def _question_row(row, confident: float) -> dict:
    given, answer = list(row.answer_texts), row.answer
    golds = official_golds(given)
    majority = majority_gold(golds)
    exact_any = max(compute_exact(g, answer) for g in golds) == 1 if golds else answer == ""
    best_f1 = max((compute_f1(g, answer) for g in golds), default=float(answer == ""))
    pairwise = [compute_f1(a, b) for a, b in combinations(golds, 2)]
    answered = answer != ""
    probability = 1.0 - float(row.na_prob)  # the probability it gave to answering
    plausible = list(row.plausible_texts) if hasattr(row, "plausible_texts") else []
    return {
        "id": row.id, "question": row.question, "answer": answer, "answer_texts": given,
        "gold_agreement": _agreement(golds), "golds": len(given),
        "distinct_golds": len({normalize_answer(g) for g in golds}), "majority_gold": majority,
        "exact": float(exact_any), "f1": best_f1,
        "exact_majority": float(compute_exact(majority, answer)) if golds else float(not answered),
        "f1_majority": compute_f1(majority, answer) if golds else float(not answered),
        "answer_probability": probability,
        "minority_gold": bool(golds and answered and exact_any and not compute_exact(majority, answer)),
        "within_disagreement": bool(golds and answered and not exact_any and pairwise
                                    and best_f1 >= min(pairwise) and min(pairwise) < 1),
        "disputed_unanswerable": bool(not golds and answered and probability >= confident
                                      and any(compute_f1(p, answer) >= 0.5 for p in plausible)),
    }


def _disputed(rows: pd.DataFrame, table: pd.DataFrame, has, confident: float) -> tuple:
    """The disputed-unanswerable figure, out of the unanswerable questions that have a plausible answer;
    NaN (not known, never 0) when the data carries none (e.g. a dev set rebuilt without them)."""
    label = f"unanswerable, answered with the plausible answer (p ≥ {confident:g})"
    if "plausible_texts" in table:
        with_plausible = (~has.to_numpy()) & table["plausible_texts"].map(lambda p: len(p) > 0).to_numpy()
    else:
        with_plausible = np.zeros(len(rows), dtype=bool)
    if not with_plausible.any():
        return f"{label}: not known, the data has no plausible answers", np.nan, int((~has).sum())
    return label, int(rows["disputed_unanswerable"].sum()), int(with_plausible.sum())


def gold_audit(data, *, confident: float = 0.8) -> GoldAudit:
    """Audit a run against its own gold: per answerable question, how far its golds agree and
    the model's EM/F1 against any gold (official) and against the majority gold; the model's
    errors that match a minority gold or lie within the annotators' disagreement; unanswerable
    questions answered with their plausible answer with probability ``confident`` or more.

    Example::

        audit = gold_audit(load_run("runs/demo"))
        audit.summary, audit.examples("minority gold")
    """
    if not 0 < confident < 1:
        raise ValueError(f"confident must be a probability between 0 and 1, got {confident!r}")
    table = table_of(data)
    rows = pd.DataFrame([_question_row(r, confident) for r in table.itertuples(index=False)])
    has = rows["golds"] > 0
    several = rows["distinct_golds"] > 1
    answered_has = has & (rows["answer"] != "")
    figures = [
        ("answerable questions", int(has.sum()), len(rows)),
        ("with more than one distinct gold answer", int((has & several).sum()), int(has.sum())),
        ("mean gold agreement (pairwise F1 between golds, %)", 100 * float(rows.loc[has, "gold_agreement"].mean()),
         int(has.sum())),
        ("EM against any gold (official, %)", 100 * rows.loc[has, "exact"].mean(), int(has.sum())),
        ("EM against the majority gold (%)", 100 * rows.loc[has, "exact_majority"].mean(), int(has.sum())),
        ("F1 against any gold (official, %)", 100 * rows.loc[has, "f1"].mean(), int(has.sum())),
        ("F1 against the majority gold (%)", 100 * rows.loc[has, "f1_majority"].mean(), int(has.sum())),
        ("answers matching a minority gold only", int(rows["minority_gold"].sum()), int(answered_has.sum())),
        ("errors within the annotators' disagreement", int(rows["within_disagreement"].sum()),
         int((answered_has & (rows["exact"] < 1)).sum())),
        _disputed(rows, table, has, confident),
    ]
    summary = pd.DataFrame({"value": np.array([v for _, v, _ in figures], dtype=object),  # counts stay whole
                            "out of": [n for _, _, n in figures]},
                           index=pd.Index([f for f, _, _ in figures], name="figure"))
    return GoldAudit(table=rows, summary=summary, confident=confident)
