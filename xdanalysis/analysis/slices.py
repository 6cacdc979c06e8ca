"""Slices of a run's table: buckets by a feature, with bootstrap CIs, and the examples behind them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..core.common import check_choice
from ..runs.run import table_of
from ..core.stats import MIN_INTERVAL_COUNT, N_BOOT, bootstrap_ci
from ..core.text import QUESTION_TYPES, lexical_overlap, question_type
from .gold import agreement_bucket
from .outcomes import ERROR_OUTCOMES, OUTCOMES, outcomes

__all__ = ['ATTACHED_SLICES', 'CELL_SEPARATOR', 'INTERSECTION_SLICES', 'SLICES', 'SLICE_COLUMNS', 'Slice',
           'applicable_slices', 'bucket_labels', 'degenerate_slice', 'examples', 'pair_cells', 'per_bucket',
           'slice_grid', 'slice_name', 'slice_pair', 'slice_table', 'slice_values', 'top_intersections']


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
        Slice("gold agreement", agreement_bucket, kind="category",
              description="how far the annotators' gold answers agree (mean pairwise F1; one gold, all agree, "
                          "partly ≥ 0.5, disagree < 0.5)"),
        Slice("unanswerable cause", lambda t: _cause(t), kind="category",
              description="why an unanswerable question has no answer, as SQuAD2-CR's annotators said "
                          "(attach it with with_causes; answerable questions have none)"),
    ]
}

# Slices that read a column an analysis attaches, rather than the run's own: the column each needs.
ATTACHED_SLICES = {"unanswerable cause": "cause"}


def _cause(t: pd.DataFrame) -> pd.Series:
    if "cause" not in t.columns:
        raise ValueError("the slice 'unanswerable cause' needs SQuAD2-CR's causes attached: "
                         "with_causes(run, load_unanswerable_causes(path)) gives the table to slice")
    return t["cause"]


def applicable_slices(table: pd.DataFrame) -> list[str]:
    """The names of ``SLICES`` that apply to ``table``: every built-in one, and those of ``ATTACHED_SLICES``
    only when their column is there (e.g. causes, after :func:`~xdanalysis.analysis.causes.with_causes`).

    >>> "unanswerable cause" in applicable_slices(pd.DataFrame({"id": []}))
    False
    """
    return [name for name in SLICES if name not in ATTACHED_SLICES or ATTACHED_SLICES[name] in table.columns]


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


SLICE_COLUMNS = (["slice", "bucket", "count", "share (%)", "EM", "EM_low", "EM_high", "F1", "F1_low", "F1_high"]
                 + [f"{p}_{c}" for p in ("HasAns", "NoAns") for c in ("count", "EM", "F1", "F1_low", "F1_high")]
                 + OUTCOMES + ["plausible_trap", "errors", "share of errors (%)"]
                 + [f"share of {o} (%)" for o in ERROR_OUTCOMES])


def _interval(values: np.ndarray, *, n_boot: int, seed: int, level: float) -> tuple[float, float]:
    """The bootstrap interval of a mean score, in %; none (NaN) under ``MIN_INTERVAL_COUNT`` values."""
    if len(values) < MIN_INTERVAL_COUNT:
        return np.nan, np.nan
    low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed, level=level)
    return 100 * low, 100 * high


def _error_shares(row: dict, totals: pd.Series) -> dict:
    """A bucket's share (%) of all the run's errors, and of each error outcome (NaN when there is none)."""
    errors = sum(int(totals.get(o, 0)) for o in ERROR_OUTCOMES)
    shares = {"share of errors (%)": 100 * row["errors"] / errors if errors else np.nan}
    for o in ERROR_OUTCOMES:
        shares[f"share of {o} (%)"] = 100 * row[o] / totals[o] if totals.get(o, 0) else np.nan
    return shares


def _bucket_row(part: np.ndarray, columns: dict, total: int, *, n_boot: int, seed: int, level: float) -> dict:
    """One row of :func:`slice_table`: the questions at positions ``part`` of the table's ``columns``."""
    has = columns["has"]
    row = {"count": len(part), "share (%)": 100 * len(part) / total if total else np.nan}
    for prefix, piece in (("", part), ("HasAns_", part[has[part]]), ("NoAns_", part[~has[part]])):
        if prefix:
            row[f"{prefix}count"] = len(piece)
        for metric in ("EM", "F1"):
            values = columns[metric][piece]
            row[f"{prefix}{metric}"] = 100 * values.mean() if len(values) else np.nan
            if not prefix or metric == "F1":
                row[f"{prefix}{metric}_low"], row[f"{prefix}{metric}_high"] = _interval(
                    values, n_boot=n_boot, seed=seed, level=level)
    kinds = columns["kinds"][part]
    row.update({name: int(n) for name, n in zip(OUTCOMES, np.bincount(kinds[kinds >= 0], minlength=len(OUTCOMES)))})
    row["plausible_trap"] = int(columns["traps"][part].sum())
    row["errors"] = sum(row[o] for o in ERROR_OUTCOMES)
    row.update(_error_shares(row, columns["totals"]))
    return row


