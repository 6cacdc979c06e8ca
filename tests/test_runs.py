"""Run directories: files, reuse, resume after an interruption, mismatched settings."""

import json

import pandas as pd
import pytest

import xdanalysis.model.loading as loading
import xdanalysis.model.predict as predict
from xdanalysis.core.data import load_squad
from xdanalysis.core.metrics import squad_v2_scores
from xdanalysis.core.settings import DecodingSettings, WindowSettings
from xdanalysis.runs.run import load_run, predict_run
from xdanalysis.runs.store import RunMismatchError
from xdanalysis.core import Execution, Selection

SMALL = {"windowing": WindowSettings(64, 16)}


def test_run_directory_contents(tiny_model_dir, squad_file, tmp_path):
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["chunks", "examples.parquet", "na_probs.json", "nbest_predictions.json", "null_odds.json",
                     "predictions.json", "run.json"]
    predictions = json.loads((tmp_path / "run" / "predictions.json").read_text())
    null_odds = json.loads((tmp_path / "run" / "null_odds.json").read_text())
    na_probs = json.loads((tmp_path / "run" / "na_probs.json").read_text())
    assert list(predictions) == list(load_squad(squad_file)["id"])
    for qid, odds in null_odds.items():
        assert 0.0 <= na_probs[qid] <= 1.0
        assert (na_probs[qid] > 0.5) == (odds > 0) == (predictions[qid] == "")
    table = run.table
    for column in ("answer", "null_odds", "best_span_score", "n_windows", "best_window", "question_tokens",
                   "context_tokens", "answer_tokens", "exact", "f1", "has_answer", "plausible_texts"):
        assert column in table.columns
    assert table["answer_tokens"].isna().tolist() == (~table["has_answer"]).tolist()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["settings"]["max_seq_length"] == 64 and info["settings"]["n_questions"] == 8
    assert info["peak_rss_mb"] > 0 and info["questions_per_second"] > 0
    assert {"torch", "transformers", "xdanalysis"} <= set(info["versions"])
    # per-question scores and the official aggregate agree
    scores = run.scores()
    assert scores["exact"] == pytest.approx(100 * table["exact"].mean())
    assert scores == squad_v2_scores({r.id: list(r.answer_texts) for r in table.itertuples()},
                                     predictions, na_probs)


