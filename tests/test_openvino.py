"""The OpenVINO runtime: the same answers as PyTorch (float32), int8 calibrated outside the run and
independent of the batch, the converted model cached and checked, the runtime part of a run's identity,
and a clear answer when something only PyTorch gives is asked of it."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from xdanalysis.apps.cli import main
from xdanalysis.compress import parse_variant
from xdanalysis.core.data import Selection, load_squad
from xdanalysis.core.settings import Execution, OpenVINOSettings
from xdanalysis.interpret.attention import get_attention
from xdanalysis.interpret.attribution import Attributor
from xdanalysis.labs import CompressSettings, compress
from xdanalysis.model import Calibration, NeedsTorchError, model_runtime
from xdanalysis.model.device import resolve_placement
from xdanalysis.model.forward import run_windows
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.openvino import openvino_cache_dir
from xdanalysis.model.predict import decode_windows, predict_table
from xdanalysis.model.windows import prepare_windows
from xdanalysis.runs.calibration import CalibrationWarning, calibration_for
from xdanalysis.runs.run import predict_run
from xdanalysis.runs.store import RunMismatchError

from conftest import build_tiny_model

DEMO = "models/minilm-l6-squad2-demo"
HALF = "data/squad-v2-dev-half.json"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDANALYSIS_CACHE", str(tmp_path / "cache"))


def tiny_calibration(squad_file) -> Calibration:
    return Calibration(load_squad(squad_file, titles=["Normans"]), "the Normans article of the fixture")


# Answers: float32 as PyTorch's, int8 batch-independent ------------------------------------------------

@pytest.mark.slow
def test_openvino_float32_gives_pytorchs_answers_on_the_demo_models_60_held_out_questions(shared, tmp_path):
    model, data = shared / DEMO, shared / HALF
    selection = Selection(titles=["Force"], limit=60)
    torch_run = predict_run(model, data, tmp_path / "torch", selection=selection, execution=Execution(progress=False))
    ov_run = predict_run(model, data, tmp_path / "ov", selection=selection,
                         execution=Execution(runtime="openvino", progress=False))
    a, b = torch_run.table.set_index("id"), ov_run.table.set_index("id").loc[torch_run.table["id"]]
    assert (a["answer"] == b["answer"]).all()
    assert np.abs(a["null_odds"] - b["null_odds"]).max() < 1e-3  # the bound; measured 2.5e-5
    assert ov_run.scores()["f1"] == pytest.approx(torch_run.scores()["f1"])


def test_int8_answers_do_not_depend_on_the_batch(tiny_model_dir, squad_file):
    model, tokenizer = load_qa_model(tiny_model_dir, runtime="openvino", dtype="int8",
                                     calibration=tiny_calibration(squad_file))
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer)
    together = run_windows(model, windows, batch_size=32, progress=False)
    alone = run_windows(model, windows, batch_size=1, progress=False)
    assert len(windows) > 4  # several windows share the batch of 32
    for (s32, e32), (s1, e1) in zip(together, alone):
        np.testing.assert_allclose(s32, s1, atol=1e-4)
        np.testing.assert_allclose(e32, e1, atol=1e-4)
    answers = [[d["answer"] for d in decode_windows(table, windows, logits)] for logits in (together, alone)]
    assert answers[0] == answers[1]


def test_int8_really_is_quantised_and_close_to_float32(tiny_model_dir, squad_file):
    table = load_squad(squad_file)
    float32, tokenizer = load_qa_model(tiny_model_dir)
    int8, _ = load_qa_model(tiny_model_dir, runtime="openvino", dtype="int8", calibration=tiny_calibration(squad_file))
    xml = (openvino_cache_dir() / next(p.name for p in openvino_cache_dir().iterdir()) / "model.xml").read_text()
    assert "FakeQuantize" in xml or "i8" in xml  # NNCF inserted quantisation into the graph
    a, _ = predict_table(float32, tokenizer, table, progress=False)
    b, _ = predict_table(int8, tokenizer, table, progress=False)
    assert not np.allclose(a["null_odds"], b["null_odds"], atol=1e-7)  # not float32 under another name
    assert np.abs(a["null_odds"] - b["null_odds"]).max() < 0.5


# The cache: converted once, rebuilt for other weights, never trusted damaged ---------------------------

def test_the_converted_model_is_cached_and_reused(tiny_model_dir):
    first, _ = load_qa_model(tiny_model_dir, runtime="openvino")
    again, _ = load_qa_model(tiny_model_dir, runtime="openvino", dtype="float32")
    assert first.record["converted_now"] and "converted_now" not in again.record
    assert len(list(openvino_cache_dir().iterdir())) == 1
    entry = openvino_cache_dir() / next(p.name for p in openvino_cache_dir().iterdir())
    assert sorted(p.name for p in entry.iterdir()) == ["model.bin", "model.xml", "openvino.json"]  # no pickle
    record = json.loads((entry / "openvino.json").read_text())
    assert record["weights_fingerprint"] and record["openvino"] and set(record["files"]) == {"model.xml", "model.bin"}


def test_changed_weights_get_a_new_conversion(tmp_path, squad_file):
    directory = build_tiny_model(tmp_path / "m", seed=0)
    table = load_squad(squad_file, limit=4)
    before, tokenizer = load_qa_model(directory, runtime="openvino")
    old, _ = predict_table(before, tokenizer, table, progress=False)
    build_tiny_model(directory, seed=1)  # other weights, same place
    after, _ = load_qa_model(directory, runtime="openvino")
    new, _ = predict_table(after, tokenizer, table, progress=False)
    reference, _ = predict_table(load_qa_model(directory)[0], tokenizer, table, progress=False)
    assert after.record.get("converted_now") and len(list(openvino_cache_dir().iterdir())) == 2
    np.testing.assert_allclose(new["null_odds"], reference["null_odds"], atol=1e-4)
    assert not np.allclose(new["null_odds"], old["null_odds"], atol=1e-4)


@pytest.mark.parametrize("damage", ["bin", "xml", "record"])
def test_a_damaged_cache_entry_is_refused_and_rebuilt(tiny_model_dir, squad_file, damage):
    table = load_squad(squad_file, limit=4)
    model, tokenizer = load_qa_model(tiny_model_dir, runtime="openvino")
    good, _ = predict_table(model, tokenizer, table, progress=False)
    entry = next(openvino_cache_dir().iterdir())
    if damage == "bin":  # a weight changed in place: same size, other bytes
        data = bytearray((entry / "model.bin").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (entry / "model.bin").write_bytes(bytes(data))
    elif damage == "xml":
        (entry / "model.xml").write_text((entry / "model.xml").read_text().replace("start_logits", "start_logitz"))
    else:
        record = json.loads((entry / "openvino.json").read_text())
        (entry / "openvino.json").write_text(json.dumps({**record, "weights_fingerprint": "someone-else"}))
    with pytest.warns(UserWarning, match=r"OpenVINO cache entry .* not used .* rebuilding"):
        again, _ = load_qa_model(tiny_model_dir, runtime="openvino")
    assert again.record["converted_now"]
    rebuilt, _ = predict_table(again, tokenizer, table, progress=False)
    np.testing.assert_allclose(rebuilt["null_odds"], good["null_odds"], atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: used without a word
        load_qa_model(tiny_model_dir, runtime="openvino")


# Runs: the runtime recorded and part of the identity; int8 calibrated outside the run ----------------

def test_a_run_records_its_runtime_and_another_runtime_is_another_run(tiny_model_dir, squad_file, tmp_path):
    out = tmp_path / "run"
    run = predict_run(tiny_model_dir, squad_file, out, execution=Execution(runtime="openvino", progress=False))
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert (settings["runtime"], settings["dtype"], settings["device"]) == ("openvino", "float32", "cpu")
    assert run.info["versions"]["openvino"]
    with pytest.raises(RunMismatchError, match=r"runtime: 'openvino' there, 'torch' asked"):
        predict_run(tiny_model_dir, squad_file, out, execution=Execution(progress=False))
    again = predict_run(tiny_model_dir, squad_file, out, execution=Execution(runtime="openvino", progress=False))
    assert again.info["created"] == run.info["created"]  # reused, not recomputed


def test_an_int8_run_records_its_calibration_which_never_holds_its_own_questions(tiny_model_dir, squad_file,
                                                                                 tmp_path):
    execution = Execution(runtime="openvino", dtype="int8", progress=False)
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", selection=Selection(titles=["Paris"]),
                      execution=execution)
    settings = run.info["settings"]
    assert settings["calibration"]["held_out"] is True
    assert "articles of" in settings["calibration"]["source"] and settings["calibration"]["articles"] == 1
    assert settings["openvino"]["preset"] == "performance"
    calibration = calibration_for(tiny_model_dir, squad_file, run.table, settings=execution.openvino)
    assert not set(calibration.questions["id"]) & set(run.table["id"])
    assert settings["calibration_fingerprint"] == calibration.fingerprint()
    other = Execution(runtime="openvino", dtype="int8", openvino=OpenVINOSettings(seed=1), progress=False)
    with pytest.raises(RunMismatchError, match="openvino"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", selection=Selection(titles=["Paris"]),
                    execution=other)


def test_calibration_prefers_the_models_training_articles(shared):
    data = shared / HALF
    table = load_squad(data, titles=["Force"], limit=40)
    calibration = calibration_for(shared / DEMO, data, table)
    trained = set(json.loads((shared / DEMO / "training.json").read_text())["trained_on_titles"])
    assert set(calibration.questions["title"]) <= trained and len(calibration.questions) == 100
    assert calibration.held_out and "training articles" in calibration.source


def test_a_run_over_all_its_data_is_calibrated_on_itself_and_says_so(tiny_model_dir, squad_file):
    table = load_squad(squad_file)
    with pytest.warns(CalibrationWarning, match="calibrated on this run's own questions"):
        calibration = calibration_for(tiny_model_dir, squad_file, table)
    assert not calibration.held_out and set(calibration.questions["id"]) <= set(table["id"])
    given = calibration_for(tiny_model_dir, squad_file, table.iloc[:3],
                            settings=OpenVINOSettings(calibration_data=str(squad_file)))
    assert given.held_out and not set(given.questions["id"]) & set(table["id"].iloc[:3])


@pytest.mark.slow
def test_probes_on_openvino_int8_share_one_calibration(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.labs import run_probes

    execution = Execution(runtime="openvino", dtype="int8", progress=False)
    results = run_probes(tiny_model_dir, squad_file, tmp_path / "probes", probes="question_typo",
                         selection=Selection(titles=["Paris"]), execution=execution)
    original = results.original.info["settings"]
    probed = json.loads((tmp_path / "probes" / "question_typo" / "run" / "run.json").read_text())["settings"]
    assert original["runtime"] == probed["runtime"] == "openvino"
    assert original["calibration_fingerprint"] == probed["calibration_fingerprint"]  # one int8 model for all
    assert original["calibration"]["held_out"] is True  # the fixture's other article, not the probed questions
    assert len(list(openvino_cache_dir().iterdir())) == 1


def test_a_loaded_model_runs_where_it_is(tiny_model_dir, squad_file, tmp_path):
    pair = load_qa_model(tiny_model_dir, runtime="openvino")
    run = predict_run(pair, squad_file, tmp_path / "run", execution=Execution(runtime="openvino", progress=False))
    assert run.info["settings"]["runtime"] == "openvino"
    with pytest.raises(ValueError, match="runtime 'torch' asked for, but the model given runs on 'openvino'"):
        predict_run(pair, squad_file, tmp_path / "other", execution=Execution(progress=False))


# What only PyTorch gives, and what OpenVINO cannot run here ---------------------------------------------

def test_attention_and_attribution_say_they_need_pytorch(tiny_model_dir):
    model, tokenizer = load_qa_model(tiny_model_dir, runtime="openvino")
    assert model_runtime(model) == "openvino"
    with pytest.raises(NeedsTorchError, match=r"attention weights need PyTorch: this model runs on openvino.*"
                                              r"runtime='torch'"):
        get_attention(model, tokenizer, "Where is the castle?", "The castle is at Caen.")
    with pytest.raises(NeedsTorchError, match="Attributions .* need PyTorch"):
        Attributor(model, tokenizer)
    inputs = tokenizer(["where"], ["the castle"], return_tensors="pt")
    with pytest.raises(NeedsTorchError, match="output_hidden_states need PyTorch"):
        model(**inputs, output_hidden_states=True)


def test_openvino_placement_is_the_cpu_with_an_honest_precision(monkeypatch):
    assert resolve_placement(None, "int8", "openvino") == ("cpu", "int8")
    with pytest.raises(ValueError, match="runtime openvino runs on the CPU"):
        resolve_placement("cuda", "float32", "openvino")
    with pytest.raises(ValueError, match="float16 with runtime openvino"):
        resolve_placement("cpu", "float16", "openvino")
    monkeypatch.setattr("xdanalysis.model.device.cpu_flags", lambda: {"avx2"})
    with pytest.raises(ValueError, match="neither AMX nor AVX512-BF16.*float32 under a bfloat16 name"):
        resolve_placement("cpu", "bfloat16", "openvino")
    assert resolve_placement("cpu", "auto", "openvino") == ("cpu", "float32")


def test_distillation_refuses_another_runtime(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.distill import distill

    with pytest.raises(ValueError, match="distill trains in PyTorch"):
        distill(tiny_model_dir, squad_file, tmp_path / "student", execution=Execution(runtime="openvino"))


# The command line and the compression lab -----------------------------------------------------------------

def test_the_command_line_predicts_with_openvino(tiny_model_dir, squad_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--titles", "Paris",
                 "--runtime", "openvino", "--dtype", "int8", "--calibration-windows", "8", "--out", str(out)]) == 0
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert (settings["runtime"], settings["dtype"], settings["openvino"]["calibration_windows"]) == \
        ("openvino", "int8", 8)
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--runtime", "onnx",
              "--out", str(tmp_path / "x")])
    assert "invalid choice: 'onnx'" in capsys.readouterr().err
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--runtime", "openvino",
                 "--device", "cuda", "--out", str(tmp_path / "y")]) == 2
    assert "runtime openvino runs on the CPU" in capsys.readouterr().err


def test_each_runtime_has_its_own_default_run_directory(tiny_model_dir, squad_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for options in ([], ["--runtime", "openvino"]):
        assert main(["evaluate", "--model", str(tiny_model_dir), "--data", str(squad_file), "--limit", "3",
                     *options]) == 0
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert made == ["tiny-qa0__tiny-squad__limit3", "tiny-qa0__tiny-squad__limit3__openvino-float32"], made


@pytest.mark.slow
def test_the_lab_compares_openvino_variants_with_pytorch_float32(tiny_model_dir, squad_file, tmp_path):
    variants = [parse_variant(v) for v in ("fp32", "ov-fp32", "ov-int8")]
    small = CompressSettings(importance_questions=4, speed_questions=4, speed_rounds=1, n_boot=50)
    result = compress(tiny_model_dir, squad_file, tmp_path / "lab", held_out=["Paris"], variants=variants,
                      settings=small, progress=False)
    table = result.table.set_index("variant")
    assert table.loc["ov-fp32", "answers changed (%)"] == 0 and table.loc["ov-fp32", "F1 diff"] == pytest.approx(0)
    for name in ("ov-fp32", "ov-int8"):
        assert result.runs[name].info["settings"]["runtime"] == "openvino"
        assert table.loc[name, "speed-up"] > 0 and table.loc[name, "questions"] == 4
    assert result.runs["ov-int8"].info["settings"]["calibration"]["held_out"] is True
    # sizes read from the converted models: float32's weights as PyTorch's, int8's smaller
    assert table.loc["ov-fp32", "parameters (M)"] == pytest.approx(table.loc["fp32", "parameters (M)"], rel=1e-3)
    assert table.loc["ov-fp32", "weights (MB)"] == pytest.approx(table.loc["fp32", "weights (MB)"], rel=1e-3)
    assert table.loc["ov-int8", "weights (MB)"] < 0.8 * table.loc["fp32", "weights (MB)"]
    assert isinstance(result.runs["ov-int8"].table, pd.DataFrame)
