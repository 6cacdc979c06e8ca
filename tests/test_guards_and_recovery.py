"""Guards and recovery: a command never writes over files it did not create, nothing reused can have come
from another model, data or settings, no wait without a bound, no traceback for a user's mistake, and damage
is seen and rebuilt. Each test is named by the behaviour it checks."""

import json

import pytest

from conftest import build_tiny_model
from xdanalysis.apps.cli import main
from xdanalysis.core.settings import DecodingSettings, WindowSettings
from xdanalysis.distill.config import DistillConfig
from xdanalysis.distill.train import distill
from xdanalysis.runs.run import predict_run
from xdanalysis.runs.store import RunBusyError, RunError, locked
from xdanalysis.core import Execution, Selection

SMALL = {"windowing": WindowSettings(64, 16), "execution": Execution(progress=False)}
TINY_RECIPE = DistillConfig(max_steps=2, batch_size=8, windowing=WindowSettings(64, 16))


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_distill_never_writes_into_a_teachers_a_runs_or_your_folder(tmp_path, squad_file, tiny_model_dir):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", **SMALL).path
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "config.json").write_text('{"mine": true}')
    for out in (teacher, run, mine):
        before = snapshot(out)
        with pytest.raises(RunError, match="not a student directory .* Nothing was deleted or overwritten"):
            distill(teacher, squad_file, out, config=TINY_RECIPE, student=(0,), execution=Execution(progress=False))
        assert snapshot(out) == before
    # the command line says it in one line, no traceback
    assert main(["distill", "--teacher", str(teacher), "--data", str(squad_file), "--out", str(mine),
                 "--max-steps", "1"]) == 2