def test_finished_run_is_reused_not_recomputed(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    first = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr(loading, "load_qa_model", no_model)
    again = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    pd.testing.assert_frame_equal(first.table, again.table)


def test_interrupted_run_resumes_from_its_last_chunk(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    reference = predict_run(tiny_model_dir, squad_file, tmp_path / "reference", execution=Execution(chunk_size=3, progress=False), **SMALL)
    real_predict = predict.predict_table
    calls = []

    def dies_on_second_chunk(model, tokenizer, part, **kwargs):
        calls.append(list(part["id"]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_predict(model, tokenizer, part, **kwargs)

    monkeypatch.setattr(predict, "predict_table", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(chunk_size=3, progress=False), **SMALL)
    with pytest.raises(FileNotFoundError, match="unfinished run"):
        load_run(tmp_path / "run")
    assert [p.name for p in sorted((tmp_path / "run" / "chunks").glob("*.parquet"))] == ["chunk-00000.parquet"]

    calls.clear()
    monkeypatch.setattr(predict, "predict_table", lambda *a, **k: (calls.append(list(a[2]["id"])), real_predict(*a, **k))[1])
    resumed = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(chunk_size=3, progress=False), **SMALL)
    assert calls == [["n4", "p1", "p2"], ["p3", "p4"]]  # the first chunk was not redone
    columns = ["id", "answer", "null_odds", "exact", "f1"]
    pd.testing.assert_frame_equal(resumed.table[columns], reference.table[columns], atol=1e-5)
    assert not (tmp_path / "run" / "progress.json").exists() and not (tmp_path / "run" / "lock").exists()


def test_other_settings_in_the_same_directory_are_refused(tiny_model_dir, squad_file, tmp_path):
    predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    with pytest.raises(RunMismatchError, match=r"max_seq_length: 64 there, 128 asked.*--overwrite"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(128, 16), execution=Execution(progress=False))
    with pytest.raises(RunMismatchError, match="n_questions"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", selection=Selection(limit=4), execution=Execution(progress=False), **SMALL)
    replaced = predict_run(tiny_model_dir, squad_file, tmp_path / "run", overwrite=True, selection=Selection(limit=4), execution=Execution(progress=False), **SMALL)
    assert len(replaced.table) == 4


# Trust: nothing lost, nothing stale, nothing computed twice -----------------------------------

def test_overwrite_never_deletes_a_directory_that_holds_no_run(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.runs.store import RunError

    precious = tmp_path / "work"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(RunError, match=r"not a run directory .*thesis.tex.*Nothing was deleted"):
        predict_run(tiny_model_dir, squad_file, precious, overwrite=True, execution=Execution(progress=False), **SMALL)
    assert (precious / "thesis.tex").read_text() == "years of work"
    with pytest.raises(RunError, match="not a run directory"):  # nor is a run written into it
        predict_run(tiny_model_dir, squad_file, precious, execution=Execution(progress=False), **SMALL)
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.tex"]


def test_overwrite_deletes_only_the_runs_own_files(tiny_model_dir, squad_file, tmp_path):
    predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    (tmp_path / "run" / "my-notes.md").write_text("keep me")
    replaced = predict_run(tiny_model_dir, squad_file, tmp_path / "run", overwrite=True, selection=Selection(limit=3), execution=Execution(progress=False), **SMALL)
    assert len(replaced.table) == 3 and (tmp_path / "run" / "my-notes.md").read_text() == "keep me"


def test_cli_overwrite_of_the_working_directory_is_refused(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    from xdanalysis.apps.cli import main

    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    code = main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", ".", "--overwrite",
                 "--max-seq-length", "64", "--doc-stride", "16"])
    assert code == 2 and (tmp_path / "keep.txt").exists() and (tmp_path / "tiny-squad.json").exists()


def test_weights_edited_in_place_are_not_served_from_a_stale_run(tiny_model_dir, squad_file, tmp_path, clean_copy):
    model = clean_copy(tiny_model_dir)
    predict_run(model, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    assert len(data) > 1 << 16
    data[-8:] = bytes(8)  # past the first 64 KiB, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(RunMismatchError, match="model_fingerprint"):
        predict_run(model, squad_file, tmp_path / "run", execution=Execution(progress=False), **SMALL)


def test_a_failed_start_leaves_no_marker_and_the_retry_works(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"max_seq_length 1024 is longer than the model takes .*512 positions"):
        predict_run(tiny_model_dir, squad_file, out, windowing=WindowSettings(1024, 16), execution=Execution(progress=False))
    assert not (out / "progress.json").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("crash while loading")

    monkeypatch.setattr(loading, "load_qa_model", broken)
    with pytest.raises(RuntimeError):
        predict_run(tiny_model_dir, squad_file, out, windowing=WindowSettings(128, 16), execution=Execution(progress=False))
    monkeypatch.undo()
    assert not (out / "progress.json").exists()
    run = predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)  # other settings: accepted
    assert run.info["settings"]["max_seq_length"] == 64


def test_settings_that_cannot_work_are_refused_before_any_work(tiny_model_dir, squad_file, tmp_path):
    """Settings are checked when their objects are made, before predict_run can start anything."""
    for bad, message in (({"n_best_size": 0}, "n_best_size must be at least 1"),
                         ({"max_answer_length": 0}, "max_answer_length must be at least 1"),
                         ({"null_score_diff_threshold": float("nan")}, "must be a finite number"),
                         ({"doc_stride": -1}, "doc_stride must be 0 or more"),
                         ({"max_seq_length": 64, "doc_stride": 64}, "must be smaller than max_seq_length")):
        kind = WindowSettings if {"doc_stride", "max_seq_length"} & set(bad) else DecodingSettings
        with pytest.raises(ValueError, match=message):
            predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False), **{"windowing": WindowSettings(64, 16), kind.__name__.replace("Settings", "").lower()
                           .replace("window", "windowing"): kind(**bad)})
    assert not (tmp_path / "run").exists()


def test_deleted_or_damaged_outputs_are_rebuilt_from_the_chunks(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    from xdanalysis.runs.store import RunError

    out = tmp_path / "run"
    first = predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)
    saved = {name: (out / name).read_bytes() for name in ("predictions.json", "na_probs.json", "null_odds.json")}
    (out / "predictions.json").unlink()
    (out / "examples.parquet").write_bytes((out / "examples.parquet").read_bytes()[:100])  # truncated
    monkeypatch.setattr(loading, "load_qa_model", lambda *a, **k: pytest.fail("recomputed instead of rebuilt"))
    rebuilt = predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)
    assert {name: (out / name).read_bytes() for name in saved} == saved
    pd.testing.assert_frame_equal(rebuilt.table, first.table)
    assert rebuilt.info["inference_seconds"] == first.info["inference_seconds"]  # provenance kept
    (out / "na_probs.json").unlink()
    for chunk in (out / "chunks").iterdir():
        chunk.unlink()
    with pytest.raises(RunError, match=r"na_probs.json missing or damaged.*--overwrite"):
        predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)


