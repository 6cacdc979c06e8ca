"""Distillation: the loss by hand, training targets, a few real steps, resume, cached and moved teacher logits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LONG_CONTEXT, SHORT_CONTEXT, build_tiny_model
from test_compare import bpe_tokenizer  # noqa: F401  (a fixture: a byte-level BPE tokenizer trained here)

from xdanalysis.core.data import load_squad
from xdanalysis.core.settings import WindowSettings
from xdanalysis.distill.config import DistillConfig
from xdanalysis.distill.losses import attention_loss, distillation_loss
from xdanalysis.model.windows import window_labels
from xdanalysis.distill.teacher import move_distribution, teacher_logits
from xdanalysis.distill.train import distill
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.windows import prepare_windows

SMALL = {"max_seq_length": 64, "doc_stride": 16}  # soft_target_entropy's window options
WINDOWS = WindowSettings(64, 16)


def test_loss_matches_a_hand_computation():
    s_start = np.array([[1.0, 2.0, 0.5, 9.0], [0.0, -1.0, 3.0, 2.0]])
    s_end = np.array([[0.5, 0.0, 2.0, 7.0], [1.0, 1.0, 1.0, 1.0]])
    t_start = np.array([[2.0, 0.0, 1.0, -5.0], [0.5, 0.5, 4.0, 0.0]])
    t_end = np.array([[0.0, 1.0, 3.0, 8.0], [2.0, 0.0, 0.0, 1.0]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])  # the first window's last token is padding
    y_start, y_end = np.array([1, 2]), np.array([2, 0])
    T, alpha = 2.0, 0.3

    def softmax(z):
        z = np.exp(z - z.max())
        return z / z.sum()

    def kl(student, teacher):  # KL(p_t || p_s) per window over its real tokens, mean over windows
        total = 0.0
        for s, t, m in zip(student, teacher, mask):
            p_s, p_t = softmax(s[m == 1] / T), softmax(t[m == 1] / T)
            total += np.sum(p_t * (np.log(p_t) - np.log(p_s)))
        return total / len(student)

    def ce(student, y):
        return np.mean([-np.log(softmax(s[m == 1])[k]) for s, m, k in zip(student, mask, y)])

    soft = 0.5 * (kl(s_start, t_start) + kl(s_end, t_end))
    hard = 0.5 * (ce(s_start, y_start) + ce(s_end, y_end))
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    losses = distillation_loss(as_tensor(s_start), as_tensor(s_end), as_tensor(t_start), as_tensor(t_end),
                               torch.tensor(y_start), torch.tensor(y_end), temperature=T, alpha=alpha,
                               mask=torch.tensor(mask))
    assert float(losses["soft"]) == pytest.approx(soft, rel=1e-9)
    assert float(losses["hard"]) == pytest.approx(hard, rel=1e-9)
    assert float(losses["total"]) == pytest.approx(alpha * T**2 * soft + (1 - alpha) * hard, rel=1e-9)
    # the padded token's huge student logit (9.0) plays no part
    same = distillation_loss(as_tensor(np.where(mask == 1, s_start, -3.0)), as_tensor(s_end), as_tensor(t_start),
                             as_tensor(t_end), torch.tensor(y_start), torch.tensor(y_end), temperature=T,
                             alpha=alpha, mask=torch.tensor(mask))
    assert float(same["soft"]) == pytest.approx(float(losses["soft"]), rel=1e-12)
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        distillation_loss(*[as_tensor(x) for x in (s_start, s_end, t_start, t_end)], torch.tensor(y_start),
                          torch.tensor(y_end), alpha=1.5)


def test_attention_loss_is_zero_for_equal_maps_and_positive_otherwise():
    a = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    b = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    mask = torch.ones(2, 5)
    assert float(attention_loss(a, a, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(attention_loss(a, b, mask)) > 0
    fewer_heads = torch.softmax(torch.randn(2, 1, 5, 5), dim=-1)  # head counts differ: heads averaged
    assert float(attention_loss(fewer_heads, b, mask)) > 0


def test_training_targets_follow_run_qa(tiny_model_dir, squad_file):
    _, tokenizer = load_qa_model(tiny_model_dir)
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer, WINDOWS)
    starts, ends = window_labels(table, windows)
    for w, q in enumerate(windows.question_index):
        row = table.iloc[q]
        offsets, cls = windows.offsets[w], windows.cls_index[w]
        if not row["answer_texts"]:
            assert starts[w] == ends[w] == cls  # unanswerable
            continue
        begin, text = row["answer_starts"][0], row["answer_texts"][0]
        inside = offsets[offsets[:, 0] >= 0]
        holds = inside[0, 0] <= begin and begin + len(text) <= inside[-1, 1]
        if holds:
            assert row["context"][offsets[starts[w], 0]: offsets[ends[w], 1]].lower() == text.lower()
        else:  # not in this window, or cut by its edge
            assert starts[w] == ends[w] == cls
    n3 = [w for w, q in enumerate(windows.question_index) if table.iloc[q]["id"] == "n3"]
    assert len(n3) > 2 and starts[n3[0]] == windows.cls_index[n3[0]] and starts[n3[-1]] != windows.cls_index[n3[-1]]
    # an answer cut by a window's edge is not a target in that window
    answer = "Norse raiders and pirates from Denmark, Iceland and Norway"
    long = pd.DataFrame({"question": ["Who were they descended from?"], "context": [LONG_CONTEXT],
                         "answer_texts": [[answer]], "answer_starts": [[LONG_CONTEXT.index(answer)]]})
    windows = prepare_windows(long, tokenizer, windowing=WindowSettings(40, 8))
    starts, _ = window_labels(long, windows)
    begin, finish = LONG_CONTEXT.index(answer), LONG_CONTEXT.index(answer) + len(answer)
    cut = [w for w, offsets in enumerate(windows.offsets)
           if (lambda o: o[0, 0] < finish and o[-1, 1] > begin and not (o[0, 0] <= begin and finish <= o[-1, 1]))(
               offsets[offsets[:, 0] >= 0])]
    whole = [w for w, offsets in enumerate(windows.offsets)
             if (lambda o: o[0, 0] <= begin and finish <= o[-1, 1])(offsets[offsets[:, 0] >= 0])]
    assert cut and whole
    assert all(starts[w] == windows.cls_index[w] for w in cut)
    assert all(starts[w] != windows.cls_index[w] for w in whole)


def test_a_few_steps_lower_the_loss_and_give_a_loadable_student(tmp_path, squad_file):
    from xdanalysis.runs.run import predict_run

    teacher = build_tiny_model(tmp_path / "teacher", layers=3, seed=3)
    config = DistillConfig(max_steps=30, epochs=30, batch_size=8, learning_rate=3e-3, windowing=WINDOWS)
    result = distill(teacher, squad_file, tmp_path / "student", student_layers=(0, 2), config=config, progress=False)
    log = result.log
    assert len(log) == 30 and log["total"].iloc[-5:].mean() < log["total"].iloc[:5].mean()
    info = json.loads((tmp_path / "student" / "distill.json").read_text())
    assert info["steps"] == 30 and info["windows_per_second"] > 0 and info["identity"]["student_layers"] == [0, 2]
    assert info["trained_on_titles"] == ["Normans", "Paris"]
    model, tokenizer = load_qa_model(tmp_path / "student")  # a trained head: no allow_random_head needed
    assert model.config.num_hidden_layers == 2
    with pytest.warns(UserWarning, match="trained on"):  # its training.json flags runs over its training articles
        run = predict_run(tmp_path / "student", squad_file, tmp_path / "run", progress=False, windowing=WINDOWS)
    assert run.info["settings"]["trained_on_overlap"]["questions"] == 8
    again = distill(teacher, squad_file, tmp_path / "student", student_layers=(0, 2), config=config,
                    progress=False)  # finished: reused
    pd.testing.assert_frame_equal(again.log, log)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, squad_file):
    from safetensors.torch import load_file

    teacher = build_tiny_model(tmp_path / "teacher", layers=3, seed=3)
    config = DistillConfig(max_steps=12, epochs=12, batch_size=8, learning_rate=1e-3, checkpoint_every=4,
                           windowing=WINDOWS)
    settings = dict(student_layers=(0, 2), config=config, progress=False, cache_dir=tmp_path / "cache")
    distill(teacher, squad_file, tmp_path / "straight", **settings)
    with pytest.raises(KeyboardInterrupt):
        distill(teacher, squad_file, tmp_path / "resumed", _stop_after=6, **settings)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists() and not (tmp_path / "resumed" / "distill.json").exists()
    result = distill(teacher, squad_file, tmp_path / "resumed", **settings)
    assert list(result.log["step"]) == list(range(1, 13))  # steps 5-6 redone from the step-4 checkpoint, once
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_logits_are_cached_and_reused(tmp_path, squad_file, monkeypatch):
    import xdanalysis.model.forward as inference

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    common = dict(student_layers=(0,), progress=False, cache_dir=tmp_path / "cache")
    distill(teacher, squad_file, tmp_path / "a", config=DistillConfig(alpha=0.5, max_steps=2, batch_size=8,
                                                                      windowing=WINDOWS), **common)
    assert len(list((tmp_path / "cache").glob("*/chunk-*.npz"))) == 1
    monkeypatch.setattr(inference, "run_windows", lambda *a, **k: pytest.fail("teacher logits recomputed"))
    distill(teacher, squad_file, tmp_path / "b", config=DistillConfig(alpha=1.0, temperature=4.0, max_steps=2, batch_size=8,
                                                                      windowing=WINDOWS), **common)  # same teacher


def test_attention_transfer_runs_with_one_tokenizer_and_is_refused_across_two(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    result = distill(teacher, squad_file, tmp_path / "att", student_layers=(1,), progress=False,
                     config=DistillConfig(attention_weight=1.0, max_steps=3, batch_size=8, windowing=WINDOWS))
    assert (result.log["attention"] > 0).all()


def test_teacher_distributions_move_onto_another_tokenizer(tmp_path, tiny_model_dir, bpe_tokenizer):  # noqa: F811
    teacher, wordpiece = load_qa_model(tiny_model_dir)
    table = pd.DataFrame({"id": ["q"], "title": ["Paris"], "question": ["When was the Eiffel Tower finished?"],
                          "context": [SHORT_CONTEXT], "answer_texts": [["1889"]],
                          "answer_starts": [[SHORT_CONTEXT.index("1889")]]})
    student_windows = prepare_windows(table, bpe_tokenizer, windowing=WindowSettings(128, 32))
    moved = teacher_logits(teacher, wordpiece, table, student_windows, bpe_tokenizer, cache_dir=tmp_path,
                           settings={"max_seq_length": 128, "doc_stride": 32}, progress=False)
    start, end = moved[0]
    assert len(start) == len(student_windows.input_ids[0])
    p = np.exp(start - start.max())
    assert p.sum() > 0 and np.isfinite(start).all()
    # by hand: all of the teacher's start mass on "Eiffel" lands on the BPE token holding its first letter
    teacher_windows = prepare_windows(table, wordpiece, windowing=WindowSettings(128, 32))
    offsets = teacher_windows.offsets[0]
    char = SHORT_CONTEXT.index("Eiffel")
    token = next(i for i, (s, e) in enumerate(offsets) if s >= 0 and s <= char < e)
    probabilities = np.zeros(len(offsets))
    probabilities[token] = 1.0
    target = student_windows.offsets[0]
    mapped = move_distribution(probabilities, offsets, teacher_windows.cls_index[0], target,
                               student_windows.cls_index[0], SHORT_CONTEXT, which="start")
    holder = int(np.argmax(mapped))
    assert mapped[holder] == pytest.approx(1.0) and target[holder, 0] <= char < target[holder, 1]


def test_attention_transfer_across_tokenizers_is_refused(tmp_path, squad_file, bpe_tokenizer):  # noqa: F811
    from transformers import BertConfig, BertForQuestionAnswering

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    student_dir = tmp_path / "bpe-student"
    BertForQuestionAnswering(BertConfig(vocab_size=len(bpe_tokenizer), hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=64)).save_pretrained(student_dir)
    bpe_tokenizer.save_pretrained(student_dir)
    with pytest.raises(ValueError, match="must share a tokenizer"):
        distill(teacher, squad_file, tmp_path / "x", student=student_dir, progress=False,
                config=DistillConfig(attention_weight=1.0, max_steps=1, windowing=WINDOWS))


def test_temperature_softens_targets_and_t_squared_keeps_the_gradient_scale(tiny_model_dir, squad_file):
    from xdanalysis.distill.losses import soft_gradient_scale, soft_target_entropy

    model, tokenizer = load_qa_model(tiny_model_dir)
    frame = soft_target_entropy(model, tokenizer, load_squad(squad_file), temperatures=(0.5, 1, 4), **SMALL)
    for _, part in frame.groupby("answerable"):
        assert part["entropy"].is_monotonic_increasing and (part["entropy"] <= part["max_entropy"] + 1e-9).all()
    rng = np.random.default_rng(0)
    scale = soft_gradient_scale(rng.normal(0, 2, (4, 30)), rng.normal(0, 2, (4, 30)), temperatures=(4, 8, 16, 32))
    without, with_t2 = scale["without T²"].to_numpy(), scale["with T²"].to_numpy()
    assert (np.diff(without) < 0).all()  # the bare KL's gradient fades as T grows (about 1/T² for large T)
    assert without[-1] / without[0] == pytest.approx((4 / 32) ** 2, rel=0.2)
    assert with_t2.max() / with_t2.min() < 1.3  # the T² factor keeps it on one scale


def test_a_hard_label_student_needs_no_teacher_pass(tmp_path, squad_file, monkeypatch):
    from xdanalysis.distill import train as module

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    monkeypatch.setattr(module, "teacher_logits", lambda *a, **k: pytest.fail("teacher pass for a hard-label student"))
    result = distill(teacher, squad_file, tmp_path / "hard", student_layers=(0,), progress=False,
                     config=DistillConfig(alpha=0.0, max_steps=2, batch_size=8, windowing=WINDOWS))
    assert result.log["soft"].isna().all() and (result.log["total"] == result.log["hard"]).all()


def test_the_lab_refuses_to_score_students_on_their_training_questions(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.distill.lab import lab_student

    with pytest.raises(ValueError, match="name the articles to hold out"):
        lab_student("soft targets", tiny_model_dir, squad_file, runs=tmp_path, held_out=None)
    with pytest.raises(ValueError, match="unknown lab student"):
        lab_student("no such student", tiny_model_dir, squad_file, runs=tmp_path, held_out=["Paris"])
