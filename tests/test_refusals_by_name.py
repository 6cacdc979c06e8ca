"""Bad input and unknown figures are said plainly: each message names the file, variable or option at
fault; a figure that is not known is not shown as 0; a verdict claims only what was found."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from xdanalysis.analysis.error_tree import NO_RULE, error_tree
from xdanalysis.analysis.gold import gold_audit
from xdanalysis.apps.cli import main
from xdanalysis.apps.notebook import SettingError, notebook_settings
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.pruning import PRUNED_HEADS_FILE, prune_heads, save_pruned
from xdanalysis.runs.run import predict_run
from xdanalysis.views.summary import abstaining_warning
from xdanalysis.core import Execution


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    import sys

    sys.path.insert(0, "tests")
    from conftest import squad_payload

    folder = tmp_path_factory.mktemp("refusals")
    data = folder / "squad.json"
    data.write_text(json.dumps(squad_payload()))
    return predict_run(tiny_model_dir, data, folder / "run", execution=Execution(allow_random_head=True, progress=False))


# Figures not known, verdicts not found ---------------------------------------------------------------

def test_gold_audit_without_plausible_answers_says_not_known_instead_of_0(run):
    with_plausible = gold_audit(run).summary["value"]
    assert not math.isnan(with_plausible.iloc[-1])  # the fixture's data has plausible answers
    table = run.table.copy()
    table["plausible_texts"] = [[] for _ in range(len(table))]  # as the rebuilt complete dev set has it
    summary = gold_audit(table).summary
    label = summary.index[-1]
    assert "not known, the data has no plausible answers" in label
    assert math.isnan(summary["value"].iloc[-1])


def _many_contexts(table: pd.DataFrame, copies: int) -> pd.DataFrame:
    frames = []
    for k in range(copies):
        part = table.copy()
        part["id"] = part["id"] + f"-{k}"
        part["context"] = part["context"] + f" (copy {k})"
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def test_an_error_tree_that_found_no_rule_says_so(run):
    table = _many_contexts(run.table, 10)
    table["outcome"] = "correct"  # no error at all: nothing to split
    tree = error_tree(table, min_leaf=1)
    assert len(tree.leaves) == 1 and list(tree.leaves["verdict"]) == [NO_RULE]
    table["outcome"] = "wrong_span"  # every question wrong: nothing to split either
    assert list(error_tree(table, min_leaf=1).leaves["verdict"]) == [NO_RULE]


@pytest.mark.parametrize("options, message", [({"min_leaf": 0}, "min_leaf must be a whole number of at least 1"),
                                              ({"max_depth": 0}, "max_depth must be a whole number of at least 1")])
def test_error_tree_options_are_named(run, options, message):
    with pytest.raises(ValueError, match=f"error_tree: {message}"):
        error_tree(run, **options)


def test_a_model_far_below_always_abstaining_is_not_called_one_that_hardly_answers():
    scores = {"f1": 3.31, "total": 27, "NoAns_total": 15, "HasAns_f1": 3.0}  # always abstaining: 55.56
    warning = abstaining_warning(scores, label="m")
    assert "52.25 points below always abstaining (55.56)" in warning and "hardly" not in warning
    answering = {"f1": 50.5, "total": 10, "NoAns_total": 5, "HasAns_f1": 45.0}
    assert "hardly" not in abstaining_warning(answering) and "cancel out" in abstaining_warning(answering)
    assert "it hardly answers" in abstaining_warning({**answering, "HasAns_f1": 2.0})


# Pruned checkpoints whose pruned_heads.json is wrong --------------------------------------------------

@pytest.fixture
def pruned(tiny, tmp_path):
    import copy

    model, tokenizer = tiny
    model = copy.deepcopy(model)
    prune_heads(model, {0: [1]})
    return save_pruned(model, tokenizer, tmp_path / "pruned")


@pytest.mark.parametrize("content, message", [
    ("not json", "unreadable"),
    ('["0", 1]', "must map layer numbers to lists of head numbers"),
    ('{"0": ["a"]}', "must map layer numbers to lists of head numbers"),
    ('{"0": [7]}', r"cannot remove heads \[7\] of its 2.*does not fit this model's config"),
    ('{"1": [0]}', "do not fit the heads pruned_heads.json says were pruned"),
])
def test_a_wrong_pruned_heads_file_is_named(pruned, content, message):
    (pruned / PRUNED_HEADS_FILE).write_text(content)
    with pytest.raises(ValueError, match=message) as refused:
        load_qa_model(pruned, device="cpu")
    assert str(pruned) in str(refused.value) and PRUNED_HEADS_FILE in str(refused.value)


def test_a_pruned_checkpoint_without_its_pruned_heads_file_is_named(pruned):
    (pruned / PRUNED_HEADS_FILE).unlink()
    with pytest.raises(ValueError, match=f"{pruned}.*{PRUNED_HEADS_FILE}"):
        load_qa_model(pruned, device="cpu")


# Options and settings named ----------------------------------------------------------------------------

def test_distill_student_layers_given_empty_is_refused(tmp_path, squad_file, tiny_model_dir, capsys):
    assert main(["distill", "--teacher", str(tiny_model_dir), "--data", str(squad_file), "--out",
                 str(tmp_path / "s"), "--student-layers", ""]) == 2
    assert "--student-layers ''" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_distill_cache_dir_with_a_tilde_after_an_equals_sign_is_the_home_folder(tmp_path, squad_file,
                                                                                tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["distill", "--teacher", str(tiny_model_dir), "--data", str(squad_file), "--out", str(tmp_path / "s"),
                 "--student-layers", "0", "--max-steps", "1", "--max-seq-length", "64", "--doc-stride", "16",
                 "--cache-dir=~/logits"]) == 0
    assert any((tmp_path / "home" / "logits").iterdir()) and not (tmp_path / "~").exists()


@pytest.mark.parametrize("variable, value, message", [
    ("LAB_WINDOWS", "-5", "XDANALYSIS_LAB_WINDOWS=-5: must be at least 1"),
    ("SPEED_QUESTIONS", "abc", "XDANALYSIS_SPEED_QUESTIONS=abc: not a whole number"),
    ("SPEED_QUESTIONS", "0", "XDANALYSIS_SPEED_QUESTIONS=0: must be at least 1"),
    ("LIMIT", "-1", "XDANALYSIS_LIMIT=-1: must be at least 1"),
    ("PAIRS", "-3", "XDANALYSIS_PAIRS=-3: must be at least 1"),
    ("DTYPE", "int9", "XDANALYSIS_DTYPE=int9: not one of"),
    ("DEVICE", "gpu", "XDANALYSIS_DEVICE=gpu: not one of"),
    ("RUNTIME", "onnx", "XDANALYSIS_RUNTIME=onnx: not one of torch, openvino"),
])
def test_every_notebook_setting_is_checked_and_named(variable, value, message):
    defaults = {"DATA": "squad_v2", "LIMIT": None, "PAIRS": "40", "LAB_WINDOWS": None, "SPEED_QUESTIONS": "64"}
    with pytest.raises(SettingError, match=message):
        notebook_settings(defaults=defaults, environ={f"XDANALYSIS_{variable}": value})


def test_a_notebook_on_openvino_says_what_still_runs_on_pytorch():
    settings = notebook_settings(defaults={"DATA": "squad_v2"}, environ={"XDANALYSIS_RUNTIME": "openvino"})
    assert settings.execution().runtime == "openvino"
    assert any("load on PyTorch" in note for note in settings.notes)
    assert notebook_settings(defaults={"DATA": "squad_v2"}, environ={}).execution().runtime == "torch"


def test_a_lab_recipe_that_cannot_work_names_its_variable():
    settings = notebook_settings(defaults={"LAB_FIT": None}, environ={"XDANALYSIS_LAB_FIT": "0"})
    with pytest.raises(SettingError, match=r"XDANALYSIS_LAB_FIT \(fit\)"):
        settings.lab_recipe()


def test_a_ray_client_address_without_rays_client_package_says_what_is_missing(monkeypatch):
    import importlib.util

    pytest.importorskip("ray")
    from xdanalysis.runs.engines import RayUnavailableError, connect_ray

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a))
    with pytest.raises(RayUnavailableError, match=r"ray://127.0.0.1:10001: a ray:// address needs Ray's client "
                                                  r"package.*pip install 'ray\[client\]'"):
        connect_ray("ray://127.0.0.1:10001")


def test_the_ray_extra_installs_rays_client():
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(r.startswith("ray[") and "client" in r for r in extras["ray"])
