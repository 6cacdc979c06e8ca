"""Robustness probes on hand-written paragraphs with known sentences, and the probe command end to end."""

import json
from collections import Counter

import pandas as pd
import pytest

from xdanalysis.analysis.probes.rewrites import (PROBES, RATIONALE_PROBES, apply_probe, expectation_met, probe_names,
                                                 probe_skips)
from xdanalysis.labs.probes import load_probes
from xdanalysis.analysis.probes.summary import probe_examples, probe_summary, probe_transitions
from xdanalysis.core.data import COLUMNS, load_squad, write_squad
from xdanalysis.core.metrics import normalize_answer
from xdanalysis.core.settings import WindowSettings
from xdanalysis.core.text import sentence_spans
from xdanalysis.core import Execution

TOWER = ("The Eiffel Tower is in Paris. It was finished in 1889 for the fair. Gustave Eiffel's company built it. "
         "Many visitors climb it every year.")
ROME = "Rome is the capital of Italy. The Colosseum was finished in 80 AD. It held many people."


def question(qid, text, context, golds=(), plausible=(), title="Tower"):
    return {"id": qid, "title": title, "context": context, "question": text,
            "answer_texts": list(golds), "answer_starts": [context.index(g) for g in golds],
            "is_impossible": not golds, "plausible_texts": list(plausible),
            "plausible_starts": [context.index(p) for p in plausible]}


def hand_table():
    return pd.DataFrame([
        question("t1", "When was the Eiffel Tower finished?", TOWER, ["1889", "in 1889"]),
        question("t2", "Who built the tower?", TOWER, ["Gustave Eiffel's company"]),
        question("t3", "When was the Louvre finished?", TOWER, plausible=["1889"]),
        question("t4", "Where is the Eiffel Tower?", TOWER, ["Paris"]),
        question("r1", "When was the Colosseum finished?", ROME, ["80 AD"], title="Rome"),
        question("r2", "What is the capital of France?", ROME, plausible=["Rome"], title="Rome"),
    ], columns=COLUMNS)


def probe_row(table, qid):
    return table.set_index("source_id").loc[qid]


def golds_point_at_their_text(table):
    for row in table.itertuples():
        for text, start in zip(row.answer_texts, row.answer_starts):
            assert row.context[start:start + len(text)] == text
        for text, start in zip(row.plausible_texts, row.plausible_starts):
            assert row.context[start:start + len(text)] == text


def test_sentences_come_from_a_real_splitter():
    text = "Dr. Smith moved to the U.S. in 1759. He paid 3.5 dollars!  Why? Nobody knows."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Dr. Smith moved to the U.S. in 1759.", "He paid 3.5 dollars!", "Why?", "Nobody knows."]


def test_remove_answer_sentence():
    probed = apply_probe(hand_table(), "remove_answer_sentence")
    t1 = probe_row(probed, "t1")
    assert probed.set_index("source_id").loc["t1", "id"] == "t1~remove_answer_sentence"
    assert t1["context"] == ("The Eiffel Tower is in Paris. Gustave Eiffel's company built it. "
                             "Many visitors climb it every year.")
    assert t1["expect"] == "abstain" and t1["answer_texts"] == [] and t1["is_impossible"]
    assert "1889" not in t1["context"]
    # unanswerable questions are not probed, and say so
    assert probe_skips(hand_table(), "remove_answer_sentence") == {"unanswerable question": 2}
    assert sorted(probed["source_id"]) == ["r1", "t1", "t2", "t4"]


def test_remove_answer_sentence_skips_when_the_gold_text_appears_elsewhere():
    context = "Paris is big. The capital is Paris. It is old."
    table = pd.DataFrame([question("q", "What is the capital?", context, ["Paris"])], columns=COLUMNS)
    table.loc[0, "answer_starts"] = [context.index("Paris", 1)]
    probed = apply_probe(table, "remove_answer_sentence")
    assert probed.empty
    assert probe_skips(table, "remove_answer_sentence") == {"a gold answer text appears elsewhere in the context": 1}


