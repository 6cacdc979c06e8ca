"""Two runs over the same questions (teacher vs student): paired differences, transitions, slices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.common import check_choice
from ..runs.run import run_or_table, table_of
from ..core.metrics import CARD_FIGURES, compute_f1
from ..core.stats import MIN_INTERVAL_COUNT, N_BOOT, format_p_value, paired_bootstrap
from .outcomes import OUTCOMES, outcomes
from .slices import SLICES, slice_name, slice_values

__all__ = ['CARD_POINTS', 'Comparison', 'compare', 'forced_difference', 'transition_table']


# Published reference points (model cards), shown on the trade-off chart for these models.
CARD_POINTS = {model: {"EM": card["exact"], "F1": card["f1"], "label": f"{model.split('/')[-1]} model card"}
               for model, card in CARD_FIGURES.items()}


def _table_of(run) -> pd.DataFrame:
    table = table_of(run)
    return outcomes(table) if "outcome" not in table.columns else table


_GOLD_COLUMNS = ["context", "question", "answer_texts"]


_DECODING_KEYS = ["max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
                  "null_score_diff_threshold"]


def _info_of(run) -> dict:
    run = run_or_table(run)
    return run.info.get("settings", {}) if hasattr(run, "table") and isinstance(run.info, dict) else {}


def _check_same_settings(run_a, run_b, labels) -> None:
    """Warn when the runs were decoded differently (a difference that is not the models')."""
    a, b = _info_of(run_a), _info_of(run_b)
    differing = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in _DECODING_KEYS if k in a and k in b and a[k] != b[k]]
    if differing:
        import warnings

        warnings.warn(f"{labels[0]} and {labels[1]} were decoded with different settings ({'; '.join(differing)}): "
                      "part of any difference comes from the settings, not the models", stacklevel=3)


def _check_same_questions(a: pd.DataFrame, b: pd.DataFrame, labels) -> None:
    """Refuse runs whose shared ids hold different questions, contexts or gold answers (different
    data): comparing them would invent regressions."""
    from ..core.common import name_some

    left = a.set_index("id")[_GOLD_COLUMNS]
    right = b.set_index("id")[_GOLD_COLUMNS].loc[left.index]
    differs = [qid for qid, x, y in zip(left.index, left.itertuples(index=False), right.itertuples(index=False))
               if x.context != y.context or x.question != y.question or list(x.answer_texts) != list(y.answer_texts)]
    if differs:
        raise ValueError(f"{labels[0]} and {labels[1]} were run on different data: {len(differs)} shared question "
                         f"id(s) have another question, context or gold answer ({name_some(differs, 5)}). Run both "
                         "models on the same data file.")


@dataclass
class Comparison:
    """The result of :func:`compare`: per-question table ``joined`` (columns suffixed ``_a``/``_b``),
    ``metrics``, ``transitions`` (counts, outcome under A as rows x under B as columns),
    ``transition_rates`` (row shares) and ``agreement``."""

    labels: tuple
    joined: pd.DataFrame
    metrics: pd.DataFrame
    transitions: pd.DataFrame
    transition_rates: pd.DataFrame
    agreement: dict
    n_boot: int
    seed: int

    def cell(self, outcome_a: str, outcome_b: str) -> pd.DataFrame:
        """The questions behind one transition cell, e.g. ``cell("correct", "abstained")``."""
        for name in (outcome_a, outcome_b):
            if name not in OUTCOMES:
                raise ValueError(f"unknown outcome {name!r}; use {OUTCOMES}")
        picked = self.joined[(self.joined["outcome_a"] == outcome_a) & (self.joined["outcome_b"] == outcome_b)]
        return picked[["id", "question", "answer_texts", "answer_a", "answer_b", "f1_a", "f1_b",
                       "null_odds_a", "null_odds_b"]]

    def slice_differences(self, by, edges=None, quantiles: int | None = None, metric: str = "f1") -> pd.DataFrame:
        """Per bucket of a slice (the ``slice`` and ``metric`` columns name them): the metric under A and
        B, the difference B - A with its paired bootstrap interval, and the count; categories sorted by
        the size of the gap, buckets of fewer than ``MIN_INTERVAL_COUNT`` questions last and without
        interval or p-value. Slices on the predicted answer use A's predictions."""
        check_choice("metric", metric, ["f1", "exact"])
        base = self.joined.rename(columns=lambda c: c[:-2] if c.endswith("_a") else c)
        buckets = slice_values(base, by, edges, quantiles)
        labels = buckets.astype(object).to_numpy()
        rows = []
        for bucket in buckets.cat.categories:
            part = self.joined[labels == bucket]
            if part.empty:
                continue
            result = paired_bootstrap(part[f"{metric}_a"], part[f"{metric}_b"], self.n_boot, self.seed)
            rows.append({"bucket": bucket, "count": len(part), self.labels[0]: 100 * part[f"{metric}_a"].mean(),
                         self.labels[1]: 100 * part[f"{metric}_b"].mean(), "difference": 100 * result["difference"],
                         "low": 100 * result["low"], "high": 100 * result["high"], "p_value": result["p_value"]})
        frame = pd.DataFrame(rows)
        small = frame["count"] < MIN_INTERVAL_COUNT  # too few for an interval or a p-value
        frame.loc[small, ["low", "high", "p_value"]] = np.nan
        frame["p"] = [f"n<{MIN_INTERVAL_COUNT}" if tiny else format_p_value(p, self.n_boot)
                      for tiny, p in zip(small, frame["p_value"])]
        spec = SLICES.get(by) if isinstance(by, str) else by
        if getattr(spec, "kind", "category") != "numeric":  # categories: biggest gap first, small buckets last
            order = np.lexsort((-frame["difference"].abs().to_numpy(), small.to_numpy()))
            frame = frame.iloc[order].reset_index(drop=True)
        frame.insert(0, "metric", metric)
        frame.insert(0, "slice", slice_name(by))
        return frame