def slice_table(data, by, *, edges=None, quantiles: int | None = None, n_boot: int = N_BOOT,
                seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per bucket: count, share of questions (%), EM and F1 (in %) with bootstrap intervals, outcome mix,
    and the same split answerable (HasAns) vs unanswerable (NoAns), and the bucket's share (%) of all the
    run's errors and of each error outcome (``share of errors (%)``, ``share of false_answer (%)``...: a
    bucket is worth a look when these differ from its ``share (%)`` of questions). A bucket (or side) of fewer than
    ``MIN_INTERVAL_COUNT`` questions has no interval (NaN): its mean is shown with its n only.

    ``by``: a name in ``SLICES``, a :class:`Slice`, a column, or a Series of buckets (its name
    names the slice). Every bucket of the slice is a row, in the slice's order, an empty one with
    count 0 and NaN scores; the columns are ``SLICE_COLUMNS`` even when no question has a bucket.

    Example::

        slice_table(outcomes(run.table), "question type")
    """
    table = table_of(data)
    if "outcome" not in table.columns:
        table = outcomes(table)
    if isinstance(by, pd.Series):  # buckets already computed (e.g. cached by a widget)
        buckets, by = by, by.name or "bucket"
    else:
        buckets = slice_values(table, by, edges, quantiles)
    if not isinstance(buckets.dtype, pd.CategoricalDtype):
        buckets = buckets.astype("category")
    columns = {"has": table["has_answer"].to_numpy(dtype=bool), "EM": table["exact"].to_numpy(dtype=float),
               "F1": table["f1"].to_numpy(dtype=float), "kinds": pd.Categorical(table["outcome"], OUTCOMES).codes,
               "traps": table["plausible_trap"].to_numpy(dtype=bool), "totals": table["outcome"].value_counts()}
    # plain arrays, cut per bucket by position: a grid of a hundred cells stays fast enough for a click
    where = pd.Series(np.arange(len(table))).groupby(buckets.cat.codes.to_numpy()).indices
    rows = [{"bucket": str(bucket), **_bucket_row(where.get(index, np.array([], dtype=int)), columns, len(table),
                                                  n_boot=n_boot, seed=seed + index, level=level)}
            for index, bucket in enumerate(buckets.cat.categories)]
    frame = pd.DataFrame(rows, columns=SLICE_COLUMNS)
    frame["slice"] = slice_name(by)
    return frame


def slice_name(by) -> str:
    """What a slice is called in tables and figures: its name, a Series' name, or a Slice's.

    >>> slice_name("question type")
    'question type'
    """
    return by if isinstance(by, str) else str(getattr(by, "name", None) or "bucket")


CELL_SEPARATOR = "\x1f"  # between the two buckets of a cell's label: no bucket label holds it


def slice_pair(table: pd.DataFrame, rows, columns) -> pd.Series:
    """Every question's cell of two slices at once: a categorical whose categories are
    ``f"{row bucket}{CELL_SEPARATOR}{column bucket}"`` for every pair of buckets, in order (NaN
    where either slice does not apply), named ``"<rows> x <columns>"``. :func:`examples` takes it as
    ``by``; :func:`pair_cells` splits its categories back into pairs of buckets."""
    first, second = (by if isinstance(by, pd.Series) else slice_values(table, by) for by in (rows, columns))
    names = _pair_names(rows, columns)
    cells = [(str(a), str(b)) for a in first.cat.categories for b in second.cat.categories]
    labels = first.astype(object).astype(str) + CELL_SEPARATOR + second.astype(object).astype(str)
    pair = pd.Series(pd.Categorical(labels.where(first.notna() & second.notna()),
                                    categories=[a + CELL_SEPARATOR + b for a, b in cells]),
                     index=table.index, name=" x ".join(names))
    return pair


def pair_cells(pair: pd.Series) -> list[tuple[str, str]]:
    """The cells of a :func:`slice_pair`, as ``(row bucket, column bucket)`` in its categories' order."""
    return [tuple(label.split(CELL_SEPARATOR, 1)) for label in pair.cat.categories]


