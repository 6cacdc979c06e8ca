"""Attention extraction, statistics and views on tiny models and hand-made tensors."""

import numpy as np
import pytest
import torch
from conftest import LONG_CONTEXT, SHORT_CONTEXT, needs_shared, shared_path

from xdanalysis.core.settings import WindowSettings
from xdanalysis.interpret.attention import (
    Attention,
    cls_by_layer,
    crop_indices,
    get_attention,
    head_statistics,
    head_statistics_of,
    question_to_context,
    summarize_head_statistics,
    to_words,
)
from xdanalysis.model.forward import eager_attention
from xdanalysis.model.loading import load_qa_model
from xdanalysis.runs.run import predict_run
from xdanalysis.views.attention import (
    plot_cls_by_layer,
    plot_head,
    plot_head_grid,
    plot_head_statistics,
    plot_question_to_context,
    plot_statistic_difference,
)
from xdanalysis.core import Execution


def test_eager_switch_leaves_logits_unchanged_and_is_restored(tiny):
    model, tokenizer = tiny
    inputs = tokenizer("When was it finished?", SHORT_CONTEXT, return_tensors="pt")
    before = model.config._attn_implementation
    with torch.inference_mode():
        reference = model(**inputs)
        with eager_attention(model):
            assert model.config._attn_implementation == "eager"
            eager = model(**inputs, output_attentions=True)
    assert model.config._attn_implementation == before
    torch.testing.assert_close(eager.start_logits, reference.start_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager.end_logits, reference.end_logits, atol=1e-5, rtol=0)
    assert eager.attentions is not None and len(eager.attentions) == model.config.num_hidden_layers


def test_rows_sum_to_one_and_tokens_line_up(tiny):
    model, tokenizer = tiny
    att = get_attention(model, tokenizer, "  When was the Eiffel Tower finished?", SHORT_CONTEXT,
                        gold=[(SHORT_CONTEXT.index("1889"), "1889")])
    layers, heads, n, m = att.attentions.shape
    assert (layers, heads) == (2, 2) and n == m == len(att.tokens) == len(att.kinds)
    np.testing.assert_allclose(att.attentions.sum(axis=-1), 1.0, atol=1e-5)
    assert att.kinds[0] == "special" and att.kinds[-1] == "special"
    for token, kind, (s, e) in zip(att.tokens, att.kinds, att.offsets):
        if kind == "special":
            assert (s, e) == (-1, -1)
        elif token != tokenizer.unk_token:
            text = SHORT_CONTEXT if kind == "context" else att.question
            assert text[s:e].lower() == token.removeprefix("##")
    start, end = att.gold_tokens
    assert SHORT_CONTEXT[att.offsets[start][0]:att.offsets[end][1]] == "1889"


def test_multi_window_question_picks_the_gold_window(tiny):
    model, tokenizer = tiny
    gold = [(LONG_CONTEXT.index("1060"), "1060")]
    att = get_attention(model, tokenizer, "When was the castle built?", LONG_CONTEXT, gold=gold, prefer="gold",
                        windowing=WindowSettings(64, 16))
    assert att.n_windows > 2 and att.gold_tokens is not None
    start, end = att.gold_tokens
    assert LONG_CONTEXT[att.offsets[start][0]:att.offsets[end][1]] == "1060"
    first = get_attention(model, tokenizer, "When was the castle built?", LONG_CONTEXT, gold=gold, window=0,
                          windowing=WindowSettings(64, 16))
    assert first.window == 0 and first.gold_tokens is None  # 1060 is not in the first window
    with pytest.raises(IndexError, match="window 99 does not exist"):
        get_attention(model, tokenizer, "q?", LONG_CONTEXT, window=99, windowing=WindowSettings(64, 16))


def hand_attention():
    # [CLS] who ? [SEP] gus ##tave built , [SEP]  -- one layer, one head
    tokens = ["[CLS]", "who", "?", "[SEP]", "gus", "##tave", "built", ",", "[SEP]"]
    kinds = ["special", "question", "question", "special", "context", "context", "context", "context", "special"]
    offsets = np.array([[-1, -1], [0, 3], [3, 4], [-1, -1], [0, 3], [3, 7], [8, 13], [13, 14], [-1, -1]])
    n = len(tokens)
    matrix = np.zeros((n, n))
    for i in range(n):
        matrix[i, 0] = 0.5  # half to [CLS]
        matrix[i, (i + 1) % n] += 0.25  # a quarter to the next token (wraps at the end)
        matrix[i, i] += 0.25  # a quarter to itself
    return Attention(tokens=tokens, kinds=kinds, offsets=offsets, attentions=matrix[None, None], window=0,
                     n_windows=1, question="who?", context="gustave built,", gold_tokens=(4, 5),
                     predicted_tokens=(6, 6))