def _shared_questions(a: pd.DataFrame, b: pd.DataFrame, labels, *, intersect: bool):
    """The two tables over the same questions: refused when they differ, unless ``intersect``."""
    ids_a, ids_b = set(a["id"]), set(b["id"])
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        if not intersect:
            raise ValueError(
                f"the runs cover different questions: {len(only_a)} only in {labels[0]} (e.g. {only_a[:3]}), "
                f"{len(only_b)} only in {labels[1]} (e.g. {only_b[:3]}); pass intersect=True to compare the "
                f"{len(ids_a & ids_b)} shared questions")
        a, b = a[a["id"].isin(ids_b)], b[b["id"].isin(ids_a)]
    if a.empty:
        raise ValueError("the runs share no question")
    _check_same_questions(a, b, labels)
    return a, b


def _paired_metrics(joined: pd.DataFrame, labels, *, n_boot: int, seed: int) -> pd.DataFrame:
    """EM and F1 of both, overall / HasAns / NoAns, with the paired-bootstrap interval of the difference
    and what always abstaining scores on the same questions (the floor to read both against)."""
    has = joined["has_answer"].to_numpy(dtype=bool)
    rows = []
    for group, mask in (("overall", np.ones(len(joined), bool)), ("HasAns", has), ("NoAns", ~has)):
        if not mask.any():
            continue
        for metric, column in (("EM", "exact"), ("F1", "f1")):
            result = paired_bootstrap(joined.loc[mask, f"{column}_a"], joined.loc[mask, f"{column}_b"], n_boot, seed)
            rows.append({"group": group, "metric": metric, "count": int(mask.sum()),
                         labels[0]: 100 * joined.loc[mask, f"{column}_a"].mean(),
                         labels[1]: 100 * joined.loc[mask, f"{column}_b"].mean(),
                         "difference": 100 * result["difference"], "low": 100 * result["low"],
                         "high": 100 * result["high"], "p_value": result["p_value"],
                         "p": format_p_value(result["p_value"], n_boot),
                         "always abstaining": 100 * float((~has[mask]).mean())})
    return pd.DataFrame(rows)


def _best_threshold_rows(a: pd.DataFrame, b: pd.DataFrame, labels) -> pd.DataFrame:
    """EM and F1 of both at their own best null-odds thresholds (the official ``best_*``)."""
    from .thresholds import threshold_summary

    # Only the "best" rows are read: they do not depend on the current threshold.
    summaries = [threshold_summary(t, current=0.0).set_index(["metric", "threshold"]) for t in (a, b)]
    rows = []
    for metric in ("EM", "F1"):
        best = [s.loc[(metric, "best"), "overall"] for s in summaries]
        rows.append({"group": "at best threshold", "metric": metric, "count": len(a),
                     labels[0]: best[0], labels[1]: best[1], "difference": best[1] - best[0],
                     f"{labels[0]} threshold": summaries[0].loc[(metric, "best"), "null_odds_threshold"],
                     f"{labels[1]} threshold": summaries[1].loc[(metric, "best"), "null_odds_threshold"]})
    return pd.DataFrame(rows)


