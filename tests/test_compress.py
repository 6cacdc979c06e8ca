"""int8 inference, head pruning, head importance and the compression lab, on tiny random models and
the small SQuAD file of the fixtures (and, with ../shared, the demo model)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from xdanalysis.compress import Variant, head_importance, heads_to_prune, parse_variant
from xdanalysis.labs import CompressSettings, compress
from xdanalysis.core.data import load_squad
from xdanalysis.core.settings import NAIVE_INT8, Int8Settings
from xdanalysis.model.device import model_device_dtype, resolve_dtype, resolve_placement
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.pruning import prune_heads, save_pruned
from xdanalysis.model.quantize import Int8Error, int8_cache_dir, quantize_int8
from xdanalysis.runs.run import predict_run
from xdanalysis.runs.store import RunMismatchError

from conftest import build_tiny_model
from xdanalysis.core import Execution


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDANALYSIS_CACHE", str(tmp_path / "cache"))


def inputs_for(tokenizer, n=3):
    return tokenizer(["where is the castle"] * n, ["the castle at caen was built in 1060 by william"] * n,
                     return_tensors="pt")


# int8 --------------------------------------------------------------------------------------------

def test_int8_quantises_the_linear_layers_the_settings_name(tiny):
    from xdanalysis.model.int8_linear import DynamicLinear, FullRangeLinear

    model, tokenizer = tiny
    quantised = quantize_int8(model, Int8Settings(keep_float=("qa_outputs", "*.layer.0.*")))
    kinds = {name: type(m) for name, m in quantised.named_modules() if "Linear" in type(m).__name__}
    assert kinds["qa_outputs"] is torch.nn.Linear
    assert kinds["bert.encoder.layer.0.attention.self.query"] is torch.nn.Linear
    assert kinds["bert.encoder.layer.1.attention.self.query"] in (DynamicLinear, FullRangeLinear)
    assert model_device_dtype(quantised) == ("cpu", "int8") and model_device_dtype(model) == ("cpu", "float32")
    naive = quantize_int8(model, NAIVE_INT8)
    assert type(naive.qa_outputs) is DynamicLinear  # PyTorch's own, 7-bit activations
    batch = inputs_for(tokenizer)
    with torch.no_grad():
        exact, rough = model(**batch).start_logits, naive(**batch).start_logits
    assert not torch.equal(exact, rough)  # quantised for real ...
    assert (exact - rough).abs().max() < 0.05 * exact.abs().max() + 0.05  # ... and still close


def test_activation_bits_follow_the_cpu_unless_set(monkeypatch):
    """7-bit activations where the CPU lacks VNNI (8-bit products saturate int16 pairs there), 8 with it."""
    from xdanalysis.model import device
    from xdanalysis.model.int8_linear import DynamicLinear, FullRangeLinear
    from xdanalysis.model.quantize import resolve_int8

    torch.manual_seed(0)
    holder = torch.nn.Module()
    holder.layer, holder.config = torch.nn.Linear(256, 256), type("Config", (), {"model_type": "test"})()
    x = torch.randn(64, 256)
    for flags, kind in (({"avx2"}, DynamicLinear), ({"avx2", "avx512_vnni"}, FullRangeLinear)):
        monkeypatch.setattr(device, "cpu_flags", lambda flags=flags: flags)
        assert resolve_int8().reduce_range is (kind is DynamicLinear)
        layer = quantize_int8(holder, Int8Settings(keep_float=())).layer
        assert type(layer) is kind
        assert quantize_int8(holder, Int8Settings(reduce_range=True, keep_float=())).layer.__class__ is DynamicLinear
        with torch.no_grad():
            exact = holder.layer(x)
            error = float((layer(x) - exact).pow(2).mean() / exact.pow(2).mean())
        assert 0 < error < 0.02  # quantised, and close (on this machine's kernels, whatever its CPU)


def test_per_window_int8_answers_do_not_depend_on_the_batch(tiny, squad_file):
    """Batched dynamic int8 shares one activation scale across a batch (and its padding); per window,
    every window's logits are its own: the same alone as among the others."""
    from xdanalysis.model.forward import run_windows
    from xdanalysis.model.windows import prepare_windows

    model, tokenizer = tiny
    table = load_squad(squad_file)
    windows = prepare_windows(table, tokenizer)
    alone = {}
    for name, settings in (("per window", Int8Settings()), ("batched", NAIVE_INT8)):
        quantised = quantize_int8(model, settings)
        together = run_windows(quantised, windows, batch_size=32, progress=False)
        single = [run_windows(quantised, prepare_windows(table.iloc[[q]], tokenizer), progress=False)
                  for q in range(len(table))]
        single = [pair for question in single for pair in question]
        alone[name] = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(together, single))
    assert alone == {"per window": True, "batched": False}