def test_damaged_run_files_are_named(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.runs.store import RunError

    out = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)
    (out / "examples.parquet").unlink()
    with pytest.raises(RunError, match=r"examples.parquet: missing.*--overwrite"):
        load_run(out)
    (out / "run.json").write_text('{"settings": ')
    with pytest.raises(RunError, match=r"run.json: damaged.*--overwrite"):
        load_run(out)
    with pytest.raises(RunError, match=r"run.json: damaged"):
        predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)


def test_a_second_process_on_the_same_run_is_refused(tiny_model_dir, squad_file, tmp_path):
    import fcntl
    import os

    from xdanalysis.runs.store import RunBusyError

    out = tmp_path / "run"
    out.mkdir()
    with open(out / "lock", "w") as holder:  # another process holds the run
        holder.write("4242")
        holder.flush()
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        pid = os.fork()
        if pid == 0:  # the lock belongs to the parent's open file: the child is another process
            try:
                predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)
                os._exit(0)
            except RunBusyError as exc:
                os._exit(3 if "pid 4242" in str(exc) else 4)
            except BaseException:
                os._exit(5)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 3
    assert not (out / "chunks").exists()  # nothing was computed
    run = predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False), **SMALL)  # released: it runs
    assert len(run.table) == 8


def test_null_odds_file_is_valid_json_when_a_question_can_only_abstain(tiny_model_dir, tmp_path):
    from xdanalysis.core.io import NULL_ODDS_NO_SPAN, read_null_odds

    payload = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "a", "question": "Where is Paris?", "answers": [
            {"text": "France", "answer_start": 12}]}]},
        {"context": "   ", "qas": [{"id": "blank", "question": "Where is Paris?", "answers": []}]}]}]}
    data = tmp_path / "d.json"
    data.write_text(json.dumps(payload))
    run = predict_run(tiny_model_dir, data, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    text = (tmp_path / "run" / "null_odds.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    odds = json.loads(text)  # strict JSON
    assert odds["blank"] == NULL_ODDS_NO_SPAN
    assert read_null_odds(tmp_path / "run" / "null_odds.json")["blank"] == float("inf")
    assert run.table.set_index("id").loc["blank", "answer"] == ""


def test_a_question_longer_than_a_window_is_cut_and_recorded(tiny_model_dir, squad_file, tmp_path):
    payload = json.loads(squad_file.read_text())
    long_question = "Who " + " ".join(["paris capital france eiffel tower"] * 40) + "?"
    payload["data"][1]["paragraphs"][0]["qas"].append({"id": "long", "question": long_question, "answers": []})
    data = tmp_path / "long.json"
    data.write_text(json.dumps(payload))
    run = predict_run(tiny_model_dir, data, tmp_path / "run", execution=Execution(progress=False), **SMALL)
    table = run.table.set_index("id")
    assert table.loc["long", "question_truncated"] and not table.drop("long")["question_truncated"].any()
    assert run.info["questions_truncated"] == 1 and len(table) == 9