def test_answer_sentence_only_and_moves_remap_the_gold_exactly():
    table = hand_table()
    only = probe_row(apply_probe(table, "answer_sentence_only"), "t1")
    assert only["context"] == "It was finished in 1889 for the fair."
    assert only["answer_starts"] == [only["context"].index("1889"), only["context"].index("in 1889")]
    start = probe_row(apply_probe(table, "move_answer_sentence_start"), "t2")
    assert start["context"].startswith("Gustave Eiffel's company built it. The Eiffel Tower is in Paris.")
    end = apply_probe(table, "move_answer_sentence_end")
    assert probe_row(end, "t1")["context"].endswith("every year. It was finished in 1889 for the fair.")
    # t4's sentence is first already: skipped for _start, moved for _end
    assert "t4" not in set(apply_probe(table, "move_answer_sentence_start")["source_id"])
    assert probe_row(end, "t4")["context"].endswith("The Eiffel Tower is in Paris.")
    for name in PROBES:
        golds_point_at_their_text(apply_probe(table, name))


def test_an_answer_across_two_sentences_moves_as_one():
    context = "It rained. The war ended in 1763. Peace followed in Paris. Then it was calm."
    table = pd.DataFrame([question("q", "What happened?", context, ["1763. Peace"])], columns=COLUMNS)
    moved = apply_probe(table, "move_answer_sentence_end").iloc[0]
    assert moved["context"] == "It rained. Then it was calm. The war ended in 1763. Peace followed in Paris."
    golds_point_at_their_text(apply_probe(table, "move_answer_sentence_end"))


def test_shuffle_is_seeded_per_question_and_keeps_the_answer_sentence_in_place():
    long = " ".join(f"Sentence number {i} is here." for i in range(8)) + " The answer is 42."
    table = pd.DataFrame([question(f"q{i}", "What is the answer?", long, ["42"]) for i in range(5)], columns=COLUMNS)
    first = apply_probe(table, "shuffle_sentences", seed=0)
    again = apply_probe(table.iloc[::-1].reset_index(drop=True), "shuffle_sentences", seed=0)  # other order
    assert first.set_index("id")["context"].to_dict() == again.set_index("id")["context"].to_dict()
    other = apply_probe(table, "shuffle_sentences", seed=1)
    assert list(first["context"]) != list(other["context"])
    for context in first["context"]:
        assert context != long and context.endswith("The answer is 42.")
        assert Counter(context.replace(".", "").split()) == Counter(long.replace(".", "").split())
    golds_point_at_their_text(first)


def test_added_sentence_comes_from_another_article():
    table = hand_table()
    for where in ("start", "end"):
        probed = apply_probe(table, f"add_irrelevant_sentence_{where}")
        t1 = probe_row(probed, "t1")
        added = t1["context"].replace(TOWER, "").strip()
        assert added in ROME and added  # from Rome, never from the Tower article
        assert t1["context"].startswith(added) if where == "start" else t1["context"].endswith(added)
        assert t1["expect"] == "same_answer" and probe_row(probed, "t3")["expect"] == "abstain"
        golds_point_at_their_text(probed)
    tower = table[table["title"] == "Tower"]
    assert apply_probe(tower, "add_irrelevant_sentence_start").empty
    assert probe_skips(tower, "add_irrelevant_sentence_start") == {
        "no other article in the data to take a sentence from": 4}


def test_question_typo_swaps_two_adjacent_letters_of_a_content_word():
    table = hand_table()
    probed = apply_probe(table, "question_typo", seed=5)
    for row in probed.itertuples():
        original = table.set_index("id").loc[row.source_id, "question"]
        changed = [i for i, (a, b) in enumerate(zip(original, row.question)) if a != b]
        assert len(changed) == 2 and changed[1] == changed[0] + 1
        assert original[changed[0]] == row.question[changed[1]] and original[changed[1]] == row.question[changed[0]]
        word = next(w for w in original.split() if original.index(w) <= changed[0] < original.index(w) + len(w))
        assert len(word.strip("?")) >= 4 and word.lower() not in {"what", "when", "where", "which"}
        assert changed[0] > original.index(word)  # the first letter stays
    assert list(probed["question"]) == list(apply_probe(table, "question_typo", seed=5)["question"])


