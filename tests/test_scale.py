"""Scale-out on Ray Data: the same run as a local one, and a resume after the driver is killed (local Ray)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import squad_payload

from xdanalysis.core.settings import WindowSettings
from xdanalysis.runs.run import load_run, predict_run
from xdanalysis.core import Execution

pytestmark = pytest.mark.ray
SETTINGS = {"windowing": WindowSettings(64, 16)}


def need_ray():
    """Ray is installed by make test (the [ray] extra): in CI its absence is a failure, elsewhere a skip."""
    if os.environ.get("CI"):
        import ray  # noqa: F401
    else:
        pytest.importorskip("ray")


def many_questions(path, copies: int):
    """The fixture's eight questions, ``copies`` times over under new ids."""
    payload = squad_payload()
    articles = []
    for k in range(copies):
        for article in payload["data"]:
            copy = json.loads(json.dumps(article))
            copy["title"] = f"{article['title']} {k}"
            for paragraph in copy["paragraphs"]:
                for qa in paragraph["qas"]:
                    qa["id"] = f"{qa['id']}-{k}"
            articles.append(copy)
    path.write_text(json.dumps({"version": "v2.0", "data": articles}))
    return path


def same_run(a, b):
    assert list(a.table["id"]) == list(b.table["id"])
    assert list(a.table["answer"]) == list(b.table["answer"])
    assert (a.table["null_odds"] - b.table["null_odds"]).abs().max() <= 1e-4
    identity = {k: v for k, v in a.info["settings"].items() if k not in ("data", "model_given")}
    assert identity == {k: v for k, v in b.info["settings"].items() if k not in ("data", "model_given")}


def test_a_ray_run_is_the_local_run(tiny_model_dir, tmp_path):
    need_ray()
    data = many_questions(tmp_path / "d.json", 5)
    local = predict_run(tiny_model_dir, data, tmp_path / "local", execution=Execution(chunk_size=4), **SETTINGS)
    on_ray = predict_run(tiny_model_dir, data, tmp_path / "ray", execution=Execution(engine="ray", workers=2, chunk_size=4), **SETTINGS)
    same_run(local, on_ray)
    assert sorted(p.name for p in (tmp_path / "ray" / "chunks").iterdir()) == \
        sorted(p.name for p in (tmp_path / "local" / "chunks").iterdir())


def test_a_killed_ray_driver_resumes(tiny_model_dir, tmp_path):
    need_ray()
    data = many_questions(tmp_path / "d.json", 30)  # 240 questions, one chunk each
    out = tmp_path / "run"
    code = ("from xdanalysis.core.settings import Execution, WindowSettings; "
            f"from xdanalysis.runs import predict_run; predict_run({str(tiny_model_dir)!r}, {str(data)!r}, "
            f"{str(out)!r}, windowing=WindowSettings(64, 16), "
            "execution=Execution(chunk_size=1, engine='ray', workers=2, progress=False))")
    driver = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = out / "chunks"
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (chunks.exists() and len(list(chunks.glob("*.parquet"))) >= 3):
            time.sleep(0.02)
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and what it started
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    done_before = {p.name: p.stat().st_mtime_ns for p in chunks.glob("*.parquet")}
    assert 3 <= len(done_before) < 240 and not (out / "run.json").exists()
    resumed = predict_run(tiny_model_dir, data, out, execution=Execution(engine="ray", workers=2, chunk_size=1), **SETTINGS)
    kept = {name: (chunks / name).stat().st_mtime_ns for name in done_before}
    assert kept == done_before  # finished chunks were reused, not recomputed
    same_run(resumed, predict_run(tiny_model_dir, data, tmp_path / "local", execution=Execution(chunk_size=1), **SETTINGS))
    assert load_run(out).info["settings"]["n_questions"] == 240


def test_without_ray_the_engine_says_how_to_install_it(tiny_model_dir, squad_file, tmp_path, monkeypatch, capsys):
    from xdanalysis.apps.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    out = tmp_path / "r"
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out),
                 "--max-seq-length", "64", "--doc-stride", "16", "--engine", "ray"]) == 2
    assert "pip install 'xdanalysis[ray]'" in capsys.readouterr().err
    assert not (out / "progress.json").exists()  # refused before the directory became a run in progress


