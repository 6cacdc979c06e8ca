"""What a reader is shown: no interval on a handful of questions, the always-abstain floor beside
every headline, thresholds named with their scale, people's names for columns (issue 22)."""

import math

import numpy as np
import pandas as pd
import pytest
from test_compare import rescored
from test_errors import hand_run

from xdanalysis.analysis.compare import compare
from xdanalysis.analysis.outcomes import outcomes
from xdanalysis.analysis.slices import slice_table
from xdanalysis.analysis.thresholds import cross_fitted_threshold
from xdanalysis.core.common import logit
from xdanalysis.core.stats import MIN_INTERVAL_COUNT
from xdanalysis.views.summary import abstaining_warning
from xdanalysis.views.tables import readable, threshold_audit_table


def copies(table, n):
    """``n`` copies of a hand-built run, ids made unique."""
    return pd.concat([table.assign(id=table["id"] + f"-{k}") for k in range(n)], ignore_index=True)


def test_a_bucket_under_the_minimum_has_no_interval_and_never_sorts_first():
    teacher = copies(hand_run(), 3)  # 27 questions
    teacher["group"] = ["tiny" if i < 3 else "big" for i in range(len(teacher))]
    # the student loses every answer of the 3 tiny questions (c, long, short): the largest gap, on n=3
    student = rescored(teacher, {q: "" for q in teacher["id"][:3]})
    frame = compare(teacher, student, n_boot=200).slice_differences("group")
    tiny, big = frame.set_index("bucket").loc["tiny"], frame.set_index("bucket").loc["big"]
    assert tiny["count"] == 3 < MIN_INTERVAL_COUNT <= big["count"]
    assert abs(tiny["difference"]) > abs(big["difference"])
    assert list(frame["bucket"]) == ["big", "tiny"]  # small buckets last, whatever their gap
    assert np.isnan([tiny["low"], tiny["high"], tiny["p_value"]]).all() and tiny["p"] == f"n<{MIN_INTERVAL_COUNT}"
    assert not np.isnan(big["low"])

    table = slice_table(outcomes(teacher), "group", n_boot=200).set_index("bucket")
    assert math.isnan(table.loc["tiny", "F1_low"]) and math.isnan(table.loc["tiny", "HasAns_F1_low"])
    assert table.loc["tiny", "F1"] == pytest.approx(100 * teacher["f1"][:3].mean())  # the mean is still shown
    assert not math.isnan(table.loc["big", "F1_low"])
    # big has 24 questions: 11 unanswerable or fewer than the minimum on one side?
    sides = teacher[teacher["group"] == "big"].groupby("has_answer").size()
    assert math.isnan(table.loc["big", "NoAns_F1_low"]) == (sides[False] < MIN_INTERVAL_COUNT)


def test_comparisons_show_what_always_abstaining_scores_beside_every_group():
    teacher = hand_run()
    student = rescored(teacher, {q: "" for q in teacher["id"]})  # abstains on everything
    metrics = compare(teacher, student, n_boot=50).metrics.set_index(["group", "metric"])
    unanswerable = (~teacher["has_answer"]).sum()
    assert metrics.loc[("overall", "F1"), "always abstaining"] == pytest.approx(100 * unanswerable / len(teacher))
    assert metrics.loc[("overall", "F1"), "student"] == pytest.approx(100 * unanswerable / len(teacher))
    assert metrics.loc[("HasAns", "EM"), "always abstaining"] == 0
    assert metrics.loc[("NoAns", "F1"), "always abstaining"] == 100


def test_a_model_within_a_point_of_always_abstaining_is_flagged():
    scores = {"total": 779, "NoAns_total": 405, "f1": 52.46, "HasAns_f1": 2.9}
    warning = abstaining_warning(scores, label="hard labels")
    assert warning.startswith("hard labels: F1 52.46") and "51.99" in warning and "answerable F1 2.90" in warning
    assert abstaining_warning({**scores, "f1": 53.2}) is None


def test_the_threshold_audit_names_every_threshold_with_its_scale_and_lists_every_fold():
    table = copies(hand_run(), 4)
    audit = cross_fitted_threshold(table, folds=7, n_boot=50)
    shown = threshold_audit_table(audit)
    folds = [name for name in shown.index if name.startswith("fold ")]
    assert folds == [f"fold {k} threshold (null odds)" for k in range(1, 8)]
    assert all("null odds" in name or "null-odds" in name or "probability" in name
               for name in shown.index if "threshold" in name)
    assert shown.loc["questions", "value"] == str(len(table)) and shown.loc["folds", "value"] == "7"  # counts whole
    probability = audit["best_f1_thresh"]
    assert float(shown.loc["official best threshold (no-answer probability, as evaluate-v2.0.py)", "value"]) == \
        pytest.approx(probability, abs=0.01)
    if 0 < probability < 1:
        assert float(shown.loc["official best threshold (null odds)", "value"]) == pytest.approx(logit(probability),
                                                                                                 abs=0.01)


