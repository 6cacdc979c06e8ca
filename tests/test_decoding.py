"""Post-processing on hand-made logits."""

import numpy as np
import pytest

from xdanalysis.core.decoding import Window, decode_question
from xdanalysis.core.settings import DecodingSettings

NEG = -10.0
CONTEXT = "alpha beta gamma delta"  # tokens: alpha(0,5) beta(6,10) gamma(11,16) delta(17,22)


def window(context_tokens, start, end, question_tokens=2):
    """[CLS] q*question_tokens [SEP] context tokens [SEP]; logits given for every position."""
    offsets = [(-1, -1)] * (1 + question_tokens + 1) + list(context_tokens) + [(-1, -1)]
    assert len(offsets) == len(start) == len(end)
    return Window(np.array(offsets), np.array(start, dtype=np.float32), np.array(end, dtype=np.float32))


WORDS = [(0, 5), (6, 10), (11, 16), (17, 22)]


def logits(n, **values):
    array = np.full(n, NEG, dtype=np.float32)
    for index, value in values.items():
        array[int(index[1:])] = value
    return array


def test_answer_in_second_window_only():
    # window 1 covers alpha beta, window 2 covers gamma delta; only window 2 holds a strong span
    w1 = window(WORDS[:2], logits(7, p0=0.0, p4=1.0), logits(7, p0=0.0, p5=1.0))
    w2 = window(WORDS[2:], logits(7, p0=1.0, p4=5.0), logits(7, p0=1.0, p5=5.0))
    result = decode_question(CONTEXT, [w1, w2])
    assert result["answer"] == "gamma delta"
    assert (result["answer_start"], result["answer_end"]) == (11, 22)
    assert result["best_window"] == 1 and result["n_windows"] == 2
    assert result["best_span_score"] == pytest.approx(10.0)
    # null score is the minimum over windows of [CLS] start + end: min(0, 2) = 0
    assert result["null_score"] == pytest.approx(0.0)
    assert result["null_odds"] == pytest.approx(-10.0)


def test_null_wins_and_loses_at_the_threshold():
    start = logits(9, p0=3.0, p4=2.0)
    end = logits(9, p0=3.0, p4=2.5)
    result = decode_question(CONTEXT, [window(WORDS, start, end)])
    # null 6.0, best span "alpha" 4.5: null_odds = +1.5 > 0 -> abstain
    assert result["null_odds"] == pytest.approx(1.5)
    assert result["answer"] == "" and result["best_span_text"] == "alpha"
    assert decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(null_score_diff_threshold=2.0))["answer"] == "alpha"
    # the other sign: a stronger span answers
    start[5] = 9.0
    end[5] = 9.0
    flipped = decode_question(CONTEXT, [window(WORDS, start, end)])
    assert flipped["answer"] == "beta" and flipped["null_odds"] == pytest.approx(6.0 - 18.0)


def test_invalid_spans_are_rejected():
    # best start at delta (7) and best end at alpha (4): end before start is not allowed
    start = logits(9, p0=0.0, p7=9.0, p5=1.0)
    end = logits(9, p0=0.0, p4=9.0, p6=1.0)
    result = decode_question(CONTEXT, [window(WORDS, start, end)])
    assert result["answer"] == "beta gamma"  # 1 + 1, the best valid pair

    # start in the question (position 1) is not in the context
    start = logits(9, p0=0.0, p1=20.0, p6=1.0)
    end = logits(9, p0=0.0, p6=1.0)
    assert decode_question(CONTEXT, [window(WORDS, start, end)])["answer"] == "gamma"

    # a span longer than max_answer_length tokens is rejected
    start = logits(9, p0=-5.0, p4=5.0, p6=1.0)
    end = logits(9, p0=-5.0, p7=5.0, p6=1.0)
    assert decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(max_answer_length=4))["answer"] == "alpha beta gamma delta"
    assert decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(max_answer_length=3))["answer"] == "alpha beta gamma"


def test_nbest_order_probabilities_and_null_entry():
    start = logits(9, p0=0.0, p4=3.0, p5=2.0)
    end = logits(9, p0=0.0, p4=3.0, p5=1.0)
    result = decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(n_best_size=3))
    texts = [c["text"] for c in result["nbest"]]
    # alpha 6; alpha beta 4; beta 3; null 0 falls outside the best 3 and is appended
    assert texts == ["alpha", "alpha beta", "beta", ""]
    scores = np.array([6.0, 4.0, 3.0, 0.0])
    expected = np.exp(scores - 6.0) / np.exp(scores - 6.0).sum()
    assert [c["probability"] for c in result["nbest"]] == pytest.approx(list(expected))
    assert sum(c["probability"] for c in result["nbest"]) == pytest.approx(1.0)


