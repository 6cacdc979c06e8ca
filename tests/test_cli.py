"""The xdanalysis command end to end on a local model and file."""

import json
import subprocess
import sys

import pytest

from xdanalysis.apps.cli import main

SMALL = ["--max-seq-length", "64", "--doc-stride", "16"]


def test_predict_then_score_matches_the_run(tiny_model_dir, squad_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(run), *SMALL]) == 0
    assert capsys.readouterr().out.strip() == str(run)
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-n", str(run / "na_probs.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed)[:3] == ["exact", "f1", "total"] and printed["total"] == 8
    assert {"best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"} <= set(printed)
    out_file = tmp_path / "eval.json"
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-o", str(out_file)]) == 0
    assert json.loads(out_file.read_text())["exact"] == printed["exact"]


def test_evaluate_prints_the_table(tiny_model_dir, squad_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(run),
                 "--limit", "6", *SMALL]) == 0
    text = capsys.readouterr().out
    for label in ("overall", "answerable (HasAns)", "unanswerable (NoAns)", "best F1"):
        assert label in text
    assert (run / "summary.txt").read_text().strip() == text.strip()
    assert json.loads((run / "scores.json").read_text())["total"] == 6


def test_score_errors_name_the_problem(squad_file, tmp_path, capsys):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"n1": "France", "p1": "Paris", "zz": "x"}))
    assert main(["score", str(squad_file), str(preds)]) == 2
    err = capsys.readouterr().err  # the unknown id said once, as the command's warning, then the error
    assert "xdanalysis score: warning: 1 prediction id(s) are not in the data and are ignored: 'zz'" in err
    assert "6 of 8 questions have no prediction: 'n2', 'n3', 'n4', 'p2'" in err and "--missing-as-wrong" in err
    assert main(["score", str(squad_file), str(preds), "--missing-as-wrong"]) == 0
    said = capsys.readouterr()
    assert said.err.count("'zz'") == 1
    scores = json.loads(said.out)
    assert scores["exact"] == pytest.approx(100 * 2 / 8)
    preds.write_text("{broken")
    assert main(["score", str(squad_file), str(preds)]) == 2
    assert "preds.json: not valid JSON" in capsys.readouterr().err
    preds.write_text(json.dumps({"n1": 3}))
    assert main(["score", str(squad_file), str(preds)]) == 2
    assert "id 'n1': 3" in capsys.readouterr().err


def test_model_without_head_and_bad_data_exit_cleanly(encoder_only_dir, squad_file, tmp_path, capsys):
    code = main(["predict", "--model", str(encoder_only_dir), "--data", str(squad_file), "--out", str(tmp_path / "r")])
    assert code == 2 and "--allow-random-head" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t"}]}))
    code = main(["predict", "--model", str(encoder_only_dir), "--data", str(bad), "--out", str(tmp_path / "r")])
    assert code == 2 and "data[0]: missing field 'paragraphs'" in capsys.readouterr().err


def test_console_script_installed():
    result = subprocess.run([sys.executable, "-m", "xdanalysis.apps.cli", "score", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--na-prob-file" in result.stdout


def test_interrupted_predict_says_how_to_resume(tiny_model_dir, squad_file, tmp_path, capsys, monkeypatch):
    import xdanalysis.model.predict as inference

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference, "predict_table", interrupted)
    code = main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(tmp_path / "r")])
    assert code == 130 and "run the same command again to resume" in capsys.readouterr().err


def test_score_refuses_nan_and_a_file_as_image_directory(squad_file, tmp_path, capsys):
    from xdanalysis.core.data import load_squad

    ids = list(load_squad(squad_file)["id"])
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({qid: "" for qid in ids}))
    probs = tmp_path / "probs.json"
    probs.write_text("{" + ", ".join(f'"{qid}": {"NaN" if qid == "p2" else 0.5}' for qid in ids) + "}")
    assert main(["score", str(squad_file), str(preds), "-n", str(probs)]) == 2
    assert "probs.json" in (err := capsys.readouterr().err) and "'p2'" in err and "NaN" in err
    probs.write_text(json.dumps({qid: 0.5 for qid in ids}))
    image = tmp_path / "image.png"
    image.write_text("")
    assert main(["score", str(squad_file), str(preds), "-n", str(probs), "-p", str(image)]) == 2
    assert "image.png: exists and is not a directory" in capsys.readouterr().err


def test_make_names_what_the_user_typed(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDANALYSIS_VIA_MAKE", "1")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", "nbroad/xdistil-l12-h384-squad2", "--data", "squad_v2"]) == 2
    err = capsys.readouterr().err
    assert "--model" not in err and "--data" not in err
    assert "MODEL=" in err and "DATA=" in err
    # the missing data and the missing model are both reported, in one round
    assert "Dataset 'squad_v2'" in err and "Model 'nbroad/xdistil-l12-h384-squad2'" in err


def test_distill_from_the_command_line(tmp_path, squad_file, capsys):
    from conftest import build_tiny_model

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=2)
    code = main(["distill", "--teacher", str(teacher), "--data", str(squad_file), "--out", str(tmp_path / "student"),
                 "--student-layers", "1", "--titles", "Normans", "--max-steps", "3", "--batch-size", "4",
                 "--max-seq-length", "64", "--doc-stride", "16"])
    assert code == 0
    out = capsys.readouterr().out
    assert "student:" in out and "3 steps" in out and "overall" in out  # evaluated on the other article
    info = json.loads((tmp_path / "student" / "distill.json").read_text())
    assert info["eval_titles"] == ["Paris"] and info["trained_on_titles"] == ["Normans"]
    assert main(["distill", "--teacher", str(teacher), "--data", str(squad_file), "--out", str(tmp_path / "x"),
                 "--student", str(teacher), "--student-layers", "1"]) == 2


def test_each_warning_is_said_once_as_a_sentence(tiny_model_dir, squad_file, tmp_path, capsys):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "training.json").write_text(json.dumps({"trained_on_titles": ["Normans"]}))
    small = ["--model", str(model), "--data", str(squad_file), "--max-seq-length", "64", "--doc-stride", "16"]
    assert main(["probe", *small, "--probes", "question_typo,question_lowercase", "--out", str(tmp_path / "p")]) == 0
    said = capsys.readouterr()
    # three runs over a trained-on article (the original and two probes): one sentence, no source line
    assert said.err.count("were trained on") + said.err.count("was trained on") == 1
    assert "xdanalysis probe: warning: " in said.err and "warnings.warn" not in said.err
    assert main(["evaluate", *small, "--out", str(tmp_path / "e")]) == 0
    said = capsys.readouterr()
    assert "trained on" not in said.err and said.out.count("trained on") == 1  # the summary says it, once
