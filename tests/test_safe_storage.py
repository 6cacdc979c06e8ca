"""What is read back from disk runs no code and is checked before use; what is written cannot be
redirected and leaves nothing half-made behind."""

from __future__ import annotations

import errno
import json
import os
import pickle
import warnings

import pytest
import torch
from conftest import build_tiny_model

from xdanalysis.core.io import write_atomic, write_json
from xdanalysis.model.loading import load_qa_model
from xdanalysis.model.quantize import int8_cache_dir
from xdanalysis.runs.run import load_run, predict_run
from xdanalysis.runs.store import RunError
from xdanalysis.core import Execution


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDANALYSIS_CACHE", str(tmp_path / "cache"))


class _Planted:
    """A pickle that, when unpickled, writes a file: proof that loading ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _logits(model, tokenizer):
    batch = tokenizer(["where is the castle"], ["the castle at caen was built in 1060"], return_tensors="pt")
    with torch.no_grad():
        return model(**batch).start_logits


def _entry():
    (entry,) = list(int8_cache_dir().iterdir())
    return entry


# The int8 cache ----------------------------------------------------------------------------------

def test_a_planted_pickle_in_the_int8_cache_runs_no_code(tiny_model_dir, tmp_path):
    load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    entry, marker = _entry(), tmp_path / "ran"
    for file in entry.iterdir():  # every file of the entry replaced by a pickle that runs code
        with open(file, "wb") as handle:
            pickle.dump(_Planted(str(marker)), handle)
    with pytest.warns(UserWarning, match=str(entry)):
        model, tokenizer = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert not marker.exists()
    assert _logits(model, tokenizer).shape[0] == 1
    assert (entry / "model.pt").exists() is False  # the cache never writes a whole pickled module


def test_an_int8_entry_holding_another_model_is_not_used(tiny_model_dir, tmp_path):
    other = build_tiny_model(tmp_path / "other", seed=7)
    own, tokenizer = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    entry_own = _entry()
    load_qa_model(other, device="cpu", dtype="int8")
    entry_other = next(e for e in int8_cache_dir().iterdir() if e != entry_own)
    # the other model's weights copied over this model's entry (the record left as it was)
    (entry_own / "int8-state.pt").write_bytes((entry_other / "int8-state.pt").read_bytes())
    with pytest.warns(UserWarning, match="not the file that was written"):
        again, _ = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert torch.equal(_logits(again, tokenizer), _logits(own, tokenizer))
    # the record swapped too: it names the other weights, so it is refused as well
    (entry_own / "int8.json").write_bytes((entry_other / "int8.json").read_bytes())
    (entry_own / "int8-state.pt").write_bytes((entry_other / "int8-state.pt").read_bytes())
    with pytest.warns(UserWarning, match="does not describe these weights"):
        again, _ = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert torch.equal(_logits(again, tokenizer), _logits(own, tokenizer))


def test_a_truncated_int8_entry_is_rebuilt_and_named_then_reused(tiny_model_dir):
    first, tokenizer = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    state = _entry() / "int8-state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.warns(UserWarning, match=f"{_entry()}.*rebuilding"):
        rebuilt, _ = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert torch.equal(_logits(rebuilt, tokenizer), _logits(first, tokenizer))
    rebuilt_at = state.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a sound entry is used without a word
        cached, _ = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert state.stat().st_mtime_ns == rebuilt_at  # read, not written again
    assert torch.equal(_logits(cached, tokenizer), _logits(first, tokenizer))


def test_an_int8_cache_on_a_full_disk_is_skipped_and_the_run_goes_on(tiny_model_dir, monkeypatch):
    import xdanalysis.model.quantize as quantize

    def full(path, write):
        raise OSError(errno.ENOSPC, f"No space left on device while writing {path}", str(path))

    monkeypatch.setattr(quantize, "write_atomic", full)
    with pytest.warns(UserWarning, match="could not be cached in .*No space left"):
        model, tokenizer = load_qa_model(tiny_model_dir, device="cpu", dtype="int8")
    assert _logits(model, tokenizer).shape[0] == 1
    assert not any(f.is_file() for f in int8_cache_dir().rglob("*"))  # no half entry


# Atomic writes -----------------------------------------------------------------------------------

def test_a_link_planted_at_the_old_temporary_name_does_not_redirect_a_write(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "predictions.json"
    os.symlink(victim, tmp_path / "predictions.json.tmp")
    write_json(target, {"a": "b"})
    assert victim.read_text() == "keep me"
    assert json.loads(target.read_text()) == {"a": "b"} and not target.is_symlink()


def test_a_failed_write_leaves_no_temporary_file_and_names_the_file(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")

    def fill_the_disk(tmp):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=f"No space left on device while writing {target}"):
        write_atomic(target, fill_the_disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"] and target.read_text() == "old"


def test_a_predict_through_a_planted_link_writes_only_the_run(tmp_path, squad_file, tiny_model_dir):
    out, victim = tmp_path / "run", tmp_path / "victim.txt"
    victim.write_text("keep me")
    out.mkdir()
    (out / "progress.json").write_text("{}")  # a run in progress: its directory, not a foreign one
    os.symlink(victim, out / "predictions.json.tmp")
    (out / "progress.json").unlink()
    run = predict_run(tiny_model_dir, squad_file, out, execution=Execution(allow_random_head=True, progress=False))
    assert victim.read_text() == "keep me"
    assert json.loads((out / "predictions.json").read_text()) == run.predictions


# Damage seen on every read -----------------------------------------------------------------------

def _flip_a_byte(file, at=None):
    data = bytearray(file.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0x01
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("output", ["examples.parquet", "nbest_predictions.json", "predictions.json"])
def test_one_flipped_byte_in_an_output_is_refused_on_load_with_the_command_to_rebuild(tmp_path, squad_file,
                                                                                      tiny_model_dir, output):
    out = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, out, execution=Execution(allow_random_head=True, progress=False))
    load_run(out)  # sound: loads
    _flip_a_byte(out / output)
    with pytest.raises(RunError, match=f"{output}: changed or damaged.*xdanalysis predict --model .* --out {out}"):
        load_run(out)
    again = predict_run(tiny_model_dir, squad_file, out, execution=Execution(allow_random_head=True, progress=False))  # rebuilt
    assert load_run(out).predictions == again.predictions


def test_a_second_load_of_an_unchanged_run_does_not_hash_again(tmp_path, squad_file, tiny_model_dir, monkeypatch):
    import xdanalysis.runs.store as store

    out = tmp_path / "run"
    predict_run(tiny_model_dir, squad_file, out, execution=Execution(allow_random_head=True, progress=False))
    load_run(out)
    hashed = []
    monkeypatch.setattr(store, "file_checksum", lambda f: hashed.append(f) or {"bytes": -1})
    load_run(out)
    assert hashed == []
    os.utime(out / "predictions.json")  # touched: checked again (and the stand-in checksum fails it)
    with pytest.raises(RunError, match="predictions.json: changed or damaged"):
        load_run(out)
    assert [f.name for f in hashed] == ["predictions.json"]


# The distillation checkpoint ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_swapped_distillation_checkpoint_is_not_unpickled(tmp_path, squad_file, tiny_model_dir):
    from xdanalysis.distill.config import DistillConfig
    from xdanalysis.distill.train import distill

    config = DistillConfig(epochs=1, batch_size=4, checkpoint_every=1)
    out = tmp_path / "student"
    with pytest.raises(KeyboardInterrupt):
        distill(tiny_model_dir, squad_file, out, config=config, _stop_after=2, student=[0], execution=Execution(progress=False))
    assert json.loads((out / "distill-progress.json").read_text())["checkpoint"]["sha256"]
    marker = tmp_path / "ran"
    with open(out / "checkpoint.pt", "wb") as handle:
        pickle.dump(_Planted(str(marker)), handle)
    with pytest.warns(UserWarning, match="checkpoint.pt: not the checkpoint this training wrote"):
        result = distill(tiny_model_dir, squad_file, out, config=config, student=[0], execution=Execution(progress=False))
    assert not marker.exists()
    assert result.info["steps"] >= 2
