"""Every folder and file a command writes is guarded the same way: a user's files are never written
over, a refused or failed command leaves what was there as it was, and two names never become one folder."""

from __future__ import annotations

import json
import warnings

import pytest

from xdanalysis.apps.cli import main
from xdanalysis.compress import Variant, parse_variant, split_variants
from xdanalysis.labs import CompressSettings, compress
from xdanalysis.core.settings import NAIVE_INT8
from xdanalysis.runs.run import predict_run
from xdanalysis.core import Execution

SMALL_CLI = ["--max-seq-length", "64", "--doc-stride", "16"]
LAB = CompressSettings(importance_questions=4, speed_questions=4, speed_rounds=1, n_boot=50)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDANALYSIS_CACHE", str(tmp_path / "cache"))


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# probe --out ---------------------------------------------------------------------------------------

def test_probe_refuses_a_folder_of_a_users_own_files_even_with_our_names(tmp_path, squad_file, tiny_model_dir, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "probe_summary.txt").write_text("my notes")
    (mine / "probes.json").write_text('{"mine": true}')
    before = snapshot(mine)
    assert main(["probe", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(mine),
                 "--probes", "question_typo", "--allow-random-head", *SMALL_CLI]) == 2
    assert "not a probe directory" in capsys.readouterr().err
    assert snapshot(mine) == before


def test_probe_reuses_its_own_folder(tmp_path, squad_file, tiny_model_dir, capsys):
    out = tmp_path / "probes"
    args = ["probe", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out),
            "--probes", "question_typo", "--allow-random-head", *SMALL_CLI]
    assert main(args) == 0
    assert main(args) == 0  # its own folder: accepted again
    assert (out / "probe_summary.txt").exists()


# report --out, score -o / -p ------------------------------------------------------------------------

def test_report_never_writes_over_a_runs_own_file_or_a_users_file(tmp_path, squad_file, tiny_model_dir, capsys):
    run = tmp_path / "run"
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(run),
                 "--allow-random-head", *SMALL_CLI]) == 0
    predictions = (run / "predictions.json").read_bytes()
    assert main(["report", str(run), "--out", str(run / "predictions.json"), "--n-boot", "20"]) == 2
    assert "predictions.json: exists and is not an HTML report" in capsys.readouterr().err
    assert (run / "predictions.json").read_bytes() == predictions
    assert main(["report", str(run), "--out", str(run), "--n-boot", "20"]) == 2  # a directory
    assert "is a directory" in capsys.readouterr().err
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--n-boot", "20"]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--n-boot", "20"]) == 0  # its own report


def test_score_expands_a_tilde_after_an_equals_sign_and_guards_its_output(tmp_path, squad_file, tiny_model_dir,
                                                                         monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, run, execution=Execution(allow_random_head=True, progress=False))
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-n", str(run / "na_probs.json"),
                 "-p=~/imgs"]) == 0
    assert (tmp_path / "home" / "imgs" / "pr_f1.png").exists() and not (tmp_path / "~").exists()
    data_before = squad_file.read_bytes()
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-o", str(squad_file)]) == 2
    assert "not a scores file" in capsys.readouterr().err and squad_file.read_bytes() == data_before
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-o", str(tmp_path / "eval.json")]) == 0
    assert main(["score", str(squad_file), str(run / "predictions.json"), "-o", str(tmp_path / "eval.json")]) == 0


def test_score_missing_as_wrong_with_probabilities_and_images(tmp_path, squad_file, tiny_model_dir):
    run = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, run, execution=Execution(allow_random_head=True, progress=False))
    predictions = json.loads((run / "predictions.json").read_text())
    probabilities = json.loads((run / "na_probs.json").read_text())
    for gone in ("n1", "p3"):  # one answerable, one unanswerable without a prediction
        predictions.pop(gone), probabilities.pop(gone)
    (tmp_path / "p.json").write_text(json.dumps(predictions))
    (tmp_path / "na.json").write_text(json.dumps(probabilities))
    assert main(["score", str(squad_file), str(tmp_path / "p.json"), "-n", str(tmp_path / "na.json"),
                 "--missing-as-wrong", "-p", str(tmp_path / "imgs"), "-o", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["total"] == 8 and "pr_f1_ap" in result
    assert (tmp_path / "imgs" / "na_prob_hist_noAns.png").exists()


# compress: checks first, under the lab's lock, nothing left by a refusal ----------------------------

VARIANTS = (Variant("fp32", "float32"), Variant("int8 naive", "int8", int8=NAIVE_INT8))


def test_a_refused_or_failed_compress_leaves_the_lab_as_it_was(tmp_path, squad_file, tiny_model_dir):
    from xdanalysis.runs.store import RunBusyError, locked

    out = tmp_path / "lab"
    compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=VARIANTS, settings=LAB, progress=False)
    before = snapshot(out)
    with pytest.raises(Exception, match="Nope"):
        compress(tiny_model_dir, squad_file, out, held_out=["Nope"], variants=VARIANTS, settings=LAB, progress=False)
    assert snapshot(out) == before
    with locked(out):  # a second compress at once
        with pytest.raises(RunBusyError):
            compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=VARIANTS[:1], settings=LAB,
                     progress=False)
    assert snapshot(out) == before
    record = json.loads((out / "compress.json").read_text())
    assert [v["name"] for v in record["variants"]] == ["fp32", "int8 naive"]