def test_statistics_equal_hand_computed_values():
    att = hand_attention()
    stats = {k: float(v[0, 0]) for k, v in head_statistics_of(att.attentions, att.tokens).items()}
    n = 9
    assert stats["cls"] == pytest.approx((0.5 * n + 0.25 * 2) / n)  # row 0 self, row 8 wraps to 0
    assert stats["self"] == pytest.approx((0.25 * (n - 1) + 0.75) / n)
    assert stats["next"] == pytest.approx(0.25)  # rows 0..7 each give 0.25 to the next token
    assert stats["previous"] == pytest.approx(0.5 / (n - 1))  # only row 1: its previous token is [CLS]
    # to [SEP] (3 and 8): row 2 -> 3 and row 7 -> 8 (next), rows 3 and 8 (self) -> 4 * 0.25
    assert stats["sep"] == pytest.approx(4 * 0.25 / n)
    # punctuation tokens ? (2) and , (7): rows 1, 6 (next) and rows 2, 7 (self)
    assert stats["punctuation"] == pytest.approx(4 * 0.25 / n)
    row_entropy = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    row0 = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert stats["entropy"] == pytest.approx(((n - 2) * row_entropy + 2 * row0) / n)


def test_word_aggregation_on_a_known_split():
    att = hand_attention()
    words = to_words(att)
    assert words.tokens == ["[CLS]", "who", "?", "[SEP]", "gustave", "built", ",", "[SEP]"]
    assert words.gold_tokens == (4, 4) and words.predicted_tokens == (5, 5)
    np.testing.assert_allclose(words.attentions.sum(axis=-1), 1.0)
    a = att.attentions[0, 0]
    # to the word gustave: sum of its pieces' columns; from it: mean of its pieces' rows
    assert words.attentions[0, 0, 1, 4] == pytest.approx(a[1, 4] + a[1, 5])
    assert words.attentions[0, 0, 4, 5] == pytest.approx((a[4, 6] + a[5, 6]) / 2)


def test_crop_keeps_the_answer_and_question_to_context():
    att = hand_attention()
    kept = crop_indices(att, around=0)
    assert {4, 5, 6} <= set(kept) and {0, 1, 2, 3, 8} <= set(kept)
    received = question_to_context(att)
    assert received[:4].sum() == 0 and received[8] == 0
    # question rows 1 and 2 reach only [CLS], themselves and the next token: no context token
    assert received[4:8].sum() == pytest.approx(0.0)
    shifted = hand_attention()
    shifted.attentions = shifted.attentions.copy()
    shifted.attentions[0, 0, 1, 4] += 0.2  # 'who' now looks at 'gus'
    assert question_to_context(shifted)[4] == pytest.approx(0.2 / 2)  # mean over the 2 question rows


