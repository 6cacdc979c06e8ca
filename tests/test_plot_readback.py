"""Figures read back from their artists: what is drawn is the data given (the plots that no test named
before were only counted as PNGs by the notebook and report tests)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from xdanalysis.labs.compress import verdict  # noqa: E402
from xdanalysis.views.compress import plot_frontier, plot_head_importance, plot_threshold_shift  # noqa: E402
from xdanalysis.views.distill import plot_entropy, plot_gradient_scale  # noqa: E402
from xdanalysis.views.layers import plot_cka_map, plot_layer_accuracy, plot_patching  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _lab_table():
    rows = []
    for name, hasans, noans, threshold, shift in (("fp32", 30.0, 70.0, -0.4, 0.0), ("int8", 28.0, 74.0, -1.7, -1.3),
                                                  ("layers 0", 5.0, 0.0, -math.inf, -math.inf),
                                                  ("eager", 60.0, 2.0, math.inf, math.inf)):
        rows.append({"variant": name, "questions": 50, "speed-up": {"fp32": 1.0}.get(name, 1.5),
                     "weights (MB)": 86.0, "HasAns F1": hasans, "HasAns F1 diff": hasans - 30.0,
                     "HasAns F1 low": hasans - 33.0, "HasAns F1 high": hasans - 27.0, "HasAns F1 questions": 20,
                     "NoAns acc": noans, "NoAns acc diff": noans - 70.0, "NoAns acc low": noans - 74.0,
                     "NoAns acc high": noans - 66.0, "NoAns acc questions": 30, "answers changed (%)": 10.0,
                     "best threshold": threshold, "threshold shift": shift})
    return pd.DataFrame(rows)


def test_the_verdict_reads_both_infinite_thresholds_the_right_way_round():
    lines = dict(line.split(": ", 1) for line in verdict(_lab_table()))
    # abstain when null odds exceed the threshold: −∞ abstains on everything, +∞ answers everything
    assert "now −∞ (abstaining on every question scores best)" in lines["layers 0"]
    assert "now +∞ (answering every question scores best)" in lines["eager"]
    assert "moved -1.30" in lines["int8"]
    assert "10% of answers changed" not in lines["int8"] and "10.0% of answers changed" in lines["int8"]
    counted = dict(line.split(": ", 1) for line in verdict(_lab_table().assign(**{"answers changed": 3})))
    assert "3 of 50 answers changed" in counted["int8"]  # a count, not "0%" for 3 of 779


def test_threshold_shift_draws_each_threshold_and_says_both_infinities_right():
    table = _lab_table()
    ax = plot_threshold_shift(table)
    bars = sorted(ax.patches, key=lambda p: -p.get_y())  # top to bottom: the table's order
    span = ax.get_xlim()[1]
    assert [b.get_width() for b in bars] == pytest.approx([-0.4, -1.7, -span, span])
    assert [bool(b.get_hatch()) for b in bars] == [False, False, True, True]
    texts = [t.get_text() for t in ax.texts]
    assert "−∞: best to abstain on every question" in texts and "+∞: best to answer every question" in texts


def test_frontier_points_sit_at_each_variants_score_with_its_interval_around_it():
    table = _lab_table()
    axes = plot_frontier(table, against="speed")
    for ax, side in zip(axes, ("HasAns F1", "NoAns acc")):
        containers = ax.containers
        assert len(containers) == len(table)
        for container, row in zip(containers, table.to_dict("records")):
            x, y = container.lines[0].get_data()
            assert (x[0], y[0]) == (row["speed-up"], row[side])
            (low_end, high_end) = container.lines[2][0].get_segments()[0][:, 1]
            reference = table[side].iloc[0]  # float32's own score (its diff is 0)
            assert low_end == pytest.approx(min(row[side], reference + row[f"{side} low"]))
            assert high_end == pytest.approx(max(row[side], reference + row[f"{side} high"]))
        assert ax.get_title().endswith(f"(n={20 if side == 'HasAns F1' else 30})")
        assert ax.get_ylim()[0] < 0  # "layers 0" scores 0 unanswerable: its point sits above the axis line


def test_head_importance_shows_the_matrix_and_crosses_the_pruned_heads():
    importance = np.arange(12, dtype=float).reshape(3, 4)
    ax = plot_head_importance(importance, pruned={0: [1], 2: [0, 3]})
    np.testing.assert_array_equal(ax.images[0].get_array(), importance)
    assert sorted((t.get_position()) for t in ax.texts if t.get_text() == "×") == [(0, 2), (1, 0), (3, 2)]
    assert "3 of 12" in ax.get_title()


def test_cka_map_draws_the_frame_and_writes_each_value():
    frame = pd.DataFrame([[1.0, 0.25], [0.5, 0.75]])
    ax = plot_cka_map(frame)
    np.testing.assert_array_equal(ax.images[0].get_array(), frame.to_numpy())
    assert sorted(t.get_text() for t in ax.texts) == ["0.25", "0.50", "0.75", "1.00"]
    from xdanalysis.interpret.representations import CKAMap

    titled = plot_cka_map(CKAMap(frame, tokens=321, labels=("a", "b")))
    assert "321 tokens" in titled.get_title()
    np.testing.assert_array_equal(titled.images[0].get_array(), frame.to_numpy())


def test_layer_accuracy_draws_both_sides_per_model():
    per_layer = pd.DataFrame({"layer": [0, 1, 2], "HasAns_F1": [5.0, 20.0, 40.0], "NoAns_F1": [90.0, 70.0, 60.0]})
    ax = plot_layer_accuracy({"teacher": per_layer, "student": per_layer.assign(HasAns_F1=[1.0, 2.0, 3.0])})
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    assert list(lines["teacher: answerable F1"]) == [5.0, 20.0, 40.0]
    assert list(lines["student: answerable F1"]) == [1.0, 2.0, 3.0]
    assert list(lines["teacher: unanswerable (abstained)"]) == [90.0, 70.0, 60.0]


def test_patching_draws_the_share_restored_per_site_with_its_pairs():
    summary = pd.DataFrame({"layer": [0, 1, 0, 1], "site": ["cls", "cls", "all", "all"], "pairs": [8] * 4,
                            "restored": [0.1, 0.6, 0.2, 1.0], "restored_low": [0.0, 0.4, 0.1, 0.9],
                            "restored_high": [0.3, 0.8, 0.3, 1.0]})
    ax = plot_patching(summary)
    drawn = {c.get_label(): c.lines[0].get_ydata() for c in ax.containers}
    assert list(drawn["cls (n=8 pairs)"]) == [0.1, 0.6] and list(drawn["all (n=8 pairs)"]) == [0.2, 1.0]


def test_entropy_and_gradient_scale_draw_their_columns():
    frame = pd.DataFrame({"temperature": [1, 2, 1, 2], "answerable": [True, True, False, False],
                          "entropy": [1.0, 2.0, 1.5, 2.5], "null_probability": [0.1, 0.2, 0.6, 0.5],
                          "max_entropy": [4.0, 4.0, 4.0, 4.0], "windows": [3, 3, 2, 2]})
    axes = plot_entropy(frame)
    entropy = {line.get_label(): list(line.get_ydata()) for line in axes[0].get_lines()}
    assert entropy["answerable (n=3 windows)"] == [1.0, 2.0] and entropy["unanswerable (n=2 windows)"] == [1.5, 2.5]
    null = {line.get_label(): list(line.get_ydata()) for line in axes[1].get_lines()}
    assert null["unanswerable (n=2 windows)"] == [0.6, 0.5]
    scale = pd.DataFrame({"temperature": [1, 2, 4], "without T²": [1.0, 0.25, 0.0625], "with T²": [1.0, 1.0, 1.0]})
    ax = plot_gradient_scale(scale)
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[1.0, 0.25, 0.0625], [1.0, 1.0, 1.0]]


# The six plots that had no read-back yet -------------------------------------------------------------------

def test_top_tokens_draws_the_largest_absolute_scores_signed_and_coloured():
    from types import SimpleNamespace

    from xdanalysis.views.attribution import plot_top_tokens

    words = pd.DataFrame({"text": ["a", "b", "c", "d"], "kind": ["question", "context", "context", "context"],
                          "score": [0.1, -3.0, 2.0, -0.5]})
    ax = plot_top_tokens(SimpleNamespace(words=words, target="null_odds", method="gradient_x_input"), top=3)
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == [-0.5, 2.0, -3.0]  # the 3 largest |score|, the largest at the top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["d (c)", "c (c)", "b (c)"]
    reds = [bar.get_facecolor()[0] > bar.get_facecolor()[2] for bar in ax.patches]
    assert reds == [False, True, False]  # red pushes the target up, blue down
    assert ax.get_xlabel() == "attribution to null_odds (gradient x input)"


def test_deletion_curves_draw_each_order_and_label_its_area():
    from xdanalysis.interpret.attribution import deletion_area
    from xdanalysis.views.attribution import plot_deletion_curves

    curve = pd.DataFrame({"order": ["attribution"] * 3 + ["random"] * 3, "k": [0, 1, 2] * 2,
                          "target": "null_odds", "value": [5.0, 3.0, 1.0, 5.0, 4.5, 4.0],
                          "change": [0.0, -2.0, -4.0, 0.0, -0.5, -1.0]})
    assert deletion_area(curve) == {"attribution": -3.0, "random": -0.75}
    ax = plot_deletion_curves({"IG": curve})
    lines = [line for line in ax.get_lines() if line.get_label().startswith("IG")]
    assert [line.get_label() for line in lines] == ["IG: top attributed first (area -3.00)",
                                                    "IG: random words (area -0.75)"]
    assert lines[0].get_ydata().tolist() == [0.0, -2.0, -4.0]
    assert ax.get_ylabel() == "change of the null odds"


def test_layer_correlation_draws_the_mean_per_layer_and_counts_questions():
    from xdanalysis.views.attribution import plot_layer_correlation

    frame = pd.DataFrame({"layer": [0, 0, 1, 1], "spearman": [0.2, 0.4, -0.1, 0.3]})
    ax = plot_layer_correlation(frame)
    mean = ax.get_lines()[0]
    assert mean.get_xdata().tolist() == [0, 1] and mean.get_ydata() == pytest.approx([0.3, 0.1])
    assert ax.get_title().endswith("(n=2 question(s))") and ax.get_ylim() == (-1, 1)


def test_layer_distributions_keep_the_top_tokens_in_text_order():
    from xdanalysis.views.layers import plot_layer_distributions

    distributions = pd.DataFrame([[0.7, 0.1, 0.2, 0.0], [0.1, 0.0, 0.1, 0.8]])
    ax = plot_layer_distributions(distributions, ["[CLS]", "the", "cat", "sat"], top=3)
    image = ax.get_images()[0].get_array()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["[CLS]", "cat", "sat"]  # "the" has the least mass
    assert np.asarray(image).tolist() == [[0.7, 0.2, 0.0], [0.1, 0.1, 0.8]]


def test_slice_grid_paints_each_cell_with_its_value_and_count():
    from xdanalysis.views.concentrate import plot_slice_grid

    grid = pd.DataFrame({"type": ["what", "what", "who", "who"], "length": ["short", "long"] * 2,
                         "count": [30, 12, 0, 4], "F1": [60.0, 40.0, np.nan, 10.0],
                         "F1_low": [50.0, 20.0, np.nan, np.nan], "share (%)": [65.0, 26.0, 0.0, 9.0],
                         "share of errors (%)": [50.0, 30.0, 0.0, 20.0], "EM": [50.0, 30.0, np.nan, 0.0]})
    ax = plot_slice_grid(grid)
    painted = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
    assert painted[0].tolist() == [60.0, 40.0] and np.isnan(painted[1, 0]) and painted[1, 1] == 10.0
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["10\nn=4", "40\nn=12", "60\nn=30"]  # the empty cell has no text
    assert sum(bool(p.get_hatch()) for p in ax.patches) == 1  # the 4-question cell: too few for an interval


def test_error_tree_draws_each_leaf_rate_interval_and_held_out_rate():
    from types import SimpleNamespace

    from xdanalysis.views.concentrate import plot_error_tree

    leaves = pd.DataFrame({"rule": ["a ≤ 1", "a > 1"], "count": [40, 60], "share of errors (%)": [70.0, 30.0],
                           "error_rate": [80.0, 20.0], "low": [70.0, 10.0], "high": [90.0, 30.0],
                           "held_out_error_rate": [75.0, 25.0], "held_out_low": [60.0, 15.0],
                           "held_out_high": [85.0, 35.0], "verdict": ["held", "did not hold"]})
    tree = SimpleNamespace(leaves=leaves, base_rate=44.0, target="error", model=SimpleNamespace(get_depth=lambda: 1))
    ax = plot_error_tree(tree)
    bars = [p for p in ax.patches if p.get_height() == pytest.approx(0.55)]
    assert sorted(b.get_width() for b in bars) == [20.0, 80.0]
    top = max(bars, key=lambda b: b.get_y())
    assert top.get_width() == 80.0  # the first leaf at the top
    labels = [t.get_text() for t in ax.get_yticklabels()]
    first = next(label for label in labels if label.startswith("a ≤ 1"))
    assert "n=40 · 70.0% of errors" in first and len(labels) == 2
    assert any(line.get_xdata()[0] == 44.0 for line in ax.get_lines())  # the run's rate, dashed
    assert [p.get_label() for p in ax.get_legend().get_patches()] == ["held", "did not hold"]


def test_outcome_bar_labels_stay_inside_the_axes():
    from xdanalysis.views.plots import plot_outcomes

    table = pd.DataFrame({"outcome": ["correct"] * 309 + ["abstained"] * 5 + ["false_answer"] * 40,
                          "plausible_trap": False})
    ax = plot_outcomes(table)
    ax.figure.canvas.draw()
    right = ax.get_window_extent().x1
    labels = [t for t in ax.texts if "(" in t.get_text()]
    assert "309 (87.3%)" in [t.get_text() for t in labels]
    assert all(t.get_window_extent().x1 <= right for t in labels)  # "309 (39.7%)" ran past the axes


def test_the_verdict_says_the_threshold_and_when_an_unanswerable_gain_is_only_not_answering():
    table = _lab_table().assign(threshold=0.0, answered=[30, 28, 1, 45])
    table.loc[2, ["NoAns acc diff", "NoAns acc low", "NoAns acc high"]] = [+22.0, +15.0, +29.0]  # "layers 0" gains
    lines = verdict(table)
    said = next(line for line in lines if line.startswith("layers 0"))
    assert said.startswith("layers 0 at null-odds threshold 0: ")
    assert "gains unanswerable accuracy (+22.0 points" in said
    assert "it answers 1 of 50 questions, so the gain is in not answering" in said
    int8 = next(line for line in lines if line.startswith("int8"))
    assert "not answering" not in int8  # it answers 28 of 50: its sides read as they are
