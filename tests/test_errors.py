"""Outcomes, slices, bootstrap intervals and thresholds on hand-built runs with known answers."""

import numpy as np
import pandas as pd
import pytest

from xdanalysis.analysis.calibration import calibration_summary, reliability
from xdanalysis.analysis.outcomes import confusion, outcomes
from xdanalysis.analysis.selective import aurc, coverage_at, curve_aurc, risk_coverage, selective_summary
from xdanalysis.analysis.slices import SLICES, Slice, applicable_slices, examples, slice_table, slice_values
from xdanalysis.analysis.thresholds import cross_fitted_threshold, threshold_curve, threshold_summary
from xdanalysis.core.metrics import question_scores, squad_v2_scores
from xdanalysis.core.stats import bootstrap_ci
from xdanalysis.core.text import lexical_overlap, question_type

CONTEXT = "The Eiffel Tower in Paris was finished in 1889. It is made of iron. Gustave Eiffel built it."


def row(qid, question, golds, answer, null_odds, best_span=None, plausible=(), title="Paris"):
    best_span = answer if best_span is None else best_span
    start = CONTEXT.find(best_span) if best_span else -1
    return {
        "id": qid, "title": title, "context": CONTEXT, "question": question,
        "answer_texts": list(golds), "answer_starts": [CONTEXT.find(g) for g in golds],
        "is_impossible": not golds, "plausible_texts": [p for p in plausible],
        "plausible_starts": [CONTEXT.find(p) for p in plausible],
        "answer": answer, "best_span_text": best_span, "answer_start": start,
        "answer_end": start + len(best_span) if best_span else -1,
        "null_odds": null_odds, "null_score": 0.0, "best_span_score": -null_odds,
        "n_windows": 1, "best_window": 0, "first_window_chars": len(CONTEXT),
        "question_tokens": len(question.split()), "context_tokens": 20, "answer_tokens": 2.0 if golds else np.nan,
        "prediction_tokens": len(answer.split()),
    }


def hand_run():
    rows = [
        row("c", "When was the Eiffel Tower finished?", ["1889"], "1889", -3.0),
        row("long", "When was it finished?", ["1889"], "finished in 1889", -2.0),
        row("short", "What is it made of?", ["made of iron"], "iron", -1.0),
        row("shift", "Where is the tower?", ["Tower in Paris"], "Paris was finished", -0.5),
        row("wrong", "Who built it?", ["Gustave Eiffel"], "1889", -0.2),
        row("abst", "How many towers?", ["The Eiffel Tower"], "", 1.5, best_span="The Eiffel Tower"),
        row("ca", "Is it made of gold?", [], "", 2.0, best_span="iron"),
        row("trap", "Who built the Louvre?", [], "Gustave Eiffel", -0.9, plausible=["Gustave Eiffel"]),
        row("fa", "Which year was the Louvre finished?", [], "iron", -0.1, plausible=["1889"]),
    ]
    table = pd.DataFrame(rows)
    table["has_answer"] = table["answer_texts"].map(len) > 0
    exact, f1 = question_scores(dict(zip(table["id"], table["answer_texts"])), dict(zip(table["id"], table["answer"])))
    table["exact"] = table["id"].map(exact)
    table["f1"] = table["id"].map(f1)
    return table


def test_outcomes_by_hand():
    result = outcomes(hand_run()).set_index("id")
    assert result["outcome"].to_dict() == {
        "c": "correct", "long": "partial_long", "short": "partial_short", "shift": "partial_shifted",
        "wrong": "wrong_span", "abst": "abstained", "ca": "correct_abstention", "trap": "false_answer",
        "fa": "false_answer"}
    assert result["plausible_trap"].to_dict() == {k: k == "trap" for k in result.index}


def test_confusion_counts_and_rates():
    matrix = confusion(hand_run())
    assert matrix.loc["has answer", "answered"] == 5 and matrix.loc["has answer", "abstained"] == 1
    assert matrix.loc["no answer", "answered"] == 2 and matrix.loc["no answer", "abstained"] == 1
    assert matrix.loc["has answer", "answered rate"] == pytest.approx(5 / 6)
    assert matrix.loc["all", "answered"] == 7