def test_the_ray_engine_needs_a_model_every_worker_can_load(tiny_model_dir, squad_file, tmp_path):
    from xdanalysis.model.loading import load_qa_model

    with pytest.raises(ValueError, match="every worker can load"):
        predict_run(load_qa_model(tiny_model_dir), squad_file, tmp_path / "r", execution=Execution(engine="ray"), **SETTINGS)
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "r", execution=Execution(engine="spark"), **SETTINGS)


def test_the_teacher_logit_pass_on_ray_fills_the_same_cache(tiny_model_dir, tmp_path):
    import numpy as np

    from xdanalysis.core.data import load_squad
    from xdanalysis.distill.teacher import teacher_logits
    from xdanalysis.model.loading import load_qa_model
    from xdanalysis.model.windows import prepare_windows

    need_ray()
    teacher, tokenizer = load_qa_model(tiny_model_dir)
    table = load_squad(many_questions(tmp_path / "d.json", 4))
    windows = prepare_windows(table, tokenizer, windowing=WindowSettings(64, 16))
    options = {"windowing": WindowSettings(64, 16), "chunk_windows": 16}
    local = teacher_logits((teacher, tokenizer), table, windows, tokenizer, cache_dir=tmp_path / "local",
                           execution=Execution(progress=False), **options).logits
    on_ray = teacher_logits(str(tiny_model_dir), table, windows, tokenizer, cache_dir=tmp_path / "ray",
                            loaded=(teacher, tokenizer), execution=Execution(engine="ray", workers=2, progress=False),
                            **options).logits
    assert len(local) == len(on_ray) == len(windows)
    for (s1, e1), (s2, e2) in zip(local, on_ray):
        np.testing.assert_allclose(s1, s2, atol=1e-5)
        np.testing.assert_allclose(e1, e2, atol=1e-5)
    names = [sorted(p.name for p in d.rglob("chunk-*.npz")) for d in (tmp_path / "local", tmp_path / "ray")]
    assert names[0] == names[1] and len(names[0]) > 1


def test_a_bad_ray_address_fails_at_once_and_leaves_no_marker(tiny_model_dir, squad_file, tmp_path, capsys):
    import socket

    from xdanalysis.apps.cli import main
    from xdanalysis.runs.engines import RayUnavailableError

    need_ray()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "run"
    started = time.time()
    with pytest.raises(RayUnavailableError, match=rf"127.0.0.1:{port} did not answer .* Nothing was written"):
        predict_run(tiny_model_dir, squad_file, out, execution=Execution(engine="ray", ray_address=f"127.0.0.1:{port}"), **SETTINGS)
    assert time.time() - started < 30
    assert not (out / "progress.json").exists() and not (out / "chunks").exists()
    assert main(["predict", "--model", str(tiny_model_dir), "--data", str(squad_file), "--out", str(out),
                 "--engine", "ray", "--ray-address", "not an address"]) == 2
    assert "is not an address" in capsys.readouterr().err
    with pytest.raises(ValueError, match="workers must be at least 1"):
        predict_run(tiny_model_dir, squad_file, out, execution=Execution(engine="ray", workers=-1), **SETTINGS)


def test_ray_failing_to_start_is_a_message_not_a_traceback(tiny_model_dir, squad_file, tmp_path, monkeypatch):
    from xdanalysis.runs.engines import RayUnavailableError

    need_ray()
    import ray

    def slow_start(*args, **kwargs):
        raise TimeoutError("Timed out after 30 seconds waiting for the node to start")

    monkeypatch.setattr(ray, "init", slow_start)
    with pytest.raises(RayUnavailableError, match=r"could not start a local Ray: TimeoutError: Timed out .* "
                                                  r"run the same command again"):
        predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(engine="ray"), **SETTINGS)
    assert not (tmp_path / "run" / "progress.json").exists()


def test_a_ray_run_says_only_what_matters(tiny_model_dir, squad_file, tmp_path, capfd):
    import warnings

    need_ray()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = predict_run(tiny_model_dir, squad_file, tmp_path / "run", execution=Execution(engine="ray", workers=2, chunk_size=4), **SETTINGS)
    assert len(run.table) == 8
    noisy = [str(w.message) for w in caught if "ray" in (w.filename or "") or "deprecated" in str(w.message)]
    assert not noisy, noisy
    printed = capfd.readouterr()
    assert "core_worker" not in printed.err and "DeprecationWarning" not in printed.err, printed.err[-2000:]
