"""SQuAD2-CR: causes and rationales read, aligned, joined to runs, scored against explanations, deleted."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import needs_shared, shared_path

from xdanalysis.analysis.causes import NOT_ANNOTATED, cause_summary, deletion_flips, with_causes
from xdanalysis.analysis.error_tree import error_features
from xdanalysis.analysis.probes.rewrites import apply_probe, delete_spans, probe_skips
from xdanalysis.analysis.rationales import (against_random, iou_f1, plausibility_summary, rationale_agreement,
                                           top_k_words)
from xdanalysis.analysis.slices import applicable_slices, slice_table, slice_values
from xdanalysis.core.data import COLUMNS, DataError, load_squad
from xdanalysis.core.stats import wilson_interval
from xdanalysis.core.unanswerable import (align_words, load_rationales, load_unanswerable_causes, rationale_skips,
                                          word_spans)
from xdanalysis.interpret.plausibility import explain_rationales, tokens_to_words


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# Reading the files ------------------------------------------------------------------------------------

def test_causes_are_read_in_words_and_bad_rows_are_named(tmp_path):
    good = write(tmp_path / "c.tsv", "qid\treason\na\tE\nb\t#\nc\tN\nd\tA\ne\tX\nf\tI\n")
    causes = load_unanswerable_causes(good)
    assert causes["cause"].astype(str).tolist() == ["entity swap", "number swap", "negation", "antonym",
                                                    "mutual exclusion", "no information"]
    with pytest.raises(DataError, match=r"bad.tsv, line 3: unknown cause 'Q' for question b"):
        load_unanswerable_causes(write(tmp_path / "bad.tsv", "qid\treason\na\tE\nb\tQ\n"))
    with pytest.raises(DataError, match=r"line 3: question a has a cause already \(line 2\)"):
        load_unanswerable_causes(write(tmp_path / "twice.tsv", "qid\treason\na\tE\na\tN\n"))
    with pytest.raises(DataError, match=r"header lacks column\(s\) \['reason'\]"):
        load_unanswerable_causes(write(tmp_path / "header.tsv", "qid\tcause\na\tE\n"))
    with pytest.raises(DataError, match=r"line 2: empty reason"):
        load_unanswerable_causes(write(tmp_path / "empty.tsv", "qid\treason\na\t\n"))
    with pytest.raises(FileNotFoundError, match="squad2-cr"):
        load_unanswerable_causes(tmp_path / "missing.tsv")


def test_uneven_rationales_are_left_out_with_a_warning_and_listed(tmp_path):
    text = ("qid\tquestion\tword_att\n"
            "a\tWhat royalty has n't attended Yale ?\t0,0,0,1,0,0,0\n"
            "b\tWhen did OPEC   issue a joint communique ?\t1\n"  # the file's own kind of damage
            '"c"\t"Who wrote "" On Complexity "" ?"\t1,1,0,0,0,0,0\n')
    path = write(tmp_path / "r.tsv", text)
    with pytest.warns(UserWarning, match=r"1 row\(s\) left out.*b \(line 3: 8 words, 1 labels\)"):
        rationales = load_rationales(path)
    assert rationales["id"].tolist() == ["a", "c"]
    assert rationales.iloc[1]["words"] == ["Who", "wrote", '"', "On", "Complexity", '"', "?"]  # CSV quotes undone
    assert rationale_skips(path)[["id", "line", "words", "labels"]].values.tolist() == [["b", 3, 8, 1]]
    with pytest.raises(DataError, match=r"line 2: word_att holds '2'"):
        load_rationales(write(tmp_path / "bad.tsv", "qid\tquestion\tword_att\na\tWhy ?\t2,0\n"))


@pytest.mark.parametrize("question, words, expected", [
    ("What royalty hasn't attended Yale?", ["What", "royalty", "has", "n't", "attended", "Yale", "?"],
     ["What", "royalty", "has", "n't", "attended", "Yale", "?"]),
    ("Who named it in the 1000's and 1100's", ["Who", "named", "it", "in", "the", "1000", "'s", "and", "1100", "'s"],
     ["Who", "named", "it", "in", "the", "1000", "'s", "and", "1100", "'s"]),
    ("What is a  jelly-like layer?", ["What", "is", "a", "jelly", "-", "like", "layer", "?"],
     ["What", "is", "a", "jelly", "-", "like", "layer", "?"]),
    ("How many of the 3,468 students?", ["How", "many", "of", "the", "3,468", "students", "?"],
     ["How", "many", "of", "the", "3,468", "students", "?"]),
    ("What does villes de sûreté mean in Microsoft’s use?",
     ["What", "does", "villes", "de", "sûreté", "mean", "in", "Microsoft", "’s", "use", "?"],
     ["What", "does", "villes", "de", "sûreté", "mean", "in", "Microsoft", "’s", "use", "?"]),
    ('Who wrote "On Complexity"?', ["Who", "wrote", "``", "On", "Complexity", "''", "?"],
     ["Who", "wrote", '"', "On", "Complexity", '"', "?"]),
    ("Why (if ever)?", ["Why", "-LRB-", "if", "ever", "-RRB-", "?"], ["Why", "(", "if", "ever", ")", "?"]),
])
def test_ptb_words_align_exactly_to_the_question(question, words, expected):
    spans = align_words(question, words)
    assert [question[s:e] for s, e in spans] == expected
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # in order, never overlapping


def test_a_word_that_is_not_next_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"word 'Harvard' is not next"):
        align_words("What royalty attended Yale?", ["What", "royalty", "attended", "Harvard", "?"])
    with pytest.raises(ValueError, match=r"word 'royalty' is not next"):  # skipping text is not aligning
        align_words("Yale: what royalty attended?", ["Yale", "royalty"])


def test_token_scores_are_shared_onto_words_by_characters(tiny):
    _, tokenizer = tiny
    question = "What royalty hasn't attended Yale?"
    words = ["What", "royalty", "has", "n't", "attended", "Yale", "?"]
    encoded = tokenizer(question, return_offsets_mapping=True, add_special_tokens=False)
    offsets = np.array(encoded["offset_mapping"])
    scores = np.arange(1, len(offsets) + 1, dtype=float)
    spans = align_words(question, words)
    per_word = tokens_to_words(offsets, ["question"] * len(offsets), scores, spans)
    assert per_word.sum() == pytest.approx(sum(s for (a, b), s in zip(offsets, scores) if b > a and
                                               any(a < e and s_ < b for s_, e in spans)))
    by_hand = np.zeros(len(words))  # each token's score split by the characters it shares with each word
    for (a, b), score in zip(offsets, scores):
        for i, (s, e) in enumerate(spans):
            by_hand[i] += score * max(0, min(b, e) - max(a, s)) / (b - a)
    np.testing.assert_allclose(per_word, by_hand)
    assert (per_word > 0).all()  # every word, 'n't' included, gets a share of some token
    context = tokens_to_words(offsets, ["context"] * len(offsets), scores, spans)
    assert (context == 0).all()  # context tokens never count toward question words


# The ERASER measures ------------------------------------------------------------------------------------

def test_agreement_measures_by_hand_and_against_scikit_learn():
    from sklearn.metrics import average_precision_score

    rationales = pd.DataFrame({"id": ["q"], "words": [["a", "b", "c", "d"]], "labels": [[1, 0, 1, 0]]})
    scores = pd.DataFrame({"id": ["q"], "words": [["a", "b", "c", "d"]], "scores": [[0.9, 0.8, 0.7, 0.1]]})
    row = rationale_agreement(scores, rationales).iloc[0]
    assert row["auprc"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # precision at each rationale word, averaged
    assert row["token_f1"] == pytest.approx(0.5)  # top 2 = a, b: one of the two rationale words
    # top 2 as a span a-b against the rationale spans a and c: IOU 1/2 with a, a match; P 1/1, R 1/2
    assert row["iou_f1"] == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = (rng.random(12) < 0.3).astype(int)
        labels[0] = 1
        values = rng.normal(size=12)
        got = rationale_agreement(pd.DataFrame({"id": ["x"], "words": [list("abcdefghijkl")], "scores": [values]}),
                                  pd.DataFrame({"id": ["x"], "words": [list("abcdefghijkl")], "labels": [labels]}))
        assert got["auprc"].iloc[0] == pytest.approx(average_precision_score(labels, values))


def test_iou_f1_matches_spans_at_half_overlap():
    assert iou_f1([1, 1, 0, 0, 1], [1, 1, 1, 0, 0]) == pytest.approx(2 / 3)  # (0,2) matches (0,3): IOU 2/3
    assert iou_f1([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(1.0)  # IOU 1/2: a match at exactly 0.5
    assert iou_f1([1, 1, 1, 0], [1, 0, 0, 0]) == 0.0  # IOU 1/3
    assert iou_f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # one of two rationale spans
    assert top_k_words([3, 1, 3, 2], 2).tolist() == [1, 0, 1, 0]


def test_a_perfect_explanation_scores_one_and_a_random_one_the_base_rate():
    rng = np.random.default_rng(1)
    words, labels, ids = [], [], []
    for i in range(300):  # long questions: a random ranking's AUPRC tends to the base rate as words grow
        mask = np.zeros(200, dtype=int)
        mask[rng.choice(200, size=40, replace=False)] = 1
        ids.append(f"q{i}"), words.append([f"w{j}" for j in range(200)]), labels.append(mask)
    rationales = pd.DataFrame({"id": ids, "words": words, "labels": labels})
    perfect = pd.DataFrame({"id": ids, "words": words, "scores": [m + 0.0 for m in labels], "method": "perfect"})
    chance = pd.DataFrame({"id": ids, "words": words, "scores": [rng.random(200) for _ in ids], "method": "random"})
    agreement = rationale_agreement(pd.concat([perfect, chance], ignore_index=True), rationales)
    best = agreement[agreement["method"] == "perfect"]
    assert (best["auprc"] == 1).all() and (best["token_f1"] == 1).all() and (best["iou_f1"] == 1).all()
    random = agreement[agreement["method"] == "random"]
    assert random["auprc"].mean() == pytest.approx(0.2, abs=0.03)  # base rate 40/200
    assert random["token_f1"].mean() == pytest.approx(0.2, abs=0.03)  # expected overlap k·k/n over k
    summary = plausibility_summary(agreement, n_boot=200)
    assert summary["method"].tolist() == ["perfect", "random"]
    assert summary.set_index("method").loc["random", "base rate (%)"] == pytest.approx(20.0)
    compared = against_random(agreement, n_boot=200).iloc[0]
    assert compared["method"] == "perfect" and compared["low"] > 50  # far above chance, and said so by its interval


def test_scores_for_other_words_are_refused_and_unmarked_questions_left_out():
    rationales = pd.DataFrame({"id": ["a", "b"], "words": [["x", "y"], ["u", "v"]], "labels": [[1, 0], [0, 0]]})
    with pytest.raises(ValueError, match="question a: the scored words"):
        rationale_agreement(pd.DataFrame({"id": ["a"], "words": [["x", "z"]], "scores": [[1, 0]]}), rationales)
    kept = rationale_agreement(pd.DataFrame({"id": ["a", "b", "zz"], "words": [["x", "y"], ["u", "v"], ["q"]],
                                             "scores": [[1, 0], [1, 0], [1]]}), rationales)
    assert kept["id"].tolist() == ["a"]  # b marks no word; zz has no rationale


# Causes on a run --------------------------------------------------------------------------------------

def hand_run() -> pd.DataFrame:
    rows = []
    specs = [("u1", "", 2.0), ("u2", "Rollo", -1.0), ("u3", "", 0.5), ("u4", "", 3.0), ("u5", "Paris", -0.2),
             ("a1", "France", -2.0)]
    for qid, answer, odds in specs:
        answerable = qid.startswith("a")
        rows.append({"id": qid, "title": "T", "context": "France Rollo Paris.", "question": f"Question {qid}?",
                     "answer_texts": ["France"] if answerable else [], "answer_starts": [0] if answerable else [],
                     "is_impossible": not answerable, "plausible_texts": [], "plausible_starts": [],
                     "has_answer": answerable, "answer": answer, "best_span_text": answer or "France",
                     "answer_start": 0 if answer else -1, "answer_end": len(answer),
                     "null_odds": odds, "exact": float((answer == "France") if answerable else answer == ""),
                     "f1": float((answer == "France") if answerable else answer == "")})
    return pd.DataFrame(rows)


CAUSES = pd.DataFrame({"id": ["u1", "u2", "u3", "u5", "zz"],
                       "cause": ["negation", "negation", "antonym", "antonym", "negation"]})


def test_causes_join_by_id_and_slice_like_any_other():
    table = with_causes(hand_run(), CAUSES)
    assert table.set_index("id")["cause"].astype(object).where(lambda c: c.notna(), None).to_dict() == {
        "u1": "negation", "u2": "negation", "u3": "antonym", "u4": NOT_ANNOTATED, "u5": "antonym", "a1": None}
    assert "unanswerable cause" in applicable_slices(table)
    assert "unanswerable cause" not in applicable_slices(hand_run())
    sliced = slice_table(table, "unanswerable cause", n_boot=50).set_index("bucket")
    assert sliced.loc["negation", "count"] == 2 and sliced.loc["negation", "correct_abstention"] == 1
    assert sliced.loc["antonym", "false_answer"] == 1
    with pytest.raises(ValueError, match="with_causes"):
        slice_values(hand_run(), "unanswerable cause")


def test_a_run_with_causes_in_the_tree_the_explorer_the_report_and_the_cli(tiny_model_dir, squad_file, tmp_path,
                                                                          capsys):
    from xdanalysis.apps.cli import main
    from xdanalysis.apps.widgets import ErrorExplorer
    from xdanalysis.core.settings import Execution, WindowSettings
    from xdanalysis.runs.run import predict_run

    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", windowing=WindowSettings(64, 16),
                      execution=Execution(progress=False))
    causes = write(tmp_path / "causes.tsv", "qid\treason\nn4\tN\np3\tE\nzz\tA\n")
    table = with_causes(run, causes)
    features = error_features(table).set_index(table["id"])
    assert features.loc["n4", "unanswerable cause = negation"] == 1.0
    assert features.loc["p3", "unanswerable cause = negation"] == 0.0
    assert math.isnan(features.loc["n1", "unanswerable cause = negation"])  # answerable: no cause applies
    explorer = ErrorExplorer(run, n_boot=50, causes=causes)
    assert explorer.slice.value == "unanswerable cause" and "unanswerable cause" not in ErrorExplorer(
        run, n_boot=50).slice.options
    explorer.bucket.value = "negation"
    explorer.outcome.value = "(all)"
    assert explorer.matching["id"].tolist() == ["n4"]
    page = tmp_path / "report.html"
    assert main(["report", str(run.path), "--out", str(page), "--n-boot", "50", "--causes", str(causes)]) == 0
    text = page.read_text()
    assert "id='why-unanswerable'" in text and "<h3>unanswerable cause</h3>" in text
    assert "negation" in text and "entity swap" in text
    from xdanalysis.analysis.compare import compare
    from xdanalysis.core.settings import DecodingSettings

    abstaining = predict_run(tiny_model_dir, squad_file, tmp_path / "abstains", windowing=WindowSettings(64, 16),
                             decoding=DecodingSettings(null_score_diff_threshold=-1e9),
                             execution=Execution(progress=False))
    with pytest.warns(UserWarning, match="decoded with different settings"):
        by_cause = compare(run, abstaining, causes=causes).slice_differences("unanswerable cause", metric="exact")
    negation = by_cause.set_index("bucket").loc["negation"]
    before = float(table.set_index("id").loc["n4", "exact"])
    assert negation["count"] == 1 and negation["difference"] == pytest.approx(100 * (1.0 - before))
    capsys.readouterr()
    assert main(["report", str(run.path), "--out", str(page), "--causes",
                 str(write(tmp_path / "other.tsv", "qid\treason\nzz\tN\n"))]) != 0
    assert "0 of the 3 unanswerable questions" in capsys.readouterr().err


def test_cause_summary_counts_by_hand_with_wilson_intervals():
    summary = cause_summary(with_causes(hand_run(), CAUSES), threshold=0.0).set_index("cause")
    negation = summary.loc["negation"]
    assert (negation["questions"], negation["correct abstentions"], negation["false answers"]) == (2, 1, 1)
    low, high = wilson_interval(1, 2)
    assert (negation["low (%)"], negation["high (%)"]) == pytest.approx((100 * low, 100 * high))
    assert negation["margin median"] == pytest.approx((2.0 - 1.0) / 2)  # null odds 2.0 and -1.0
    assert summary.loc[NOT_ANNOTATED, "questions"] == 1 and "number swap" not in summary.index
    assert math.isnan(negation["plausible traps"])  # no plausible answers in the data: no count, not 0


def test_a_run_over_other_ids_joins_nothing_and_says_why():
    other = pd.DataFrame({"id": ["5ad39d53604f3c001a3fe8d1"], "cause": ["negation"]})
    with pytest.raises(ValueError, match=r"0 of the 5 unanswerable questions.*official SQuAD 2.0 dev ids"):
        with_causes(hand_run(), other)


# The deletion probe ---------------------------------------------------------------------------------

def probe_table():
    question = "What royalty hasn't attended Yale?"
    row = {"id": "u1", "title": "T", "context": "Kings attended Yale. Queens did too.", "question": question,
           "answer_texts": [], "answer_starts": [], "is_impossible": True, "plausible_texts": [],
           "plausible_starts": []}
    answerable = {**row, "id": "a1", "question": "Who attended Yale?", "answer_texts": ["Kings"], "answer_starts": [0],
                  "is_impossible": False}
    return pd.DataFrame([row, answerable], columns=COLUMNS)


RATIONALES = pd.DataFrame({"id": ["u1"], "words": [["What", "royalty", "has", "n't", "attended", "Yale", "?"]],
                           "labels": [[0, 0, 0, 1, 0, 0, 0]]})


def test_deleting_the_rationale_and_as_many_random_words():
    deleted = apply_probe(probe_table(), "delete_rationale", rationales=RATIONALES)
    assert deleted["question"].tolist() == ["What royalty has attended Yale?"]
    assert deleted["expect"].tolist() == ["any_answer"] and deleted["source_id"].tolist() == ["u1"]
    randoms = {apply_probe(probe_table(), "delete_random_words", rationales=RATIONALES, seed=s)["question"].iloc[0]
               for s in range(12)}
    words = "What royalty hasn't attended Yale?".replace("?", " ?").split()
    assert all(len(q.replace("?", " ?").split()) == len(words) - 1 for q in randoms if "hasn't" in q)
    assert len(randoms) > 2  # seeds draw different words
    again = apply_probe(probe_table(), "delete_random_words", rationales=RATIONALES, seed=3)
    assert again["question"].iloc[0] == apply_probe(probe_table(), "delete_random_words", rationales=RATIONALES,
                                                    seed=3)["question"].iloc[0]
    assert probe_skips(probe_table(), "delete_rationale", rationales=RATIONALES) == {"answerable question": 1}
    assert probe_skips(probe_table(), "delete_rationale") == {"no rationales given (rationales=)": 1,
                                                              "answerable question": 1}
    assert delete_spans("Did the Normans not come?", [(16, 19)]) == "Did the Normans come?"


def test_deletion_flips_by_hand():
    rows = []
    # q1..q4 abstained before; the rationale deletion makes q1, q2, q3 answer, the random one only q1
    for qid, before, rationale, random in [("q1", "", "A", "A"), ("q2", "", "B", ""), ("q3", "", "C", ""),
                                           ("q4", "", "", ""), ("q5", "X", "Y", "Z")]:
        for probe, after in (("delete_rationale", rationale), ("delete_random_words", random)):
            rows.append({"probe": probe, "id": f"{qid}~{probe}", "source_id": qid, "original_answer": before,
                         "probed_answer": after})
    flips = deletion_flips(pd.DataFrame(rows), pd.DataFrame({"id": ["q1", "q2"], "cause": ["negation", "antonym"]}),
                           n_boot=200).set_index("cause")
    everything = flips.loc["all"]
    assert everything["abstained before"] == 4  # q5 answered before: not a flip to count
    assert everything["rationale deleted: answers"] == 3 and everything["random words deleted: answers"] == 1
    assert everything["difference (points)"] == pytest.approx(50.0)
    assert flips.loc["negation", "rationale deleted (%)"] == 100.0 and flips.loc[NOT_ANNOTATED, "abstained before"] == 2
    with pytest.raises(ValueError, match="delete_rationale,delete_random_words"):
        deletion_flips(pd.DataFrame(rows[:1]), CAUSES)


# Explanations from a model --------------------------------------------------------------------------

def test_explanations_give_one_score_per_rationale_word(tiny):
    model, tokenizer = tiny
    questions = probe_table()
    scores = explain_rationales(model, tokenizer, questions, RATIONALES, methods=["gradient_x_input", "attention",
                                                                                  "random"], progress=False)
    assert scores["method"].tolist() == ["gradient_x_input", "attention", "random"]
    assert all(len(s) == 7 for s in scores["scores"])
    attention = np.array(scores.set_index("method").loc["attention", "scores"])
    assert (attention >= 0).all() and attention.sum() <= 1 + 1e-6  # a share of [CLS]'s attention
    again = explain_rationales(model, tokenizer, questions, RATIONALES, methods=["random"], progress=False)
    assert again["scores"].iloc[0] == scores.set_index("method").loc["random", "scores"]  # seeded per question
    agreement = rationale_agreement(scores, RATIONALES)
    assert agreement["method"].tolist() == ["gradient_x_input", "attention", "random"]
    with pytest.raises(ValueError, match=r"unknown method.*'attention', 'random'"):
        explain_rationales(model, tokenizer, questions, RATIONALES, methods=["saliency"], progress=False)


# The real annotations ---------------------------------------------------------------------------------

@needs_shared
def test_the_real_annotations_read_align_and_join_the_complete_dev_set():
    folder = shared_path() / "data" / "squad2-cr"
    causes = load_unanswerable_causes(folder / "causes-dev.tsv")
    assert len(causes) == 3106
    assert causes["cause"].value_counts().to_dict() == {"entity swap": 1122, "antonym": 593, "negation": 506,
                                                        "no information": 375, "mutual exclusion": 256,
                                                        "number swap": 254}
    with pytest.warns(UserWarning, match="15 row"):
        rationales = load_rationales(folder / "rationales-dev.tsv")
    assert len(rationales) == 3695 - 15 and len(rationale_skips(folder / "rationales-dev.tsv")) == 15
    dev = load_squad(shared_path() / "data" / "squad-v2-dev.json")
    aligned = word_spans(dev, rationales)  # every word of every rationale found in its question
    assert len(aligned) == len(rationales)
    unanswerable = set(dev.loc[dev["is_impossible"], "id"])
    assert set(causes["id"]) <= unanswerable and set(rationales["id"]) <= unanswerable
    half = load_squad(shared_path() / "data" / "squad-v2-dev-half.json")
    half["has_answer"] = ~half["is_impossible"]
    with pytest.raises(ValueError, match=r"0 of the \d+ unanswerable questions.*re-hashed"):
        with_causes(half, causes)
