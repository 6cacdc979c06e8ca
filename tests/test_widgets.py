"""The error explorer driven by setting widget values (no browser), and the example view."""

from pathlib import Path

import pandas as pd
import pytest
from test_errors import hand_run

from xdanalysis.analysis.outcomes import outcomes
from xdanalysis.apps.widgets import ErrorExplorer
from xdanalysis.core.settings import WindowSettings
from xdanalysis.runs.run import Run
from xdanalysis.views.display import example_html
from xdanalysis.core import Execution, Selection


def hand_run_object():
    table = hand_run()
    nbest = {qid: [{"text": "Gustave Eiffel", "start_logit": 1.0, "end_logit": 2.0, "score": 3.0,
                    "probability": 0.7, "window": 0}] for qid in table["id"]}
    return Run(path=Path("hand"), table=table, info={"settings": {}}, _nbest=nbest)


def test_explorer_counts_and_shown_example():
    explorer = ErrorExplorer(hand_run_object(), n_boot=50)
    # defaults: slice 'question type', all buckets, all errors (7 of 9 are not correct)
    assert len(explorer.matching) == 7
    assert explorer.plot.value[:4] == b"\x89PNG"
    explorer.bucket.value = "who"
    assert list(explorer.matching["id"]) == ["trap", "wrong"]  # most confident first
    assert "2</b> matching" in explorer.summary.value and "bucket who: 2 questions" in explorer.summary.value
    explorer.outcome.value = "false_answer"
    assert explorer.current_id == "trap"
    assert "plausible-answer trap" in explorer.example.value and "Gustave Eiffel" in explorer.example.value
    explorer.outcome.value = "(all)"
    explorer.next_button.click()
    assert explorer.current_id == "wrong" and "example 2 of 2" in explorer.example.value
    explorer.next_button.click()
    assert explorer.current_id == "wrong"  # clamped at the end
    explorer.slice.value = "article"
    assert explorer.bucket.options == ("(all)", "Paris") and explorer.bucket.value == "(all)"
    explorer.outcome.value = "correct"
    assert list(explorer.matching["id"]) == ["c"]
    explorer.outcome.value = "partial_shifted"
    explorer.bucket.value = "Paris"
    assert explorer.current_id == "shift"


def test_example_html_marks_every_span():
    table = outcomes(hand_run()).set_index("id", drop=False)
    page = example_html(table.loc["trap"], [{"text": "", "start_logit": 0.5, "end_logit": 0.5, "score": 1.0,
                                             "probability": 1.0, "window": 0}])
    assert 'title="plausible + prediction"' in page  # the trap: prediction on the plausible answer
    assert "<i>no answer</i>" in page and "null odds -0.90" in page and "(no answer)" in page
    page = example_html(table.loc["long"])
    import re

    marked = dict((text, kinds) for kinds, text in re.findall(r'<span title="([^"]*)"[^>]*>([^<]*)', page))
    assert marked == {"finished in ": "prediction", "1889": "gold + prediction"}


