"""Run directories: files, reuse, resume after an interruption, mismatched settings."""

import json

import pandas as pd
import pytest

import xdanalysis.inference as inference
from xdanalysis.data import load_squad
from xdanalysis.metrics import squad_v2_scores
from xdanalysis.runs import RunMismatchError, load_run, predict_run

SMALL = {"max_seq_length": 64, "doc_stride": 16}


def test_run_directory_contents(tiny_model_dir, squad_file, tmp_path):
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", progress=False, **SMALL)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["examples.parquet", "na_probs.json", "nbest_predictions.json", "null_odds.json",
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
    first = predict_run(tiny_model_dir, squad_file, tmp_path / "run", progress=False, **SMALL)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr(inference, "load_qa_model", no_model)
    again = predict_run(tiny_model_dir, squad_file, tmp_path / "run", progress=False, **SMALL)
    pd.testing.assert_frame_equal(first.table, again.table)


def test_interrupted_run_resumes_from_its_last_chunk(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    reference = predict_run(tiny_model_dir, squad_file, tmp_path / "reference", chunk_size=3, progress=False, **SMALL)
    real_predict = inference.predict_table
    calls = []

    def dies_on_second_chunk(model, tokenizer, part, **kwargs):
        calls.append(list(part["id"]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_predict(model, tokenizer, part, **kwargs)

    monkeypatch.setattr(inference, "predict_table", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", chunk_size=3, progress=False, **SMALL)
    with pytest.raises(FileNotFoundError, match="unfinished run"):
        load_run(tmp_path / "run")
    assert [p.name for p in sorted((tmp_path / "run" / "chunks").glob("*.parquet"))] == ["chunk-00000.parquet"]

    calls.clear()
    monkeypatch.setattr(inference, "predict_table", lambda *a, **k: (calls.append(list(a[2]["id"])), real_predict(*a, **k))[1])
    resumed = predict_run(tiny_model_dir, squad_file, tmp_path / "run", chunk_size=3, progress=False, **SMALL)
    assert calls == [["n4", "p1", "p2"], ["p3", "p4"]]  # the first chunk was not redone
    columns = ["id", "answer", "null_odds", "exact", "f1"]
    pd.testing.assert_frame_equal(resumed.table[columns], reference.table[columns], atol=1e-5)
    assert not (tmp_path / "run" / "chunks").exists()


def test_other_settings_in_the_same_directory_are_refused(tiny_model_dir, squad_file, tmp_path):
    predict_run(tiny_model_dir, squad_file, tmp_path / "run", progress=False, **SMALL)
    with pytest.raises(RunMismatchError, match=r"max_seq_length: 64 there, 128 asked.*--overwrite"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", progress=False, max_seq_length=128, doc_stride=16)
    with pytest.raises(RunMismatchError, match="n_questions"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", limit=4, progress=False, **SMALL)
    replaced = predict_run(tiny_model_dir, squad_file, tmp_path / "run", limit=4, overwrite=True, progress=False,
                           **SMALL)
    assert len(replaced.table) == 4