@pytest.mark.parametrize("question, expected", [
    ("What is the capital?", "what"), ("In what year did it end?", "what"), ("Which river is longest?", "which"),
    ("Who wrote it?", "who"), ("To whom was it sent?", "whom"), ("Whose idea was it?", "whose"),
    ("When did it open?", "when"), ("Where is it?", "where"), ("Why did it fail?", "why"),
    ("How many people live there?", "how many"), ("How much did it cost?", "how much"),
    ("How did it start?", "how (other)"), ("Is Paris in France?", "yes/no"), ("Did it rain?", "yes/no"),
    ("The tower was built by?", "other"), ("Name the architect.", "other"),
    ("  WHAT happened?", "what"), ("The city of what country?", "what"),
])
def test_question_type(question, expected):
    assert question_type(question) == expected


def test_lexical_overlap_uses_the_answer_sentence():
    # question content words: built, tower -> sentence 3 has 'built' only: 1/2
    assert lexical_overlap("Who built the tower?", CONTEXT, CONTEXT.find("Gustave")) == pytest.approx(0.5)
    assert lexical_overlap("Who built the tower?", CONTEXT, CONTEXT.find("1889")) == pytest.approx(0.5)
    assert np.isnan(lexical_overlap("Who built it?", CONTEXT, -1))


def test_bootstrap_matches_a_direct_computation():
    values = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.5])
    rng = np.random.default_rng(7)
    direct = [values[rng.integers(0, 6, size=6)].mean() for _ in range(500)]
    assert bootstrap_ci(values, n_boot=500, seed=7) == pytest.approx(
        (np.quantile(direct, 0.025), np.quantile(direct, 0.975)))
    low, high = bootstrap_ci(values, n_boot=2000, seed=1)
    assert low < values.mean() < high


def test_slice_table_numbers():
    table = outcomes(hand_run())
    frame = slice_table(table, "question type", n_boot=200).set_index("bucket")
    assert frame.loc["when", "count"] == 2 and frame.loc["when", "EM"] == 50.0
    assert frame.loc["when", "HasAns_count"] == 2 and frame.loc["when", "NoAns_count"] == 0
    assert frame.loc["who", "count"] == 2 and frame.loc["who", "false_answer"] == 1 and frame.loc["who", "plausible_trap"] == 1
    assert frame["count"].sum() == len(table)
    assert frame["share (%)"].sum() == pytest.approx(100.0)
    for bucket, part in table.groupby(table["question"].map(question_type)):
        assert frame.loc[bucket, "F1"] == pytest.approx(100 * part["f1"].mean())
        assert np.isnan(frame.loc[bucket, "F1_low"])  # 1 or 2 questions: a mean, no interval
    many = outcomes(pd.concat([table.assign(id=table["id"] + str(k)) for k in range(12)], ignore_index=True))
    frame = slice_table(many, "question type", n_boot=200).set_index("bucket")
    for bucket, part in many.groupby(many["question"].map(question_type)):
        assert frame.loc[bucket, "F1_low"] <= frame.loc[bucket, "F1"] <= frame.loc[bucket, "F1_high"]


def test_numeric_buckets_fixed_quantile_and_custom_slices():
    table = outcomes(hand_run())
    fixed = slice_values(table, "question length", edges=[0, 4, 5, 100])
    assert fixed.astype(str).value_counts().to_dict() == {"≤4": 5, "5": 2, "6–100": 2}
    assert list(fixed.cat.categories) == ["≤4", "5", "6–100"]  # in order, as the edges give them
    assert slice_values(table, "question length", quantiles=2).nunique() == 2
    custom = Slice("mentions Eiffel", lambda t: t["question"].str.contains("Eiffel"), kind="category")
    assert slice_table(table, custom, n_boot=50).set_index("bucket").loc["True", "count"] == 1
    assert set(slice_table(table, "title", n_boot=50)["bucket"]) == {"Paris"}
    with pytest.raises(KeyError, match="unknown slice"):
        slice_values(table, "nonsense")
    for name in applicable_slices(table):  # every built-in slice buckets every question or marks it missing
        assert len(slice_values(table, name)) == len(table)