def test_attention_explorer_follows_the_controls(tiny_model_dir, squad_file, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    from xdanalysis.apps.model_widgets import ATTENTION_VIEWS, AttentionExplorer
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.runs.run import predict_run

    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    model, tokenizer = load_qa_model(tiny_model_dir)
    explorer = AttentionExplorer(run, model, tokenizer)
    assert explorer.layer.max == 1 and explorer.head.max == 1
    assert "untrained" not in explorer.note.value

    def pixels():
        return np.asarray(Image.open(io.BytesIO(explorer.image.value)))

    first = pixels()
    explorer.head.value = 1
    assert not np.array_equal(first, pixels())  # another head, another picture
    explorer.head.value = 0
    assert np.array_equal(first, pixels())  # and back: the same, from the cache
    for view in ATTENTION_VIEWS:
        explorer.view.value = view
        assert explorer.image.value[:4] == b"\x89PNG"
    explorer.words.value = True
    explorer.show_question("n3")
    assert explorer.question.value == "n3"
    assert ("n3", False) in explorer._attention
    explorer.gold_window.value = True
    att = explorer.attention("n3", False, True)
    assert att.gold_tokens is not None  # the window that holds the gold answer

    errors = ErrorExplorer(run, n_boot=20)
    errors.outcome.value = "(all)"
    explorer.follow(errors)
    assert explorer.question.value == errors.current_id
    errors.next_button.click()
    assert explorer.question.value == errors.current_id == errors.matching.iloc[1]["id"]


def test_attention_explorer_says_when_the_head_is_untrained(encoder_only_dir, squad_file, tmp_path):
    from xdanalysis.apps.model_widgets import AttentionExplorer
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.runs.run import predict_run

    model, tokenizer, info = load_qa_model(encoder_only_dir, allow_random_head=True, with_info=True)
    assert info["random_head"] and not hasattr(model, "xdanalysis_random_head")  # the user's model is not marked
    run = predict_run((model, tokenizer), squad_file, tmp_path / "run", selection=Selection(limit=2), execution=Execution(progress=False))
    assert "untrained" in AttentionExplorer(run, model, tokenizer, random_head=info["random_head"]).note.value


def test_probe_explorer_pages_through_the_unmet_expectations(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.labs.probes import run_probes
    from xdanalysis.analysis.probes.summary import probe_examples, probe_summary
    from xdanalysis.apps.widgets import ProbeExplorer

    results = run_probes(str(tiny_model_dir), squad_file, tmp_path / "probes", probes="remove_answer_sentence,question_typo,swap_answer", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    explorer = ProbeExplorer(results, n_boot=100)
    summary = probe_summary(results, n_boot=100).set_index("probe")
    probed = [p for p in summary.index if summary.loc[p, "n"] > 0]
    assert [value for _, value in explorer.probe.options] == probed
    assert explorer.plot.value[:4] == b"\x89PNG"
    for name in probed:
        explorer.probe.value = name
        for met in (False, True, None):
            explorer.met.value = met
            expected = probe_examples(results, probe=name, met=met)
            assert explorer.matching["id"].tolist() == expected["id"].tolist()
            assert f"<b>{len(expected)}</b> matching" in explorer.summary.value
            if len(expected):
                explorer.show(len(expected) + 5)  # clamped to the last one
                assert explorer.current_id == expected["id"].iloc[-1]
                assert f"question {len(expected)} of {len(expected)}" in explorer.example.value
                assert expected["source_id"].iloc[-1] in explorer.example.value
            else:
                assert "no probed question matches" in explorer.example.value
    explorer.probe.value, explorer.met.value = "remove_answer_sentence", None
    assert "line-through" in explorer.example.value  # the removed sentence is shown struck through
    explorer.outcome.value = "correct_abstention"  # answerable originals only: nothing can match
    assert explorer.matching.empty


def test_probe_pair_marks_only_what_changed():
    from xdanalysis.views.display import _diff_words

    left, right = _diff_words("Paris is big. Rome is old.", "Paris is big.")
    assert left.count("line-through") == 1 and ">Rome is old.</span>" in left
    assert "background" not in right  # "big." stayed, though the space after it went
    left, right = _diff_words("Paris is big.", "Rome is big.")
    assert ">Paris </span>" in left and ">Rome </span>" in right


def test_attribution_explorer_computes_once_and_follows(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.apps.model_widgets import AttributionExplorer
    from xdanalysis.apps.widgets import ErrorExplorer
    from xdanalysis.interpret.attribution import Attributor, IntegratedGradients
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.runs.run import predict_run

    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    model, tokenizer = load_qa_model(tiny_model_dir)
    explorer = AttributionExplorer(run, model, tokenizer, n_steps=8)
    qid = explorer.question.value
    assert "completeness" in explorer.status.value and explorer.image.value[:4] == b"\x89PNG"
    row = run.table.set_index("id").loc[qid]
    expected = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=8), windowing=WindowSettings(64, 16)).attribute(
        row["question"], row["context"], target="null_odds")
    assert explorer.attribution(qid, "null_odds", "integrated_gradients").scores == pytest.approx(expected.scores)
    seen = []  # what the screen shows while a new attribution is computed
    compute = explorer.attribution
    explorer.attribution = lambda *a: (seen.append((explorer.status.value, explorer.text.value)), compute(*a))[1]
    explorer.target.value = "span"
    assert "computing integrated gradients for span" in seen[0][0] and "opacity:0.3" in seen[0][1]
    assert "opacity" not in explorer.text.value  # the new one, in full colour
    explorer.method.value = "gradient_x_input"
    assert "no completeness guarantee" in explorer.status.value
    assert set(explorer._cache) == {(qid, "null_odds", "integrated_gradients"), (qid, "span", "integrated_gradients"),
                                    (qid, "span", "gradient_x_input")}
    explorer.target.value = "null_odds"
    explorer.method.value = "integrated_gradients"
    assert "cached" in explorer.status.value  # computed once
    errors = ErrorExplorer(run, n_boot=50)
    explorer.follow(errors)
    errors.outcome.value = "(all)"
    errors.show(3)
    assert explorer.question.value == errors.current_id
    followed = run.table.set_index("id").loc[errors.current_id, "context"]
    assert followed.split()[0] in explorer.text.value  # the followed question's context is the one shaded


def test_explorers_say_when_they_list_only_some_questions(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.apps.model_widgets import AttentionExplorer
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.runs.run import predict_run

    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    model, tokenizer = load_qa_model(tiny_model_dir)
    some = AttentionExplorer(run, model, tokenizer, max_questions=3)
    assert len(some.question.options) == 3 and f"first 3 of {len(run.table)}" in some.question.description
    every = AttentionExplorer(run, model, tokenizer)
    assert len(every.question.options) == len(run.table) and every.question.description == "question"


def test_explorer_grid_cells_and_tree_leaves_page_through_their_questions():
    import ipywidgets as w

    from xdanalysis.analysis.slices import slice_values

    base = hand_run()
    table = pd.concat([base.assign(id=base["id"] + f"-{k}", context=base["context"] + f" Paragraph {k}.")
                       for k in range(6)], ignore_index=True)
    explorer = ErrorExplorer(Run(path=Path("hand"), table=table, info={"settings": {}}, _nbest={}), n_boot=20)
    explorer.outcome.value = "(all)"
    explorer.second.value = "answer position"
    grid = explorer.grid.children[0].children[1]
    buttons = [c for c in grid.children if isinstance(c, w.Button) and not c.disabled]
    assert buttons and sum(int(b.description.split(" · ")[0]) for b in buttons) == \
        (slice_values(outcomes(table), "answer position").notna()).sum()
    buttons[0].click()
    a, b = explorer.cell
    first = slice_values(outcomes(table), "question type").astype(str)
    second = slice_values(outcomes(table), "answer position").astype(str)
    expected = set(table["id"][(first == a) & (second == b)])
    assert set(explorer.matching["id"]) == expected and f"cell {a} × {b}" in explorer.summary.value
    explorer.bucket.value = "who"  # choosing a bucket leaves the cell
    assert explorer.cell is None
    leaf = explorer.leaf.options[1][1]
    explorer.bucket.value = "(all)"
    explorer.leaf.value = leaf
    assert set(explorer.matching["id"]) == set(explorer.tree.examples(leaf)["id"])
    assert "tree leaf:" in explorer.summary.value
    assert explorer.leaf.options[0] == ("(every question)", -1)


def test_the_explorer_shows_the_interval_the_table_and_the_report_show():
    """One computation, one seed: a bucket's F1 interval in the explorer is the one slice_table gives by default
    (what the report prints), not another draw of the bootstrap."""
    from xdanalysis.analysis.slices import slice_table

    run = hand_run_object()
    explorer = ErrorExplorer(run)
    for name in ("question type", "context length"):
        shown = explorer.slice_frame(name).drop(columns="slice")
        table = slice_table(run.table, name).drop(columns="slice")
        pd.testing.assert_frame_equal(shown.reset_index(drop=True), table.reset_index(drop=True))


def test_the_explorer_says_why_nothing_matches_instead_of_staying_silent():
    explorer = ErrorExplorer(hand_run_object(), n_boot=20)
    explorer.second.value = explorer.slice.value  # the same slice twice
    assert "a grid needs two different slices" in explorer.summary.value
    explorer.second.value = "(none)"
    assert "two different slices" not in explorer.summary.value
    if explorer.tree is not None and len(explorer.leaf.options) > 1:
        explorer.leaf.value = explorer.leaf.options[-1][1] if isinstance(explorer.leaf.options[-1], tuple) \
            else explorer.leaf.options[-1]
        for bucket in explorer.bucket.options[1:]:
            explorer.bucket.value = bucket
            if explorer.matching.empty:
                assert "No question is both in" in explorer.summary.value