def test_a_second_distill_on_one_out_is_refused(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    out = tmp_path / "student"
    with locked(out):  # another process holds it (an flock, as a second process would see)
        with pytest.raises(RunBusyError, match="being written by another process"):
            distill(teacher, squad_file, out, config=TINY_RECIPE, student=(0,), execution=Execution(progress=False))
    assert not (out / "distill.json").exists()


def test_your_own_prediction_files_are_not_a_run(tmp_path, squad_file, tiny_model_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "predictions.json").write_text('{"q": "my answer"}')
    (out / "na_probs.json").write_text('{"q": 0.1}')
    before = snapshot(out)
    for overwrite in (False, True):
        with pytest.raises(RunError, match="not a run directory .*na_probs.json.*predictions.json"):
            predict_run(tiny_model_dir, squad_file, out, overwrite=overwrite, **SMALL)
    assert snapshot(out) == before


def test_a_finished_student_is_evaluated_on_what_is_asked_now(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    other = tmp_path / "other.json"
    payload = json.loads(squad_file.read_text())
    payload["data"] = payload["data"][:1]
    other.write_text(json.dumps(payload))
    first = distill(teacher, squad_file, tmp_path / "s", config=TINY_RECIPE, student=(0,), evaluate=(squad_file, Selection()), execution=Execution(progress=False))
    again = distill(teacher, squad_file, tmp_path / "s", config=TINY_RECIPE, student=(0,), evaluate=(other, Selection()), execution=Execution(progress=False))
    assert len(again.run.table) < len(first.run.table)
    assert set(again.run.table["title"]) == {payload["data"][0]["title"]}
    assert json.loads((tmp_path / "s" / "distill.json").read_text())["evaluation"]["data"] == str(other)


def test_settings_that_cannot_work_are_refused_before_any_work(tmp_path, squad_file, monkeypatch):
    import xdanalysis.distill.train as train

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    monkeypatch.setattr(train, "teacher_logits", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ValueError, match="longer than the teacher takes"):
        distill(teacher, squad_file, tmp_path / "a", config=DistillConfig(alpha=0.5, windowing=WindowSettings(max_seq_length=1024, doc_stride=128)), student=(0,), execution=Execution(progress=False))
    with pytest.raises(ValueError, match="name a layer twice"):
        distill(teacher, squad_file, tmp_path / "b", config=TINY_RECIPE, student=(0, 0), execution=Execution(progress=False))
    for bad, message in (({"temperature": 0}, "temperature must be"), ({"alpha": 2}, "alpha must be between")):
        with pytest.raises(ValueError, match=message):
            DistillConfig(**bad)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_tilde_in_out_is_the_home_folder(tmp_path, squad_file, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    run = predict_run(tiny_model_dir, squad_file, "~/runs/x", **SMALL)
    assert run.path == tmp_path / "home" / "runs" / "x" and (run.path / "run.json").exists()
    assert not (tmp_path / "~").exists()


def test_default_run_folders_follow_every_selection(tmp_path, squad_file, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = ["evaluate", "--model", str(tiny_model_dir), "--data", str(squad_file), "--max-seq-length", "64",
              "--doc-stride", "16"]
    titles = [a["title"] for a in json.loads(squad_file.read_text())["data"]]
    assert main(common + ["--exclude-titles", titles[0]]) == 0
    assert main(common + ["--exclude-titles", titles[-1]]) == 0  # another selection, another folder: not refused
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all("__without_" in f for f in folders)
    # a threshold that is not a number is refused before the model loads, with one line
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", "x",
                 "--null-score-diff-threshold", "nan"]) == 2
    assert "null_score_diff_threshold must be a finite number" in capsys.readouterr().err
    with pytest.raises(ValueError, match="finite"):
        DecodingSettings(null_score_diff_threshold=float("inf"))


def test_the_null_score_is_read_at_the_real_cls_not_at_its_text_in_the_context(tiny_xlnet_dir):
    import pandas as pd

    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.model.windows import prepare_windows

    _, tokenizer = load_qa_model(tiny_xlnet_dir)
    context = f"the tower {tokenizer.cls_token} was built in paris ."
    table = pd.DataFrame({"question": ["where was it built ?"], "context": [context]})
    windows = prepare_windows(table, tokenizer)
    ids = windows.input_ids[0]
    literal = [i for i, (k, t) in enumerate(zip(windows.kinds[0], ids)) if t == tokenizer.cls_token_id and k != "special"]
    assert literal, "the tokenizer read the literal text as its cls token: the case this test is about"
    assert windows.cls_index[0] == len(ids) - 1 and windows.kinds[0][windows.cls_index[0]] == "special"


def test_chunks_are_never_reused_for_another_model(tmp_path, squad_file, tiny_model_dir):
    from xdanalysis.runs.store import RunMismatchError

    other = build_tiny_model(tmp_path / "other", layers=1, seed=7)
    out = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, out, **SMALL)
    (out / "run.json").unlink()  # the run's record gone; its chunks still there
    with pytest.raises(RunMismatchError, match="model_fingerprint"):
        predict_run(other, squad_file, out, **SMALL)
    # chunks that say nothing of what made them are not trusted either
    (out / "chunks" / "identity.json").unlink()
    with pytest.raises(RunError, match="not a run directory"):
        predict_run(other, squad_file, out, **SMALL)
    (out / "chunks" / "identity.json").write_text("{}")
    with pytest.raises(RunMismatchError):
        predict_run(other, squad_file, out, **SMALL)
    assert len(predict_run(other, squad_file, out, overwrite=True, **SMALL).table) > 0


def test_damage_in_the_middle_of_an_output_is_seen_and_rebuilt(tmp_path, squad_file, tiny_model_dir):
    out = tmp_path / "run"
    first = predict_run(tiny_model_dir, squad_file, out, **SMALL)
    nbest = (out / "nbest_predictions.json").read_bytes()
    middle = len(nbest) // 2
    (out / "nbest_predictions.json").write_bytes(nbest[:middle] + b"#" + nbest[middle + 1:])  # same size, one byte
    examples = (out / "examples.parquet").read_bytes()
    (out / "examples.parquet").write_bytes(examples[:100] + bytes([examples[100] ^ 1]) + examples[101:])
    again = predict_run(tiny_model_dir, squad_file, out, **SMALL)
    assert (out / "nbest_predictions.json").read_bytes() == nbest
    assert (out / "examples.parquet").read_bytes() == examples
    assert again.nbest == first.nbest
    # a damaged chunk is named, with what to do
    (out / "run.json").unlink()
    chunk = out / "chunks" / "chunk-00000.parquet"
    chunk.write_bytes(b"PAR1 not a parquet file")
    with pytest.raises(RunError, match=r"chunk-00000.parquet: damaged .*delete it and run the same command again"):
        predict_run(tiny_model_dir, squad_file, out, **SMALL)
    chunk.unlink()
    assert predict_run(tiny_model_dir, squad_file, out, **SMALL).table["answer"].tolist() == \
        first.table["answer"].tolist()


def test_scalar_answers_in_jsonl_are_named_not_a_type_error(tmp_path, tiny_model_dir):
    from xdanalysis.core.data import DataError, load_squad

    rows = [{"id": "q1", "title": "T", "context": "Paris is in France.", "question": "Where is Paris?",
             "answers": {"text": "France", "answer_start": 12}}]
    path = tmp_path / "scalars.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"scalars.jsonl: row 1 \(id 'q1'\): field 'answers.text' must be a list"):
        load_squad(path)
    predictions = tmp_path / "p.json"
    predictions.write_text('{"q1": "France"}')
    assert main(["score", str(path), str(predictions)]) == 2
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(path), "--out", str(tmp_path / "r")]) == 2