def test_threshold_curve_by_hand_and_against_the_official_search():
    table = hand_run()
    curve = threshold_curve(table, [-10.0, 0.0, 10.0]).set_index("threshold")
    # abstain on everything: only the 3 unanswerable are right
    assert curve.loc[-10.0, "EM"] == pytest.approx(100 * 3 / 9)
    # threshold 0 = the run's answers: EM c only among answerable + ca
    assert curve.loc[0.0, "EM"] == pytest.approx(100 * table["exact"].mean())
    # answer everything with the best span: abst becomes right ("The Eiffel Tower"), ca wrong
    assert curve.loc[10.0, "HasAns_EM"] == pytest.approx(100 * 2 / 6)
    assert curve.loc[10.0, "NoAns_EM"] == 0.0
    summary = threshold_summary(table).set_index(["metric", "threshold"])
    official = squad_v2_scores(dict(zip(table["id"], table["answer_texts"])), dict(zip(table["id"], table["answer"])),
                               dict(zip(table["id"], 1 / (1 + np.exp(-table["null_odds"])))))
    assert summary.loc[("F1", "best"), "overall"] == pytest.approx(official["best_f1"])
    assert summary.loc[("EM", "best"), "overall"] == pytest.approx(official["best_exact"])
    assert summary.loc[("F1", "gain"), "overall"] == pytest.approx(official["best_f1"] - official["f1"])


def test_examples_filters_and_sorts_by_confidence():
    table = outcomes(hand_run())
    picked = examples(table, outcome=["false_answer", "partial_long"])
    assert list(picked["id"]) == ["long", "trap", "fa"]  # |null odds| 2.0, 1.0, 0.1
    assert list(examples(table, by="question type", bucket="who")["id"]) == ["trap", "wrong"]
    with pytest.raises(ValueError, match="unknown outcome"):
        examples(table, outcome="bad")


def test_every_bucket_is_kept_even_when_empty():
    from xdanalysis.analysis.slices import SLICE_COLUMNS

    table = outcomes(hand_run())
    frame = slice_table(table, "gold answer length", n_boot=50)
    assert list(frame["bucket"]) == ["≤1", "2", "3", "4–5", "6–10", ">10"]  # in order, empty ones included
    assert frame.set_index("bucket").loc["≤1", "count"] == 0 and np.isnan(frame.set_index("bucket").loc["≤1", "F1"])
    assert frame["count"].sum() == table["has_answer"].sum()  # unanswerable questions have no gold length
    unanswerable = table[~table["has_answer"]]
    empty = slice_table(unanswerable, "gold answer length", n_boot=50)
    assert list(empty.columns) == SLICE_COLUMNS and len(empty) == 6 and (empty["count"] == 0).all()
    assert empty["F1"].isna().all()
    one = slice_table(unanswerable.iloc[1:2], "answer position", n_boot=50)  # one question (with a plausible answer)
    assert one["count"].sum() == 1 and list(one.columns) == SLICE_COLUMNS
    for name in applicable_slices(unanswerable):  # no slice fails on a run with no answerable question
        assert list(slice_table(unanswerable, name, n_boot=20).columns) == SLICE_COLUMNS


def decided_at(table: pd.DataFrame, threshold: float):
    """The table as a run decided at ``threshold`` (what its run.json would record)."""
    from pathlib import Path

    from xdanalysis.runs.run import Run

    return Run(path=Path("."), table=table, info={"settings": {"null_score_diff_threshold": threshold}})


def test_threshold_summary_reads_the_runs_own_threshold():
    table = outcomes(hand_run())
    # decide again at threshold 1.6: "abst" (null odds 1.5) is now answered
    table.loc[table["id"] == "abst", "answer"] = "The Eiffel Tower"
    exact, f1 = question_scores(dict(zip(table["id"], table["answer_texts"])), dict(zip(table["id"], table["answer"])))
    table["exact"], table["f1"] = table["id"].map(exact), table["id"].map(f1)
    summary = threshold_summary(decided_at(table, 1.6)).set_index(["metric", "threshold"])
    assert summary.loc[("F1", "current"), "null_odds_threshold"] == 1.6
    # the current row is what the run really scores, not the score at 0.0
    assert summary.loc[("F1", "current"), "overall"] == pytest.approx(100 * table["f1"].mean())
    assert summary.loc[("F1", "current"), "answered (%)"] == pytest.approx(100 * (table["answer"] != "").mean())
    assert np.isnan(summary.loc[("F1", "gain"), "null_odds_threshold"])  # a gain has no threshold
    # a table without its run: the threshold is recovered from the decisions themselves
    recovered = threshold_summary(table).set_index(["metric", "threshold"])
    assert recovered.loc[("F1", "current"), "overall"] == pytest.approx(100 * table["f1"].mean())
    assert 1.5 <= recovered.loc[("F1", "current"), "null_odds_threshold"] < 2.0