def _pair_names(rows, columns) -> list[str]:
    names = [by.name if isinstance(by, pd.Series) else getattr(by, "name", by) for by in (rows, columns)]
    names = [str(n) if n is not None else f"slice {k + 1}" for k, n in enumerate(names)]
    if names[0] == names[1]:
        raise ValueError(f"a grid needs two different slices, got {names[0]!r} twice")
    return names


def slice_grid(data, rows, columns, *, n_boot: int = N_BOOT, seed: int = 0,
               level: float = 0.95) -> pd.DataFrame:
    """Two slices at once: one row per cell (every bucket of ``rows`` x every bucket of
    ``columns``, empty cells included) with every column of :func:`slice_table` (count, share,
    EM/F1 with intervals, none under ``MIN_INTERVAL_COUNT`` questions, outcome mix, share of all
    errors); its first two columns are the cell's two buckets, named after the slices (rows, then
    columns).

    Example::

        grid = slice_grid(outcomes(run.table), "question type", "context length")
        grid.sort_values("share of errors (%)", ascending=False).head(3)   # where the errors are
    """
    table = table_of(data)
    if "outcome" not in table.columns:
        table = outcomes(table)
    pair = slice_pair(table, rows, columns)
    names, cells = _pair_names(rows, columns), pair_cells(pair)
    frame = slice_table(table, pair, n_boot=n_boot, seed=seed, level=level).drop(columns=["slice", "bucket"])
    frame.insert(0, names[1], [b for _, b in cells])
    frame.insert(0, names[0], [a for a, _ in cells])
    return frame


# The slices whose pairwise intersections are searched for the cells holding the most errors.
INTERSECTION_SLICES = ["question type", "context length", "question length", "answer position", "lexical overlap",
                       "gold agreement"]