def test_int8_refused_on_cuda_and_auto_means_cpu():
    with pytest.raises(ValueError, match="int8 on cuda.*CPU only"):
        resolve_dtype("int8", "cuda")
    assert resolve_placement("auto", "int8") == ("cpu", "int8")


def test_int8_with_nothing_to_quantise_names_the_model_type_and_alternatives(tiny):
    with pytest.raises(Int8Error, match=r"model type 'bert'.*no torch.nn.Linear.*ONNX Runtime.*OpenVINO"):
        quantize_int8(tiny[0], Int8Settings(keep_float=("*",)))
    with pytest.raises(ValueError, match="int8 engine must be one of"):
        Int8Settings(engine="tensorrt")


def test_int8_model_is_cached_and_rebuilt_when_the_weights_change(tiny_model_dir, clean_copy):
    source = clean_copy(tiny_model_dir)
    first, _ = load_qa_model(source, dtype="int8")
    assert len(list(int8_cache_dir().iterdir())) == 1
    (entry,) = int8_cache_dir().iterdir()
    written = {f.name: f.stat().st_mtime_ns for f in entry.iterdir()}
    again, _ = load_qa_model(source, dtype="int8")
    assert model_device_dtype(again) == ("cpu", "int8")
    assert {f.name: f.stat().st_mtime_ns for f in entry.iterdir()} == written, "rebuilt instead of reused"
    build_tiny_model(source, seed=7)  # new weights in the same directory
    rebuilt, tokenizer = load_qa_model(source, dtype="int8")
    assert len(list(int8_cache_dir().iterdir())) == 2
    batch = inputs_for(tokenizer)
    with torch.no_grad():
        assert torch.equal(first(**batch).start_logits, again(**batch).start_logits)  # the cached model is the same
        assert not torch.allclose(first(**batch).start_logits, rebuilt(**batch).start_logits)


def test_int8_run_records_its_settings_and_they_are_part_of_its_identity(tiny_model_dir, squad_file, tmp_path):
    run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(dtype="int8", progress=False))
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    from xdanalysis.model.quantize import resolve_int8

    assert settings["dtype"] == "int8" and settings["int8"] == resolve_int8(Int8Settings()).as_dict()
    assert settings["int8"]["reduce_range"] in (True, False)  # decided for this CPU, and recorded
    assert len(run.table) == 8
    with pytest.raises(RunMismatchError, match="int8"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(dtype="int8", int8=NAIVE_INT8, progress=False))
    with pytest.raises(RunMismatchError, match="dtype"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(progress=False))


