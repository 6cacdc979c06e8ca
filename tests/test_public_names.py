"""The names a user types: each sub-package binds a public name once, and the one name does its job."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xdanalysis

PACKAGE = Path(xdanalysis.__file__).parent


@pytest.mark.parametrize("init", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_public_name_is_bound_twice_in_a_package_face(init):
    bound = []
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            bound += [alias.asname or alias.name for alias in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.append(node.name)
    twice = sorted({name for name in bound if bound.count(name) > 1})
    assert not twice, f"{init.relative_to(PACKAGE)} binds {twice} more than once: the last import silently wins"


def test_interpret_to_words_takes_attention_and_attribution(tiny):
    from xdanalysis.interpret import Attention, Attribution, Attributor, get_attention, to_words

    model, tokenizer = tiny
    question, context = "When was the castle built?", "The castle at Caen was built by William in 1060."
    attention = to_words(get_attention(model, tokenizer, question, context))
    assert isinstance(attention, Attention)
    assert np.allclose(attention.attentions.sum(-1), 1.0, atol=1e-5)  # rows still sum to one
    attribution = Attributor(model, tokenizer, method="gradient_x_input").attribute(question, context)
    words = to_words(attribution)
    assert isinstance(words, Attribution) and len(words.tokens) <= len(attribution.tokens)
    assert words.scores.sum() == pytest.approx(attribution.scores.sum())  # sums of pieces: the total is kept


@pytest.mark.parametrize("init", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_face_lists_by_hand_exactly_the_names_it_imports(init):
    import importlib

    module = importlib.import_module(".".join(("xdanalysis", *init.relative_to(PACKAGE).parent.parts)))
    imported = {alias.asname or alias.name for node in ast.parse(init.read_text()).body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert set(module.__all__) - {"__version__"} == imported


def test_every_name_that_left_a_face_is_importable_from_the_home_changes_md_gives():
    import importlib
    import re

    changes = (PACKAGE.parent / "CHANGES.md").read_text()
    moved = re.findall(r"`from (xdanalysis[\w.]*) import (\w+)`", changes)
    assert len(moved) > 100
    for home, name in moved:
        assert hasattr(importlib.import_module(home), name), f"{name} is not in {home}"


def test_every_plot_takes_its_data_then_keyword_only_options_and_says_what_it_returns():
    import importlib
    import inspect
    import pkgutil

    import xdanalysis.views as views

    checked = 0
    for info in pkgutil.iter_modules(views.__path__):
        module = importlib.import_module(f"xdanalysis.views.{info.name}")
        for name, function in vars(module).items():
            if not (name.startswith("plot_") and inspect.isfunction(function) and function.__module__ == module.__name__):
                continue
            parameters = inspect.signature(function).parameters.values()
            options = [p for p in parameters if p.default is not inspect.Parameter.empty]
            assert all(p.kind is p.KEYWORD_ONLY for p in options), f"{name}: options must be keyword-only"
            canvas = [p.name for p in options if p.name in ("ax", "axes", "figure")]
            assert canvas and options[0].name == canvas[0], f"{name}: ax= (or axes=, figure=) comes first"
            assert inspect.signature(function).return_annotation in ("Axes", "np.ndarray", "Figure"), name
            checked += 1
    assert checked >= 37


def test_results_are_objects_or_plain_frames_that_ordinary_pandas_accepts():
    import pandas as pd

    from xdanalysis.analysis import Reliability, probe_summary, reliability
    from xdanalysis.analysis.probes.summary import probe_transitions

    def table(shift):
        return pd.DataFrame({"id": list("abcd"), "has_answer": [True, True, True, False],
                             "answer": ["x", "y", "z", ""], "span_probability": [0.9, 0.8 - shift, 0.3, 0.2],
                             "na_prob": [0.1, 0.2, 0.7, 0.6 + shift], "exact": [1, 0, 1, 1]})

    first, second = reliability(table(0.0), bins=2), reliability(table(0.1), bins=2)
    assert isinstance(first, Reliability)
    both = pd.concat([first.summary.assign(run="a"), second.summary.assign(run="b")])  # raised ValueError before
    assert len(both) == 6 and not first.bins.attrs and not first.summary.attrs
    results = pd.DataFrame({"probe": ["question_typo"] * 3, "expect": ["same_answer"] * 3, "met": [True, False, True],
                            "original_exact": [1, 1, 0], "original_outcome": ["correct", "correct", "wrong_span"],
                            "probed_outcome": ["correct", "wrong_span", "wrong_span"]})
    summary = probe_summary(results, n_boot=20)
    assert not summary.attrs and len(pd.concat([summary, summary])) == 2
    assert probe_transitions(results)["question_typo"].to_numpy().sum() == 3


def test_settings_round_trip_by_name():
    from xdanalysis.core import DecodingSettings, Int8Settings, NAIVE_INT8, WindowSettings

    for settings in (WindowSettings(256, 64, 32), DecodingSettings(n_best_size=5, null_score_diff_threshold=-1.5),
                     Int8Settings(), NAIVE_INT8):
        assert type(settings).from_dict(settings.as_dict()) == settings
    run_json = {"model": "m", "max_seq_length": 256, "doc_stride": 64, "null_score_diff_threshold": -0.4}
    assert WindowSettings.from_dict(run_json) == WindowSettings(256, 64)  # other keys ignored, the rest default
    assert DecodingSettings.from_dict(run_json).null_score_diff_threshold == -0.4


def test_no_result_travels_in_dataframe_attrs():
    """``DataFrame.attrs`` carries no result anywhere in the package: the one use left is the provenance label
    ``load_squad`` gives a question table (``attrs["source"]``), which pandas carries through selections."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            target = None
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                target = next((t for t in targets if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute)
                               and t.value.attr == "attrs"), None)
                if target is not None and ast.literal_eval(target.slice) == "source":
                    continue
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "attrs" and \
                    node.func.attr in ("update", "setdefault", "__setitem__"):
                copied = node.args and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "attrs"
                if copied:  # a table's own attrs carried to its copy: only ever the source label
                    continue
                target = node
            if target is not None:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"results written to DataFrame.attrs: {offenders}"


