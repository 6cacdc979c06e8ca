"""Where errors concentrate: slice intersections, the cross-fitted error tree, the gold audit (issue 19)."""

import json

import numpy as np
import pandas as pd
import pytest
from test_errors import hand_run

from xdanalysis.analysis.error_tree import error_tree, context_halves
from xdanalysis.analysis.gold import gold_agreement, gold_audit, majority_gold
from xdanalysis.analysis.outcomes import ERROR_OUTCOMES, outcomes
from xdanalysis.analysis.slices import slice_grid, slice_table, slice_values
from xdanalysis.core.stats import MIN_INTERVAL_COUNT

def test_a_tree_does_not_restate_what_an_error_is_from_the_model_decision():
    """Issue 32: "answerable and confidently abstained" is an error by definition; a rule on the decision margin
    says so again instead of saying which questions go wrong. The margin is never split on; the planted rule is
    found; the margin is still in the feature table for a look of one's own."""
    from xdanalysis.analysis.error_tree import DECISION_FEATURES, error_features

    table = synthetic_run(error=lambda r: r.kind == "why")
    confident = table["has_answer"] & (np.arange(len(table)) % 3 == 0)  # abstained on, far above the threshold
    table.loc[confident, "null_odds"] = 6.0 + np.arange(confident.sum()) % 5
    table.loc[confident, "outcome"] = "abstained"
    table["null_odds"] = table["null_odds"].where(confident, table["null_odds"].clip(-2, 2))
    tree = error_tree(table, side="answerable")
    assert not tree.leaves["rule"].str.contains("decision margin").any()
    assert "why" in " ".join(tree.leaves["rule"])
    assert set(DECISION_FEATURES) <= set(error_features(table, threshold=0.0).columns)


WORDS = "the army crossed the river before the winter and the fort fell to the british in the spring".split()


