"""core.metrics against the official SQuAD 2.0 evaluation, rewritten here independently from its published
algorithm (evaluate-v2.0.py, Rajpurkar et al.): normalise, token F1, the no-answer threshold, the eval dict
and the best-threshold search. Both are run on the same predictions and must agree value for value."""

from __future__ import annotations

import collections
import random
import re
import string

import pytest

from xdanalysis.core.data import gold_answers, load_squad
from xdanalysis.core.metrics import squad_v2_scores


# The official algorithm, step for step ---------------------------------------------------------------

def _normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.compile(r"\b(a|an|the)\b", re.UNICODE).sub(" ", text)
    return " ".join(text.split())


def _tokens(text):
    return _normalize(text).split() if text else []


def _exact(gold, pred):
    return int(_normalize(gold) == _normalize(pred))


def _f1(gold, pred):
    gold_tokens, pred_tokens = _tokens(gold), _tokens(pred)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if len(gold_tokens) == 0 or len(pred_tokens) == 0:
        return int(gold_tokens == pred_tokens)
    if same == 0:
        return 0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def official(dataset, preds, na_probs):
    qid_to_has_ans = {}
    exact_scores, f1_scores = {}, {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"]
                golds = [a["text"] for a in qa["answers"] if _normalize(a["text"])]
                qid_to_has_ans[qid] = bool(qa["answers"])
                if not golds:
                    golds = [""]
                exact_scores[qid] = max(_exact(g, preds[qid]) for g in golds)
                f1_scores[qid] = max(_f1(g, preds[qid]) for g in golds)

    def threshold(scores):
        return {k: (float(not qid_to_has_ans[k]) if na_probs[k] > 1.0 else s) for k, s in scores.items()}

    def eval_dict(exact, f1, qids=None):
        qids = list(exact) if qids is None else qids
        total = len(qids)
        return collections.OrderedDict([("exact", 100.0 * sum(exact[k] for k in qids) / total),
                                        ("f1", 100.0 * sum(f1[k] for k in qids) / total), ("total", total)])

    exact, f1 = threshold(exact_scores), threshold(f1_scores)
    result = eval_dict(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in qid_to_has_ans.items() if v == wanted]
        if qids:
            for key, value in eval_dict(exact, f1, qids).items():
                result[f"{prefix}_{key}"] = value

    def best(scores):
        num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
        cur = best_score = num_no_ans
        best_thresh = 0.0
        for qid in sorted(na_probs, key=lambda k: na_probs[k]):
            if qid not in scores:
                continue
            if qid_to_has_ans[qid]:
                diff = scores[qid]
            else:
                diff = -1 if preds[qid] else 0
            cur += diff
            if cur > best_score:
                best_score, best_thresh = cur, na_probs[qid]
        return 100.0 * best_score / len(scores), best_thresh

    result["best_exact"], result["best_exact_thresh"] = best(exact_scores)
    result["best_f1"], result["best_f1_thresh"] = best(f1_scores)
    return result


# Predictions that exercise every rule ----------------------------------------------------------------

def _predictions(table, seed):
    """For each question: a gold answer as written, a gold with case, articles and punctuation changed, a
    longer or shorter span, another span of the context, or an abstention; no-answer probabilities on a
    coarse grid, so that ties break by order as in the official search."""
    rng = random.Random(seed)
    preds, na_probs = {}, {}
    for row in table.itertuples(index=False):
        golds = list(row.answer_texts) or list(row.plausible_texts) or [row.context[:12]]
        gold = rng.choice(golds)
        words = row.context.split()
        start = rng.randrange(len(words))
        preds[row.id] = rng.choice([
            gold, f"The {gold.upper()}.", gold[: max(1, len(gold) // 2)], f"{gold} {words[start]}",
            " ".join(words[start:start + rng.randint(1, 6)]), "", ""])
        na_probs[row.id] = rng.choice([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])
    return preds, na_probs


def _dataset(table):
    """The official nested format of ``table`` (one paragraph per question keeps it simple)."""
    return [{"title": "t", "paragraphs": [
        {"context": row.context, "qas": [{"id": row.id, "answers": [{"text": t} for t in row.answer_texts]}]}
        for row in table.itertuples(index=False)]}]


def _check(table, seed):
    preds, na_probs = _predictions(table, seed)
    ours = squad_v2_scores(gold_answers(table), preds, na_probs)
    theirs = official(_dataset(table), preds, na_probs)
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key] == theirs[key], key  # exactly: the same arithmetic in the same order


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_equal_the_official_algorithm_on_the_fixture(squad_file, seed):
    _check(load_squad(squad_file), seed)


@pytest.mark.slow
def test_scores_equal_the_official_algorithm_on_the_real_dev_set(shared):
    table = load_squad(shared / "data" / "squad-v2-dev-half.json")
    assert len(table) > 6000
    for seed in (0, 1):
        _check(table, seed)


def test_a_gold_that_normalises_to_nothing_is_dropped_as_the_official_script_does():
    """A gold answer of "." is no gold: an abstention does not match it, as in the official script."""
    ours = squad_v2_scores({"q": [".", "Paris"]}, {"q": ""})
    theirs = official([{"paragraphs": [{"qas": [{"id": "q", "answers": [{"text": "."}, {"text": "Paris"}]}]}]}],
                      {"q": ""}, {"q": 0.0})
    assert ours["exact"] == theirs["exact"] == 0.0
