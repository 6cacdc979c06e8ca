"""Every notebook runs top to bottom offline, and is committed without outputs."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import shared_path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, env: dict, monkeypatch, cwd: Path, timeout: int = 900):
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


@pytest.fixture
def offline_env(tmp_path, tiny_model_dir, squad_file):
    """The shared trained demo model on real questions when given, else the tiny random model."""
    shared = shared_path()
    if shared is not None:
        return {"XDANALYSIS_MODEL": shared / "models" / "minilm-l6-squad2-demo",
                "XDANALYSIS_DATA": shared / "data" / "squad-v2-dev-half.json",
                "XDANALYSIS_LIMIT": 120, "XDANALYSIS_RUN": tmp_path / "run",
                "XDANALYSIS_ENCODER": shared / "models" / "minilm-l6-h384-uncased"}
    return {"XDANALYSIS_MODEL": tiny_model_dir, "XDANALYSIS_DATA": squad_file, "XDANALYSIS_RUN": tmp_path / "run"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook["cells"] if cell["cell_type"] == "code")


def test_quickstart_runs(offline_env, monkeypatch, tmp_path):
    notebook = execute(ROOT / "notebooks" / "01_quickstart.ipynb", offline_env, monkeypatch, tmp_path)
    text = "".join(str(o.get("text", "")) + json.dumps(o.get("data", {}))
                   for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "answerable (HasAns)" in text and "image/png" in text
    assert (Path(offline_env["XDANALYSIS_RUN"]) / "run.json").exists()


def test_error_analysis_runs(offline_env, monkeypatch, tmp_path):
    notebook = execute(ROOT / "notebooks" / "02_error_analysis.ipynb", offline_env, monkeypatch, tmp_path)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def test_attention_runs(offline_env, monkeypatch, tmp_path):
    notebook = execute(ROOT / "notebooks" / "03_attention.ipynb", offline_env, monkeypatch, tmp_path)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    # views 1-5 and the slice comparison, plus the encoder's statistics when it is given
    expected = 7 + ("XDANALYSIS_ENCODER" in offline_env)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= expected
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs])
    if "XDANALYSIS_ENCODER" in offline_env:
        assert "head untrained" in text  # said on screen for the pretrained encoder


def truncated_student(teacher_dir: Path, target: Path, keep=(0, 2, 4)) -> Path:
    """A smaller student made from the trained teacher by keeping some of its layers (the way
    DistilBERT is initialised): a real, different-sized model offline."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(teacher_dir)
    layers = model.bert.encoder.layer
    model.bert.encoder.layer = type(layers)([layers[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(target)
    return target


def test_distillation_runs(monkeypatch, tmp_path, tiny_model_dir, squad_file):
    from conftest import build_tiny_model

    shared = shared_path()
    if shared is not None:
        teacher = shared / "models" / "minilm-l6-squad2-demo"
        env = {"XDANALYSIS_TEACHER": teacher, "XDANALYSIS_STUDENT": truncated_student(teacher, tmp_path / "student"),
               "XDANALYSIS_DATA": shared / "data" / "squad-v2-dev-half.json", "XDANALYSIS_LIMIT": 60}
    else:
        env = {"XDANALYSIS_TEACHER": build_tiny_model(tmp_path / "teacher", layers=3, seed=5),
               "XDANALYSIS_STUDENT": tiny_model_dir, "XDANALYSIS_DATA": squad_file}
    env["XDANALYSIS_RUNS"] = tmp_path / "runs"
    notebook = execute(ROOT / "notebooks" / "04_distillation.ipynb", env, monkeypatch, tmp_path)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    assert sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs) >= 2
