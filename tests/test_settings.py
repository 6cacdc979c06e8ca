"""Notebook settings: paths from the project root, held-out articles by default, errors that name the variable."""

import json
import os
from pathlib import Path

import pytest

from xdanalysis.apps.notebook import SettingError, notebook_settings, project_root
from xdanalysis.core.settings import WindowSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {"MODEL": "nbroad/xdistil-l12-h384-squad2", "DATA": "squad_v2", "TITLES": None, "LIMIT": None, "RUN": None}


def test_relative_paths_are_read_from_the_project_root(tiny_model_dir, monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")  # where a notebook's kernel runs
    assert project_root() == ROOT
    relative = os.path.relpath(tiny_model_dir, ROOT)
    settings = notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_MODEL": relative, "XDANALYSIS_LIMIT": "7"})
    assert settings["MODEL"] == str(Path(tiny_model_dir).resolve()) and settings["LIMIT"] == 7
    assert Path(settings["RUN"]).parent == ROOT / "runs"  # the project's runs/, where `make report` writes
    with pytest.raises(SettingError, match=rf"XDANALYSIS_DATA=../nowhere.json: .*project root {ROOT} .*notebooks"):
        notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_DATA": "../nowhere.json"})
    with pytest.raises(SettingError, match="XDANALYSIS_LIMIT=many: not a whole number"):
        notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_LIMIT": "many"})


def test_held_out_articles_are_the_default_when_the_model_says_so(tiny_model_dir, clean_copy):
    model = clean_copy(tiny_model_dir)
    (model / "training.json").write_text(json.dumps({"trained_on_titles": ["Normans"], "held_out_titles": ["Paris"]}))
    settings = notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_MODEL": str(model)})
    assert settings["TITLES"] == ["Paris"] and "trained on the others" in settings._repr_markdown_()
    chosen = notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_MODEL": str(model),
                                                           "XDANALYSIS_TITLES": "Normans,Paris"})
    assert chosen["TITLES"] == ["Normans", "Paris"] and chosen.sources["TITLES"] == "environment"


def test_every_unreachable_input_is_named_at_once_by_its_variable(monkeypatch):
    from xdanalysis.core.data import HubUnreachableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = notebook_settings(defaults={"TEACHER": "org/teacher", "STUDENT": "org/student", "DATA": "squad_v2",
                                           "TITLES": None, "LIMIT": None, "RUNS": None},
                                 title_model="TEACHER", environ={})
    with pytest.raises(HubUnreachableError) as caught:
        settings.run("TEACHER")
    message = str(caught.value)
    assert "XDANALYSIS_TEACHER: Model 'org/teacher'" in message and "XDANALYSIS_STUDENT: Model 'org/student'" in message
    # one way to get a student: the recipe's (leave it unset, or distil one), never the demo model as the student
    assert "XDANALYSIS_STUDENT=../shared" not in message and "minilm-l6-squad2-demo," not in message
    assert "leave the student unset" in message and "export XDANALYSIS_STUDENT=runs/students/mine" in message
    assert "XDANALYSIS_DATA=../shared/data/squad-v2-dev-half.json" in message and "--model" not in message
    assert "xdanalysis distill" in message  # and how to get a student offline


def test_a_notebook_run_reuses_the_run_make_report_wrote(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    from xdanalysis.apps.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out",
                 str(tmp_path / "runs" / "r"), "--max-seq-length", "64", "--doc-stride", "16"]) == 0
    monkeypatch.chdir(tmp_path / "notebooks")
    settings = notebook_settings(defaults=DEFAULTS, environ={"XDANALYSIS_MODEL": str(tiny_model_dir),
                                                             "XDANALYSIS_DATA": str(squad_file),
                                                             "XDANALYSIS_RUN": "runs/r"})
    import xdanalysis.model.loading as inference

    monkeypatch.setattr(inference, "load_qa_model", lambda *a, **k: pytest.fail("recomputed"))
    run = settings.run(windowing=WindowSettings(64, 16), progress=False)
    assert run.path == tmp_path / "runs" / "r" and len(run.table) == 8


def test_the_lab_recipe_reads_its_settings_and_refuses_a_bad_one(monkeypatch):
    from xdanalysis.apps.notebook import SettingError, notebook_settings
    from xdanalysis.labs.distill import LabRecipe

    defaults = {"LAB_LABELLED": None, "LAB_TRANSFER": None, "LAB_FIT": None, "LAB_WINDOWS": None}
    settings = notebook_settings(defaults=defaults, environ={"XDANALYSIS_LAB_WINDOWS": "640",
                                                            "XDANALYSIS_LAB_TRANSFER": "0"})
    recipe = settings.lab_recipe(layers=[1, 3, 5])
    assert recipe == LabRecipe(windows=640, transfer=0, layers=(1, 3, 5))
    assert recipe.labelled == LabRecipe().labelled  # unset: the lab's default
    with pytest.raises(SettingError, match="XDANALYSIS_LAB_FIT=many: not a whole number"):
        notebook_settings(defaults=defaults, environ={"XDANALYSIS_LAB_FIT": "many"})
    with pytest.raises(SettingError, match="XDANALYSIS_LAB_WINDOWS=0: must be at least 1"):  # named (issue 29)
        notebook_settings(defaults=defaults, environ={"XDANALYSIS_LAB_WINDOWS": "0"}).lab_recipe()