# Selective QA and calibration ----------------------------------------------------------------

def test_risk_coverage_and_aurc_by_hand():
    table = hand_run()
    # By hand: the questions by null odds (most confident first) and the F1 of each best span.
    ranked = ["c", "long", "short", "trap", "shift", "wrong", "fa", "abst", "ca"]
    f1 = [1.0, 0.5, 0.5, 0.0, 1 / 3, 0.0, 0.0, 1.0, 0.0]  # "finished in 1889" vs "1889": P 1/3, R 1 -> 0.5
    risks = [1 - sum(f1[:k]) / k for k in range(1, 10)]
    curve = risk_coverage(table)
    assert curve["id"].tolist() == ranked
    np.testing.assert_allclose(curve["risk"], risks)
    np.testing.assert_allclose(curve["coverage"], np.arange(1, 10) / 9)
    assert aurc(table) == pytest.approx(sum(risks) / 9)
    assert coverage_at(curve, 0.8) == pytest.approx(1 / 9)  # only the first reaches risk <= 0.2
    assert curve_aurc(curve) == pytest.approx(sum(risks) / 9)
    # answering everything at the end: risk = 1 - mean F1 of every best span
    assert curve["risk"].iloc[-1] == pytest.approx(1 - sum(f1) / 9)
    summary = selective_summary(table).iloc[0]
    oracle = sorted(f1, reverse=True)
    assert summary["oracle AURC (%)"] == pytest.approx(100 * np.mean([1 - sum(oracle[:k]) / k for k in range(1, 10)]))
    assert summary["excess AURC (%)"] == pytest.approx(summary["AURC (%)"] - summary["oracle AURC (%)"])
    by = selective_summary(table, by="has_answer")  # sliceable like everything else
    assert by["count"].tolist() == [3, 6] and by["bucket"].tolist() == [False, True]


def test_risk_coverage_ties_keep_the_runs_order():
    table = hand_run()
    table["null_odds"] = 0.0
    assert risk_coverage(table)["id"].tolist() == table["id"].tolist()


def calibration_table():
    return pd.DataFrame({"id": list("abcd"), "has_answer": [True, True, True, False],
                         "answer": ["x", "y", "z", ""], "span_probability": [0.9, 0.8, 0.3, 0.2],
                         "na_prob": [0.1, 0.2, 0.7, 0.6], "exact": [1, 0, 1, 1]})


def test_reliability_ece_and_brier_by_hand():
    result = reliability(calibration_table(), bins=2)
    frame, summary = result.bins, result.summary.set_index("group")
    # decisions: 0.9 right, 0.8 wrong, 0.3 right, abstained with na_prob 0.6 right
    # bins (0, .5] and (.5, 1]: {0.3: 1/1} and {0.9, 0.8, 0.6: 2/3}
    assert summary.loc["all", "ECE"] == pytest.approx(0.25 * 0.7 + 0.75 * abs(2 / 3 - (0.9 + 0.8 + 0.6) / 3))
    assert summary.loc["all", "Brier"] == pytest.approx((0.01 + 0.64 + 0.49 + 0.16) / 4)
    assert summary.loc["unanswerable", "count"] == 1 and summary.loc["unanswerable", "Brier"] == pytest.approx(0.16)
    assert summary.loc["answerable", "ECE"] == pytest.approx(1 / 3 * 0.7 + 2 / 3 * abs(0.5 - 0.85))
    everything = frame[frame["group"] == "all"]
    assert everything["count"].tolist() == [1, 3]
    assert everything["accuracy"].tolist() == pytest.approx([1.0, 2 / 3])
    assert calibration_summary(calibration_table(), bins=2)["ECE"].iloc[0] == pytest.approx(summary.loc["all", "ECE"])


