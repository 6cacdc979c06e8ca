"""Distillation: the loss by hand, training targets, a few real steps, resume, cached and moved teacher logits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LONG_CONTEXT, SHORT_CONTEXT, build_tiny_model
from test_compare import bpe_tokenizer  # noqa: F401  (a fixture: a byte-level BPE tokenizer trained here)

from xdanalysis.core.data import load_squad
from xdanalysis.core.settings import DecodingSettings, WindowSettings
from xdanalysis.distill.config import DistillConfig
from xdanalysis.distill.losses import attention_loss, distillation_loss
from xdanalysis.model.windows import window_labels
from xdanalysis.distill.teacher import move_distribution, teacher_logits
from xdanalysis.distill.train import distill
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.windows import prepare_windows
from xdanalysis.core import Execution, Selection

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
    result = distill(teacher, squad_file, tmp_path / "student", config=config, student=(0, 2), execution=Execution(progress=False))
    log = result.log
    assert len(log) == 30 and log["total"].iloc[-5:].mean() < log["total"].iloc[:5].mean()
    info = json.loads((tmp_path / "student" / "distill.json").read_text())
    assert info["steps"] == 30 and info["windows_per_second"] > 0 and info["identity"]["student_layers"] == [0, 2]
    assert info["trained_on_titles"] == ["Normans", "Paris"]
    model, tokenizer = load_qa_model(tmp_path / "student")  # a trained head: no allow_random_head needed
    assert model.config.num_hidden_layers == 2
    with pytest.warns(UserWarning, match="trained on"):  # its training.json flags runs over its training articles
        run = predict_run(tmp_path / "student", squad_file, tmp_path / "run", windowing=WINDOWS, execution=Execution(progress=False))
    assert run.info["settings"]["trained_on_overlap"]["questions"] == 8
    again = distill(teacher, squad_file, tmp_path / "student", config=config, student=(0, 2), execution=Execution(progress=False))  # finished: reused
    pd.testing.assert_frame_equal(again.log, log)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, squad_file):
    from safetensors.torch import load_file

    teacher = build_tiny_model(tmp_path / "teacher", layers=3, seed=3)
    config = DistillConfig(max_steps=12, epochs=12, batch_size=8, learning_rate=1e-3, checkpoint_every=4,
                           windowing=WINDOWS)
    settings = dict(student=(0, 2), config=config, execution=Execution(progress=False), cache_dir=tmp_path / "cache")
    distill(teacher, squad_file, tmp_path / "straight", **settings)
    with pytest.raises(KeyboardInterrupt):
        distill(teacher, squad_file, tmp_path / "resumed", _stop_after=6, **settings)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists() and not (tmp_path / "resumed" / "distill.json").exists()
    result = distill(teacher, squad_file, tmp_path / "resumed", **settings)
    assert list(result.log["step"]) == list(range(1, 13))  # steps 5-6 redone from the step-4 checkpoint, once
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_logits_are_cached_and_reused(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    common = dict(student=(0,), execution=Execution(progress=False), cache_dir=tmp_path / "cache")
    first = distill(teacher, squad_file, tmp_path / "a", config=DistillConfig(alpha=0.5, max_steps=2, batch_size=8,
                                                                              windowing=WINDOWS), **common)
    (chunk,) = (tmp_path / "cache").glob("*/chunk-*.npz")
    written = chunk.stat().st_mtime_ns
    assert first.info["teacher_logits"]["computed"] > 0
    second = distill(teacher, squad_file, tmp_path / "b", config=DistillConfig(alpha=1.0, temperature=4.0, max_steps=2,
                                                                               batch_size=8, windowing=WINDOWS),
                     **common)  # same teacher, same windows: every logit read back, none computed
    assert second.info["teacher_logits"]["computed"] == 0
    assert second.info["teacher_logits"]["reused"] == first.info["teacher_logits"]["computed"]
    assert chunk.stat().st_mtime_ns == written


def test_attention_transfer_runs_with_one_tokenizer_and_is_refused_across_two(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    result = distill(teacher, squad_file, tmp_path / "att", config=DistillConfig(attention_weight=1.0, max_steps=3, batch_size=8, windowing=WINDOWS), student=(1,), execution=Execution(progress=False))
    assert (result.log["attention"] > 0).all()


def test_teacher_distributions_move_onto_another_tokenizer(tmp_path, tiny_model_dir, bpe_tokenizer):  # noqa: F811
    teacher, wordpiece = load_qa_model(tiny_model_dir)
    table = pd.DataFrame({"id": ["q"], "title": ["Paris"], "question": ["When was the Eiffel Tower finished?"],
                          "context": [SHORT_CONTEXT], "answer_texts": [["1889"]],
                          "answer_starts": [[SHORT_CONTEXT.index("1889")]]})
    student_windows = prepare_windows(table, bpe_tokenizer, windowing=WindowSettings(128, 32))
    moved = teacher_logits((teacher, wordpiece), table, student_windows, bpe_tokenizer, cache_dir=tmp_path,
                           windowing=WindowSettings(128, 32), execution=Execution(progress=False)).logits
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
        distill(teacher, squad_file, tmp_path / "x", student=student_dir, config=DistillConfig(attention_weight=1.0, max_steps=1, windowing=WINDOWS), execution=Execution(progress=False))


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


def test_a_hard_label_student_needs_no_teacher_pass(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    result = distill(teacher, squad_file, tmp_path / "hard", cache_dir=tmp_path / "cache", config=DistillConfig(alpha=0.0, max_steps=2, batch_size=8, windowing=WINDOWS), student=(0,), execution=Execution(progress=False))
    assert result.info["teacher_logits"] is None and not (tmp_path / "cache").exists()  # no teacher pass at all
    assert result.log["soft"].isna().all() and (result.log["total"] == result.log["hard"]).all()


def test_the_lab_refuses_to_score_students_on_their_training_questions(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.labs.distill import lab_student

    with pytest.raises(ValueError, match="name the articles to hold out"):
        lab_student("soft targets", tiny_model_dir, squad_file, runs=tmp_path, held_out=None)
    with pytest.raises(ValueError, match="unknown lab student"):
        lab_student("no such student", tiny_model_dir, squad_file, runs=tmp_path, held_out=["Paris"])


def test_a_per_window_alpha_weighs_each_window_by_hand():
    """alpha 1 on a teacher-labelled window (its gold unused), 0 on a labelled one: the total is the mean
    of the first window's T²·KL and the second's cross-entropy, and the hard term is the second's alone."""
    s = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([2, 1])
    T = 2.0

    def kl(row):
        p_s, p_t = torch.softmax(s[row] / T, -1), torch.softmax(t[row] / T, -1)
        return float((p_t * (p_t.log() - p_s.log())).sum())

    def ce(row):
        return float(-torch.log_softmax(s[row], -1)[y[row]])

    losses = distillation_loss(s, s, t, t, y, y, temperature=T, alpha=torch.tensor([1.0, 0.0]))
    assert float(losses["total"]) == pytest.approx((T**2 * kl(0) + ce(1)) / 2, rel=1e-9)
    assert float(losses["hard"]) == pytest.approx(ce(1), rel=1e-9)
    assert float(losses["soft"]) == pytest.approx((kl(0) + kl(1)) / 2, rel=1e-9)
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        distillation_loss(s, s, t, t, y, y, alpha=torch.tensor([0.5, 1.5]))


