"""Where errors concentrate: a shallow decision tree (scikit-learn) fitted to a run's errors from
the QA features the package computes, its leaves as rules in words, cross-fitted: found on one
half of the contexts, scored on the other, so that a rule that is noise is seen as noise."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.common import check_choice
from ..runs.run import table_of
from ..core.stats import MIN_INTERVAL_COUNT, wilson_interval
from ..core.text import QUESTION_TYPES, question_type
from .gold import gold_agreement
from .outcomes import ERROR_OUTCOMES, outcomes
from .slices import SLICES
from .thresholds import run_threshold

__all__ = ['DECISION_FEATURES', 'ERROR_TARGETS', 'ERROR_FEATURES', 'SIDES', 'ErrorTree', 'error_features', 'error_tree', 'context_halves']

# What the tree predicts: any error, or one error outcome.
ERROR_TARGETS = {"error": ERROR_OUTCOMES, "false_answer": ["false_answer"], "wrong_abstention": ["abstained"],
                 "wrong_span": ["wrong_span"]}

# The numeric features, by the name rules use, and how each is read from a run's table.
ERROR_FEATURES = {
    "answerable": lambda t: t["has_answer"].astype(float),
    "context tokens": lambda t: t["context_tokens"].astype(float),
    "question tokens": lambda t: t["question_tokens"].astype(float),
    "gold answer tokens": lambda t: t["answer_tokens"].where(t["has_answer"]).astype(float),
    "windows": lambda t: t["n_windows"].astype(float),
    "answer position": SLICES["answer position"].values,
    "answer beyond the first window": lambda t: SLICES["first window"].values(t).map(
        {"outside": 1.0, "inside": 0.0}).astype(float),
    "lexical overlap": SLICES["lexical overlap"].values,
    "decision margin": lambda t: _margin(t, run_threshold(t)),  # error_features: the run's own threshold
    "gold agreement": gold_agreement,
}
# Features read from the model's own decision, which the tree does not split on: on one side of answerability the
# decision settles the outcome (every confident call on this demo model is an abstention, and an answerable
# question abstained on is an error whatever else holds), so a rule on them restates what an error is instead of
# saying which questions the model gets wrong. `error_features` still gives them, for a look of one's own.
DECISION_FEATURES = ("decision margin",)
_BINARY = {"answerable": ("unanswerable", "answerable"),
           "answer beyond the first window": ("answer within the first window", "answer beyond the first window")}
_TYPE = "question type = "
_CAUSE = "unanswerable cause = "  # present when SQuAD2-CR's causes are attached (with_causes)
_ONE_HOT = {_TYPE: "question type", _CAUSE: "unanswerable cause"}


def _margin(table: pd.DataFrame, threshold: float) -> pd.Series:
    return (table["null_odds"] - threshold).abs()


def error_features(data, *, threshold: float | None = None) -> pd.DataFrame:
    """The features the tree may split on, one row per question: ``ERROR_FEATURES`` (NaN where one does
    not apply, e.g. the gold answer's length of an unanswerable question) and one 0/1 column per
    question type, and one per cause of unanswerability when the table has SQuAD2-CR's causes
    (:func:`~xdanalysis.analysis.causes.with_causes`; NaN for answerable questions). The decision margin is
    |null odds − ``threshold``| (how close the call was; default: the run's threshold,
    :func:`~xdanalysis.analysis.thresholds.run_threshold`)."""
    threshold = run_threshold(data) if threshold is None else threshold
    table = table_of(data)
    reads = {**ERROR_FEATURES, "decision margin": lambda t: _margin(t, threshold)}
    frame = pd.DataFrame({name: pd.Series(read(table), index=table.index).astype(float)
                          for name, read in reads.items()}, index=table.index)
    types = table["question"].map(question_type)
    for name in QUESTION_TYPES:
        frame[_TYPE + name] = (types == name).astype(float)
    if "cause" in table.columns:  # a cause applies to unanswerable questions only: NaN elsewhere
        unanswerable = ~table["has_answer"].astype(bool)
        for name in pd.Categorical(table["cause"]).categories:
            frame[_CAUSE + name] = (table["cause"] == name).astype(float).where(unanswerable)
    return frame


def context_halves(table, *, seed: int = 0) -> np.ndarray:
    """True for the questions the tree is fitted on: half of the distinct contexts, chosen by a
    seeded shuffle (questions on one paragraph share its features, so they stay together)."""
    table = table_of(table)
    contexts = pd.unique(table["context"])
    order = np.random.default_rng(seed).permutation(len(contexts))
    fitted = set(contexts[order[: (len(contexts) + 1) // 2]])
    return table["context"].isin(fitted).to_numpy()


def _rate(wrong: np.ndarray) -> tuple[float, float, float]:
    """Error rate (%) and its Wilson interval; no interval under ``MIN_INTERVAL_COUNT`` questions."""
    if len(wrong) == 0:
        return np.nan, np.nan, np.nan
    low, high = wilson_interval(int(wrong.sum()), len(wrong)) if len(wrong) >= MIN_INTERVAL_COUNT else (np.nan,) * 2
    return 100 * wrong.mean(), 100 * low, 100 * high


def _format(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _condition_text(name: str, low: float, high: float, missing: bool) -> str:
    if name in _BINARY:
        return (_BINARY[name][1] if low >= 0.5 else _BINARY[name][0]) + (" (or not applicable)" if missing else "")
    if low > -np.inf and high < np.inf:
        text = f"{_format(low)} < {name} ≤ {_format(high)}"
    else:
        text = f"{name} > {_format(low)}" if low > -np.inf else f"{name} ≤ {_format(high)}"
    return text + (" (or none)" if missing else "")


def _rule(conditions: list) -> str:
    """The conditions of one path, merged per feature, in words."""
    bounds, missing = {}, {}
    inside, outside = {p: [] for p in _ONE_HOT}, {p: [] for p in _ONE_HOT}
    for name, goes_left, threshold, with_missing in conditions:
        prefix = next((p for p in _ONE_HOT if name.startswith(p)), None)
        if prefix:
            (outside if goes_left else inside)[prefix].append(name[len(prefix):])
            continue
        low, high = bounds.get(name, (-np.inf, np.inf))
        bounds[name] = (low, min(high, threshold)) if goes_left else (max(low, threshold), high)
        missing[name] = missing.get(name, True) and with_missing
    words = []
    for prefix, what in _ONE_HOT.items():
        if inside[prefix]:
            words.append(f"{what} {inside[prefix][0]}")
        elif outside[prefix]:
            words.append(f"{what} not " + " / ".join(outside[prefix]))
    words += [_condition_text(n, *bounds[n], missing[n]) for n in bounds]
    return " and ".join(words) or "all questions"


def _leaf_rules(tree, names: list, seen_missing: np.ndarray) -> dict:
    """``{leaf node: rule}`` from a fitted sklearn tree: each split's feature, side and threshold."""
    inner = tree.tree_
    go_left = getattr(inner, "missing_go_to_left", np.zeros(inner.node_count, dtype=bool))
    rules, stack = {}, [(0, [])]
    while stack:
        node, path = stack.pop()
        if inner.children_left[node] == -1:
            rules[node] = _rule(path)
            continue
        feature, threshold = inner.feature[node], inner.threshold[node]
        missing_here = bool(seen_missing[feature])
        stack.append((inner.children_left[node], path + [(names[feature], True, threshold,
                                                          missing_here and bool(go_left[node]))]))
        stack.append((inner.children_right[node], path + [(names[feature], False, threshold,
                                                           missing_here and not bool(go_left[node]))]))
    return rules


@dataclass
class ErrorTree:
    """The result of :func:`error_tree`. ``leaves``: one row per leaf (``rule``, ``count`` over all
    questions, the error rate on the half it was found on with its interval (``error_rate``,
    ``low``, ``high``), ``held_out_error_rate`` on the other half with its interval, ``errors`` and
    ``share of errors (%)`` over all questions, and ``verdict``: whether the rule held out of sample).
    ``leaf_of``: each question's leaf (by ``id``); ``base_rate``: the run's error rate (%)."""

    target: str
    side: str
    leaves: pd.DataFrame
    leaf_of: pd.Series
    base_rate: float
    table: pd.DataFrame = field(repr=False)
    model: object = field(repr=False)

    def examples(self, leaf) -> pd.DataFrame:
        """The questions in ``leaf`` (its number in ``leaves``), the errors first, most confident first."""
        if leaf not in set(self.leaves["leaf"]):
            raise ValueError(f"unknown leaf {leaf!r}; the leaves are {list(self.leaves['leaf'])}")
        picked = self.table[self.leaf_of.to_numpy() == leaf].copy()
        picked["confidence"] = picked["null_odds"].abs()
        picked["is_error"] = picked["outcome"].isin(ERROR_TARGETS[self.target])
        return picked.sort_values(["is_error", "confidence"], ascending=False, kind="stable")


# Which questions a tree is fitted on: all, or one side (answerable: has_answer True).
SIDES = {"all": None, "answerable": True, "unanswerable": False}

# The verdict of a tree that found no split (every question in one leaf: all right, all wrong, or no feature
# that separates them).
NO_RULE = "no rule found"


def _verdict(row, fit_base: float, held_base: float) -> str:
    """Whether a leaf's rule held on the half it never saw: its held-out interval on the same side
    of that half's error rate as on the half it was found on ("held"; "held in direction only" when
    the two halves' intervals do not even overlap), only its point on that side ("weaker out of
    sample"), or on the other side ("did not hold")."""
    if row["held_out_count"] < MIN_INTERVAL_COUNT:
        return "too few held-out questions"
    above = row["error_rate"] > fit_base
    if (above and row["held_out_low"] > held_base) or (not above and row["held_out_high"] < held_base):
        overlap = row["held_out_low"] <= row["high"] and row["low"] <= row["held_out_high"]
        return "held" if overlap or np.isnan(row["low"]) else "held in direction only"
    same_side = (row["held_out_error_rate"] > held_base) == above
    return "weaker out of sample" if same_side else "did not hold"


def error_tree(data, *, side: str = "all", target: str = "error", max_depth: int = 3, min_leaf: int = 20,
               seed: int = 0) -> ErrorTree:
    """Fit a shallow decision tree to the run's errors (``target``: ``"error"`` or one error
    outcome of ``ERROR_TARGETS``) on half the contexts (:func:`context_halves`), and score every leaf on
    both halves: a rule that is real keeps its error rate on the half it never saw. Error rates carry
    Wilson intervals (never a degenerate [100, 100] for a leaf that is all errors).

    ``side``: ``"answerable"`` or ``"unanswerable"`` fits the questions of one side only (the features that
    are constant or empty there, answerability itself among them, are left out), so the tree cannot
    rediscover the answerable / unanswerable split; ``"all"`` fits every question. The features read from the
    model's decision (``DECISION_FEATURES``) are never split on: the rules say which questions go wrong.

    Example::

        tree = error_tree(load_run("runs/demo"))
        tree.leaves[["rule", "count", "error_rate", "held_out_error_rate", "share of errors (%)", "verdict"]]
        tree.examples(tree.leaves["leaf"].iloc[0])
    """
    from sklearn.tree import DecisionTreeClassifier

    check_choice("target", target, list(ERROR_TARGETS))
    for name, value in (("min_leaf", min_leaf), ("max_depth", max_depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"error_tree: {name} must be a whole number of at least 1, got {value!r}")
    check_choice("side", side, list(SIDES))
    table = table_of(data)
    table = outcomes(table) if "outcome" not in table.columns else table.copy()
    if SIDES[side] is not None:
        table = table[table["has_answer"] == SIDES[side]].reset_index(drop=True)
    features = error_features(table, threshold=run_threshold(data)).drop(columns=list(DECISION_FEATURES))
    features = features.loc[:, (features.nunique(dropna=True) > 1).to_numpy()]  # what can split on this side
    wrong = table["outcome"].isin(ERROR_TARGETS[target]).to_numpy()
    fit = context_halves(table, seed=seed)
    if fit.all() or not fit.any():
        raise ValueError("error_tree needs questions on at least two different contexts to cross-fit")
    model = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=seed)
    model.fit(features[fit].to_numpy(), wrong[fit])
    leaf = model.apply(features.to_numpy())
    rules = _leaf_rules(model, list(features.columns), features[fit].isna().any().to_numpy())
    rows = []
    for k, node in enumerate(sorted(rules)):
        here = leaf == node
        rate, low, high = _rate(wrong[here & fit])
        held, held_low, held_high = _rate(wrong[here & ~fit])
        rows.append({"leaf": int(node), "rule": rules[node], "count": int(here.sum()), "fit_count": int((here & fit).sum()),
                     "held_out_count": int((here & ~fit).sum()), "error_rate": rate, "low": low, "high": high,
                     "held_out_error_rate": held, "held_out_low": held_low, "held_out_high": held_high,
                     "errors": int(wrong[here].sum()),
                     "share of errors (%)": 100 * wrong[here].sum() / wrong.sum() if wrong.any() else np.nan})
    leaves = pd.DataFrame(rows).sort_values("error_rate", ascending=False, kind="stable").reset_index(drop=True)
    fit_base, held_base = 100 * wrong[fit].mean(), 100 * wrong[~fit].mean()
    if len(leaves) == 1:  # no split: no rule was found, so none can hold or fail out of sample
        leaves["verdict"] = NO_RULE
    else:
        leaves["verdict"] = [_verdict(row, fit_base, held_base) for _, row in leaves.iterrows()]
    return ErrorTree(target=target, side=side, leaves=leaves, leaf_of=pd.Series(leaf, index=table["id"].to_numpy()),
                     base_rate=100 * wrong.mean(), table=table, model=model)