def test_question_lowercase_skips_what_is_lowercase_already():
    table = hand_table()
    table.loc[1, "question"] = "who built the tower?"
    probed = apply_probe(table, "question_lowercase")
    assert probe_skips(table, "question_lowercase") == {"the question is lowercase already": 1}
    assert probe_row(probed, "t1")["question"] == "when was the eiffel tower finished?"


def test_swap_answer_replaces_every_occurrence_and_moves_the_gold():
    context = "It was finished in 1889. In 1889 the fair opened."
    table = pd.DataFrame([
        question("q", "When was it finished?", context, ["1889", "in 1889"]),
        question("o", "When was the Colosseum finished?", ROME, ["80 AD"], title="Rome"),
        question("n", "When did the war end?", ROME, ["Italy"], title="Other"),  # not a number: never picked
    ], columns=COLUMNS)
    probed = probe_row(apply_probe(table, "swap_answer"), "q")
    assert probed["context"] == "It was finished in 80 AD. In 80 AD the fair opened."
    assert probed["answer_texts"] == ["80 AD", "in 80 AD"]
    assert probed["answer_starts"] == [19, 16]
    assert probed["expect"] == "answer"
    # an answer from the same article (another paragraph) is preferred to another article's
    bridge = "The bridge opened in 1901 after a long wait."
    table = pd.concat([table, pd.DataFrame([question("b", "When did the bridge open?", bridge, ["1901"])],
                                           columns=COLUMNS)], ignore_index=True)
    swapped = probe_row(apply_probe(table, "swap_answer"), "q")
    assert swapped["context"] == "It was finished in 1901. In 1901 the fair opened."


def test_remove_plausible_sentence():
    probed = apply_probe(hand_table(), "remove_plausible_sentence")
    t3 = probe_row(probed, "t3")
    assert "1889" not in t3["context"] and t3["plausible_texts"] == [] and t3["expect"] == "abstain"
    assert probe_skips(hand_table(), "remove_plausible_sentence") == {"answerable question": 4}


def test_every_probe_writes_a_file_load_squad_reads_back(tmp_path):
    from conftest import squad_payload

    source = tmp_path / "s.json"
    source.write_text(json.dumps(squad_payload()))
    table = load_squad(source)
    for name in PROBES:
        probed = apply_probe(table, name)
        assert sum(probe_skips(table, name).values()) + len(probed) == len(table)
        if probed.empty:
            continue
        back = load_squad(write_squad(probed, tmp_path / f"{name}.json"))
        merged = back.set_index("id").loc[probed["id"]]
        for column in ["context", "question", "answer_texts", "answer_starts", "plausible_texts"]:
            assert [list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v for v in merged[column]] \
                == [list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v for v in probed[column]]


def test_unknown_probe_names_are_refused():
    with pytest.raises(ValueError, match="unknown probe"):
        apply_probe(hand_table(), "remove_everything")
    with pytest.raises(ValueError, match="remove_everything"):
        probe_names("question_typo,remove_everything")
    assert probe_names("all") == [n for n in PROBES if n not in RATIONALE_PROBES]
    assert probe_names("all", rationales=True) == list(PROBES)
    with pytest.raises(ValueError, match="rationales"):
        probe_names("delete_rationale")


@pytest.mark.parametrize("expect, original, probed, exact, met", [
    ("abstain", "Rollo", "", 0, True), ("abstain", "", "Rollo", 0, False),
    ("same_answer", "the Normans", "Normans", 0, True), ("same_answer", "", "", 1, True),
    ("same_answer", "Rollo", "", 0, False), ("answer", "1889", "80 AD", 1, True), ("answer", "1889", "1889", 0, False),
])
def test_expectations(expect, original, probed, exact, met):
    assert expectation_met(expect, original, probed, exact) is met