def test_only_n_best_starts_and_ends_are_searched():
    # The top start (delta) and top end (alpha) make no valid span; beta is only the 2nd start
    # and the 2nd end, so with n_best_size=1 no span can be formed at all.
    start = logits(9, p0=0.0, p7=5.0, p5=4.9)
    end = logits(9, p0=0.0, p4=5.0, p5=4.9)
    only_top = decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(n_best_size=1))
    assert only_top["answer"] == "" and only_top["best_span_text"] == ""
    assert decode_question(CONTEXT, [window(WORDS, start, end)], decoding=DecodingSettings(n_best_size=2))["answer"] == "beta"


def test_no_admissible_span_abstains():
    w = Window(np.array([[-1, -1], [-1, -1], [-1, -1]]), np.zeros(3), np.zeros(3))
    result = decode_question("", [w])
    assert result["answer"] == "" and result["null_odds"] == float("inf")


def utils_qa_reference(context, features, n_best_size, max_answer_length, null_score_diff_threshold):
    """transformers' utils_qa.postprocess_qa_predictions (version_2_with_negative=True), rewritten here
    from its documented behaviour, loop for loop: features are (offsets or None per token, start, end)."""
    min_null = None
    prelim = []
    for offsets, start_logits, end_logits in features:
        null_score = start_logits[0] + end_logits[0]
        if min_null is None or min_null["score"] > null_score:
            min_null = {"offsets": (0, 0), "score": null_score}
        starts = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
        ends = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
        for s in starts:
            for e in ends:
                if s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None:
                    continue
                if e < s or e - s + 1 > max_answer_length:
                    continue
                prelim.append({"offsets": (offsets[s][0], offsets[e][1]), "score": start_logits[s] + end_logits[e]})
    prelim.append(min_null)
    predictions = sorted(prelim, key=lambda x: x["score"], reverse=True)[:n_best_size]
    if not any(p["offsets"] == (0, 0) for p in predictions):
        predictions.append(min_null)
    for p in predictions:
        p["text"] = context[p["offsets"][0]: p["offsets"][1]]
    i = 0
    while predictions[i]["text"] == "":
        i += 1
    best = predictions[i]
    score_diff = min_null["score"] - best["score"]
    return ("" if score_diff > null_score_diff_threshold else best["text"]), score_diff, predictions


@pytest.mark.parametrize("seed", range(25))
def test_decoding_matches_utils_qa_on_random_logits(seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(int(rng.integers(8, 40)))]
    context = " ".join(words)
    spans, at = [], 0
    for word in words:
        spans.append((at, at + len(word)))
        at += len(word) + 1
    question_tokens = int(rng.integers(1, 4))
    window_len, stride = int(rng.integers(4, 12)), int(rng.integers(1, 3))
    windows, features, first = [], [], 0
    while True:
        chunk = spans[first: first + window_len]
        offsets = [None] * (question_tokens + 2) + chunk + [None]  # [CLS] q.. [SEP] context [SEP]
        n = len(offsets)
        start, end = rng.normal(0, 3, n).astype(np.float32), rng.normal(0, 3, n).astype(np.float32)
        features.append((offsets, start, end))
        windows.append(Window(np.array([o if o is not None else (-1, -1) for o in offsets]), start, end))
        if first + window_len >= len(spans):
            break
        first += window_len - stride
    n_best, max_len, threshold = int(rng.integers(2, 21)), int(rng.integers(1, 8)), float(rng.normal(0, 1))
    answer, score_diff, reference = utils_qa_reference(context, features, n_best, max_len, threshold)
    ours = decode_question(context, windows, decoding=DecodingSettings(n_best_size=n_best, max_answer_length=max_len,
                                                     null_score_diff_threshold=threshold))
    assert ours["answer"] == answer
    assert ours["null_odds"] == pytest.approx(score_diff, abs=1e-5)
    assert [c["text"] for c in ours["nbest"]] == [p["text"] for p in reference]
    assert [c["score"] for c in ours["nbest"]] == pytest.approx([float(p["score"]) for p in reference], abs=1e-5)