def test_transfer_questions_are_labelled_by_the_teacher_alone(tmp_path, squad_file):
    from safetensors.torch import load_file

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    labelled = load_squad(squad_file, titles=["Normans"])
    transfer = load_squad(squad_file, titles=["Paris"])
    wrong_gold = transfer.assign(answer_texts=[["Eiffel"]] * 4, answer_starts=[[SHORT_CONTEXT.index("Eiffel")]] * 4)
    config = DistillConfig(alpha=0.5, max_steps=4, epochs=4, batch_size=4, windowing=WINDOWS)
    common = dict(student=(0,), config=config, execution=Execution(progress=False), cache_dir=tmp_path / "cache",
                  evaluate=False)
    a = distill(teacher, labelled, tmp_path / "a", transfer=transfer, **common)
    distill(teacher, labelled, tmp_path / "b", transfer=wrong_gold, **common)
    weights_a, weights_b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)  # the transfer gold plays no part
    assert a.run is None and a.info["identity"]["transfer"]["questions"] == 4
    assert 0 < a.info["transfer_windows"] < a.info["windows"]
    plain = distill(teacher, labelled, tmp_path / "c", **common)
    assert not all(torch.equal(weights_a[k], v) for k, v in load_file(plain.path / "model.safetensors").items())
    with pytest.raises(ValueError, match="need soft targets"):
        distill(teacher, labelled, tmp_path / "d", transfer=transfer,
                **{**common, "config": DistillConfig(alpha=0.0, max_steps=1, windowing=WINDOWS)})
    with pytest.raises(ValueError, match="must not share a question"):
        distill(teacher, labelled, tmp_path / "e", transfer=labelled.head(1), **common)