def top_intersections(data, *, slices=None, top: int = 3, min_count: int = MIN_INTERVAL_COUNT, n_boot: int = N_BOOT,
                      seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """The cells of every pair of ``slices`` (default ``INTERSECTION_SLICES``) holding the largest share of
    the run's errors, among cells of at least ``min_count`` questions: one row per cell, largest first.

    Beside each cell's share of errors (%) and its Wilson interval, its share of questions (%): a cell
    holds the errors out of proportion (``concentrated``) only when the whole interval lies above its share
    of questions; ``ratio`` is share of errors / share of questions. F1 with its bootstrap interval.

    Example::

        top_intersections(run, top=5)[["cell", "share of errors (%)", "share of questions (%)", "concentrated"]]
    """
    from itertools import combinations

    table = table_of(data)
    if "outcome" not in table.columns:
        table = outcomes(table)
    total_errors = int(table["outcome"].isin(ERROR_OUTCOMES).sum())
    cells = []
    for first, second in combinations(slices or INTERSECTION_SLICES, 2):
        grid = slice_grid(table, first, second, n_boot=n_boot, seed=seed, level=level)
        grid = grid[grid["count"] >= min_count]
        cells += [_intersection_row(first, second, row, total_errors, len(table), level)
                  for row in grid.to_dict("records")]
    columns = ["cell", "rows", "row bucket", "columns", "column bucket", "questions", "errors",
               "share of questions (%)", "share of errors (%)", "share of errors low (%)",
               "share of errors high (%)", "ratio", "concentrated", "F1", "F1_low", "F1_high"]
    frame = pd.DataFrame(cells, columns=columns)
    return frame.sort_values("share of errors (%)", ascending=False, kind="stable").head(top).reset_index(drop=True)


def _intersection_row(first: str, second: str, row: dict, total_errors: int, total: int, level: float) -> dict:
    from ..core.stats import wilson_interval

    a, b, count, errors = row[first], row[second], int(row["count"]), int(row["errors"])
    low, high = wilson_interval(errors, total_errors, level) if total_errors else (np.nan, np.nan)
    share_q, share_e = 100 * count / total, (100 * errors / total_errors if total_errors else np.nan)
    return {"cell": f"{first} {a} × {second} {b}", "rows": first, "row bucket": a, "columns": second,
            "column bucket": b, "questions": count, "errors": errors, "share of questions (%)": share_q,
            "share of errors (%)": share_e, "share of errors low (%)": 100 * low, "share of errors high (%)": 100 * high,
            "ratio": share_e / share_q if share_q else np.nan, "concentrated": bool(100 * low > share_q),
            "F1": row["F1"], "F1_low": row["F1_low"], "F1_high": row["F1_high"]}


def degenerate_slice(frame: pd.DataFrame) -> str | None:
    """Why a :func:`slice_table` says nothing a reader does not already have, or None: one bucket
    holds every question, or the buckets are only the answerable / unanswerable split again.

    >>> degenerate_slice(pd.DataFrame({"count": [5, 0], "HasAns_count": [3, 0], "NoAns_count": [2, 0]}))
    'one bucket holds every question'
    """
    full = frame[frame["count"] > 0]
    if len(full) < 2:
        return "one bucket holds every question"
    pure = (full["HasAns_count"] == 0) | (full["NoAns_count"] == 0)
    if len(full) == 2 and pure.all() and (full["HasAns_count"] > 0).sum() == 1:
        return "its buckets are the answerable / unanswerable split itself"
    return None


def examples(data, *, outcome=None, by=None, bucket=None, sort_by: str = "confidence", ascending: bool = False,
             edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """The questions behind a number: filter by outcome(s), slice and bucket; sort by confidence.

    ``table`` is a run or its table. ``outcome``: one name of ``OUTCOMES``, a list of them, or
    ``"errors"`` (``ERROR_OUTCOMES``). ``by``: a slice (as :func:`slice_table` takes it, a Series
    of buckets included). ``confidence`` is how sure the model was of what it did: ``|null_odds|``;
    the sort is stable, so ties keep the run's order.

    Example::

        examples(run, outcome="false_answer", by="question type", bucket="how many")
    """
    table = table_of(data)
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


def per_bucket(table, summarise, *, by=None, edges=None, quantiles: int | None = None) -> pd.DataFrame:
    """``summarise(part) -> dict`` for the whole table (``by=None``) or for every non-empty bucket
    of a slice (as :func:`slice_table` takes it), one row each, with a ``bucket`` column.

    >>> t = pd.DataFrame({"x": [1, 2, 3], "g": ["a", "b", "a"]})
    >>> per_bucket(t, lambda p: {"n": len(p)}, by="g").values.tolist()
    [['a', 2], ['b', 1]]
    """
    table = table_of(table)
    if by is None:
        return pd.DataFrame([{"bucket": "all", **summarise(table)}])
    buckets = by if isinstance(by, pd.Series) else slice_values(table, by, edges, quantiles)
    labels = buckets.astype(object).to_numpy()
    categories = buckets.cat.categories if isinstance(buckets.dtype, pd.CategoricalDtype) \
        else sorted(set(buckets.dropna()))
    return pd.DataFrame([{"bucket": b, **summarise(table[labels == b])} for b in categories if (labels == b).any()])