def test_report_options_and_older_run_records_give_a_report_or_a_message(tmp_path, squad_file, tiny_model_dir,
                                                                           capsys):
    out = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, out, **SMALL)
    for n_boot in ("0", "1", "-5"):
        assert main(["report", str(out), "--n-boot", n_boot]) == 2
        assert "n_boot must be at least 2" in capsys.readouterr().err
    info = json.loads((out / "run.json").read_text())
    for key in ("data", "n_questions", "model_given", "null_score_diff_threshold"):
        info["settings"].pop(key, None)
    (out / "run.json").write_text(json.dumps(info))
    assert main(["report", str(out), "--n-boot", "20"]) == 0
    assert (out / "report.html").read_text().count("<h2") >= 5


def test_a_predictions_file_that_is_not_utf8_is_named(tmp_path, squad_file, capsys):
    predictions = tmp_path / "latin1.json"
    predictions.write_bytes('{"q": "caf\u00e9"}'.encode("latin-1"))
    assert main(["score", str(squad_file), str(predictions)]) == 2
    assert f"{predictions}: not UTF-8 text" in capsys.readouterr().err


def test_another_probe_seed_is_refused_before_anything_is_rewritten(tmp_path, squad_file, tiny_model_dir, capsys):
    out = tmp_path / "probes"
    args = ["probe", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out), "--probes",
            "question_typo", "--max-seq-length", "64", "--doc-stride", "16"]
    assert main(args) == 0
    before = snapshot(out)
    assert main(args + ["--seed", "3"]) == 2
    assert "drawn with seed 0; seed 3 rewrites other questions" in capsys.readouterr().err
    assert snapshot(out) == before
    assert main(args + ["--seed", "3", "--overwrite"]) == 0
    assert json.loads((out / "probes.json").read_text())["seed"] == 3


def test_a_damaged_teacher_logit_chunk_is_recomputed(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    common = dict(student=(0,), execution=Execution(progress=False), cache_dir=tmp_path / "cache", config=TINY_RECIPE)
    first = distill(teacher, squad_file, tmp_path / "a", **common)
    (chunk,) = list((tmp_path / "cache").glob("*/chunk-*.npz"))
    good = chunk.read_bytes()
    for damage in (good[: len(good) // 2], b"not a zip file at all"):
        chunk.write_bytes(damage)
        with pytest.warns(UserWarning, match="damaged .* recomputed"):
            again = distill(teacher, squad_file, tmp_path / f"b{len(damage)}", **common)
        assert chunk.read_bytes() == good  # rebuilt, the same logits
        assert again.log["soft"].tolist() == pytest.approx(first.log["soft"].tolist())


@pytest.mark.slow
def test_attribution_over_real_multi_window_contexts(shared):
    from xdanalysis.core.data import load_squad
    from xdanalysis.interpret.attribution import Attributor
    from xdanalysis.model.loading import load_qa_model

    model, tokenizer = load_qa_model(shared / "models" / "minilm-l6-squad2-demo")
    windowing = WindowSettings(max_seq_length=192, doc_stride=64)
    attributor = Attributor(model, tokenizer, method="gradient_x_input", windowing=windowing)
    table = load_squad(shared / "data" / "squad-v2-dev-half.json", titles=["Force"])
    contexts = table.drop_duplicates("context").sort_values("context", key=lambda c: c.str.len(), ascending=False)
    checked = 0
    for row in contexts.head(10).itertuples():
        merged = attributor.attribute_context(row.question, row.context, target="span")
        assert len(merged.per_window) > 1  # truly several windows at 192 tokens
        words = merged.words[merged.words["kind"] == "context"]
        assert words["start"].min() == 0 and words["end"].max() == len(row.context.rstrip())
        checked += 1
    assert checked == 10
