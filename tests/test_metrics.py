"""Scoring checked against hand-worked values of the official SQuAD 2.0 algorithm."""

import pytest

from xdanalysis.core.metrics import (
    MissingPredictionsError,
    compute_exact,
    compute_f1,
    normalize_answer,
    question_scores,
    squad_v2_scores,
)


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an  apple, a pear; THE end!  ", "apple pear end"),
        ("theatre", "theatre"),  # 'the' only as a whole word
        ("U.S.A.", "usa"),
        ("Café «Noir»", "café «noir»"),  # ASCII-only punctuation: guillemets stay
        ("en–dash — em", "en–dash — em"),  # unicode dashes are not ASCII punctuation
        ("ÉCOLE", "école"),  # lower-casing is unicode
        ("a\u00a0b", "b"),  # 'a' is an article; NBSP is whitespace to str.split
    ],
)
def test_normalisation(raw, normalised):
    assert normalize_answer(raw) == normalised


def test_exact_and_f1_by_hand():
    assert compute_exact("The Eiffel Tower", "eiffel tower.") == 1
    assert compute_exact("Eiffel Tower", "Tower") == 0
    # gold {eiffel, tower}, pred {tower, in, paris}: P=1/3, R=1/2, F1=2PR/(P+R)=0.4
    assert compute_f1("Eiffel Tower", "the tower in Paris") == pytest.approx(0.4)
    # repeated tokens count with multiplicity: gold [a1 a1 b], pred [a1 b b]: common 2, P=R=2/3
    assert compute_f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert compute_f1("", "") == 1 and compute_f1("", "Paris") == 0 and compute_f1("Paris", "") == 0
    assert compute_f1("the", "") == 1  # gold normalises to nothing


def test_max_over_gold_answers_and_unanswerable():
    gold = {"q1": ["1889", "in 1889"], "q2": [], "q3": ["the"]}
    exact, f1 = question_scores(gold, {"q1": "in 1889 for", "q2": "", "q3": ""})
    # q1: vs "1889": P=1/3,R=1 -> 0.5; vs "in 1889": P=2/3,R=1 -> 0.8
    assert exact == {"q1": 0, "q2": 1, "q3": 1}
    assert f1["q1"] == pytest.approx(0.8)
    assert f1["q3"] == 1  # a gold that normalises to "" leaves only the empty answer correct


def _case():
    gold = {"a1": ["Paris"], "a2": ["1889"], "a3": ["red car"], "u1": [], "u2": []}
    preds = {"a1": "Paris", "a2": "1890", "a3": "red", "u1": "", "u2": "Lyon"}
    probs = {"a1": 0.1, "a2": 0.7, "a3": 0.4, "u1": 0.9, "u2": 0.3}
    return gold, preds, probs


def test_scores_by_hand_without_probabilities():
    gold, preds, _ = _case()
    s = squad_v2_scores(gold, preds)
    # EM: a1 1, a2 0, a3 0, u1 1, u2 0 -> 2/5; F1: a3 = 2*(1*0.5)/(1.5) = 2/3
    assert s["exact"] == pytest.approx(40.0)
    assert s["f1"] == pytest.approx(100 * (1 + 0 + 2 / 3 + 1 + 0) / 5)
    assert (s["HasAns_total"], s["NoAns_total"], s["total"]) == (3, 2, 5)
    assert s["NoAns_exact"] == pytest.approx(50.0)
    assert "best_f1" not in s  # the official script adds best_* only with a no-answer file
    assert list(s) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                       "NoAns_exact", "NoAns_f1", "NoAns_total"]


def test_threshold_and_best_threshold_by_hand():
    gold, preds, probs = _case()
    s = squad_v2_scores(gold, preds, probs, na_prob_thresh=0.5)
    # prob > 0.5 -> abstain: a2 (0.7) becomes wrong (already 0), u1 (0.9) right (already right)
    assert s["exact"] == pytest.approx(40.0)
    # Best threshold: start at 2 (both NoAns right), add in prob order:
    # a1 .1 +1 -> 3 (best, thr .1); u2 .3 -1 -> 2; a3 .4 +0 (EM) -> 2; a2 .7 +0; u1 .9 +0
    assert s["best_exact"] == pytest.approx(60.0) and s["best_exact_thresh"] == 0.1
    # F1: a1 .1 -> 3; u2 .3 -> 2; a3 .4 -> 2.667 (not > 3); best stays 3 at .1
    assert s["best_f1"] == pytest.approx(60.0) and s["best_f1_thresh"] == 0.1


