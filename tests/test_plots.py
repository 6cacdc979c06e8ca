"""The figures draw the numbers they claim: values read back from the artists."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_errors import hand_run

from xdanalysis.analysis.outcomes import confusion, outcomes
from xdanalysis.analysis.slices import slice_table
from xdanalysis.analysis.thresholds import threshold_curve, threshold_summary
from xdanalysis.core.metrics import squad_v2_scores
from xdanalysis.views.plots import (
    plot_confusion,
    plot_null_odds,
    plot_official_curves,
    plot_outcomes,
    plot_scores,
    plot_slice,
    plot_threshold_curve,
)


def axes():
    return Figure().add_subplot()


def test_score_bars_are_the_official_scores():
    table = hand_run()
    scores = squad_v2_scores(dict(zip(table["id"], table["answer_texts"])), dict(zip(table["id"], table["answer"])))
    ax = plot_scores(scores, ax=axes())
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([scores["exact"], scores["HasAns_exact"], scores["NoAns_exact"],
                                     scores["f1"], scores["HasAns_f1"], scores["NoAns_f1"]])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].endswith(f"n={scores['total']}") and labels[2].endswith(f"n={scores['NoAns_total']}")


def test_slice_bars_and_counts_are_the_slice_table():
    table = outcomes(hand_run())
    frame = slice_table(table, "gold answer length", n_boot=50)
    ax = plot_slice(frame, ax=axes())
    bars = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(bars, frame["F1"].to_numpy(), equal_nan=True)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    for label, (bucket, count) in zip(labels, zip(frame["bucket"], frame["count"])):
        assert label.startswith(f"{bucket}\nn={count} ")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        plot_slice(frame, metric="f1", ax=axes())
    answerable = next(line for line in ax.lines if line.get_label() == "answerable F1").get_ydata()
    np.testing.assert_allclose(answerable, frame["HasAns_F1"].to_numpy(), equal_nan=True)


def test_confusion_cells_are_the_counts():
    table = outcomes(hand_run())
    matrix = confusion(table)
    ax = plot_confusion(matrix, ax=axes())
    texts = [t.get_text().split("\n")[0] for t in ax.texts]
    assert texts == [str(matrix.loc[g, m]) for g in ("has answer", "no answer") for m in ("answered", "abstained")]


def test_outcome_bars_are_the_counts():
    table = outcomes(hand_run())
    ax = plot_outcomes(table, ax=axes())
    widths = {label.get_text(): bar.get_width() for label, bar in zip(ax.get_yticklabels(), ax.patches)}
    counts = table["outcome"].value_counts()
    assert all(widths[name] == counts.get(name, 0) for name in widths)


def test_threshold_curve_lines_and_markers():
    table = outcomes(hand_run())
    curve = threshold_curve(table)
    summary = threshold_summary(table, current=0.0)
    ax = plot_threshold_curve(curve, summary=summary, ax=axes())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curve["F1"])
    current, best = ax.lines[3].get_xdata()[0], ax.lines[4].get_xdata()[0]
    rows = summary[summary["metric"] == "F1"].set_index("threshold")
    assert current == rows.loc["current", "null_odds_threshold"] and best == rows.loc["best", "null_odds_threshold"]
    assert max(curve["F1"]) == pytest.approx(rows.loc["best", "overall"])


def test_null_odds_histogram_counts_every_question():
    table = hand_run()
    ax = plot_null_odds(table, threshold=0.5, ax=axes())
    assert sum(p.get_height() for p in ax.patches) == len(table)
    assert ax.lines[0].get_xdata()[0] == 0.5


def test_official_curve_ends_at_the_recall_of_answering_everything():
    table = hand_run()
    first, _ = plot_official_curves(table, axes=Figure().subplots(1, 2))
    recalls = first.lines[0].get_xdata() if first.lines else first.collections[0].get_paths()[0].vertices[:, 0]
    has = table["has_answer"]
    assert max(recalls) == pytest.approx(table.loc[has, "f1"].sum() / has.sum())


def test_risk_coverage_lines_are_the_curves():
    from xdanalysis.analysis.selective import risk_coverage
    from xdanalysis.views.plots import plot_risk_coverage

    table = hand_run()
    curve = risk_coverage(table)
    shifted = table.assign(null_odds=-table["null_odds"])  # the opposite ranking
    ax = plot_risk_coverage({"a": curve, "b": risk_coverage(shifted)}, ax=axes())
    lines = [line for line in ax.lines if not line.get_label().startswith("_")]
    np.testing.assert_allclose(lines[0].get_ydata(), 100 * curve["risk"])
    assert lines[0].get_label() == f"a: AURC {100 * curve['risk'].mean():.1f} (n=9)"
    assert "coverage" in ax.get_xlabel() and "risk" in ax.get_ylabel()


def test_reliability_points_and_counts_are_the_table():
    from test_errors import calibration_table

    from xdanalysis.analysis.calibration import reliability
    from xdanalysis.views.plots import plot_reliability

    result = reliability(calibration_table(), bins=2)
    frame = result.bins
    ax = plot_reliability(result, ax=axes())
    answerable = next(line for line in ax.lines if line.get_label().startswith("answerable"))
    part = frame[(frame["group"] == "answerable") & (frame["count"] > 0)]
    np.testing.assert_allclose(answerable.get_xdata(), part["confidence"])
    np.testing.assert_allclose(answerable.get_ydata(), part["accuracy"])
    assert "n=3" in answerable.get_label() and "ECE" in answerable.get_label()
    counts = ax.counts_axes  # the counts per bin, on an axis of their own (never below 0 on the accuracy axis)
    assert sorted(t.get_text() for t in counts.texts) == ["1", "1", "2"]
    assert sorted(round(p.get_height()) for p in counts.patches) == [1, 1, 2]
    assert ax.get_ylim()[0] == 0 and not ax.texts


def test_probe_consistency_bars():
    import pandas as pd

    from xdanalysis.views.plots import plot_probe_consistency

    summary = pd.DataFrame([
        {"probe": "question_typo", "expect": "same_answer", "n": 10, "skipped": 0, "consistency": 90.0,
         "low": 70.0, "high": 100.0, "n_correct": 5, "consistency_if_correct": 80.0},
        {"probe": "swap_answer", "expect": "-", "n": 0, "skipped": 4, "consistency": np.nan, "low": np.nan,
         "high": np.nan, "n_correct": 0, "consistency_if_correct": np.nan},
        {"probe": "remove_answer_sentence", "expect": "abstain", "n": 4, "skipped": 6, "consistency": 25.0,
         "low": 0.0, "high": 75.0, "n_correct": 1, "consistency_if_correct": 100.0}])
    ax = plot_probe_consistency(summary, ax=axes())
    assert [p.get_width() for p in ax.patches] == [90.0, 25.0]  # probes with nothing probed are left out
    by_position = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
    assert [by_position[y] for y in sorted(by_position, reverse=True)] == [  # the summary's order, top down
        "question_typo\n(expect same_answer, n=10)", "remove_answer_sentence\n(expect abstain, n=4)"]


def test_the_lab_students_plot_draws_each_student_at_both_thresholds():
    import pandas as pd

    from xdanalysis.views.distill import plot_lab_students

    table = pd.DataFrame([
        {"student": "hard", "threshold": "teacher's 0", "HasAns F1": 3.0, "NoAns F1": 95.0, "forced HasAns F1": 20.0},
        {"student": "hard", "threshold": "re-fitted", "HasAns F1": 0.0, "NoAns F1": 100.0, "forced HasAns F1": 20.0},
        {"student": "soft", "threshold": "teacher's 0", "HasAns F1": 5.0, "NoAns F1": 93.0, "forced HasAns F1": 45.0},
        {"student": "soft", "threshold": "re-fitted", "HasAns F1": 9.0, "NoAns F1": 90.0, "forced HasAns F1": 45.0}])
    figure = Figure()
    left, right = plot_lab_students(table, counts={"HasAns": 374, "NoAns": 405}, axes=figure.subplots(1, 2))
    heights = lambda ax: [round(p.get_height(), 1) for p in ax.patches]  # noqa: E731
    assert heights(left) == [3.0, 5.0, 0.0, 9.0] and heights(right) == [95.0, 93.0, 100.0, 90.0]
    assert "n=374" in left.get_title() and "n=405" in right.get_title()
    forced = left.collections[0].get_offsets()[:, 1].tolist()
    assert forced == [20.0, 45.0]
    assert [t.get_text() for t in left.get_xticklabels()] == ["hard", "soft"]
    # with the share answered, each answerable bar says it: a bar of 0-9 on a 0-100 axis is read by its label
    answered = table.assign(**{"answered (%)": [4.0, 0.0, 6.0, 12.0]})
    left, _ = plot_lab_students(answered, axes=Figure().subplots(1, 2))
    labels = [t.get_text() for t in left.texts]
    assert "3.0\nanswers\n4%" in labels and "0.0\nanswers\n0%" in labels and "9.0\nanswers\n12%" in labels
    # drawn as notebook 05 draws it (three students, two thresholds), no label runs into its neighbour's
    three = pd.concat([answered, answered[answered["student"] == "soft"].assign(student="soft + attention")])
    figure = Figure(figsize=(11, 3.8))
    left, _ = plot_lab_students(three, axes=figure.subplots(1, 2, sharey=True))
    renderer = FigureCanvasAgg(figure).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in left.texts]
    assert len(boxes) == 6
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