def test_batched_statistics_equal_one_question_at_a_time(tiny, tiny_model_dir, squad_file, tmp_path):
    model, tokenizer = tiny
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16), execution=Execution(progress=False))
    per_question = head_statistics(run, model, tokenizer, batch_size=3, progress=False)
    assert set(per_question["id"]) == set(run.table["id"])
    row = run.table.iloc[0]
    single = get_attention(model, tokenizer, row["question"], row["context"], window=int(row["best_window"]),
                           windowing=WindowSettings(64, 16))
    expected = head_statistics_of(single.attentions, single.tokens)
    got = per_question[(per_question["id"] == row["id"]) & (per_question["statistic"] == "entropy")]
    np.testing.assert_allclose(got.sort_values(["layer", "head"])["value"], expected["entropy"].ravel(), atol=1e-5)
    summary = summarize_head_statistics(per_question, n_boot=50)
    assert set(summary["statistic"]) == {"cls", "sep", "self", "previous", "next", "punctuation", "entropy"}
    assert (summary["low"] <= summary["mean"] + 1e-12).all() and (summary["mean"] <= summary["high"] + 1e-12).all()
    assert (summary["n"] == len(run.table)).all()
    # every view draws
    import matplotlib

    matplotlib.use("Agg")
    plot_head_grid(single)
    plot_head(single, 1, 0)
    plot_question_to_context(single, layer=1)
    plot_head_statistics(summary)
    plot_statistic_difference(summary, summarize_head_statistics(per_question.iloc[::-1], n_boot=10))
    frame = cls_by_layer(per_question, run.table, n_boot=50)
    plot_cls_by_layer(frame)
    # the frame against a direct computation: mean over heads per question, then over questions
    cls = per_question[per_question["statistic"] == "cls"]
    answered = set(run.table.loc[run.table["answer"] != "", "id"])
    by_question = cls[cls["id"].isin(answered)].groupby(["id", "layer"])["value"].mean().groupby("layer").mean()
    mine = frame[frame["group"] == "answered"].set_index("layer")["mean"]
    assert mine.to_dict() == pytest.approx(by_question.to_dict())
    assert (frame["low"] <= frame["mean"] + 1e-12).all() and (frame["mean"] <= frame["high"] + 1e-12).all()


@needs_shared
def test_real_encoder_attention_has_structure():
    model, tokenizer = load_qa_model(shared_path() / "models" / "minilm-l6-h384-uncased", allow_random_head=True)
    att = get_attention(model, tokenizer, "Who built the castle at Caen?", LONG_CONTEXT)
    stats = head_statistics_of(att.attentions, att.tokens)
    # a real pretrained encoder has heads that attend strongly to [SEP] or the previous token:
    # far above the 1/n of uniform attention
    uniform = 1 / len(att.tokens)
    assert stats["sep"].max() > 10 * uniform and stats["previous"].max() > 10 * uniform


def test_head_differences_mark_only_heads_whose_interval_excludes_zero_and_say_what_chance_gives():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from xdanalysis.interpret.attention import head_differences, summarize_head_statistics
    from xdanalysis.views.attention import plot_statistic_difference
    from xdanalysis.views.findings import head_difference_finding

    rng = np.random.default_rng(0)
    rows = []
    for side, shift in (("a", 0.3), ("b", 0.0)):
        for q in range(40):
            for layer in range(2):
                for head in range(3):  # only layer 1 head 2 differs between the sides
                    value = rng.normal(0.5, 0.05) + (shift if (layer, head) == (1, 2) else 0.0)
                    rows.append({"id": f"{side}{q}", "layer": layer, "head": head, "statistic": "cls", "value": value})
    frame = pd.DataFrame(rows)
    a, b = frame[frame["id"].str.startswith("a")], frame[frame["id"].str.startswith("b")]
    differences = head_differences(a, b, n_boot=300)
    marked = differences[differences["excludes_zero"]]
    assert [(int(r.layer), int(r.head)) for r in marked.itertuples()] == [(1, 2)]
    strongest = differences.set_index(["layer", "head"]).loc[(1, 2)]
    assert strongest["difference"] == pytest.approx(0.3, abs=0.05) and strongest["low"] > 0
    # by hand: the difference is the difference of the two sides' means
    assert strongest["difference"] == pytest.approx(
        a[(a["layer"] == 1) & (a["head"] == 2)]["value"].mean() - b[(b["layer"] == 1) & (b["head"] == 2)]["value"].mean())
    ax = plot_statistic_difference(summarize_head_statistics(a, n_boot=20), summarize_head_statistics(b, n_boot=20),
                                   differences=differences)
    assert ax.collections[-1].get_offsets().tolist() == [[2.0, 1.0]]  # the dot on layer 1, head 2
    assert "1 of 6 heads' intervals exclude 0" in ax.get_title()
    said = str(head_difference_finding(differences, statistic="cls"))
    assert "1 of 6 heads" in said and "0.3 expected by chance" in said
    # one head of six is not beyond what chance gives at 5% per head (P ≈ 0.26): no claim of a difference
    assert "no evidence" in said
    many = differences.assign(excludes_zero=True)
    assert "heads differ" in str(head_difference_finding(many, statistic="cls"))
    # six of six: P = 0.05^6, said as a bound, not rounded to "P = 0.000"
    assert "(P < 0.001 if no head differed)" in str(head_difference_finding(many, statistic="cls"))