def test_tables_for_people_have_plain_names_and_two_decimals():
    result = compare(hand_run(), rescored(hand_run(), {"c": ""}), n_boot=50)
    shown = readable(result.cell("correct", "abstained"), labels=result.labels)
    assert {"null odds (teacher)", "null odds (student)", "F1 (student)", "gold answers"} <= set(shown.columns)
    assert not any("_" in c for c in shown.columns)
    metrics = readable(result.metrics)
    assert {"p-value", "95% CI low", "difference (points)", "always abstaining"} <= set(metrics.columns)
    assert "p" not in metrics.columns and metrics["p-value"].dropna().str.match(r"^(< )?[01]\.\d+$").all()  # shown once, as text
    numbers = metrics.select_dtypes("number").to_numpy().ravel()
    numbers = numbers[np.isfinite(numbers)]
    assert np.allclose(numbers, np.round(numbers, 2))


def probe_row(probe, expect, original_answer, probed_answer, met, gold=("Paris",)):
    return {"probe": probe, "id": f"{probe}-{len(original_answer)}-{probed_answer}-{met}", "expect": expect,
            "original_answer": original_answer, "probed_answer": probed_answer, "met": met,
            "original_answer_texts": list(gold)}


def test_probe_misses_are_split_by_kind_beside_the_base_rates():
    from xdanalysis.analysis.probes import probe_failures

    results = pd.DataFrame([
        probe_row("remove_answer_sentence", "abstain", "", "", True),  # abstained before and after
        probe_row("remove_answer_sentence", "abstain", "Paris", "", True),  # the deletion made it abstain
        probe_row("remove_answer_sentence", "abstain", "Paris", "Lyon", False),  # answered anyway
        probe_row("swap_answer", "answer", "Paris", "", False),  # abstained
        probe_row("swap_answer", "answer", "Paris", "the Paris", False),  # the old answer (normalised)
        probe_row("swap_answer", "answer", "", "Nice", False),  # another answer
        probe_row("swap_answer", "answer", "Paris", "Rome", True),  # the new answer
    ])
    frame = probe_failures(results).set_index("probe")
    removed, swapped = frame.loc["remove_answer_sentence"], frame.loc["swap_answer"]
    assert (removed["n"], removed["missed"], removed["answered anyway"], removed["abstained"]) == (3, 1, 1, 0)
    assert (removed["abstained before"], removed["abstained after"]) == (1, 2)
    assert (removed["answered before"], removed["abstained after, of those answered before"]) == (2, 1)
    assert (swapped["missed"], swapped["abstained"], swapped["kept the old answer"], swapped["another answer"]) == \
        (3, 1, 1, 1)
    assert frame[["abstained", "answered anyway", "kept the old answer", "another answer"]].sum(axis=1).tolist() == \
        frame["missed"].tolist()


def test_learning_curve_legends_name_students_and_loss_terms_apart_and_off_the_curves():
    import matplotlib

    matplotlib.use("Agg")
    from xdanalysis.views.distill import LOSS_TERMS, plot_learning_curves

    log = pd.DataFrame({"step": range(20), "total": np.linspace(3, 1, 20), "soft": np.linspace(2, 1, 20),
                        "hard": np.linspace(1, 0.5, 20), "attention": 0.0})
    ax = plot_learning_curves({"hard labels": log, "soft targets": log})
    legends = [ax.get_legend(), *[a for a in ax.artists if isinstance(a, matplotlib.legend.Legend)]]
    texts = {legend.get_title().get_text(): [t.get_text() for t in legend.get_texts()] for legend in legends}
    assert texts["student"] == ["hard labels", "soft targets"]
    assert texts["loss term"] == [LOSS_TERMS[t][0] for t in ("total", "soft", "hard")]  # no all-zero attention term
    assert not set(texts["loss term"]) & set(texts["student"])
    ax.figure.canvas.draw()
    for legend in legends:  # right of the axes, over no curve
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1


def test_head_statistics_panels_say_what_they_show():
    import matplotlib

    matplotlib.use("Agg")
    from xdanalysis.interpret.attention import STATISTICS
    from xdanalysis.views.attention import STATISTIC_LABELS, plot_head_statistics

    stats = {name: np.random.default_rng(0).random((6, 12)) for name in STATISTICS}
    figure = plot_head_statistics(stats)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == [STATISTIC_LABELS[name] for name in STATISTICS]
    assert all("..." not in t and "…" not in t for t in titles + [figure._suptitle.get_text()])


def test_slices_that_repeat_the_answerable_split_or_hold_one_bucket_are_named_degenerate():
    from xdanalysis.analysis.slices import degenerate_slice

    table = outcomes(copies(hand_run(), 2))
    table["everyone"] = "all"
    table["split"] = table["has_answer"].map({True: "has", False: "none"})
    table["mixed"] = ["a" if i % 2 else "b" for i in range(len(table))]
    assert degenerate_slice(slice_table(table, "everyone", n_boot=20)) == "one bucket holds every question"
    assert "answerable / unanswerable split" in degenerate_slice(slice_table(table, "split", n_boot=20))
    assert degenerate_slice(slice_table(table, "mixed", n_boot=20)) is None
    # answerable questions only, in two buckets: a real slice, not the split
    assert degenerate_slice(slice_table(table, "gold answer words", n_boot=20)) is None