@pytest.mark.slow
def test_probe_command_end_to_end(tiny_model_dir, squad_file, tmp_path, capsys, monkeypatch):
    from xdanalysis.apps.cli import main

    out = tmp_path / "probes"
    args = ["probe", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out),
            "--max-seq-length", "64", "--doc-stride", "16", "--probes",
            "remove_answer_sentence,question_typo,add_irrelevant_sentence_end,remove_plausible_sentence", "--report"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "remove_answer_sentence" in printed and (out / "probes.parquet").exists()
    probes = load_probes(out)
    results = probes.table
    assert set(results["probe"]) == {"remove_answer_sentence", "question_typo", "add_irrelevant_sentence_end",
                                     "remove_plausible_sentence"}
    # every row against the runs themselves, independently of probe_results
    original = pd.read_parquet(out / "original" / "examples.parquet").set_index("id")
    for name, part in results.groupby("probe"):
        run = pd.read_parquet(out / name / "run" / "examples.parquet").set_index("id")
        assert sorted(run.index) == sorted(part["id"])
        for row in part.itertuples():
            probed_answer, original_answer = run.loc[row.id, "answer"], original.loc[row.source_id, "answer"]
            assert row.probed_answer == probed_answer and row.original_answer == original_answer
            same = normalize_answer(probed_answer) == normalize_answer(original_answer) and \
                (probed_answer == "") == (original_answer == "")
            expected = {"abstain": probed_answer == "", "answer": run.loc[row.id, "exact"] == 1,
                        "same_answer": same}[row.expect]
            assert row.met == expected
    summary = probe_summary(probes, n_boot=200).set_index("probe")
    for name, part in results.groupby("probe"):
        assert summary.loc[name, "consistency"] == pytest.approx(100 * part["met"].mean())
        assert summary.loc[name, "low"] <= summary.loc[name, "consistency"] <= summary.loc[name, "high"]
        assert probe_transitions(results)[name].values.sum() == len(part)
    record = json.loads((out / "probes.json").read_text())
    assert record["probes"]["remove_answer_sentence"]["skipped"] == {"unanswerable question": 3}
    assert summary.loc["remove_answer_sentence", "skipped"] == 3
    page = (out / "original" / "report.html").read_text()
    assert "id='robustness-probes'" in page and "id='selective-qa'" in page
    assert len(probe_examples(results, probe="question_typo", met=True)) + \
        len(probe_examples(results, probe="question_typo", met=False)) == summary.loc["question_typo", "n"]

    # Again: every run is reused, and the model is never loaded.
    import xdanalysis.model.loading as inference

    def refuse(*_, **__):
        raise AssertionError("the model was loaded although every run was finished")

    monkeypatch.setattr(inference, "load_qa_model", refuse)
    assert main(args[:-1]) == 0
    assert load_probes(out).table["met"].tolist() == results["met"].tolist()


def test_a_later_subset_of_probes_keeps_the_earlier_results(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.labs.probes import run_probes

    options = {"execution": Execution(progress=False), "windowing": WindowSettings(64, 16)}
    out = tmp_path / "p"
    first = run_probes(str(tiny_model_dir), squad_file, out, probes="question_typo,question_lowercase", **options).table
    again = run_probes(str(tiny_model_dir), squad_file, out, probes="remove_answer_sentence", **options).table
    assert set(again["probe"]) == {"question_typo", "question_lowercase", "remove_answer_sentence"}
    assert set(load_probes(out).record["probes"]) == set(again["probe"])
    kept = again[again["probe"] != "remove_answer_sentence"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first.reset_index(drop=True))
    # another seed is another experiment: refused in the same place, and replaces it with overwrite
    from xdanalysis.runs.store import RunMismatchError

    with pytest.raises(RunMismatchError, match="overwrite"):
        run_probes(str(tiny_model_dir), squad_file, out, probes="question_typo", seed=3, **options)
    other = run_probes(str(tiny_model_dir), squad_file, out, probes="question_typo", seed=3, overwrite=True,
                       **options).table
    assert set(other["probe"]) == {"question_typo"}


def test_probe_pairs_keep_the_questions_the_run_answered_with_both_contexts():
    from xdanalysis.analysis.probes import probe_pairs

    table = hand_table().assign(answer=["1889", "", "", "Paris", "80 AD", ""])
    pairs = probe_pairs(table, probe="remove_answer_sentence")
    assert sorted(pairs["source_id"]) == ["r1", "t1", "t4"]  # answered and answerable; t2 abstained
    t1 = pairs.set_index("source_id").loc["t1"]
    assert t1["original_context"] == TOWER and "1889" not in t1["probed_context"]
    assert len(probe_pairs(table, limit=2)) == 2