def test_reliability_reads_span_probabilities_from_the_runs_nbest():
    from types import SimpleNamespace

    table = calibration_table().drop(columns="span_probability")
    nbest = {"a": [{"text": "", "probability": 0.05}, {"text": "x", "probability": 0.9}],
             "b": [{"text": "y", "probability": 0.8}], "c": [{"text": "z", "probability": 0.3}],
             "d": [{"text": "", "probability": 0.99}]}
    run = SimpleNamespace(table=table, nbest=nbest)
    summary = reliability(run, bins=2).summary.set_index("group")
    assert summary.loc["all", "Brier"] == pytest.approx((0.01 + 0.64 + 0.49 + 0.16) / 4)
    with pytest.raises(ValueError, match="n-best"):
        reliability(table)


def known_threshold_table(n=40, seed=1):
    """Answerable questions with right spans at null odds < 0; unanswerable with wrong spans at > 0."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        answerable = i % 2 == 0
        rows.append({"id": f"q{i}", "answer_texts": ["Paris"] if answerable else [], "best_span_text": "Paris",
                     "null_odds": -rng.uniform(1, 3) if answerable else rng.uniform(1, 3)})
    table = pd.DataFrame(rows)
    table["has_answer"] = table["answer_texts"].map(len) > 0
    table["answer"] = "Paris"  # decided at a threshold above every null odds: it always answers
    return decided_at(table, 10.0)


def test_cross_fitted_threshold_on_a_table_where_the_answer_is_known():
    audit = cross_fitted_threshold(known_threshold_table(), folds=5, n_boot=200)
    assert audit["current_threshold"] == 10.0
    assert audit["default_f1"] == pytest.approx(50.0)  # answers everything: right on the answerable half only
    assert audit["cross_fitted_f1"] == pytest.approx(100.0)  # any fold's threshold separates the two groups
    assert audit["best_f1"] == pytest.approx(100.0) and audit["optimism"] == pytest.approx(0.0)
    assert audit["gain"] == pytest.approx(50.0) and audit["gain_low"] <= 50.0 <= audit["gain_high"]
    assert all(-1 <= t < 1 for t in audit["fold_thresholds"])
    assert not audit["best_threshold_is_zero"]


def test_cross_fitting_sees_through_an_overfitted_threshold():
    # Null odds that say nothing about correctness: the in-sample best threshold overfits.
    rng = np.random.default_rng(3)
    table = known_threshold_table(200).table
    table["null_odds"] = rng.normal(size=len(table))
    table["answer"] = np.where(table["null_odds"] <= 0, "Paris", "")
    audit = cross_fitted_threshold(decided_at(table, 0.0), folds=5, n_boot=200)
    assert audit["best_f1"] > audit["cross_fitted_f1"]  # the official figure is optimistic
    assert audit["optimism"] == pytest.approx(audit["best_f1"] - audit["cross_fitted_f1"])


def test_a_threshold_of_exactly_zero_is_flagged():
    table = known_threshold_table(10).table
    table["null_odds"] = -np.inf  # no-answer probability 0 everywhere: as if scored without them
    assert cross_fitted_threshold(decided_at(table, 10.0), folds=2, n_boot=50)["best_threshold_is_zero"]
    with pytest.raises(ValueError, match="folds"):
        cross_fitted_threshold(table, folds=1)


def test_rates_shown_to_people_are_percent_and_say_so():
    table = hand_run()
    selective = selective_summary(table)
    rates = [c for c in selective.columns if c not in ("bucket", "count")]
    assert rates and all(c.endswith("(%)") for c in rates)
    assert selective.loc[0, "AURC (%)"] == pytest.approx(100 * aurc(table))  # the legend's 58.4, not 0.584
    summary = threshold_summary(decided_at(outcomes(table), 0.0))
    assert "answered (%)" in summary.columns and summary["answered (%)"].dropna().between(-100, 100).all()
    current = summary[(summary["metric"] == "F1") & (summary["threshold"] == "current")].iloc[0]
    assert current["answered (%)"] == pytest.approx(100 * (table["answer"] != "").mean())