def test_ties_are_broken_by_file_order():
    gold = {"u1": [], "a1": ["x"]}
    preds = {"u1": "y", "a1": "x"}
    # u1 and a1 tie at 0.5. Stable sort keeps the no-answer file's order.
    first_u = squad_v2_scores(gold, preds, {"u1": 0.5, "a1": 0.5})
    # start 1; u1: -1 -> 0; a1: +1 -> 1 (not > 1) => best 1/2 at 0.0
    assert first_u["best_exact"] == 50.0 and first_u["best_exact_thresh"] == 0.0
    first_a = squad_v2_scores(gold, preds, {"a1": 0.5, "u1": 0.5})
    # start 1; a1: +1 -> 2 (best, thr .5); u1: -1 -> 1
    assert first_a["best_exact"] == 100.0 and first_a["best_exact_thresh"] == 0.5


def test_average_precision_by_hand(tmp_path):
    gold = {"a1": ["x"], "a2": ["y"], "u1": []}
    preds = {"a1": "x", "a2": "z", "u1": ""}
    probs = {"a1": 0.1, "u1": 0.2, "a2": 0.3}
    s = squad_v2_scores(gold, preds, probs, out_image_dir=str(tmp_path))
    # EM order a1 (tp 1, p 1, r .5), u1 (p .5, r .5), a2 (tp 1, p 1/3, r .5): AP = 1*.5 = 50
    assert s["pr_exact_ap"] == pytest.approx(50.0)
    # oracle: a1 p1 r.5; u1 p.5 r.5; a2 tp2 p2/3 r1 -> .5 + 2/3*.5
    assert s["pr_oracle_ap"] == pytest.approx(100 * (0.5 + (2 / 3) * 0.5))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "na_prob_hist_hasAns.png", "na_prob_hist_noAns.png", "pr_exact.png", "pr_f1.png", "pr_oracle.png"]


def test_missing_predictions_named_or_scored_wrong():
    gold, preds, probs = _case()
    del preds["a1"], preds["u1"]
    with pytest.raises(MissingPredictionsError, match=r"2 of 5 questions have no prediction: 'a1', 'u1'"):
        squad_v2_scores(gold, preds)
    s = squad_v2_scores(gold, preds, probs, missing="wrong")
    # a2 0, a3 0 EM, u2 0 -> EM 0; missing a1, u1 count as wrong even though u1 'abstains'
    assert s["exact"] == 0.0 and s["total"] == 5
    assert s["f1"] == pytest.approx(100 * (2 / 3) / 5)
    # best: start 1 (u2 only, u1 is missing); u2 .3 -1 -> 0 ... never above 1 -> 20% at 0.0
    assert s["best_exact"] == pytest.approx(20.0)


def test_missing_probability_is_named():
    gold, preds, probs = _case()
    del probs["a3"]
    with pytest.raises(MissingPredictionsError, match="'a3'"):
        squad_v2_scores(gold, preds, probs)


def test_unknown_prediction_ids_warn_and_are_ignored():
    gold, preds, _ = _case()
    with pytest.warns(UserWarning, match=r"1 prediction id\(s\) are not in the data.*'zz'"):
        s = squad_v2_scores(gold, {**preds, "zz": "x"})
    assert s["total"] == 5


def test_nan_no_answer_probabilities_are_refused_naming_the_ids():
    gold = {"a": ["x"], "b": [], "c": ["y"]}
    with pytest.raises(ValueError, match=r"not numbers .*'b'"):
        squad_v2_scores(gold, {"a": "x", "b": "", "c": "z"}, {"a": 0.1, "b": float("nan"), "c": 0.3})


def test_image_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "images"
    target.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="images: exists and is not a directory"):
        squad_v2_scores({"a": ["x"]}, {"a": "x"}, {"a": 0.2}, out_image_dir=str(target))


def test_drawing_the_official_images_switches_no_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    squad_v2_scores({"a": ["x"], "b": []}, {"a": "x", "b": ""}, {"a": 0.2, "b": 0.9}, out_image_dir=str(tmp_path))
    assert matplotlib.get_backend() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["na_prob_hist_hasAns.png", "na_prob_hist_noAns.png",
                                                          "pr_exact.png", "pr_f1.png", "pr_oracle.png"]


def test_always_abstaining_is_printed_beside_the_scores_and_flagged_when_close():
    from xdanalysis.core.metrics import abstain_baseline
    from xdanalysis.views.summary import summary_text

    gold = {"a": ["x"], "b": [], "c": [], "d": ["y"]}
    abstaining = squad_v2_scores(gold, {q: "" for q in gold})
    assert abstain_baseline(abstaining) == abstaining["f1"] == 50.0  # by definition, from the official scorer
    text = summary_text(abstaining, "m")
    assert "always abstaining              50.00   50.00          4" in text
    assert "within a point of always abstaining" in text
    answering = squad_v2_scores(gold, {"a": "x", "b": "", "c": "", "d": "y"})
    assert "within a point" not in summary_text(answering, "m")
