"""Every sentence a notebook prints, against the conditions that make it true: each finding on numbers that
make it say one thing, and on numbers that make it say the other."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from xdanalysis.core.stats import wilson_interval
from xdanalysis.views.findings import (
    ONE_SITE,
    SAME_WITHIN,
    as_markdown,
    cka_finding,
    concentration_finding,
    deletion_finding,
    difference_words,
    gold_finding,
    lens_finding,
    patching_finding,
    position_or_order_finding,
    ranking_finding,
    selective_finding,
    swap_finding,
    threshold_gain_finding,
)


@pytest.mark.parametrize("k,n", [(70, 70), (0, 20), (5, 10), (29, 101), (1, 1)])
def test_wilson_interval_is_scipys_and_never_degenerate(k, n):
    low, high = wilson_interval(k, n)
    expected = binomtest(k, n).proportion_ci(method="wilson")
    assert low == pytest.approx(expected.low, abs=1e-12) and high == pytest.approx(expected.high, abs=1e-12)
    assert low < high  # all 70 of 70 is not [100, 100]


def test_difference_words_need_the_interval_to_exclude_zero():
    assert difference_words(2.0, 0.1, 3.9) == "better"
    assert difference_words(-2.0, -3.9, -0.1) == "worse"
    assert difference_words(2.0, -0.1, 3.9).startswith("no difference")
    assert difference_words(2.0, math.nan, math.nan).startswith("no interval")


def probe_rows(**rates):
    summary = pd.DataFrame([{"probe": p, "n": 20, "consistency": c, "low": c - 10, "high": c + 10,
                             "consistency_if_correct": c} for p, c in rates.items()])
    return summary


@pytest.mark.parametrize("moved,shuffled,verdict", [
    (60.0, 90.0, "Position matters more than order"),
    (90.0, 60.0, "Order matters more than position"),
    (80.0, 80.0 + SAME_WITHIN - 0.1, "Position and order cost about the same"),
])
def test_position_or_order_follows_its_margin(moved, shuffled, verdict):
    summary = probe_rows(move_answer_sentence_start=moved, move_answer_sentence_end=moved + 20,
                         shuffle_sentences=shuffled)
    finding = position_or_order_finding(summary)
    assert verdict in finding.sentence and "Confounded" in finding.sentence
    assert finding.facts["moved"] == moved  # the worse of the two moves
    assert position_or_order_finding(probe_rows(shuffle_sentences=50.0)) is None  # nothing to compare


def failure_rows(probe, **counts):
    base = {"probe": probe, "n": 20, "missed": 0, "abstained": 0, "kept the old answer": 0, "another answer": 0,
            "answered anyway": 0, "abstained before": 0, "abstained after": 0,
            "abstained after, of those answered before": 0, "answered before": 0}
    return pd.DataFrame([{**base, **counts}])


def test_deletion_says_what_it_can_and_cannot_tell():
    summary = probe_rows(remove_answer_sentence=70.0)
    read = deletion_finding(summary, failure_rows("remove_answer_sentence", **{
        "abstained after": 14, "abstained before": 6, "answered before": 14,
        "abstained after, of those answered before": 8}))
    assert "it now abstains on 8 (57%)" in read.sentence
    never = deletion_finding(summary, failure_rows("remove_answer_sentence", **{"abstained before": 20,
                                                                                  "abstained after": 20}))
    assert "cannot say whether it reads the context" in never.sentence


def test_swap_names_the_commonest_miss_or_a_tie_or_none():
    summary = probe_rows(swap_answer=40.0)
    mostly = swap_finding(summary, failure_rows("swap_answer", missed=12, abstained=9, **{"another answer": 3}))
    assert mostly.sentence.endswith("it mostly abstains rather than answering.")
    tie = swap_finding(summary, failure_rows("swap_answer", missed=6, abstained=3, **{"kept the old answer": 3}))
    assert "split evenly between abstained and kept the old answer" in tie.sentence
    assert swap_finding(summary, failure_rows("swap_answer")).sentence.endswith("it missed none.")


def test_selective_finding_reads_the_curve_at_half_and_at_all():
    curve = pd.DataFrame({"risk": [0.0, 0.0, 0.5, 0.75]})  # answers 2 of 4: F1 100; all: 25
    finding = selective_finding(curve)
    assert finding.facts["half_f1"] == 100 and finding.facts["all_f1"] == 25 and "(higher;" in finding.sentence
    flat = selective_finding(pd.DataFrame({"risk": [0.5, 0.5]}))
    assert "no higher" in flat.sentence


def test_threshold_gain_is_a_gain_only_when_its_interval_excludes_zero():
    audit = {"best_f1": 55.0, "default_f1": 50.0, "gain": 2.0, "gain_low": 0.5, "gain_high": 3.5}
    assert threshold_gain_finding(audit).sentence.endswith("a real gain.")
    assert "no reliable gain" in threshold_gain_finding({**audit, "gain_low": -0.5}).sentence


def cells(share_of_errors, low, high, share_of_questions):
    return pd.DataFrame([{"cell": "question type what × context length 101–150", "questions": 210,
                          "share of errors (%)": share_of_errors, "share of errors low (%)": low,
                          "share of errors high (%)": high, "share of questions (%)": share_of_questions,
                          "ratio": share_of_errors / share_of_questions,
                          "concentrated": low > share_of_questions}])


def test_concentration_is_claimed_only_above_the_share_of_questions():
    none = concentration_finding(cells(29.0, 25.0, 33.0, 27.0))  # notebook 02's 1.07 ratio
    assert "no concentration" in none.sentence and "×1.07" in none.sentence
    assert "concentrated" in concentration_finding(cells(40.0, 35.0, 45.0, 20.0)).sentence
    assert concentration_finding(cells(1, 0, 2, 1).iloc[:0]) is None


def per_layer(f1, answered):
    return pd.DataFrame({"layer": range(len(f1)), "HasAns_F1": f1, "answered": answered})


def test_lens_peak_is_said_with_the_answer_rates_that_explain_it():
    bought = lens_finding(per_layer([5.0, 51.5, 40.0, 28.0], [100.0, 92.0, 60.0, 29.0]))
    assert bought.facts["peak_layer"] == 1 and "not a better reader" in bought.sentence
    assert "92%" in bought.sentence and "29%" in bought.sentence
    same_rate = lens_finding(per_layer([5.0, 40.0, 35.0], [30.0, 31.0, 29.0]))
    assert "similar answer rate" in same_rate.sentence
    last = lens_finding(per_layer([5.0, 20.0, 30.0], [90.0, 50.0, 30.0]))
    assert "the last layer is the best reader" in last.sentence


def patches(rows):
    return pd.DataFrame([{"layer": layer, "site": site, "pairs": 40, "restored": r, "restored_low": lo,
                          "restored_high": hi} for layer, site, r, lo, hi in rows])


def test_patching_names_one_site_only_when_its_interval_stands_apart():
    overlapping = patching_finding(patches([(1, "question", 0.30, 0.02, 0.82), (2, "answer", 0.26, 0.05, 0.6),
                                            (0, "all", 0.9, 0.8, 1.0), (3, "all", 0.95, 0.9, 1.0)]))
    assert overlapping.sentence.startswith("**No single site") and "overlaps the runner-up" in overlapping.sentence
    assert "0.90 to 0.95" in overlapping.sentence
    carried = patching_finding(patches([(4, "null", 0.8, ONE_SITE + 0.1, 0.95), (2, "answer", 0.2, 0.1, 0.3)]))
    assert carried.facts["one_site"] and carried.sentence.startswith("**The decision to abstain passes through one")
    low = patching_finding(patches([(4, "null", 0.6, ONE_SITE - 0.1, 0.8), (2, "answer", 0.1, 0.0, 0.2)]))
    assert not low.facts["one_site"]


def test_cka_speaks_in_the_layer_ids_the_student_was_cut_with():
    # hidden states 0..3 of each; the student's hidden state 1 (its layer 0) is most like teacher state 1 ...
    matrix = pd.DataFrame(np.array([[1.0, 0.5, 0.4, 0.3],
                                    [0.5, 0.9, 0.2, 0.1],
                                    [0.4, 0.3, 0.2, 0.2],
                                    [0.3, 0.1, 0.8, 0.9]]))
    finding = cka_finding(matrix, cut_from=[0, 2, 4])
    assert finding.facts["pairs"] == [(0, 0), (1, 2), (2, 2)]
    assert "student layer 0 ≈ teacher layer 0" in finding.sentence
    assert finding.facts["matching"] == 2 and "2 of 3" in finding.sentence  # layer 2 came from 4, not 2


def metrics(overall, answerable):
    return pd.DataFrame([{"group": "overall", "metric": "F1", "difference": overall[0], "low": overall[1],
                          "high": overall[2]},
                         {"group": "HasAns", "metric": "F1", "difference": answerable[0], "low": answerable[1],
                          "high": answerable[2]}])


def test_ranking_says_worse_when_it_did_worse():
    worse = ranking_finding(metrics((-3.0, -5.0, -1.0), (-4.0, -7.0, -1.0)), chosen=[1, 3, 5], default=[0, 2, 4])
    assert "did worse than the default" in worse.sentence
    # notebook 09's case: answerable F1 worse, overall within noise; said as such, not "did worse" outright
    answerable = ranking_finding(metrics((-0.23, -1.36, 0.90), (-2.35, -3.96, -1.02)), chosen=[3, 4, 5],
                                 default=[0, 2, 4])
    assert "did worse on answerable questions, with no overall difference, than the default" in answerable.sentence
    traded = ranking_finding(metrics((1.0, 0.2, 2.0), (-2.0, -3.0, -1.0)), chosen=[1, 3, 5], default=[0, 2, 4])
    assert "traded one score for the other against the default" in traded.sentence
    same = ranking_finding(metrics((0.5, -1.0, 2.0), (1.0, -0.5, 2.5)), chosen=[1, 3, 5], default=[0, 2, 4])
    assert "is not distinguishable from" in same.sentence
    itself = ranking_finding(metrics((0, 0, 0), (0, 0, 0)), chosen=[0, 2, 4], default=[0, 2, 4])
    assert "picks the lab's default [0, 2, 4] itself" in itself.sentence


def test_as_markdown_leaves_out_what_could_not_be_said():
    finding = threshold_gain_finding({"best_f1": 1.0, "default_f1": 0.0, "gain": 0.0, "gain_low": -1.0,
                                      "gain_high": 1.0})
    assert as_markdown([None, finding]) == f"* {finding.sentence}"


def test_gold_finding_says_when_the_data_has_no_plausible_answers():
    from types import SimpleNamespace

    values = {"F1 against any gold (official, %)": 28.2, "F1 against the majority gold (%)": 26.0,
              "answers matching a minority gold only": 4, "errors within the annotators' disagreement": 7,
              "confident answers to unanswerable questions with their plausible answer": 3}
    with_traps = gold_finding(SimpleNamespace(summary=pd.DataFrame({"value": pd.Series(values)})))
    assert "from 28.2 to 26.0" in with_traps.sentence and "3 unanswerable questions" in with_traps.sentence
    values["confident answers to unanswerable questions with their plausible answer"] = math.nan
    without = gold_finding(SimpleNamespace(summary=pd.DataFrame({"value": pd.Series(values)})))
    assert "this data has no plausible answers" in without.sentence


def lab_rows(rows):
    return pd.DataFrame([{"student": n, "F1": f1, "HasAns F1": has, "NoAns F1": 90.0, "answered (%)": 100 * answered,
                          "forced HasAns F1": forced, "null-odds threshold": t} for n, f1, has, answered, forced, t in rows]
                        ).set_index("student")


def test_the_lab_says_still_collapsed_when_it_is():
    from xdanalysis.views.findings import ABSTAINING_WITHIN, collapse_finding, cure_finding

    always = 52.0
    at_zero = lab_rows([("hard labels", 52.0, 0.0, 0.0, 20.0, 0.0), ("soft targets", 51.7, 1.55, 0.02, 40.0, 0.0)])
    collapse = collapse_finding(at_zero, always=always, share_on_cls=0.8)
    assert collapse.sentence.startswith("**The collapse.**") and collapse.facts["collapsed"] == list(at_zero.index)
    refit = lab_rows([("hard labels", 52.0, 0.0, 0.0, 20.0, 3.0), ("soft targets", 52.1, 2.35, 0.03, 40.0, -1.2)])
    forced = {"difference": 18.8, "low": 15.0, "high": 22.0, "questions": 400}
    cure = cure_finding(at_zero, refit, always=always, forced=forced, transfer=1000)
    assert cure.sentence.startswith("**The two levers did not lift the collapse: every student is still collapsed.**")
    assert "Confounded" in cure.sentence and cure.sentence.count("still collapsed") == 3
    cured = lab_rows([("hard labels", 52.0 + ABSTAINING_WITHIN + 5, 30.0, 0.4, 20.0, 3.0),
                      ("soft targets", 60.0, 35.0, 0.5, 40.0, -1.2)])
    assert cure_finding(at_zero, cured, always=always, forced=forced, transfer=1000).sentence.startswith(
        "**The two levers lifted the collapse: no student is collapsed any more.**")
    part = lab_rows([("hard labels", 52.0, 0.0, 0.0, 20.0, 3.0), ("soft targets", 60.0, 35.0, 0.5, 40.0, -1.2)])
    assert "**The two levers lifted the collapse for 1 of 2 students.**" in cure_finding(at_zero, part, always=always, forced=forced, transfer=1).sentence


def test_head_to_head_between_collapsed_students_says_so():
    from types import SimpleNamespace

    from xdanalysis.views.findings import head_to_head_finding

    metrics = pd.DataFrame([
        {"group": "HasAns", "metric": "F1", "hard": 0.0, "soft": 2.35, "always abstaining": 0.0, "difference": 2.35,
         "low": 1.02, "high": 3.96},
        {"group": "overall", "metric": "F1", "hard": 51.99, "soft": 52.09, "always abstaining": 51.99,
         "difference": 0.10, "low": -0.95, "high": 1.16}])
    finding = head_to_head_finding(SimpleNamespace(labels=("hard", "soft"), metrics=metrics))
    assert "answerable F1 +2.35 [+1.02, +3.96]: soft did better" in finding.sentence
    assert "overall F1 +0.10 [-0.95, +1.16]: no difference" in finding.sentence
    assert "two collapsed students" in finding.sentence
    healthy = metrics.assign(hard=[20.0, 60.0], soft=[25.0, 62.0])
    assert "collapsed" not in head_to_head_finding(SimpleNamespace(labels=("hard", "soft"), metrics=healthy)).sentence


def test_gradient_scale_is_read_against_one_over_t_squared():
    from xdanalysis.views.findings import gradient_scale_finding

    scale = pd.DataFrame({"temperature": [1, 2, 4, 8, 16], "without T²": [1.0, 0.5, 0.1, 0.02, 0.5 / 194],
                          "with T²": [1.0, 2.0, 1.6, 1.28, 2 * 0.5 / 194 * 64]})
    finding = gradient_scale_finding(scale)
    assert finding.facts["predicted"] == 64 and "194×" in finding.sentence and "more than 1/T² predicts" in finding.sentence
    exact = scale.assign(**{"without T²": [1.0, 0.5, 0.5 / 4, 0.5 / 16, 0.5 / 64]})
    assert "about as 1/T² predicts" in gradient_scale_finding(exact).sentence


def test_the_baseline_is_said_when_it_decides_as_the_input_does():
    from types import SimpleNamespace

    from xdanalysis.views.findings import baseline_finding

    alike = baseline_finding(SimpleNamespace(target="null_odds", baseline_value=15.5, target_value=16.5), threshold=0.0)
    assert "baseline abstains too" in str(alike) and "+1.0" in str(alike) and "not why the model abstains" in str(alike)
    across = baseline_finding(SimpleNamespace(target="null_odds", baseline_value=-2.0, target_value=3.0), threshold=0.0)
    assert "baseline answers" in str(across) and "input abstains" in str(across) and "move across the threshold" in str(across)
    assert baseline_finding(SimpleNamespace(target="span", baseline_value=0.0, target_value=1.0), threshold=0.0) is None


def test_a_lens_layer_that_answers_everything_decides_nothing():
    from xdanalysis.views.findings import formed_finding

    per_layer = pd.DataFrame({"layer": [0, 1, 2, 3], "answered": [100.0, 99.5, 60.0, 30.0]})
    formed = pd.DataFrame({"id": list("abcdef"), "final_answer": ["x", "y", "", "", "z", ""],
                           "decision_layer": [0, 1, 0, 2, 3, 3]})
    said = formed_finding(per_layer, formed)
    assert said.facts["degenerate_layers"] == [0, 1] and said.facts["vacuous"] == 3
    assert "layer(s) 0, 1" in str(said) and "the 3 questions" in str(said) and "(2 of them answered in the end)" in str(said)
    assert "answers 100–100%" not in str(said) and "answers 99.5–100% of" in str(said)
    flat = formed_finding(per_layer.assign(answered=[100.0, 100.0, 60.0, 30.0]),
                          formed.assign(final_answer=["x", "y", "", "", "z", ""]).iloc[[0, 1, 4]])
    assert "answers 100% of" in str(flat) and "(all 2 answered in the end)" in str(flat), str(flat)
    fine = formed_finding(per_layer.assign(answered=[80.0, 70.0, 60.0, 30.0]), formed)
    assert fine.facts["degenerate_layers"] == [] and "read as counted" in str(fine)
