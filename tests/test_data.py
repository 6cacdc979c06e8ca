"""Loading and validating SQuAD 2.0 data."""

import json
import time

import pandas as pd
import pytest
from conftest import needs_shared, shared_path, squad_payload

from xdanalysis.core.data import COLUMNS, DataError, HubUnreachableError, gold_answers, load_squad, source_fingerprint


def write(tmp_path, payload, name="data.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_official_json(squad_file):
    table = load_squad(squad_file)
    assert list(table.columns) == COLUMNS
    assert list(table["id"]) == ["n1", "n2", "n3", "n4", "p1", "p2", "p3", "p4"]
    row = table.set_index("id").loc["n4"]
    assert row.is_impossible and row.answer_texts == [] and row.plausible_texts == ["The Normans"]
    assert table.set_index("id").loc["p2", "answer_texts"] == ["1889", "in 1889"]
    assert len(load_squad(squad_file, limit=3)) == 3
    assert gold_answers(table)["p3"] == []


def test_jsonl_and_parquet_with_hub_columns(tmp_path, squad_file):
    table = load_squad(squad_file)
    records = [{"id": r.id, "title": r.title, "context": r.context, "question": r.question,
                "answers": {"text": list(r.answer_texts), "answer_start": list(r.answer_starts)}}
               for r in table.itertuples()]
    jsonl = write(tmp_path, "\n".join(json.dumps(r) for r in records), "d.jsonl")
    pd.DataFrame(records).to_parquet(tmp_path / "d.parquet")
    for path in (jsonl, tmp_path / "d.parquet"):
        loaded = load_squad(path)
        assert list(loaded["id"]) == list(table["id"])
        assert list(loaded["is_impossible"]) == list(table["is_impossible"])
        assert source_fingerprint(loaded) == source_fingerprint(table)


def test_missing_field_is_named(tmp_path):
    payload = squad_payload()
    del payload["data"][1]["paragraphs"][0]["qas"][2]["question"]
    with pytest.raises(DataError, match=r"data\[1\]\.paragraphs\[0\]\.qas\[2\] \(id 'p3'\): missing field 'question'"):
        load_squad(write(tmp_path, payload))


def test_duplicate_ids_are_named(tmp_path):
    payload = squad_payload()
    payload["data"][1]["paragraphs"][0]["qas"][0]["id"] = "n1"
    with pytest.raises(DataError, match=r"1 duplicate question id\(s\): 'n1'"):
        load_squad(write(tmp_path, payload))


def test_misaligned_answer_start_is_named(tmp_path):
    payload = squad_payload()
    payload["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
    path = write(tmp_path, payload)
    with pytest.raises(DataError, match=r"1 question\(s\) have an answer_start .*'n2'"):
        load_squad(path)
    with pytest.warns(UserWarning, match="'n2'"):
        assert len(load_squad(path, strict=False)) == 8


def test_empty_and_broken_files(tmp_path):
    with pytest.raises(DataError, match="the file is empty"):
        load_squad(write(tmp_path, "", "empty.json"))
    with pytest.raises(DataError, match=r"no questions found"):
        load_squad(write(tmp_path, {"version": "v2.0", "data": []}, "none.json"))
    with pytest.raises(DataError, match=r"broken.json: not valid JSON \(line 1"):
        load_squad(write(tmp_path, "{not json", "broken.json"))
    with pytest.raises(DataError, match="top level needs a 'data' list"):
        load_squad(write(tmp_path, [1, 2], "list.json"))
    with pytest.raises(DataError, match="no such file"):
        load_squad(tmp_path / "absent.json")
    with pytest.raises(DataError, match=r"missing column\(s\) \['answers'\]"):
        load_squad(write(tmp_path, json.dumps({"id": "a", "title": "t", "context": "c", "question": "q"}), "x.jsonl"))


def test_unreachable_hub_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(HubUnreachableError, match=r"--data ../shared/data/squad-v2-dev-half.json"):
        load_squad("squad_v2")
    assert time.perf_counter() - started < 5


@needs_shared
def test_real_shared_file():
    table = load_squad(shared_path() / "data" / "squad-v2-dev-half.json")
    assert len(table) == 6078
    assert int(table["is_impossible"].sum()) == 3168
    assert table["title"].nunique() == 16


@pytest.mark.parametrize("where, value, message", [
    (("qas", 1, "answers"), None, r"qas\[1\] \(id 'n2'\): field 'answers' must be a list, got None"),
    (("answer", 1, "answer_start"), None, r"\(id 'n2'\): answers\[0\]: field 'answer_start' must be an integer"),
    (("answer", 1, "text"), 7, r"\(id 'n2'\): answers\[0\]: field 'text' must be a string, got 7"),
    (("qas", 1, "question"), None, r"\(id 'n2'\): field 'question' must be a string, got None"),
    (("qas", 1, "question"), 12, r"\(id 'n2'\): field 'question' must be a string, got 12"),
    (("qas", 1, "id"), 12, r"qas\[1\]: field 'id' must be a string, got 12"),
    (("paragraph", None, "context"), None, r"data\[0\]\.paragraphs\[0\]: field 'context' must be a string"),
    (("article", None, "paragraphs"), None, r"data\[0\]: field 'paragraphs' must be a list, got None"),
])
def test_malformed_fields_are_named(tmp_path, where, value, message):
    payload = squad_payload()
    article = payload["data"][0]
    kind, index, field = where
    target = {"article": article, "paragraph": article["paragraphs"][0],
              "qas": article["paragraphs"][0]["qas"][index or 0],
              "answer": article["paragraphs"][0]["qas"][index or 0]["answers"][0]}[kind]
    target[field] = value
    with pytest.raises(DataError, match=message):
        load_squad(write(tmp_path, payload))


def test_encoding_non_utf8_is_named_and_a_bom_is_accepted(tmp_path):
    text = json.dumps(squad_payload(), ensure_ascii=False)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert len(load_squad(bom)) == 8
    latin = tmp_path / "latin.json"
    latin.write_bytes(text.replace("Paris is", "Pâris is").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.json: not UTF-8 text \(byte \d+, line 1"):
        load_squad(latin)


def test_articles_are_selected_by_title(squad_file):
    table = load_squad(squad_file, titles="Paris")
    assert set(table["title"]) == {"Paris"} and len(table) == 4
    assert list(load_squad(squad_file, exclude_titles=["Paris"])["id"]) == ["n1", "n2", "n3", "n4"]
    assert list(load_squad(squad_file, titles=["Paris", "Normans"], limit=5)["id"]) == ["n1", "n2", "n3", "n4", "p1"]
    with pytest.raises(DataError, match=r"no article titled 'Rome'; its articles are 'Normans', 'Paris'"):
        load_squad(squad_file, titles="Rome")


def test_write_squad_round_trips_and_refuses_a_misaligned_table(squad_file, tmp_path):
    from xdanalysis.core.data import write_squad

    table = load_squad(squad_file)
    back = load_squad(write_squad(table, tmp_path / "copy.json"))
    assert back.to_dict("records") == table.to_dict("records")
    broken = table.copy()
    broken.at[0, "answer_starts"] = [broken.at[0, "answer_starts"][0] + 1]
    with pytest.raises(DataError, match="n1"):
        write_squad(broken, tmp_path / "broken.json")
    assert not (tmp_path / "broken.json").exists()
