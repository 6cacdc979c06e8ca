"""Which kinds of unanswerable question a model falls for: SQuAD2-CR's human causes attached to a run's
table (:func:`with_causes`), then per cause the correct abstentions with their intervals and the null-odds
margins (:func:`cause_summary`), and the rationale-deletion probe's flips (:func:`deletion_flips`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.stats import MIN_INTERVAL_COUNT, N_BOOT, paired_bootstrap, wilson_interval
from ..core.unanswerable import CAUSES, load_unanswerable_causes
from ..runs.run import table_of
from .outcomes import outcomes
from .thresholds import run_threshold

__all__ = ['CAUSE_ORDER', 'NOT_ANNOTATED', 'cause_summary', 'deletion_flips', 'with_causes']

NOT_ANNOTATED = "not annotated"  # an unanswerable question SQuAD2-CR gives no cause for
CAUSE_ORDER = list(CAUSES.values()) + [NOT_ANNOTATED]


def _causes_of(causes) -> pd.DataFrame:
    if isinstance(causes, (str, Path)):
        return load_unanswerable_causes(causes)
    if not isinstance(causes, pd.DataFrame) or not {"id", "cause"} <= set(causes.columns):
        raise TypeError(f"causes: a table with columns id and cause (load_unanswerable_causes) or its file, "
                        f"got {type(causes).__name__}")
    return causes


def with_causes(data, causes) -> pd.DataFrame:
    """The run's table (``data``: a run, a run directory or a table) with a ``cause`` column: SQuAD2-CR's
    cause for each unanswerable question it annotates, ``"not annotated"`` for the other unanswerable
    questions, NaN for answerable ones (a cause says why there is no answer). ``causes``: the table of
    :func:`~xdanalysis.core.unanswerable.load_unanswerable_causes` or its file. Ids of ``causes`` that are
    not in the run are not joined. The slice ``"unanswerable cause"`` reads the column.

    When no unanswerable question of the run has a cause, that is an error saying why (the annotations
    are keyed by the official SQuAD 2.0 ids), never a table of empty slices.

    Example::

        table = with_causes(run, "../shared/data/squad2-cr/causes-dev.tsv")
        slice_table(table, "unanswerable cause")
    """
    table = table_of(data).copy()
    given = _causes_of(causes).drop_duplicates("id").set_index("id")["cause"]
    unanswerable = ~table["has_answer"].astype(bool) if "has_answer" in table.columns \
        else table["is_impossible"].astype(bool)
    found = table["id"].map(given)
    matched = int((found.notna() & unanswerable).sum())
    if matched == 0:
        raise ValueError(
            f"0 of the {int(unanswerable.sum())} unanswerable questions of this run have a cause among the "
            f"{len(given)} annotated ({int(found.notna().sum())} ids matched at all): SQuAD2-CR is keyed by the "
            "official SQuAD 2.0 dev ids (e.g. 5ad39d53604f3c001a3fe8d1); squad-v2-dev-half.json re-hashed its ids, "
            "so run over ../shared/data/squad-v2-dev.json (the complete dev set with official ids)")
    cause = found.astype(object).where(unanswerable, other=np.nan)
    cause = cause.where(~(unanswerable & cause.isna()), other=NOT_ANNOTATED)
    table["cause"] = pd.Categorical(cause, categories=CAUSE_ORDER)
    return table


def _caused(data) -> pd.DataFrame:
    table = table_of(data)
    if "cause" not in table.columns:
        raise ValueError("the table has no cause column: attach SQuAD2-CR's causes first, "
                         "with_causes(run, load_unanswerable_causes(path))")
    return table if "outcome" in table.columns else outcomes(table)


def cause_summary(data, *, threshold: float | None = None, level: float = 0.95) -> pd.DataFrame:
    """Per cause of unanswerability (a table made by :func:`with_causes`, or a run given with it): how many
    questions, how many the model correctly abstained on and the rate (%) with its Wilson interval, how
    many it answered anyway (false answers, and of those the plausible-answer traps), and the null-odds
    margin (null odds − ``threshold``, default the run's own: above 0 it abstains) at its quartiles. Plausible
    traps are NaN when the data holds no plausible answers (e.g. the complete dev set rebuilt without them).
    Causes without a question are left out; ``"not annotated"`` is a row when some are.

    Example::

        cause_summary(with_causes(run, causes)).sort_values("correct abstention (%)")
    """
    table = _caused(data)
    threshold = run_threshold(data) if threshold is None else threshold
    has_plausible = bool(table["plausible_texts"].map(len).gt(0).any()) if "plausible_texts" in table else False
    rows = []
    for cause in CAUSE_ORDER:
        part = table[table["cause"] == cause]
        if part.empty:
            continue
        right = int((part["outcome"] == "correct_abstention").sum())
        low, high = wilson_interval(right, len(part), level)
        margin = part["null_odds"].to_numpy(dtype=float) - threshold
        q1, median, q3 = np.nanpercentile(margin, [25, 50, 75]) if np.isfinite(margin).any() else (np.nan,) * 3
        rows.append({"cause": cause, "questions": len(part), "correct abstentions": right,
                     "correct abstention (%)": 100 * right / len(part), "low (%)": 100 * low, "high (%)": 100 * high,
                     "false answers": int((part["outcome"] == "false_answer").sum()),
                     "plausible traps": int(part["plausible_trap"].sum()) if has_plausible else np.nan,
                     "margin q1": q1, "margin median": median, "margin q3": q3})
    return pd.DataFrame(rows, columns=["cause", "questions", "correct abstentions", "correct abstention (%)",
                                       "low (%)", "high (%)", "false answers", "plausible traps", "margin q1",
                                       "margin median", "margin q3"])


def deletion_flips(results, causes, *, n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The rationale-deletion probe read per cause: among the questions the model abstained on before the
    rewrite, how often it answers once the human-marked words are deleted (``delete_rationale``) and once
    as many random question words are (``delete_random_words``), in % with Wilson intervals, and the
    difference on the questions both probes rewrote, with its paired bootstrap interval. A model that
    reads the cause as humans do flips far more often for the rationale.

    ``results``: probe results (:class:`~xdanalysis.labs.probes.ProbeRuns` or its table) holding both
    probes; ``causes``: :func:`~xdanalysis.core.unanswerable.load_unanswerable_causes`' table or file.
    One row per cause with a question, then ``"all"`` (every rewritten question, annotated with a cause
    or not).

    Example::

        deletion_flips(load_probes("runs/deletion"), "../shared/data/squad2-cr/causes-dev.tsv")
    """
    table = table_of(results)
    wanted = ["delete_rationale", "delete_random_words"]
    missing = [p for p in wanted if p not in set(table["probe"])]
    if missing:
        raise ValueError(f"the probe results lack {missing}: run the probes "
                         "'delete_rationale,delete_random_words' with rationales= (xdanalysis probe --rationales)")
    given = _causes_of(causes).drop_duplicates("id").set_index("id")["cause"]
    flips = {}
    for probe in wanted:
        part = table[(table["probe"] == probe) & (table["original_answer"] == "")]
        flips[probe] = pd.Series((part["probed_answer"] != "").to_numpy(dtype=float), index=part["source_id"])
    both = flips[wanted[0]].index.intersection(flips[wanted[1]].index)
    cause_of = pd.Series(both.map(given), index=both).astype(object).fillna(NOT_ANNOTATED)
    rows = []
    for cause in CAUSE_ORDER + ["all"]:
        ids = both if cause == "all" else both[(cause_of == cause).to_numpy()]
        if len(ids) == 0 and cause != "all":  # "all" stays, even empty: it says there was nothing to flip
            continue
        rows.append(_flip_row(cause, flips[wanted[0]][ids], flips[wanted[1]][ids], n_boot=n_boot, seed=seed,
                              level=level))
    return pd.DataFrame(rows)


def _flip_row(cause: str, rationale: pd.Series, random: pd.Series, *, n_boot: int, seed: int, level: float) -> dict:
    row = {"cause": cause, "abstained before": len(rationale)}
    for name, values in (("rationale deleted", rationale), ("random words deleted", random)):
        flipped = int(values.sum())
        low, high = wilson_interval(flipped, len(values), level)
        row.update({f"{name}: answers": flipped, f"{name} (%)": 100 * flipped / len(values) if len(values) else np.nan,
                    f"{name} low (%)": 100 * low, f"{name} high (%)": 100 * high})
    difference = paired_bootstrap(random.to_numpy(), rationale.to_numpy(), n_boot, seed, level) \
        if len(rationale) >= MIN_INTERVAL_COUNT else {"difference": rationale.mean() - random.mean()
                                                      if len(rationale) else np.nan, "low": np.nan, "high": np.nan}
    row.update({"difference (points)": 100 * difference["difference"], "difference low": 100 * difference["low"],
                "difference high": 100 * difference["high"]})
    return row
