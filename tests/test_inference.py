"""Model loading, windowing and batched inference on tiny random models."""

import time

import numpy as np
import pytest

from conftest import LONG_CONTEXT, needs_shared, shared_path
from xdanalysis.data import HubUnreachableError, load_squad
from xdanalysis.decoding import Window, decode_question
from xdanalysis.inference import (
    ModelLoadError,
    decode_windows,
    load_qa_model,
    predict_table,
    prepare_windows,
    run_windows,
)


def test_encoder_without_qa_head_is_refused(encoder_only_dir):
    with pytest.raises(ModelLoadError, match=r"no trained question-answering head .*qa_outputs.*allow_random_head"):
        load_qa_model(encoder_only_dir)
    model, tokenizer = load_qa_model(encoder_only_dir, allow_random_head=True)
    assert tokenizer.is_fast and hasattr(model, "qa_outputs")


def test_bad_model_paths(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_qa_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"not a model directory \(no config.json\)"):
        load_qa_model(tmp_path / "empty")


def test_unreachable_hub_model_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(HubUnreachableError, match=r"Point at a local checkpoint.*--model"):
        load_qa_model("nbroad/xdistil-l12-h384-squad2")
    assert time.perf_counter() - started < 10


def test_windows_offsets_line_up_with_text(tiny_model_dir, squad_file):
    _, tokenizer = load_qa_model(tiny_model_dir)
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer, max_seq_length=64, doc_stride=16)
    long_windows = [i for i, q in enumerate(windows["question_index"]) if q == 0]
    assert len(long_windows) > 2  # the long context needs several windows at 64 tokens
    covered = set()
    for i in long_windows:
        ids, offsets = windows["input_ids"][i], windows["offsets"][i]
        assert len(ids) <= 64 and ids[0] == tokenizer.cls_token_id
        in_context = offsets[:, 0] >= 0
        for token_id, (s, e) in zip(np.array(ids)[in_context], offsets[in_context]):
            piece = tokenizer.convert_ids_to_tokens(int(token_id)).removeprefix("##")
            if piece != tokenizer.unk_token:
                assert LONG_CONTEXT[s:e].lower() == piece
            covered.update(range(s, e))
    # every non-space character of the context lies in some window
    assert all(i in covered for i, ch in enumerate(LONG_CONTEXT) if not ch.isspace())
    # the question's leading spaces are stripped (n3 starts with three spaces)
    n3 = windows["question_index"].index(2)
    assert tokenizer.convert_ids_to_tokens(windows["input_ids"][n3][1]) == "when"


def test_batched_inference_equals_window_by_window(tiny_model_dir, squad_file):
    model, tokenizer = load_qa_model(tiny_model_dir)
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer, max_seq_length=64, doc_stride=16)
    batched = run_windows(model, windows, batch_size=4, progress=False)
    one_by_one = run_windows(model, windows, batch_size=1, progress=False)
    for (s1, e1), (s2, e2), ids in zip(batched, one_by_one, windows["input_ids"]):
        assert len(s1) == len(ids)
        np.testing.assert_allclose(s1, s2, atol=1e-4)
        np.testing.assert_allclose(e1, e2, atol=1e-4)
    assert [d["answer"] for d in decode_windows(table, windows, batched)] == \
        [d["answer"] for d in decode_windows(table, windows, one_by_one)]


def test_predict_table_fields(tiny_model_dir, squad_file):
    model, tokenizer = load_qa_model(tiny_model_dir)
    table = load_squad(squad_file)
    predictions, nbest = predict_table(model, tokenizer, table, max_seq_length=64, doc_stride=16, progress=False)
    assert len(predictions) == len(table) == len(nbest)
    for row, context, candidates in zip(predictions.itertuples(), table["context"], nbest):
        assert row.answer in ("", row.best_span_text)
        assert context[row.answer_start:row.answer_end] == row.best_span_text
        assert row.null_odds == pytest.approx(row.null_score - row.best_span_score, abs=1e-5)
        assert (row.answer == "") == (row.null_odds > 0)
        assert 0 <= row.best_window < row.n_windows
        assert any(c["text"] == "" for c in candidates)
    assert predictions.loc[0, "n_windows"] > 2


@needs_shared
def test_real_demo_model_answers_a_real_question():
    model, tokenizer = load_qa_model(shared_path() / "models" / "minilm-l6-squad2-demo")
    table = load_squad(shared_path() / "data" / "squad-v2-dev-half.json", limit=30)
    predictions, _ = predict_table(model, tokenizer, table, progress=False)
    answered = predictions["answer"] != ""
    assert answered.any() and (~answered).any()  # a trained model both answers and abstains


@needs_shared
def test_real_encoder_is_refused():
    with pytest.raises(ModelLoadError, match="qa_outputs"):
        load_qa_model(shared_path() / "models" / "minilm-l6-h384-uncased")