def test_every_analysis_frame_is_plain_and_concatenates(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.analysis import (calibration_summary, compare, confusion, error_tree, gold_audit, outcomes,
                                     reliability, risk_coverage, selective_summary, slice_grid, slice_table,
                                     threshold_curve, threshold_summary)
    from xdanalysis.core import Execution, WindowSettings
    from xdanalysis.runs import predict_run

    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16),
                      execution=Execution(allow_random_head=True, progress=False))
    table = outcomes(run.table)
    frames = {
        "run.table": run.table, "outcomes": table, "confusion": confusion(table),
        "slice_table": slice_table(table, "question type", n_boot=20),
        "slice_grid": slice_grid(table, "question type", "context length", n_boot=20),
        "threshold_curve": threshold_curve(table), "threshold_summary": threshold_summary(run),
        "risk_coverage": risk_coverage(run), "selective_summary": selective_summary(run),
        "calibration_summary": calibration_summary(run), "reliability.bins": reliability(run).bins,
        "compare.metrics": compare(run, run, labels=("a", "b")).metrics,
        "slice_differences": compare(run, run, labels=("a", "b")).slice_differences("question type"),
        "gold_audit.summary": gold_audit(run).summary, "gold_audit.table": gold_audit(run).table,
        "error_tree.leaves": error_tree(run, min_leaf=1).leaves,
    }
    for name, frame in frames.items():
        assert isinstance(frame, pd.DataFrame), name
        assert not frame.attrs, f"{name} carries {sorted(frame.attrs)} in attrs"
        both = pd.concat([frame, frame], ignore_index=True)
        assert len(both) == 2 * len(frame), name