def synthetic_run(n_contexts=300, per_context=2, seed=0, error=None):
    """A run table with the columns error_tree reads; ``error(row) -> bool`` decides each outcome."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_contexts):
        length = int(rng.integers(60, 380))
        context = " ".join(rng.choice(WORDS, size=length)) + f" paragraph {c}."
        for q in range(per_context):
            kind = rng.choice(["why", "what", "who", "when"])
            question = {"why": "Why did the fort fall", "what": "What did the army cross", "who": "Who took the fort",
                        "when": "When did the fort fall"}[kind] + " " + " ".join(rng.choice(WORDS, int(rng.integers(1, 12)))) + "?"
            has = bool(rng.random() < 0.6)
            start = int(rng.integers(0, len(context) // 2))
            row = {"id": f"q{c}-{q}", "title": "t", "context": context, "question": question,
                   "has_answer": has, "answer_texts": [context[start:start + 9]] if has else [],
                   "answer_starts": [start] if has else [], "plausible_starts": [] if has else [start],
                   "context_tokens": length, "question_tokens": len(question.split()) + 2,
                   "answer_tokens": 3.0 if has else np.nan, "n_windows": 1, "first_window_chars": len(context),
                   "null_odds": float(rng.normal()), "answer": "x", "best_span_text": "x", "kind": kind}
            rows.append(row)
    table = pd.DataFrame(rows)
    wrong = np.array([error(r) for r in table.itertuples()])
    table["outcome"] = np.where(wrong, np.where(table["has_answer"], "wrong_span", "false_answer"),
                                np.where(table["has_answer"], "correct", "correct_abstention"))
    table["plausible_trap"] = False
    return table


def test_the_tree_finds_a_planted_rule_and_it_holds_on_the_other_half():
    table = synthetic_run(error=lambda r: r.kind == "why" and r.context_tokens > 250)
    tree = error_tree(table)
    leaves = tree.leaves
    assert leaves["count"].sum() == len(table)
    top = leaves.iloc[0]
    assert "question type why" in top["rule"] and "context tokens > 2" in top["rule"]  # the threshold near 250
    assert top["error_rate"] == 100 and top["held_out_error_rate"] == 100 and top["verdict"] == "held"
    assert top["share of errors (%)"] == pytest.approx(100 * top["errors"] / (tree.table["outcome"] != "correct")
                                                   .mul(tree.table["outcome"] != "correct_abstention").sum())
    assert leaves["errors"].sum() == tree.table["outcome"].isin(ERROR_OUTCOMES).sum()
    examples = tree.examples(top["leaf"])
    assert len(examples) == top["count"] and examples["is_error"].all()
    assert ((examples["kind"] == "why") & (examples["context_tokens"] > 250)).all()


def test_cross_fitting_rejects_a_rule_planted_in_one_half_only():
    probe = synthetic_run(error=lambda r: False)
    fit_ids = set(probe["id"][context_halves(probe, seed=0)])
    rng = np.random.default_rng(1)
    noise = {q: bool(rng.random() < 0.3) for q in probe["id"]}
    # in the half the tree is fitted on, long questions always fail; elsewhere errors are noise
    table = synthetic_run(error=lambda r: (r.question_tokens > 9 and r.id in fit_ids) or noise[r.id])
    tree = error_tree(table)
    planted = tree.leaves[tree.leaves["rule"].str.contains("question tokens > ")]
    assert len(planted) and (planted["error_rate"] > 90).all()  # found where it was planted...
    assert (planted["held_out_error_rate"] < 50).all()  # ...but not on the other half
    assert set(planted["verdict"]) <= {"did not hold", "weaker out of sample"}
    assert "held" not in set(planted["verdict"])


def test_error_tree_targets_and_bad_options():
    table = synthetic_run(n_contexts=60, error=lambda r: r.kind == "who")
    tree = error_tree(table, target="false_answer", min_leaf=5)
    assert tree.leaves["errors"].sum() == (tree.table["outcome"] == "false_answer").sum()
    with pytest.raises(ValueError, match="target"):
        error_tree(table, target="errors")
    with pytest.raises(ValueError, match="unknown leaf"):
        tree.examples(-5)


def test_intersections_match_a_pandas_groupby():
    table = outcomes(pd.concat([hand_run().assign(id=hand_run()["id"] + str(k)) for k in range(3)],
                               ignore_index=True))
    grid = slice_grid(table, "question type", "answer position", n_boot=100)
    a, b = slice_values(table, "question type"), slice_values(table, "answer position")
    expected = table.groupby([a.astype(object), b.astype(object)]).agg(count=("id", "size"), F1=("f1", "mean"))
    cells = grid.set_index(["question type", "answer position"])
    assert len(grid) == len(a.cat.categories) * len(b.cat.categories)  # every cell, empty ones too
    for (x, y), row in expected.iterrows():
        assert cells.loc[(x, y), "count"] == row["count"]
        assert cells.loc[(x, y), "F1"] == pytest.approx(100 * row["F1"])
    assert grid["count"].sum() == len(table) - (a.isna() | b.isna()).sum()
    assert grid.loc[grid["count"] < MIN_INTERVAL_COUNT, "F1_low"].isna().all()  # small cells: greyed, not hidden
    errors = table["outcome"].isin(ERROR_OUTCOMES)
    shown = grid[grid["count"] > 0]
    assert shown["share of errors (%)"].sum() == pytest.approx(100 * errors[a.notna() & b.notna()].sum()
                                                               / errors.sum())
    with pytest.raises(ValueError, match="two different slices"):
        slice_grid(table, "question type", "question type")


def test_each_bucket_says_its_share_of_errors_beside_its_share_of_questions():
    table = outcomes(hand_run())
    frame = slice_table(table, "question type", n_boot=50).set_index("bucket")
    errors = table["outcome"].isin(ERROR_OUTCOMES)
    for bucket, part in table.groupby(slice_values(table, "question type").astype(object)):
        assert frame.loc[bucket, "share of errors (%)"] == pytest.approx(
            100 * part["outcome"].isin(ERROR_OUTCOMES).sum() / errors.sum())
        false = (table["outcome"] == "false_answer").sum()
        assert frame.loc[bucket, "share of false_answer (%)"] == pytest.approx(
            100 * (part["outcome"] == "false_answer").sum() / false)
        assert frame.loc[bucket, "share (%)"] == pytest.approx(100 * len(part) / len(table))
    assert frame["share of errors (%)"].sum() == pytest.approx(100.0)  # every rate in percent, named so


def test_gold_agreement_by_hand():
    table = pd.DataFrame({"answer_texts": [["Paris", "Paris"], ["the Eiffel Tower", "Eiffel Tower", "a tower"], ["x"], []]})
    agreement = gold_agreement(table)
    # pairs: (the Eiffel Tower, Eiffel Tower) = 1 after normalisation; (Eiffel Tower, tower) = 2/3; twice
    assert agreement.tolist()[:3] == pytest.approx([1.0, (1 + 2 / 3 + 2 / 3) / 3, 1.0])
    assert np.isnan(agreement.iloc[3])
    assert majority_gold(["a tower", "the Eiffel Tower", "Eiffel Tower"]) == "the Eiffel Tower"


def test_gold_audit_on_real_dev_questions(shared):
    data = json.loads((shared / "data" / "squad-v2-dev-half.json").read_text())
    questions = {q["id"]: q for article in data["data"] for p in article["paragraphs"] for q in p["qas"]}
    # two real questions whose annotators disagree, worked out by hand from the file
    picked = [q for q in questions.values() if len({a["text"] for a in q["answers"]}) >= 3][:2]
    texts = [[a["text"] for a in q["answers"]] for q in picked]
    from xdanalysis.core.metrics import compute_f1

    by_hand = [np.mean([compute_f1(x, y) for i, x in enumerate(t) for y in t[i + 1:]]) for t in texts]
    frame = pd.DataFrame({"id": [q["id"] for q in picked], "question": [q["question"] for q in picked],
                          "answer_texts": texts, "plausible_texts": [[], []],
                          "answer": [texts[0][-1], ""], "na_prob": [0.1, 0.9]})
    assert gold_agreement(frame).tolist() == pytest.approx(by_hand)
    assert all(a < 1 for a in by_hand)
    audit = gold_audit(frame)
    row = audit.table.iloc[0]
    assert row["f1"] == 1.0  # the answer is one of its golds: official F1 1...
    majority = majority_gold(texts[0])
    assert row["f1_majority"] == pytest.approx(compute_f1(majority, texts[0][-1]))  # ...against the majority less
    assert row["minority_gold"] == (compute_f1(majority, texts[0][-1]) < 1 and
                                    texts[0][-1].lower() != majority.lower())


def test_gold_audit_counts_on_a_hand_table():
    table = pd.DataFrame({
        "id": list("abcd"), "question": ["q"] * 4,
        "answer_texts": [["1889", "1889", "in 1889"], ["Gustave Eiffel", "Eiffel"], [], []],
        "plausible_texts": [[], [], ["iron"], ["gold"]],
        "answer": ["in 1889", "Eiffel", "iron", "iron"], "na_prob": [0.1, 0.4, 0.05, 0.05]})
    audit = gold_audit(table, confident=0.9)
    flagged = audit.table.set_index("id")
    # a: "in 1889" is a gold, but two of three annotators gave "1889"; b: a tie goes to the first gold
    assert flagged["minority_gold"].tolist() == [True, True, False, False]
    assert flagged.loc["a", "f1"] == 1.0 and flagged.loc["a", "f1_majority"] == pytest.approx(2 / 3)
    assert flagged["disputed_unanswerable"].tolist() == [False, False, True, False]
    assert audit.summary.loc["answerable questions", "value"] == 2
    assert list(audit.examples("disputed unanswerable")["id"]) == ["c"]
    with pytest.raises(ValueError, match="kind"):
        audit.examples("minority")


def test_verdicts_say_how_far_a_rule_held():
    from xdanalysis.analysis.error_tree import _verdict

    leaf = {"held_out_count": 50, "error_rate": 90.0, "low": 80.0, "high": 98.0}
    assert _verdict({**leaf, "held_out_error_rate": 85, "held_out_low": 75, "held_out_high": 94}, 50, 50) == "held"
    assert _verdict({**leaf, "held_out_error_rate": 65, "held_out_low": 58, "held_out_high": 72}, 50, 50) == \
        "held in direction only"
    assert _verdict({**leaf, "held_out_error_rate": 55, "held_out_low": 40, "held_out_high": 70}, 50, 50) == \
        "weaker out of sample"
    assert _verdict({**leaf, "held_out_error_rate": 45, "held_out_low": 30, "held_out_high": 60}, 50, 50) == \
        "did not hold"
    assert _verdict({**leaf, "held_out_count": 4, "held_out_error_rate": 100, "held_out_low": float("nan"),
                     "held_out_high": float("nan")}, 50, 50) == "too few held-out questions"


def test_top_intersections_by_hand_with_a_planted_concentration():
    from scipy.stats import binomtest

    from xdanalysis.analysis.slices import top_intersections

    # every "why" question on a long context is wrong, and nothing else: the cell holds all the errors
    table = synthetic_run(error=lambda r: r.kind == "why" and r.context_tokens > 250)
    table["exact"] = table["f1"] = (~table["outcome"].isin(ERROR_OUTCOMES)).astype(float)
    cells = top_intersections(table, slices=["question type", "context length"], top=3, n_boot=50)
    top = cells.iloc[0]
    errors = table["outcome"].isin(ERROR_OUTCOMES)
    kinds, lengths = slice_values(table, "question type"), slice_values(table, "context length")
    here = (kinds.astype(object) == top["row bucket"]) & (lengths.astype(object) == top["column bucket"])
    assert top["rows"] == "question type" and top["row bucket"] == "why"
    assert top["questions"] == here.sum() and top["errors"] == (errors & here).sum()
    assert top["share of errors (%)"] == pytest.approx(100 * (errors & here).sum() / errors.sum())
    wilson = binomtest(int((errors & here).sum()), int(errors.sum())).proportion_ci(method="wilson")
    assert top["share of errors low (%)"] == pytest.approx(100 * wilson.low)
    assert top["share of questions (%)"] == pytest.approx(100 * here.mean()) and bool(top["concentrated"])
    assert (cells["questions"] >= MIN_INTERVAL_COUNT).all() and not cells.attrs
    # every question wrong: each cell holds exactly its share of questions, and none is called concentrated
    wrong = synthetic_run(error=lambda r: True).assign(exact=0.0, f1=0.0)
    even = top_intersections(wrong, slices=["question type", "context length"], top=20, n_boot=50)
    assert np.allclose(even["share of errors (%)"], even["share of questions (%)"]) and not even["concentrated"].any()


def test_what_the_gold_audit_calls_official_is_the_official_score_on_the_real_dev_set(shared):
    """Anything labelled official equals squad_v2_scores: on the real half dev set, answers that abstain,
    copy a gold, or answer '.', the audit's "against any gold (official)" figures are the official HasAns ones
    (a gold of "." is dropped as the official script drops it)."""
    from xdanalysis.core.data import gold_answers, load_squad
    from xdanalysis.core.metrics import squad_v2_scores

    table = load_squad(shared / "data" / "squad-v2-dev-half.json")
    dotted = [qid for qid, golds in zip(table["id"], table["answer_texts"])
              if golds and any(g.strip() == "." for g in golds)]
    assert dotted, "the real data has a gold of '.' (e.g. 'What did the loss mean to France?')"
    rng = np.random.default_rng(0)
    choice = rng.integers(0, 3, size=len(table))
    answers = [("" if c == 0 else "." if c == 1 or not golds else golds[-1])
               for c, golds in zip(choice, table["answer_texts"])]
    answers = ["" if qid in dotted else a for qid, a in zip(table["id"], answers)]  # abstain where "." could match
    run = table.assign(answer=answers, na_prob=0.5)
    summary = gold_audit(run).summary["value"]
    official = squad_v2_scores(gold_answers(table), dict(zip(table["id"], answers)))
    assert summary["EM against any gold (official, %)"] == pytest.approx(official["HasAns_exact"])
    assert summary["F1 against any gold (official, %)"] == pytest.approx(official["HasAns_f1"])


def test_a_side_tree_never_splits_on_the_side_and_its_intervals_are_never_degenerate():
    from scipy.stats import binomtest

    # every "why" question wrong, on both sides: fitted on one side, the rule is found without answerability
    table = synthetic_run(error=lambda r: r.kind == "why")
    tree = error_tree(table, side="answerable")
    assert tree.side == "answerable" and len(tree.table) == table["has_answer"].sum()
    assert not tree.leaves["rule"].str.contains("answerable").any()
    worst = tree.leaves.iloc[0]
    assert "why" in worst["rule"] and worst["error_rate"] == 100.0
    fitted = tree.table[(tree.leaf_of.to_numpy() == worst["leaf"]) & context_halves(tree.table)]
    wilson = binomtest(len(fitted), len(fitted)).proportion_ci(method="wilson")
    assert worst["low"] == pytest.approx(100 * wilson.low) and worst["low"] < 100.0 == worst["high"]
    with pytest.raises(ValueError, match="unknown side"):
        error_tree(table, side="both")
    # the sentence says whose errors a leaf's share is of: the side's, which the tree's shares sum to
    from xdanalysis.views.findings import tree_finding

    assert tree.leaves["share of errors (%)"].sum() == pytest.approx(100)
    said = str(tree_finding(tree))
    assert "of the answerable questions' errors)" in said and "of all errors" not in said
    assert "of all errors)" in str(tree_finding(error_tree(table)))
