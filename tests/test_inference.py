"""Model loading, windowing and batched inference on tiny random models."""

import time

import numpy as np
import pandas as pd
import pytest
from conftest import LONG_CONTEXT, needs_shared, shared_path

from xdanalysis.core.data import HubUnreachableError, load_squad
from xdanalysis.core.settings import WindowSettings
from xdanalysis.model.forward import run_windows
from xdanalysis.model.loading import ModelLoadError, load_qa_model
from xdanalysis.model.predict import decode_windows, predict_table
from xdanalysis.model.windows import prepare_windows


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
    windows = prepare_windows(table, tokenizer, windowing=WindowSettings(64, 16))
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
    windows = prepare_windows(table, tokenizer, windowing=WindowSettings(64, 16))
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
    predictions, nbest = predict_table(model, tokenizer, table, windowing=WindowSettings(64, 16), progress=False)
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


def test_xlnet_null_score_is_taken_at_its_cls_token_at_the_end(tiny_xlnet_dir, squad_file):
    from xdanalysis.model.forward import forward_windows

    model, tokenizer = load_qa_model(tiny_xlnet_dir)
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer, windowing=WindowSettings(64, 16))
    for ids, cls, kinds in zip(windows.input_ids, windows.cls_index, windows.kinds):
        assert ids[cls] == tokenizer.cls_token_id and cls == len(ids) - 1  # XLNet: <cls> last
        assert kinds[0] == "context"  # context first
    predictions, nbest = predict_table(model, tokenizer, table, windowing=WindowSettings(64, 16), progress=False)
    # independently: every window alone through the model, [CLS] read at its position
    for q in range(len(table)):
        scores = []
        for w in [i for i, owner in enumerate(windows.question_index) if owner == q]:
            alone = forward_windows(model, windows, [w])[0]
            cls = windows.input_ids[w].index(tokenizer.cls_token_id)
            scores.append(alone.start_logits[cls] + alone.end_logits[cls])
        assert predictions.iloc[q]["null_score"] == pytest.approx(min(scores), abs=1e-4)
        assert predictions.iloc[q]["null_score"] != pytest.approx(  # not the first (context) token
            min(float(forward_windows(model, windows, [w])[0].start_logits[0]
                      + forward_windows(model, windows, [w])[0].end_logits[0])
                for w, owner in enumerate(windows.question_index) if owner == q), abs=1e-6)
        null = next(c for c in nbest[q] if c["text"] == "")
        assert null["score"] == pytest.approx(predictions.iloc[q]["null_score"], abs=1e-5)


def test_xlnet_soft_targets_put_no_answer_mass_at_cls(tiny_xlnet_dir):
    from conftest import SHORT_CONTEXT

    from xdanalysis.interpret.soft_targets import word_distributions
    from xdanalysis.model.forward import forward_windows

    model, tokenizer = load_qa_model(tiny_xlnet_dir)
    table = pd.DataFrame({"question": ["What is the capital?"], "context": [SHORT_CONTEXT]})
    windows = prepare_windows(table, tokenizer, windowing=WindowSettings(128, 32))
    out = forward_windows(model, windows, [0])[0]
    start, end = out.start_logits.copy(), out.end_logits.copy()
    cls = windows.cls_index[0]
    start[cls], end[cls] = 40.0, 40.0  # all mass on "no answer"
    frame = word_distributions(SHORT_CONTEXT, windows.offsets[0], start, end, cls_index=cls)
    assert frame.loc[0, "word"] == "<no answer>" and frame.loc[0, "p_start"] == pytest.approx(1.0)


def test_model_positions_limit_is_read_for_bert_and_roberta(tiny_model_dir):
    from transformers import RobertaConfig, RobertaForQuestionAnswering

    from xdanalysis.model.loading import max_sequence_length

    model, _ = load_qa_model(tiny_model_dir)
    assert max_sequence_length(model) == 512
    roberta = RobertaForQuestionAnswering(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                        num_attention_heads=2, intermediate_size=32,
                                                        max_position_embeddings=514, pad_token_id=1))
    assert max_sequence_length(roberta) == 512