def test_a_refused_compress_in_a_new_folder_leaves_nothing(tmp_path, squad_file, tiny_model_dir):
    for variants, message in ((split_variants("fp32,layers:99"), "layers to keep must be distinct, each from 0 to 1"),
                              (split_variants("fp32,gone=" + str(tmp_path / "nowhere")), "does not exist"),
                              (split_variants("fp32,heads:0.99"), "at most 50.0% of the heads")):
        out = tmp_path / "new-lab"
        with pytest.raises(ValueError, match=message):
            compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=variants, settings=LAB,
                     progress=False)
        assert not out.exists()


def test_held_out_questions_without_unanswerable_ones_give_a_table_not_a_key_error(tmp_path, squad_file,
                                                                                    tiny_model_dir):
    result = compress(tiny_model_dir, squad_file, tmp_path / "lab", held_out=["Paris"], limit=2, variants=VARIANTS,
                      settings=LAB, progress=False)
    row = result.table.set_index("variant").loc["int8 naive"]
    assert row["NoAns acc questions"] == 0 and row["NoAns acc"] != row["NoAns acc"]  # NaN: not known, not 0
    assert "unanswerable accuracy not measured" in result.verdict()[0]


# names that would become one folder -----------------------------------------------------------------

def test_variant_names_that_share_a_folder_or_have_none_are_refused(tmp_path, squad_file, tiny_model_dir):
    fp32 = Variant("fp32", "float32")
    for variants, message in (((fp32, Variant("a b", "int8"), Variant("a-b", "bfloat16")), "would share one folder"),
                              ((fp32, parse_variant("=" + str(tiny_model_dir))), "needs a letter or digit"),
                              ((fp32, parse_variant("..=" + str(tiny_model_dir))), "needs a letter or digit")):
        with pytest.raises(ValueError, match=message):
            compress(tiny_model_dir, squad_file, tmp_path / "lab", held_out=["Paris"], variants=variants,
                     settings=LAB, progress=False)
        assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize("text, message", [
    ("heads:abc", "'abc' is not a number"), ("heads:", "'' is not a number"), ("heads:nan", "between 0 and 1"),
    ("heads:1.5", "between 0 and 1"), ("layers:", "'' is not a number"), ("layers:a,b", "'a' is not a number"),
])
def test_malformed_variants_are_named(text, message):
    with pytest.raises(ValueError, match=f"variant '{text}'.*{message}"):
        split_variants(text)


@pytest.mark.slow
def test_two_teachers_labs_share_one_runs_folder(tmp_path, squad_file, tiny_model_dir):
    from conftest import build_tiny_model

    from xdanalysis.labs.distill import LabRecipe, lab_student

    other = build_tiny_model(tmp_path / "other-teacher", seed=3)
    recipe = LabRecipe(labelled=3, transfer=0, fit=1, windows=4, layers=(0,))
    runs = tmp_path / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = lab_student("hard labels", tiny_model_dir, squad_file, runs=runs, held_out=["Paris"], recipe=recipe,
                            progress=False)
        second = lab_student("hard labels", other, squad_file, runs=runs, held_out=["Paris"], recipe=recipe,
                             progress=False)
    assert first.path != second.path
    assert json.loads((second.path / "distill.json").read_text())["teacher"].endswith("other-teacher")


@pytest.mark.slow
def test_a_damaged_lab_record_is_kept_aside_and_the_student_recorded(tmp_path, squad_file, tiny_model_dir):
    from xdanalysis.labs.distill import LAB_RESULTS, LabRecipe, lab_checkpoints, lab_student

    recipe = LabRecipe(labelled=3, transfer=0, fit=1, windows=4, layers=(0,))
    runs = tmp_path / "runs"
    runs.mkdir()
    for damaged in ('{"students": [', '{"student": []}', '{"students": [{"name": "x"}]}'):
        (runs / LAB_RESULTS).write_text(damaged)
        with pytest.warns(UserWarning, match=LAB_RESULTS):
            lab_checkpoints(runs)  # read: a warning, no crash
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab_student("hard labels", tiny_model_dir, squad_file, runs=runs, held_out=["Paris"], recipe=recipe,
                        progress=False)
        students = json.loads((runs / LAB_RESULTS).read_text())["students"]
        assert [s["name"] for s in students] == ["hard labels"]
    assert (runs / (LAB_RESULTS + ".damaged")).exists()