def test_the_lab_refits_the_threshold_on_fit_questions_and_records_its_students(tmp_path, squad_file):
    from xdanalysis.core.metrics import compute_f1, squad_v2_scores
    from xdanalysis.labs.distill import LAB_RESULTS, LabRecipe, lab_student
    from xdanalysis.runs.run import predict_run

    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    recipe = LabRecipe(labelled=1, fit=2, transfer=1, windows=8, layers=(0,))
    made = {name: lab_student(name, teacher, squad_file, runs=tmp_path / "runs", held_out=["Paris"], recipe=recipe,
                              precision="float32", progress=False) for name in ("hard labels", "soft targets")}
    soft = made["soft targets"]
    # the threshold is the one that maximises the official F1 on the fit questions
    fit = soft.path / "fit-run"
    with pytest.warns(UserWarning, match="trained on"):  # the fit questions come from training articles
        fitted = predict_run(soft.path, load_squad(squad_file).set_index("id")
                             .loc[pd.read_parquet(fit / "examples.parquet")["id"]].reset_index(), tmp_path / "check-fit", decoding=DecodingSettings(null_score_diff_threshold=soft.info["lab"]["threshold"]), execution=Execution(progress=False))
    official = squad_v2_scores({i: list(a) for i, a in zip(fitted.table["id"], fitted.table["answer_texts"])},
                               fitted.predictions, fitted.na_probs)
    assert fitted.scores(with_na_probs=False)["f1"] == pytest.approx(official["best_f1"])
    # the figures at threshold 0 are those of a run decided at 0; forced F1 is the best spans' F1
    at_zero = predict_run(soft.path, squad_file, tmp_path / "zero", selection=Selection(titles=["Paris"]), execution=Execution(progress=False)).scores()
    scores = soft.info["lab"]["scores"]
    assert scores["at_zero"]["f1"] == pytest.approx(at_zero["f1"])
    answerable = soft.run.table[soft.run.table["has_answer"]]
    assert scores["forced_HasAns_f1"] == pytest.approx(100 * np.mean(
        [max(compute_f1(g, p) for g in gold) for gold, p in zip(answerable["answer_texts"], answerable["best_span_text"])]))
    # the hard-label twin uses no transfer questions, and lab_results.json points at both students' runs
    assert "transfer" not in made["hard labels"].info["identity"]
    results = json.loads((tmp_path / "runs" / LAB_RESULTS).read_text())["students"]
    assert {r["name"] for r in results} == {"hard labels", "soft targets"}
    for entry in results:
        assert set(entry) >= {"name", "recipe", "checkpoint", "eval_run", "windows", "seconds", "scores"}
        assert (tmp_path / "runs" / entry["eval_run"] / "run.json").exists() and entry["windows"] > 0
    again = lab_student("soft targets", teacher, squad_file, runs=tmp_path / "runs", held_out=["Paris"],
                        recipe=recipe, precision="float32", progress=False)  # cached: the same student
    assert again.path == soft.path and again.info["lab"]["threshold"] == soft.info["lab"]["threshold"]


def test_two_configs_that_differ_only_in_max_query_length_are_two_students():
    from xdanalysis.core.settings import WindowSettings
    from xdanalysis.distill.config import DistillConfig

    long_questions = DistillConfig(windowing=WindowSettings(max_seq_length=256, doc_stride=128, max_query_length=64))
    short_questions = DistillConfig(windowing=WindowSettings(max_seq_length=256, doc_stride=128, max_query_length=16))
    assert long_questions.recipe() != short_questions.recipe()
    assert short_questions.recipe()["max_query_length"] == 16


def test_distilled_says_what_it_made_in_typed_fields(tmp_path, squad_file):
    teacher = build_tiny_model(tmp_path / "teacher", layers=2, seed=1)
    config = DistillConfig(alpha=0.0, max_steps=2, batch_size=8, windowing=WINDOWS)
    made = distill(teacher, squad_file, tmp_path / "s", config=config, student=(1,), evaluate=False,
                   execution=Execution(progress=False))
    recorded = json.loads((tmp_path / "s" / "distill.json").read_text())
    assert made.steps == recorded["steps"] == 2 and made.student_layers == [1]
    assert made.windows == recorded["windows"] and made.training_seconds == recorded["training_seconds"]
    assert made.threshold == 0.0  # not a lab student: decided at 0
