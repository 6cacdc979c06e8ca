"""Error analysis on a run's table: outcomes, slices with bootstrap intervals, thresholds.

Everything here works on the table of a run (``run.table``, one row per question) and never runs
a model. Per-question scores come from :mod:`xdanalysis.metrics`, the one scoring implementation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ._common import check_choice, logit, sigmoid
from .data import gold_answers
from .metrics import normalize_answer, question_scores, squad_v2_scores

__all__ = [
    "OUTCOMES",
    "outcomes",
    "confusion",
    "question_type",
    "Slice",
    "SLICES",
    "slice_values",
    "bucket_labels",
    "ERROR_OUTCOMES",
    "run_threshold",
    "slice_table",
    "bootstrap_ci",
    "bootstrap_means",
    "bootstrap_interval",
    "threshold_curve",
    "threshold_summary",
    "examples",
    "risk_coverage",
    "coverage_at",
    "aurc",
    "selective_summary",
    "per_bucket",
    "best_span_probabilities",
    "decision_confidence",
    "reliability",
    "RELIABILITY_GROUPS",
    "calibration_summary",
    "cross_fitted_threshold",
]

OUTCOMES = ["correct", "partial_long", "partial_short", "partial_shifted", "wrong_span", "abstained",
            "correct_abstention", "false_answer"]
# What counts as an error: everything but a correct answer or a correct abstention.
ERROR_OUTCOMES = [o for o in OUTCOMES if o not in ("correct", "correct_abstention")]


def _spans_overlap(start: int, end: int, spans) -> bool:
    return any(start < s + len(t) and s < end for t, s in spans)


def outcomes(table: pd.DataFrame) -> pd.DataFrame:
    """The run table with an ``outcome`` column and a boolean ``plausible_trap``.

    Answerable: ``correct`` (EM 1), ``partial_long`` (the prediction contains a gold answer),
    ``partial_short`` (contained in one), ``partial_shifted`` (other overlap), ``wrong_span``
    (F1 0), ``abstained``. Unanswerable: ``correct_abstention`` or ``false_answer``;
    ``plausible_trap`` marks false answers overlapping the question's plausible answer.

    Example::

        outcomes(run.table)["outcome"].value_counts()
    """
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


def confusion(table: pd.DataFrame) -> pd.DataFrame:
    """Gold (has answer / no answer) against the model (answered / abstained): counts and row rates.

    >>> t = pd.DataFrame({"has_answer": [True, True, False], "answer": ["x", "", ""]})
    >>> confusion(t)["answered"].tolist()
    [1, 0, 1]
    """
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


_YES_NO_START = re.compile(r"^(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b")


def question_type(question: str) -> str:
    """The question's type from its wording.

    One of what, which, who, whom, whose, when, where, why, how many, how much, how (other),
    yes/no, other. The first wh-word decides ("In what year..." is *what*); "what/which year"
    stays *what*/*which*.

    >>> [question_type(q) for q in ["How many legs?", "In which city?", "Is it red?", "Name the king."]]
    ['how many', 'which', 'yes/no', 'other']
    """
    text = question.strip().lower()
    words = re.findall(r"[a-z']+", text)
    for i, word in enumerate(words):
        if word == "how":
            following = words[i + 1] if i + 1 < len(words) else ""
            if following == "many":
                return "how many"
            if following == "much":
                return "how much"
            return "how (other)"
        if word in ("what", "which", "who", "whom", "whose", "when", "where", "why"):
            return word
    if _YES_NO_START.match(text):
        return "yes/no"
    return "other"


QUESTION_TYPES = ["what", "which", "who", "whom", "whose", "when", "where", "why", "how many", "how much",
                  "how (other)", "yes/no", "other"]

_STOPWORDS = set("a an the of in on at to for by with from and or is are was were be been being do does did "
                 "what which who whom whose when where why how that this these those it its as into than".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _content_words(text: str) -> set:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS}


def lexical_overlap(question: str, context: str, start: int) -> float:
    """Share of the question's content words found in the context sentence holding ``start``.

    >>> lexical_overlap("Who built the castle at Caen?", "Rain fell. The castle at Caen was built by William.", 27)
    1.0
    """
    if start < 0:
        return float("nan")
    begin = 0
    for match in _SENTENCE_END.finditer(context):
        if match.start() > start:
            break
        begin = match.end()
    end_match = _SENTENCE_END.search(context, start)
    sentence = context[begin : end_match.start() if end_match else len(context)]
    words = _content_words(question)
    if not words:
        return float("nan")
    return len(words & _content_words(sentence)) / len(words)


@dataclass
class Slice:
    """A way to group questions: a name, a function table -> values, and how to bucket them.

    ``kind`` is ``"numeric"`` (bucketed by ``edges``, or quantiles when ``edges`` is None) or
    ``"category"`` (values are the buckets). Define your own like the built-ins in ``SLICES``::

        Slice("starts with 'the'", lambda t: t["question"].str.lower().str.startswith("the"), "category")
    """

    name: str
    values: Callable[[pd.DataFrame], pd.Series]
    kind: str = "numeric"
    edges: list | None = None
    description: str = ""


def _answer_position(t: pd.DataFrame) -> pd.Series:
    starts = [s[0] if len(s) else (p[0] if len(p) else np.nan) for s, p in zip(t["answer_starts"], t["plausible_starts"])]
    return pd.Series(starts, index=t.index, dtype=float) / t["context"].str.len()


def _outside_first_window(t: pd.DataFrame) -> pd.Series:
    ends = [s[0] + len(x[0]) if len(s) else np.nan for s, x in zip(t["answer_starts"], t["answer_texts"])]
    outside = pd.Series(ends, index=t.index, dtype=float) > t["first_window_chars"]
    return outside.where(t["has_answer"], other=np.nan).map({True: "outside", False: "inside"}).fillna("no gold answer")


def _overlap(t: pd.DataFrame) -> pd.Series:
    starts = [s[0] if len(s) else (p[0] if len(p) else -1) for s, p in zip(t["answer_starts"], t["plausible_starts"])]
    return pd.Series([lexical_overlap(q, c, s) for q, c, s in zip(t["question"], t["context"], starts)], index=t.index)


SLICES = {
    s.name: s
    for s in [
        Slice("context length", lambda t: t["context_tokens"], edges=[0, 100, 150, 200, 300, 384, math.inf],
              description="context length in model tokens"),
        Slice("context words", lambda t: t["context"].str.split().str.len(), edges=[0, 75, 110, 150, 250, math.inf],
              description="context length in words"),
        Slice("question length", lambda t: t["question_tokens"], edges=[0, 8, 11, 14, 18, math.inf],
              description="question length in model tokens"),
        Slice("gold answer length", lambda t: t["answer_tokens"], edges=[0, 1, 2, 3, 5, 10, math.inf],
              description="first gold answer in model tokens (answerable questions only)"),
        Slice("gold answer words", lambda t: t["answer_texts"].map(lambda a: len(a[0].split()) if len(a) else np.nan),
              edges=[0, 1, 2, 3, 5, 10, math.inf], description="first gold answer in words"),
        Slice("predicted answer length", lambda t: t["prediction_tokens"].where(t["answer"] != ""),
              edges=[0, 1, 2, 3, 5, 10, math.inf], description="predicted answer in model tokens (answered only)"),
        Slice("predicted answer words", lambda t: t["answer"].str.split().str.len().where(t["answer"] != ""),
              edges=[0, 1, 2, 3, 5, 10, math.inf], description="predicted answer in words"),
        Slice("windows", lambda t: t["n_windows"].astype(str), kind="category",
              description="number of windows the context needed"),
        Slice("question type", lambda t: pd.Categorical(t["question"].map(question_type), QUESTION_TYPES),
              kind="category", description="from the question's wording"),
        Slice("answer position", _answer_position, edges=[0, 0.2, 0.4, 0.6, 0.8, 1.0001],
              description="where the gold (or plausible) answer starts, as a share of the context"),
        Slice("first window", _outside_first_window, kind="category",
              description="whether the gold answer ends beyond the first window"),
        Slice("lexical overlap", _overlap, edges=[0, 0.25, 0.5, 0.75, 1.0001],
              description="share of question content words in the answer's sentence"),
        Slice("article", lambda t: t["title"], kind="category", description="Wikipedia article"),
    ]
}


def _format_number(value: float) -> str:
    return f"{value:g}"


def bucket_labels(edges) -> list[str]:
    """Readable labels for the right-closed buckets of ``edges`` (the first also holds its left edge).

    Whole-number edges count things: ``≤100``, ``101–200``, ``>384``; others are ranges.

    >>> bucket_labels([0, 1, 2, 5, math.inf])
    ['≤1', '2', '3–5', '>5']
    >>> bucket_labels([0, 0.5, 1.0001])
    ['0–0.5', '0.5–1']
    """
    edges = [float(e) for e in edges]
    finite = [e for e in edges if math.isfinite(e)]
    whole = all(e == int(e) for e in finite)
    labels = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        if whole:
            first = int(low) if i == 0 else int(low) + 1  # the first bucket includes its left edge
            if math.isinf(high):
                labels.append(f">{int(low)}" if i else f"≥{first}")
            elif i == 0 and first <= 0:
                labels.append(f"≤{int(high)}")
            elif first == int(high):
                labels.append(str(first))
            else:
                labels.append(f"{first}–{int(high)}")
        else:
            shown_high = math.floor(high * 100) / 100  # 1.0001 (to hold 1.0) is shown as 1
            labels.append(f"{_format_number(low)}–{_format_number(shown_high)}" if math.isfinite(high)
                          else f">{_format_number(low)}")
    return labels


def slice_values(table: pd.DataFrame, by, edges=None, quantiles: int | None = None) -> pd.Series:
    """The bucket of every question for a slice (a name in ``SLICES``, a :class:`Slice`, or a column).

    Numeric slices use ``edges`` (default: the slice's own), or ``quantiles`` equal-count buckets;
    the result is categorical with every bucket as a category, in order, even an empty one.
    Questions the slice does not apply to (e.g. unanswerable ones for the gold answer length) are NaN.
    """
    spec = SLICES.get(by) if isinstance(by, str) else by
    if spec is None:
        if by not in table.columns:
            raise KeyError(f"unknown slice {by!r}: use one of {sorted(SLICES)} or a column of the table")
        kind = "numeric" if pd.api.types.is_numeric_dtype(table[by]) and table[by].nunique() > 12 else "category"
        spec = Slice(str(by), lambda t: t[by], kind=kind)
    check_choice("slice kind", spec.kind, ["numeric", "category"])
    values = spec.values(table)
    values = pd.Series(values, index=table.index)
    if spec.kind == "category":
        return values.astype("category") if not isinstance(values.dtype, pd.CategoricalDtype) else values
    numeric = pd.to_numeric(values, errors="coerce")
    cuts = edges or spec.edges
    if quantiles or cuts is None:
        if numeric.notna().sum() == 0:
            return pd.Series(pd.Categorical([np.nan] * len(numeric), categories=[]), index=table.index)
        buckets = pd.qcut(numeric, quantiles or 5, duplicates="drop")
        names = [f"{_format_number(i.left)}–{_format_number(i.right)}" for i in buckets.cat.categories]
        return buckets.cat.rename_categories(names)
    return pd.cut(numeric, cuts, right=True, include_lowest=True, labels=bucket_labels(cuts))


def bootstrap_means(values, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The means of ``n_boot`` seeded resamples of the rows of ``values`` (rows resampled together):
    the one bootstrap of the package, behind every interval and p-value.

    >>> bootstrap_means([2.0, 2.0], n_boot=3).tolist()
    [2.0, 2.0, 2.0]
    """
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    if values.ndim == 1:
        return values[picks].mean(axis=1)
    # one resample at a time: [n_boot, rows, columns] at once would not fit in memory
    return np.stack([values[p].mean(axis=0) for p in picks])


def bootstrap_interval(values, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of the mean over the first axis (see :func:`bootstrap_means`),
    so a 2-D ``values`` gives an interval per column from the same resamples. Returns
    ``(low, high)``: floats for 1-D values, arrays for 2-D; NaN when there are no rows.

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        empty = np.full(values.shape[1:], np.nan)
        return (float("nan"), float("nan")) if values.ndim == 1 else (empty, empty.copy())
    means = bootstrap_means(values, n_boot=n_boot, seed=seed)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, alpha, axis=0), np.quantile(means, 1 - alpha, axis=0)
    return (float(low), float(high)) if values.ndim == 1 else (low, high)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (see :func:`bootstrap_interval`).

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    return bootstrap_interval(np.asarray(values, dtype=float).ravel(), n_boot=n_boot, seed=seed, level=level)


SLICE_COLUMNS = (["bucket", "count", "share", "EM", "EM_low", "EM_high", "F1", "F1_low", "F1_high"]
                 + [f"{p}_{c}" for p in ("HasAns", "NoAns") for c in ("count", "EM", "F1", "F1_low", "F1_high")]
                 + OUTCOMES + ["plausible_trap"])


def slice_table(table: pd.DataFrame, by, *, edges=None, quantiles: int | None = None, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per bucket: count, share, EM and F1 (in %) with bootstrap intervals, outcome mix, and the
    same split answerable (HasAns) vs unanswerable (NoAns).

    ``by``: a name in ``SLICES``, a :class:`Slice`, a column, or a Series of buckets (its name
    names the slice). Every bucket of the slice is a row, in the slice's order, an empty one with
    count 0 and NaN scores; the columns are ``SLICE_COLUMNS`` even when no question has a bucket.

    Example::

        slice_table(outcomes(run.table), "question type")
    """
    if "outcome" not in table.columns:
        table = outcomes(table)
    if isinstance(by, pd.Series):  # buckets already computed (e.g. cached by a widget)
        buckets, by = by, by.name or "bucket"
    else:
        buckets = slice_values(table, by, edges, quantiles)
    if not isinstance(buckets.dtype, pd.CategoricalDtype):
        buckets = buckets.astype("category")
    labels = buckets.astype(object).to_numpy()
    rows = []
    for index, bucket in enumerate(buckets.cat.categories):
        part = table[labels == bucket]
        row = {"bucket": str(bucket), "count": len(part), "share": len(part) / len(table) if len(table) else np.nan}
        for prefix, piece in (("", part), ("HasAns_", part[part["has_answer"]]), ("NoAns_", part[~part["has_answer"]])):
            if prefix:
                row[f"{prefix}count"] = len(piece)
            for metric, column in (("EM", "exact"), ("F1", "f1")):
                values = piece[column].to_numpy(dtype=float)
                row[f"{prefix}{metric}"] = 100 * values.mean() if len(values) else np.nan
                if not prefix:
                    low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed + index, level=level)
                    row[f"{metric}_low"], row[f"{metric}_high"] = 100 * low, 100 * high
            if prefix:
                low, high = bootstrap_ci(piece["f1"].to_numpy(dtype=float), n_boot=n_boot, seed=seed + index,
                                         level=level)
                row[f"{prefix}F1_low"], row[f"{prefix}F1_high"] = 100 * low, 100 * high
        mix = part["outcome"].value_counts()
        for name in OUTCOMES:
            row[name] = int(mix.get(name, 0))
        row["plausible_trap"] = int(part["plausible_trap"].sum())
        rows.append(row)
    frame = pd.DataFrame(rows, columns=SLICE_COLUMNS)
    frame.attrs["slice"] = by if isinstance(by, str) else getattr(by, "name", str(by))
    frame.attrs["ordered"] = not isinstance(by, str) or SLICES.get(by) is None or SLICES[by].kind == "numeric"
    return frame


def _span_scores(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    gold = gold_answers(table)
    exact, f1 = question_scores(gold, dict(zip(table["id"], table["best_span_text"])))
    return table["id"].map(exact).to_numpy(dtype=float), table["id"].map(f1).to_numpy(dtype=float)


def threshold_curve(table: pd.DataFrame, thresholds=None) -> pd.DataFrame:
    """EM and F1 (%), overall / HasAns / NoAns, if the model abstained when null odds > threshold.

    ``thresholds`` default: every distinct null-odds value in the run (and 0.0), so the curve's
    maximum is the official best threshold's score.
    """
    odds = table["null_odds"].to_numpy(dtype=float)
    has = table["has_answer"].to_numpy(dtype=bool)
    span_exact, span_f1 = _span_scores(table)
    if thresholds is None:
        finite = odds[np.isfinite(odds)]
        thresholds = np.unique(np.concatenate([finite, [0.0], [finite.min() - 1.0] if len(finite) else []]))
    thresholds = np.asarray(thresholds, dtype=float)
    answered = odds[None, :] <= thresholds[:, None]  # [thresholds, questions]
    abstain_score = (~has).astype(float)
    rows = {"threshold": thresholds}
    for metric, span in (("EM", span_exact), ("F1", span_f1)):
        scores = np.where(answered, span[None, :], abstain_score[None, :])
        rows[metric] = 100 * scores.mean(axis=1)
        rows[f"HasAns_{metric}"] = 100 * scores[:, has].mean(axis=1) if has.any() else np.nan
        rows[f"NoAns_{metric}"] = 100 * scores[:, ~has].mean(axis=1) if (~has).any() else np.nan
    rows["answered"] = answered.mean(axis=1)
    return pd.DataFrame(rows)


def run_threshold(table) -> float:
    """The null-odds threshold a run's answers were decided with.

    Read from the run (``run.threshold``) or the table's ``attrs`` (set by :func:`load_run`);
    otherwise recovered from the decisions themselves (answered where null odds <= threshold):
    0.0 when it is consistent with them, else the smallest consistent value. Raises when no
    single threshold explains the answers.
    """
    if hasattr(table, "threshold") and hasattr(table, "table"):
        return float(table.threshold)
    if "null_score_diff_threshold" in table.attrs:
        return float(table.attrs["null_score_diff_threshold"])
    odds = table["null_odds"].to_numpy(dtype=float)
    answered = (table["answer"] != "").to_numpy()
    has_span = (table["best_span_text"] != "").to_numpy() & np.isfinite(odds)
    low = odds[answered].max() if answered.any() else -math.inf        # threshold >= every answered one
    high = odds[~answered & has_span].min() if (~answered & has_span).any() else math.inf  # < every abstained
    if not low < high:
        raise ValueError("no single null-odds threshold explains this table's answers; pass current=...")
    return 0.0 if low <= 0.0 < high else float(low)


def threshold_summary(table, current: float | None = None) -> pd.DataFrame:
    """The current and the best null-odds threshold (from the official search), and what moving
    to the best one changes overall, on answerable and on unanswerable questions.

    ``table`` is a run or its table; ``current`` defaults to the threshold the run was decided
    with (:func:`run_threshold`). The scores are those obtained at each threshold. When several
    questions share the best threshold's probability, the official ``best_*`` can count only some
    of them, a split no threshold realises; the ``best`` row then reports what that threshold
    really gives. The ``gain`` row holds differences only (its threshold column is empty). The
    official dict is in ``.attrs["official"]``.
    """
    if current is None:
        current = run_threshold(table)
    table = getattr(table, "table", table)
    odds = table["null_odds"].to_numpy(dtype=float)
    probs = np.array([sigmoid(x) for x in odds])
    na_probs = dict(zip(table["id"], probs))
    gold = gold_answers(table)
    official = squad_v2_scores(gold, dict(zip(table["id"], table["answer"])), na_probs)
    best = {}
    for metric, key in (("EM", "exact"), ("F1", "f1")):
        p = official[f"best_{key}_thresh"]
        # The official threshold is a question's probability: take that question's exact null odds
        # (logit(sigmoid(x)) can round below x and drop the boundary question).
        at = np.flatnonzero(probs == p)
        best[metric] = float(odds[at].max()) if len(at) else logit(p)
    curve = threshold_curve(table, [current, best["EM"], best["F1"]])  # one scoring pass for all three
    rows = []
    for metric, position in (("EM", 1), ("F1", 2)):
        def at_row(i, metric=metric):
            return {"overall": curve[metric][i], "HasAns": curve[f"HasAns_{metric}"][i],
                    "NoAns": curve[f"NoAns_{metric}"][i], "answered share": curve["answered"][i]}

        now, then = at_row(0), at_row(position)
        rows.append({"metric": metric, "threshold": "current", "null_odds_threshold": current, **now})
        rows.append({"metric": metric, "threshold": "best", "null_odds_threshold": best[metric], **then})
        rows.append({"metric": metric, "threshold": "gain", "null_odds_threshold": np.nan,
                     **{k: then[k] - now[k] for k in now}})
    frame = pd.DataFrame(rows)
    frame.attrs["official"] = official
    return frame


def examples(table, *, outcome=None, by=None, bucket=None, sort_by: str = "confidence", ascending: bool = False,
             edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """The questions behind a number: filter by outcome(s), slice and bucket; sort by confidence.

    ``table`` is a run or its table. ``outcome``: one name of ``OUTCOMES``, a list of them, or
    ``"errors"`` (``ERROR_OUTCOMES``). ``by``: a slice (as :func:`slice_table` takes it, a Series
    of buckets included). ``confidence`` is how sure the model was of what it did: ``|null_odds|``;
    the sort is stable, so ties keep the run's order.

    Example::

        examples(run, outcome="false_answer", by="question type", bucket="how many")
    """
    table = getattr(table, "table", table)
    if "outcome" not in table.columns:
        table = outcomes(table)
    mask = pd.Series(True, index=table.index)
    if outcome is not None:
        wanted = ERROR_OUTCOMES if outcome == "errors" else [outcome] if isinstance(outcome, str) else list(outcome)
        unknown = set(wanted) - set(OUTCOMES)
        if unknown:
            raise ValueError(f"unknown outcome(s) {sorted(unknown)}; use {OUTCOMES} or 'errors'")
        mask &= table["outcome"].isin(wanted)
    if by is not None:
        buckets = by if isinstance(by, pd.Series) else slice_values(table, by, edges, quantiles)
        if bucket is not None:
            known = [str(c) for c in buckets.cat.categories] if isinstance(buckets.dtype, pd.CategoricalDtype) \
                else sorted(set(buckets.dropna().astype(str)))
            if str(bucket) not in known:
                raise ValueError(f"unknown bucket {bucket!r} of slice {getattr(by, 'name', by)!r}; use one of {known}")
            mask &= buckets.astype(object).astype(str) == str(bucket)
    picked = table[mask].copy()
    picked["confidence"] = picked["null_odds"].abs()
    if sort_by not in picked.columns:
        raise ValueError(f"unknown sort_by {sort_by!r}; use 'confidence' or a column of the table")
    return picked.sort_values(sort_by, ascending=ascending, kind="stable")


# Selective QA and calibration ---------------------------------------------------------------
# The ranking every selective-QA number shares: most confident (lowest null odds) first; ties keep
# the run's order.

def _confidence_order(table: pd.DataFrame) -> np.ndarray:
    return np.argsort(table["null_odds"].to_numpy(dtype=float), kind="stable")


def risk_coverage(table) -> pd.DataFrame:
    """The risk–coverage curve of a run: answer the ``k`` most confident questions, abstain on the rest.

    Questions are ranked by confidence ``-null_odds`` (best span score − null score), most confident
    first (ties keep the run's order). At each ``k`` the model answers the top ``k`` with its best
    span: ``coverage`` is k/n and ``risk`` is 1 − the mean official F1 of those ``k`` best spans (an
    answered unanswerable question scores 0). ``null_odds`` is the k-th question's: abstaining above
    it gives that point. ``.attrs`` holds ``aurc`` and the coverage at 80% and 90% F1.

    >>> t = pd.DataFrame({"id": ["a", "b"], "answer_texts": [["x"], []], "best_span_text": ["x", "y"],
    ...                   "null_odds": [-2.0, 1.0]})
    >>> risk_coverage(t)[["coverage", "risk"]].values.tolist()
    [[0.5, 0.0], [1.0, 0.5]]
    """
    table = getattr(table, "table", table)
    if len(table) == 0:
        raise ValueError("risk_coverage needs at least one question")
    order = _confidence_order(table)
    _, span_f1 = _span_scores(table)
    f1 = span_f1[order]
    k = np.arange(1, len(table) + 1)
    risk = 1.0 - np.cumsum(f1) / k
    frame = pd.DataFrame({"k": k, "coverage": k / len(table), "risk": risk,
                          "null_odds": table["null_odds"].to_numpy(dtype=float)[order],
                          "id": table["id"].to_numpy()[order], "f1": f1})
    frame.attrs["aurc"] = float(risk.mean())
    for target in (0.8, 0.9):
        frame.attrs[f"coverage at {target:.0%} F1"] = coverage_at(frame, target)
    return frame


def coverage_at(curve: pd.DataFrame, f1: float) -> float:
    """The largest coverage of a :func:`risk_coverage` curve whose answered questions reach mean F1
    ``f1`` (0 to 1); 0.0 when even the most confident question falls short.

    >>> coverage_at(pd.DataFrame({"coverage": [0.5, 1.0], "risk": [0.0, 0.5]}), 0.8)
    0.5
    """
    reached = curve["coverage"][curve["risk"].to_numpy() <= 1.0 - f1 + 1e-12]
    return float(reached.max()) if len(reached) else 0.0


def aurc(table) -> float:
    """Area under the risk–coverage curve: the mean risk over k = 1..n (lower is better).

    >>> t = pd.DataFrame({"id": ["a", "b"], "answer_texts": [["x"], []], "best_span_text": ["x", "y"],
    ...                   "null_odds": [-2.0, 1.0]})
    >>> aurc(t)
    0.25
    """
    return risk_coverage(table).attrs["aurc"]


def selective_summary(table, *, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """AURC, the AURC of a perfect ranking (``oracle_aurc``: the same answers, best F1 first), their
    difference ``excess_aurc``, and the coverage at 80% / 90% F1; per bucket of a slice with ``by``.

    Example::

        selective_summary(run, by="question type")
    """
    def one(part: pd.DataFrame) -> dict:
        curve = risk_coverage(part)
        best = np.sort(curve["f1"].to_numpy())[::-1]
        oracle = float((1.0 - np.cumsum(best) / np.arange(1, len(best) + 1)).mean())
        return {"count": len(part), "aurc": curve.attrs["aurc"], "oracle_aurc": oracle,
                "excess_aurc": curve.attrs["aurc"] - oracle,
                "coverage_at_80_f1": curve.attrs["coverage at 80% F1"],
                "coverage_at_90_f1": curve.attrs["coverage at 90% F1"]}

    return per_bucket(table, one, by=by, edges=edges, quantiles=quantiles)


def per_bucket(table, summarise, *, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """``summarise(part) -> dict`` for the whole table (``by=None``) or for every non-empty bucket
    of a slice (as :func:`slice_table` takes it), one row each, with a ``bucket`` column.

    >>> t = pd.DataFrame({"x": [1, 2, 3], "g": ["a", "b", "a"]})
    >>> per_bucket(t, lambda p: {"n": len(p)}, by="g").values.tolist()
    [['a', 2], ['b', 1]]
    """
    table = getattr(table, "table", table)
    if by is None:
        return pd.DataFrame([{"bucket": "all", **summarise(table)}])
    buckets = by if isinstance(by, pd.Series) else slice_values(table, by, edges, quantiles)
    labels = buckets.astype(object).to_numpy()
    categories = buckets.cat.categories if isinstance(buckets.dtype, pd.CategoricalDtype) \
        else sorted(set(buckets.dropna()))
    rows = [{"bucket": b, **summarise(table[labels == b])} for b in categories if (labels == b).any()]
    frame = pd.DataFrame(rows)
    frame.attrs["slice"] = by if isinstance(by, str) else getattr(by, "name", str(by))
    return frame


def best_span_probabilities(run) -> pd.Series:
    """The n-best softmax probability of each question's best span (NaN where it has none), from
    the run's ``nbest_predictions.json``; a table that carries a ``span_probability`` column is
    read as it is."""
    table = getattr(run, "table", run)
    if "span_probability" in table.columns:
        return table["span_probability"].astype(float)
    if not hasattr(run, "nbest"):
        raise ValueError("the span probabilities live in the run's n-best list: pass the run itself (load_run(...)), "
                         "or a table with a 'span_probability' column")
    nbest = run.nbest
    values = []
    for qid in table["id"]:
        spans = [c for c in nbest.get(qid, []) if c["text"] != ""]
        values.append(spans[0]["probability"] if spans else np.nan)  # n-best lists are sorted by score
    return pd.Series(values, index=table.index, dtype=float)


def decision_confidence(run) -> pd.DataFrame:
    """Per question: what the model decided (``answered``), the probability it gave that decision
    (the n-best probability of the chosen span, or ``na_prob`` when it abstained) and whether the
    decision was right (``correct``: EM 1; a correct abstention counts).

    Example::

        decision_confidence(load_run("runs/demo")).groupby("answered")["correct"].mean()
    """
    table = getattr(run, "table", run)
    answered = (table["answer"] != "").to_numpy()
    span = best_span_probabilities(run).to_numpy()
    confidence = np.where(answered, span, table["na_prob"].to_numpy(dtype=float))
    return pd.DataFrame({"id": table["id"].to_numpy(), "has_answer": table["has_answer"].to_numpy(dtype=bool),
                         "answered": answered, "confidence": confidence,
                         "correct": table["exact"].to_numpy(dtype=float)}, index=table.index)


def _reliability_of(confidence: np.ndarray, correct: np.ndarray, bins: int) -> tuple[pd.DataFrame, float, float]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # (a, b] buckets, 0 in the first
    rows = []
    for b in range(bins):
        mask = which == b
        rows.append({"bin": b, "low": edges[b], "high": edges[b + 1], "count": int(mask.sum()),
                     "confidence": float(confidence[mask].mean()) if mask.any() else np.nan,
                     "accuracy": float(correct[mask].mean()) if mask.any() else np.nan})
    frame = pd.DataFrame(rows)
    filled = frame[frame["count"] > 0]
    n = max(1, len(confidence))
    ece = float((filled["count"] / n * (filled["accuracy"] - filled["confidence"]).abs()).sum())
    brier = float(np.mean((confidence - correct) ** 2)) if len(confidence) else np.nan
    return frame, ece, brier


RELIABILITY_GROUPS = ["all", "answerable", "unanswerable"]


def reliability(run, *, bins: int = 10) -> pd.DataFrame:
    """The reliability diagram of a run's decisions (see :func:`decision_confidence`): per group
    (all, answerable, unanswerable) and equal-width confidence bin, the count, mean confidence and
    accuracy (EM). ``.attrs["summary"]``: per group n, ECE (count-weighted |accuracy − confidence|
    over the bins) and the Brier score (mean squared confidence − correct).

    Example::

        reliability(load_run("runs/demo")).attrs["summary"]
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    decisions = decision_confidence(run)
    known = decisions["confidence"].notna()
    frames, rows = [], []
    for group in RELIABILITY_GROUPS:
        mask = known & {"all": True, "answerable": decisions["has_answer"],
                        "unanswerable": ~decisions["has_answer"]}[group]
        part = decisions[mask]
        frame, ece, brier = _reliability_of(part["confidence"].to_numpy(), part["correct"].to_numpy(), bins)
        frames.append(frame.assign(group=group))
        rows.append({"group": group, "count": len(part), "ECE": ece if len(part) else np.nan, "Brier": brier,
                     "mean confidence": part["confidence"].mean(), "accuracy": part["correct"].mean()})
    result = pd.concat(frames, ignore_index=True)[["group", "bin", "low", "high", "count", "confidence", "accuracy"]]
    result.attrs["summary"] = pd.DataFrame(rows)
    return result


def calibration_summary(run, *, bins: int = 10, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """ECE and Brier score of the run's decisions, overall and per bucket of a slice with ``by``."""
    decisions = decision_confidence(run)
    table = getattr(run, "table", run).assign(_confidence=decisions["confidence"], _correct=decisions["correct"])

    def one(part):
        known = part["_confidence"].notna()
        _, ece, brier = _reliability_of(part.loc[known, "_confidence"].to_numpy(),
                                        part.loc[known, "_correct"].to_numpy(), bins)
        return {"count": len(part), "ECE": ece, "Brier": brier, "mean confidence": part["_confidence"].mean(),
                "accuracy": part["_correct"].mean()}

    return per_bucket(table, one, by=by, edges=edges, quantiles=quantiles)


def _best_f1_threshold(odds: np.ndarray, span_f1: np.ndarray, has: np.ndarray) -> float:
    """The null-odds threshold that maximises F1 on these questions. Every threshold from one
    question's null odds up to the next gives the same decisions; the official search returns the
    lower end, on a question, which held-out questions fall on either side of by chance. Here:
    the middle of that interval (of the lowest best one), ±inf at the ends."""
    finite = np.unique(odds[np.isfinite(odds)])
    candidates = np.concatenate([[-np.inf], finite])  # answer where odds <= candidate
    answered = odds[None, :] <= candidates[:, None]
    f1 = np.where(answered, span_f1[None, :], (~has).astype(float)[None, :]).mean(axis=1)
    k = int(np.argmax(f1))
    if k == 0:
        return -math.inf
    if k == len(candidates) - 1:
        return math.inf
    return float((candidates[k] + candidates[k + 1]) / 2)


def _f1_at(odds, span_f1, has, threshold) -> np.ndarray:
    return np.where(odds <= threshold, span_f1, (~has).astype(float))


def cross_fitted_threshold(table, *, folds: int = 5, seed: int = 0, n_boot: int = 1000,
                           level: float = 0.95) -> dict:
    """An honest estimate of what tuning the null-odds threshold gains.

    The official ``best_f1`` chooses its threshold on the very questions it scores. Here the
    questions are split into ``folds`` seeded folds; each fold is scored at the threshold that
    maximises F1 on the other folds (the middle of the best interval between two questions'
    null odds). Returns F1 (%) at the run's own threshold (``default_f1``),
    the official in-sample ``best_f1`` and its threshold, the ``cross_fitted_f1``, the honest
    ``gain`` (cross-fitted − default) with a bootstrap interval over questions, the ``optimism``
    of the official figure (best − cross-fitted), the per-fold thresholds, and
    ``best_threshold_is_zero``: True when the official ``best_f1_thresh`` is exactly 0, the mark of
    scores computed without no-answer probabilities (as on model cards).

    Example::

        cross_fitted_threshold(load_run("runs/demo"))["gain"]
    """
    current = run_threshold(table)
    table = getattr(table, "table", table)
    if folds < 2 or folds > len(table):
        raise ValueError(f"folds must be between 2 and the number of questions ({len(table)}), got {folds}")
    odds = table["null_odds"].to_numpy(dtype=float)
    has = table["has_answer"].to_numpy(dtype=bool)
    _, span_f1 = _span_scores(table)
    fold_of = np.empty(len(table), dtype=int)
    fold_of[np.random.default_rng(seed).permutation(len(table))] = np.arange(len(table)) % folds
    honest = np.empty(len(table))
    thresholds = []
    for k in range(folds):
        held = fold_of == k
        t = _best_f1_threshold(odds[~held], span_f1[~held], has[~held])
        thresholds.append(t)
        honest[held] = _f1_at(odds[held], span_f1[held], has[held], t)
    default = _f1_at(odds, span_f1, has, current)
    official = threshold_summary(table, current=current).attrs["official"]
    low, high = bootstrap_interval(honest - default, n_boot=n_boot, seed=seed, level=level)
    return {
        "count": len(table), "folds": folds, "current_threshold": current,
        "default_f1": 100 * float(default.mean()),
        "best_f1": float(official["best_f1"]), "best_f1_thresh": float(official["best_f1_thresh"]),
        "cross_fitted_f1": 100 * float(honest.mean()),
        "gain": 100 * float((honest - default).mean()), "gain_low": 100 * low, "gain_high": 100 * high,
        "optimism": float(official["best_f1"]) - 100 * float(honest.mean()),
        "fold_thresholds": thresholds,
        "best_threshold_is_zero": float(official["best_f1_thresh"]) == 0.0,
    }