def transition_table(outcome_a, outcome_b, labels=("teacher", "student")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts of outcome under A (rows) x outcome under B (columns), every outcome of ``OUTCOMES``
    in order, and the same as row shares.

    >>> counts, rates = transition_table(["correct", "correct"], ["correct", "abstained"])
    >>> int(counts.loc["correct", "abstained"]), float(rates.loc["correct", "abstained"])
    (1, 0.5)
    """
    transitions = pd.crosstab(pd.Categorical(list(outcome_a), OUTCOMES), pd.Categorical(list(outcome_b), OUTCOMES),
                              dropna=False)
    transitions.index.name, transitions.columns.name = f"{labels[0]} outcome", f"{labels[1]} outcome"
    transitions = transitions.reindex(index=OUTCOMES, columns=OUTCOMES, fill_value=0)
    rates = transitions.div(transitions.sum(axis=1).replace(0, np.nan), axis=0)
    return transitions, rates


def compare(run_a, run_b, labels=("teacher", "student"), intersect: bool = False, n_boot: int = N_BOOT,
            seed: int = 0, *, causes=None) -> Comparison:
    """Compare two runs over the same questions (run directories, runs or run tables).

    Refuses runs whose questions differ unless ``intersect=True`` (then only shared ids count). With
    ``causes`` (SQuAD2-CR's, :func:`~xdanalysis.analysis.causes.with_causes`) the comparison can be sliced by
    ``"unanswerable cause"``: ``slice_differences("unanswerable cause", metric="exact")`` gives the paired
    difference in correct abstention per cause.

    Example::

        result = compare("runs/teacher", "runs/student")
        result.metrics, result.transitions, result.cell("correct", "abstained")
    """
    _check_same_settings(run_a, run_b, labels)
    a, b = _shared_questions(_table_of(run_a), _table_of(run_b), labels, intersect=intersect)
    if causes is not None:
        from .causes import with_causes

        a = with_causes(a, causes)
    per_model = ["answer", "exact", "f1", "outcome", "null_odds", "best_span_text", "plausible_trap"]
    joined = a.merge(b[["id"] + per_model], on="id", suffixes=("_a", "_b"))
    metrics = pd.concat([_paired_metrics(joined, labels, n_boot=n_boot, seed=seed), _best_threshold_rows(a, b, labels)],
                        ignore_index=True)
    transitions, rates = transition_table(joined["outcome_a"], joined["outcome_b"], labels)
    answered_a, answered_b = joined["answer_a"] != "", joined["answer_b"] != ""
    both = answered_a & answered_b
    overlap = [compute_f1(x, y) for x, y in zip(joined.loc[both, "answer_a"], joined.loc[both, "answer_b"])]
    agreement = {
        "questions": len(joined),
        "same answer text": float((joined["answer_a"] == joined["answer_b"]).mean()),
        "same abstain decision": float((answered_a == answered_b).mean()),
        "both answered": int(both.sum()),
        "answer overlap F1 (both answered)": float(np.mean(overlap)) if overlap else float("nan"),
    }
    return Comparison(labels=tuple(labels), joined=joined, metrics=metrics, transitions=transitions,
                      transition_rates=rates, agreement=agreement, n_boot=n_boot, seed=seed)


def forced_difference(run_a, run_b, *, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Answerable F1 when forced to answer (each question's best span, whatever the model decided), B − A in
    points over the answerable questions both runs share, with its paired bootstrap interval and p-value: what
    two models learnt about *where* answers are, apart from when they answer.

    Example::

        forced_difference(hard_student.run, soft_student.run)["difference"]
    """
    from ..core.thresholds import span_scores

    a, b = _shared_questions(_table_of(run_a), _table_of(run_b), ("A", "B"), intersect=True)
    a = a.reset_index(drop=True)
    b = b.set_index("id").loc[a["id"]].reset_index()  # paired: question by question
    has = a["has_answer"].to_numpy(dtype=bool)
    result = paired_bootstrap(span_scores(a)[1][has], span_scores(b)[1][has], n_boot, seed)
    return {"questions": int(has.sum()), "difference": 100 * result["difference"], "low": 100 * result["low"],
            "high": 100 * result["high"], "p_value": result["p_value"]}