def test_cli_predicts_in_int8(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.apps.cli import main

    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--dtype", "int8",
                 "--out", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["settings"]["dtype"] == "int8"


# Pruning ------------------------------------------------------------------------------------------

def masked(model, heads):
    """The same heads silenced the plain way: their columns of the output projection set to zero."""
    model = copy.deepcopy(model)
    size = model.bert.encoder.layer[0].attention.self.attention_head_size
    with torch.no_grad():
        for layer, remove in heads.items():
            for head in remove:
                model.bert.encoder.layer[layer].attention.output.dense.weight[:, head * size:(head + 1) * size] = 0
    return model


def test_pruned_heads_compute_what_silenced_heads_compute(tiny, tmp_path):
    model, tokenizer = tiny
    heads = {0: [1], 1: [0]}
    pruned = copy.deepcopy(model)
    prune_heads(pruned, heads)
    batch = inputs_for(tokenizer)
    with torch.no_grad():
        assert torch.allclose(pruned(**batch).start_logits, masked(model, heads)(**batch).start_logits, atol=1e-5)
    assert sum(p.numel() for p in pruned.parameters()) == sum(p.numel() for p in model.parameters()) - 2 * (
        3 * (16 * 32 + 16) + 32 * 16)
    saved = save_pruned(pruned, tokenizer, tmp_path / "pruned")
    reloaded, _ = load_qa_model(saved)  # an ordinary checkpoint for every tool
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).start_logits, pruned(**batch).start_logits)
    with pytest.raises(ValueError, match="keep at least one"):
        prune_heads(copy.deepcopy(model), {0: [0, 1]})


def test_head_importance_is_the_gradient_of_the_loss_at_each_gate(tiny, squad_file):
    """Against finite differences: gating head h by g is scaling its columns of the output projection."""
    from xdanalysis.model.forward import batch_tensors
    from xdanalysis.model.windows import prepare_windows, window_labels

    model, tokenizer = copy.deepcopy(tiny[0]).double(), tiny[1]  # float64: finite differences are exact enough
    table = load_squad(squad_file)
    scores = head_importance(model, tokenizer, table, batch_size=1000, normalise=False, progress=False)
    windows = prepare_windows(table, tokenizer)
    starts, ends = window_labels(table, windows)
    inputs = batch_tensors(windows, range(len(starts)))

    def loss_with_gate(layer, head, g):
        gated = copy.deepcopy(model)
        size = gated.bert.encoder.layer[0].attention.self.attention_head_size
        with torch.no_grad():
            gated.bert.encoder.layer[layer].attention.output.dense.weight[:, head * size:(head + 1) * size] *= g
            return gated(**inputs, start_positions=torch.as_tensor(starts), end_positions=torch.as_tensor(ends)).loss

    eps = 1e-4
    for layer in range(2):
        for head in range(2):
            numeric = (loss_with_gate(layer, head, 1 + eps) - loss_with_gate(layer, head, 1 - eps)) / (2 * eps)
            assert scores[layer, head] == pytest.approx(abs(float(numeric)), rel=1e-3, abs=1e-9)
    assert all(p.requires_grad for p in model.parameters())  # left as it was


def test_heads_to_prune_takes_the_least_important_and_keeps_one_per_layer():
    importance = np.array([[0.1, 0.2, 0.9], [0.05, 0.06, 0.07]])
    assert heads_to_prune(importance, 0.5) == {0: [0], 1: [0, 1]}
    assert heads_to_prune(importance, 0.0) == {}
    with pytest.raises(ValueError, match="fraction"):
        heads_to_prune(importance, 1.0)


# The lab ------------------------------------------------------------------------------------------

VARIANTS = (Variant("fp32", "float32"), Variant("int8", "int8"), Variant("int8 naive", "int8", int8=NAIVE_INT8),
            Variant("heads -50%", "heads", fraction=0.5), Variant("layer 0", "layers", layers=(0,)))
SMALL = CompressSettings(importance_questions=4, speed_questions=4, speed_rounds=1, n_boot=50)


