"""Attribution: completeness, hand computations on a linear toy model, window merging, words, deletion curves."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LONG_CONTEXT, SHORT_CONTEXT

from xdanalysis.core.settings import WindowSettings
from xdanalysis.interpret.attribution import Attributor, IntegratedGradients, deletion_area, merge_windows, to_words
from xdanalysis.interpret.attribution_stats import attention_attribution_correlation
from xdanalysis.model.loading import load_qa_model
from xdanalysis.core import Execution


class LinearQA(torch.nn.Module):
    """start[i] = e_i · w_start, end[i] = e_i · w_end: every logit depends on its own token only."""

    def __init__(self, vocab_size: int, answer_id: int, cls_id: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.embeddings = torch.nn.Embedding(vocab_size, 4)
        with torch.no_grad():
            self.embeddings.weight.copy_(0.1 * torch.randn(vocab_size, 4, generator=generator))
            self.embeddings.weight[answer_id] = torch.tensor([3.0, 3.0, 0.5, 0.0])  # the answer, by far
            self.embeddings.weight[cls_id] = torch.tensor([-1.0, -1.0, 0.0, 0.0])
        self.w_start = torch.tensor([1.0, 0.0, 0.5, 0.0])
        self.w_end = torch.tensor([0.0, 1.0, 0.0, 0.5])

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_):
        e = self.embeddings(input_ids)
        return SimpleNamespace(start_logits=e @ self.w_start, end_logits=e @ self.w_end)


@pytest.fixture(scope="module")
def linear(tiny):
    tokenizer = tiny[1]
    model = LinearQA(len(tokenizer), tokenizer.convert_tokens_to_ids("paris"), tokenizer.cls_token_id)
    return model, tokenizer


def test_integrated_gradients_are_complete_within_their_delta(tiny):
    model, tokenizer = tiny
    for target in ("span", "null_odds", "start"):
        attr = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=64)).attribute(
            "What is the capital of France?", SHORT_CONTEXT, target=target)
        assert abs(attr.completeness_gap) <= attr.delta + 1e-5
        # the attributions account for the target's change from the baseline, not a share of it
        assert attr.scores.sum() == pytest.approx(attr.target_value - attr.baseline_value,
                                                  abs=0.05 * abs(attr.target_value - attr.baseline_value) + 1e-3)
        assert len(attr.scores) == len(attr.tokens) and attr.n_steps == 64


def test_gradient_x_input_and_integrated_gradients_by_hand_on_a_linear_model(linear):
    model, tokenizer = linear
    attr = Attributor(model, tokenizer, method="gradient_x_input").attribute(
        "What is the capital?", SHORT_CONTEXT, target="start")
    s = attr.span_tokens[0]
    assert attr.tokens[s] == "paris" and attr.answer == "Paris"
    embedding = model.embeddings.weight[tokenizer.convert_tokens_to_ids("paris")].detach()
    expected = np.zeros(len(attr.tokens))
    expected[s] = float(embedding @ model.w_start)  # gradient w_start times the input embedding, at s only
    np.testing.assert_allclose(attr.scores, expected, rtol=1e-5, atol=1e-6)
    ig = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=20)).attribute(
        "What is the capital?", SHORT_CONTEXT, target="span")
    pad = model.embeddings.weight[tokenizer.pad_token_id].detach()
    expected = np.zeros(len(ig.tokens))
    expected[s] = float((embedding - pad) @ (model.w_start + model.w_end))  # exact for a linear target
    np.testing.assert_allclose(ig.scores, expected, rtol=1e-4, atol=1e-5)
    # the null target only reads [CLS], which the baseline keeps: nothing to attribute
    null = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=10)).attribute(
        "What is the capital?", SHORT_CONTEXT, target="null")
    np.testing.assert_allclose(null.scores, 0.0, atol=1e-6)
    assert null.target_value == pytest.approx(-2.0)


def test_null_attribution_changes_sign_with_the_cls_logits(tiny_model_dir, tmp_path):
    model, tokenizer = load_qa_model(tiny_model_dir)
    question, context = "Who was the leader of the Norse raiders?", SHORT_CONTEXT
    before = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=32)).attribute(
        question, context, target="null")
    with torch.no_grad():  # negate the QA head: every start and end logit, [CLS]'s included, changes sign
        model.qa_outputs.weight.neg_()
        model.qa_outputs.bias.neg_()
    after = Attributor(model, tokenizer, method=IntegratedGradients(n_steps=32)).attribute(
        question, context, target="null")
    assert after.target_value == pytest.approx(-before.target_value, rel=1e-4)
    np.testing.assert_allclose(after.scores, -before.scores, rtol=1e-3, atol=1e-5)
    assert np.abs(before.scores).sum() > 0


def test_words_sum_their_pieces(tiny):
    model, tokenizer = tiny
    attr = Attributor(model, tokenizer, method="gradient_x_input", windowing=WindowSettings(64, 16)).attribute(
        "Who was the leader of the Norse raiders?", LONG_CONTEXT, target="null_odds")
    words = to_words(attr)
    assert words.scores.sum() == pytest.approx(attr.scores.sum())
    for w, (kind, (start, end)) in enumerate(zip(words.kinds, words.offsets)):
        if kind == "special":
            continue
        pieces = [i for i, (k, (s, e)) in enumerate(zip(attr.kinds, attr.offsets)) if k == kind and start <= s and e <= end]
        assert words.scores[w] == pytest.approx(attr.scores[pieces].sum())
        source = attr.context if kind == "context" else attr.question
        assert words.tokens[w] == source[start:end]


def test_two_windows_merge_onto_one_text():
    first = {("context", 0, 3): 0.5, ("context", 4, 9): -0.2, ("question", 0, 3): 0.1}
    second = {("context", 4, 9): 0.7, ("context", 10, 14): -0.4, ("question", 0, 3): -0.3}
    merged = merge_windows({0: first, 1: second})
    assert merged == {("question", 0, 3): -0.3, ("context", 0, 3): 0.5, ("context", 4, 9): 0.7,
                      ("context", 10, 14): -0.4}
    best = merge_windows({0: first, 1: second}, merge="best", best=0)
    assert best[("context", 4, 9)] == -0.2 and best[("context", 10, 14)] == -0.4
    with pytest.raises(ValueError, match="unknown merge"):
        merge_windows({0: first}, merge="mean")


def test_attribute_context_covers_a_long_context(tiny):
    model, tokenizer = tiny
    merged = Attributor(model, tokenizer, method="gradient_x_input", windowing=WindowSettings(64, 16)).attribute_context(
        "When was the castle at Caen built?", LONG_CONTEXT, target="null")
    assert len(merged.per_window) > 2
    context_words = merged.words[merged.words["kind"] == "context"]
    assert context_words["start"].min() == 0 and context_words["end"].max() == len(LONG_CONTEXT)
    assert (context_words["windows"] >= 1).all() and (context_words["windows"] > 1).any()  # overlaps exist
    for row in context_words.itertuples():  # each merged score is the largest-magnitude window score
        scores = [dict((tuple(o), v) for k, o, v in zip(a.kinds, a.offsets.tolist(), a.scores) if k == "context")
                  .get((row.start, row.end)) for a in merged.per_window.values()]
        scores = [v for v in scores if v is not None]
        assert row.score == pytest.approx(max(scores, key=abs))


def test_deletion_curve_finds_the_answer_token(linear):
    model, tokenizer = linear
    question, context = "What is the capital?", SHORT_CONTEXT
    merged = Attributor(model, tokenizer, method="gradient_x_input").attribute_context(question, context, target="span")
    top = merged.words.sort_values("score", ascending=False).iloc[0]
    assert top["text"] == "Paris"
    from xdanalysis.views.attribution import attribution_html

    assert 'outline:2px solid #333">Paris</span>' in attribution_html(merged)  # the best span is boxed
    curve = Attributor(model, tokenizer).deletion_curve(
        question, context, merged.words, target="span", max_words=4, random_repeats=4)
    attributed = curve[curve["order"] == "attribution"].set_index("k")["change"]
    assert attributed[0] == 0 and attributed[1] < -3  # deleting "Paris" takes the answer away
    area = deletion_area(curve)
    assert area["attribution"] < area["random"]


def test_attention_and_attribution_rank_correlation_by_hand():
    tokens = ["[CLS]", "a", "b", "c", "d"]
    attr = SimpleNamespace(window=0, tokens=tokens, scores=np.array([0.0, 0.1, -0.5, 0.9, 0.3]),
                           span_tokens=(3, 3), cls_index=0)
    received = np.array([0.05, 0.1, 0.3, 0.4, 0.15])  # ranks as |scores|: 0 < .1 < .3 < .5 < .9
    same = np.tile(received, (5, 1))[None, None]  # one head; every row attends the same way
    reversed_ = np.tile(received[::-1], (5, 1))[None, None]
    attention = SimpleNamespace(window=0, tokens=tokens, predicted_tokens=(3, 3),
                                attentions=np.concatenate([same, reversed_], axis=0))
    frame = attention_attribution_correlation(attention, attr)
    # reversed: attention ranks 3,5,4,2,1 against 1,2,4,5,3: rho = 1 - 6 * 26 / (5 * 24)
    assert frame["spearman"].tolist() == pytest.approx([1.0, 1 - 6 * 26 / 120])
    with pytest.raises(ValueError, match="same tokens"):
        attention_attribution_correlation(SimpleNamespace(window=1, tokens=tokens), attr)


def test_unknown_targets_and_methods_are_refused(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="unknown target"):
        Attributor(model, tokenizer).attribute("q?", SHORT_CONTEXT, target="answer")
    with pytest.raises(ValueError, match="unknown method"):
        Attributor(model, tokenizer, method="saliency").attribute("q?", SHORT_CONTEXT)
    with pytest.raises(ValueError, match="unknown deletion target"):
        Attributor(model, tokenizer).deletion_curve(
            "q?", SHORT_CONTEXT, pd.DataFrame(columns=["kind", "start", "end", "score"]), target="null")


def test_statistics_over_decision_groups(tiny_model_dir, squad_file, tmp_path, tiny):
    from xdanalysis.analysis.outcomes import outcomes
    from xdanalysis.interpret.attribution_stats import attribution_statistics, summarize_attribution_statistics
    from xdanalysis.runs.run import predict_run

    model, tokenizer = tiny
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    groups = {"answered": ["correct", "partial_long", "partial_short", "partial_shifted", "wrong_span",
                           "false_answer"], "abstained": ["abstained", "correct_abstention"]}
    stats = attribution_statistics(run, model, tokenizer, per_group=2, groups=groups, n_steps=8, progress=False)
    table = outcomes(run.table).set_index("id")
    per_question = stats.drop_duplicates("id")
    for row in per_question.itertuples():
        assert row.outcome in groups[row.group] and table.loc[row.id, "outcome"] == row.outcome
    # the baseline keeps the special tokens, so integrated gradients put nothing on them
    np.testing.assert_allclose(per_question["question"] + per_question["context"], 1.0, atol=1e-4)
    assert (stats.groupby("id")["layer"].count() == model.config.num_hidden_layers).all()
    assert stats["spearman"].between(-1, 1).all()
    summary = summarize_attribution_statistics(stats, n_boot=100).set_index("group")
    for group, part in per_question.groupby("group"):
        assert summary.loc[group, "questions"] == len(part)
        assert summary.loc[group, "question"] == pytest.approx(100 * part["question"].mean())