def test_compress_compares_every_variant_with_float32(tiny_model_dir, squad_file, tmp_path):
    result = compress(tiny_model_dir, squad_file, tmp_path / "lab", held_out=["Paris"], variants=VARIANTS,
                      settings=SMALL, progress=False)
    table = result.table.set_index("variant")
    assert list(table.index) == [v.name for v in VARIANTS]
    assert (table.loc["fp32", ["F1 diff", "NoAns acc diff", "answers changed (%)", "threshold shift"]] == 0).all()
    base = result.runs["fp32"].table.set_index("id")
    for name in table.index:
        other = result.runs[name].table.set_index("id").loc[base.index]
        assert table.loc[name, "questions"] == 4  # the held-out article only
        changed = 100 * float((other["answer"] != base["answer"]).mean())
        assert table.loc[name, "answers changed (%)"] == pytest.approx(changed)
        assert table.loc[name, "F1 diff"] == pytest.approx(100 * (other["f1"].mean() - base["f1"].mean()))
        assert table.loc[name, "F1 low"] <= table.loc[name, "F1 diff"] <= table.loc[name, "F1 high"]
    assert table.loc["heads -50%", "parameters (M)"] < table.loc["fp32", "parameters (M)"]
    assert table.loc["int8", "weights (MB)"] < table.loc["fp32", "weights (MB)"]
    assert table.loc["int8", "parameters (M)"] == pytest.approx(table.loc["fp32", "parameters (M)"])
    assert json.loads((tmp_path / "lab" / "runs" / "int8" / "run.json").read_text())["settings"]["dtype"] == "int8"
    assert len(result.verdict()) == len(VARIANTS) - 1
    assert pd.read_csv(tmp_path / "lab" / "comparison.csv")["variant"].tolist() == list(table.index)


def test_compress_resumes_without_redoing_what_is_done(tiny_model_dir, squad_file, tmp_path):
    out = tmp_path / "lab"
    compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=VARIANTS[:3], settings=SMALL,
             progress=False)  # "interrupted" after three variants
    done = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/run.json")}
    compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=VARIANTS, settings=SMALL, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    kept = {p: p.stat().st_mtime_ns for p in [out / "head_importance.json", *(out / "models").glob("*/variant.json"),
                                              *(out / "runs").glob("*/run.json")]}
    again = compress(tiny_model_dir, squad_file, out, held_out=["Paris"], variants=VARIANTS, settings=SMALL,
                     progress=False)
    assert len(again.table) == len(VARIANTS)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # importance, pruned models and runs all reused


def test_compress_refuses_bad_variants(tiny_model_dir, squad_file, tmp_path):
    with pytest.raises(ValueError, match="must be float32"):
        compress(tiny_model_dir, squad_file, tmp_path / "a", held_out=["Paris"], variants=VARIANTS[1:])
    with pytest.raises(ValueError, match="given twice"):
        compress(tiny_model_dir, squad_file, tmp_path / "b", held_out=["Paris"], variants=VARIANTS[:2] * 2)
    with pytest.raises(ValueError, match="unknown variant 'int4'"):
        parse_variant("int4")
    assert parse_variant("layers:0,2").layers == (0, 2)
    assert parse_variant("lab=students/lab").checkpoint == "students/lab"


def test_cli_compress_prints_the_table_and_writes_the_report(tiny_model_dir, squad_file, tmp_path, capsys):
    from xdanalysis.apps.cli import main

    out = tmp_path / "lab"
    assert main(["compress", "--model", str(tiny_model_dir), "--data", str(squad_file), "--held-out", "Paris",
                 "--variants", "fp32,int8,heads:0.5,layers:0", "--out", str(out), "--speed-questions", "4",
                 "--speed-rounds", "1", "--importance-questions", "4", "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out
    assert "int8" in printed and "heads -50%" in printed and "layers 0" in printed
    assert printed.count("x float32's speed") == 3
    page = (out / "report.html").read_text()
    assert "<h2 id='compression'>Compression</h2>" in page
    assert page.count("<img") >= 3 + 3  # frontiers, threshold shift, and one transition matrix per variant
    assert "float32 → heads -50%" in page
    assert main(["compress", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out),
                 "--variants", "fp32,int4"]) != 0
    assert "unknown variant 'int4'" in capsys.readouterr().err
