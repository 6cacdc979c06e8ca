"""Every notebook runs top to bottom offline, and is committed without outputs."""

import json
import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import shared_path
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

# The distillation lab's recipe shrunk for CI: the mechanics of every step, figures that mean nothing.
LAB_CI = {"XDANALYSIS_LAB_LABELLED": 20, "XDANALYSIS_LAB_TRANSFER": 20, "XDANALYSIS_LAB_FIT": 20,
          "XDANALYSIS_LAB_WINDOWS": 32, "XDANALYSIS_LENS_TRAIN": 10}
# ... and for the tiny offline data set (4 questions in the training article)
LAB_TINY = {"XDANALYSIS_LAB_LABELLED": 1, "XDANALYSIS_LAB_TRANSFER": 1, "XDANALYSIS_LAB_FIT": 2,
            "XDANALYSIS_LAB_WINDOWS": 8, "XDANALYSIS_LENS_TRAIN": 2}
pytestmark = pytest.mark.notebooks
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, env: dict, monkeypatch, cwd: Path, timeout: int = 900):
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def as_readme_writes_it(path: Path) -> str:
    """``../shared/...`` relative to the project root when the shared assets sit beside it, as the
    README's recipe writes it (the kernel runs in notebooks/, so this checks the path resolution)."""
    try:
        return os.path.relpath(path, ROOT) if Path(path).resolve().is_relative_to(ROOT.parent) else str(path)
    except ValueError:
        return str(path)


@pytest.fixture
def offline_env(tmp_path, tiny_model_dir, squad_file):
    """The shared trained demo model on real questions when given (relative paths, as the README
    writes them), else the tiny random model."""
    shared = shared_path()
    if shared is not None:
        return {"XDANALYSIS_MODEL": as_readme_writes_it(shared / "models" / "minilm-l6-squad2-demo"),
                "XDANALYSIS_DATA": as_readme_writes_it(shared / "data" / "squad-v2-dev-half.json"),
                "XDANALYSIS_LIMIT": 120, "XDANALYSIS_RUN": tmp_path / "run",
                "XDANALYSIS_ENCODER": as_readme_writes_it(shared / "models" / "minilm-l6-h384-uncased")}
    return {"XDANALYSIS_MODEL": tiny_model_dir, "XDANALYSIS_DATA": squad_file, "XDANALYSIS_RUN": tmp_path / "run"}


def committed_text(path: Path) -> str:
    """The notebook as git will commit it (the index), not the copy a user just ran and saved;
    the working copy outside a git checkout."""
    relative = path.relative_to(ROOT).as_posix()
    try:
        return subprocess.run(["git", "show", f":{relative}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return path.read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    notebook = json.loads(committed_text(path))
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook["cells"] if cell["cell_type"] == "code")


def outputs_of(notebook):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def test_quickstart_runs(offline_env, monkeypatch, tmp_path):
    notebook = execute(ROOT / "notebooks" / "01_quickstart.ipynb", offline_env, monkeypatch, tmp_path)
    text = "".join(str(o.get("text", "")) + json.dumps(o.get("data", {}))
                   for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "answerable (HasAns)" in text and "image/png" in text
    from xdanalysis.runs.run import load_run

    run = load_run(offline_env["XDANALYSIS_RUN"])
    scores = run.scores()
    # the notebook's score table shows the official numbers of the run it made
    table_cell = next(o["data"]["text/plain"] for o in outputs_of(notebook)
                      if "text/plain" in o.get("data", {}) and "answerable (HasAns)" in o["data"]["text/plain"]
                      and "questions" in o["data"]["text/plain"])
    shown = next(line for line in table_cell.splitlines() if line.startswith("all")).split()
    assert [float(shown[1]), float(shown[2]), int(shown[3])] == [round(scores["exact"], 2), round(scores["f1"], 2),
                                                                 scores["total"]]
    # beside it, what always abstaining scores: the unanswerable share, counted here by hand
    baseline = next(line for line in table_cell.splitlines() if line.startswith("always abstaining")).split()
    unanswerable = int((run.table["answer_texts"].map(len) == 0).sum())
    assert float(baseline[-3]) == round(100 * unanswerable / len(run.table), 2)
    if shared_path() is not None:  # the demo model's held-out articles, by default
        assert set(run.table["title"]) <= {"French_and_Indian_War", "Force"}


def test_error_analysis_runs(offline_env, monkeypatch, tmp_path):
    from xdanalysis.analysis.outcomes import confusion, outcomes
    from xdanalysis.runs.run import load_run

    notebook = execute(ROOT / "notebooks" / "02_error_analysis.ipynb", offline_env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    # the confusion table shown is the package's, on the run the notebook used
    matrix = confusion(outcomes(load_run(offline_env["XDANALYSIS_RUN"]).table))
    shown = next(o["data"]["text/plain"] for o in outputs
                 if "answered rate" in o.get("data", {}).get("text/plain", ""))
    for gold in ("has answer", "no answer"):
        line = next(ln for ln in shown.splitlines() if ln.startswith(gold))
        assert line.split()[2:4] == [str(matrix.loc[gold, "answered"]), str(matrix.loc[gold, "abstained"])]
    # where errors concentrate: the tree's rate and the gold audit, computed on the run the notebook used
    from xdanalysis.analysis.error_tree import error_tree

    run = load_run(offline_env["XDANALYSIS_RUN"])
    said = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    for side in ("answerable", "unanswerable"):  # one tree per side, each said with its own rate
        tree = error_tree(run, side=side)
        assert f"On the {side} questions, the error rate is {tree.base_rate:.1f}%" in said
        assert "answerable" not in tree.leaves["rule"].str.cat()  # a side's tree cannot split on the side
    assert "Against the majority gold" in said


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


def test_distillation_runs(monkeypatch, tmp_path, tiny_model_dir, squad_file):
    from conftest import build_tiny_model

    shared = shared_path()
    if shared is not None:
        teacher = shared / "models" / "minilm-l6-squad2-demo"
        # the README's offline path: no student given, so one is distilled (briefly here) and cached
        env = {"XDANALYSIS_TEACHER": teacher, "XDANALYSIS_DATA": shared / "data" / "squad-v2-dev-half.json",
               "XDANALYSIS_LIMIT": 60, **LAB_CI}
    else:
        env = {"XDANALYSIS_TEACHER": build_tiny_model(tmp_path / "teacher", layers=3, seed=5),
               "XDANALYSIS_STUDENT": tiny_model_dir, "XDANALYSIS_DATA": squad_file}
    env["XDANALYSIS_RUNS"] = tmp_path / "runs"
    notebook = execute(ROOT / "notebooks" / "04_distillation.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    assert sum("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs) >= 2
    # the metric table shows each model's official scores on the runs the notebook cached
    from xdanalysis.runs.run import load_run

    runs = [load_run(p) for p in sorted(Path(env["XDANALYSIS_RUNS"]).iterdir()) if (p / "run.json").exists()]
    assert len(runs) == 2
    if shared is not None:
        assert (Path(env["XDANALYSIS_RUNS"]) / "students").is_dir()  # the distilled default student
        said = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs])
        assert "`nbroad/xdistil-l12-h384-squad2` cannot be had offline" in said  # and says so on screen
    shown = next(o["data"]["text/plain"] for o in outputs if "difference" in o.get("data", {}).get("text/plain", "")
                 and "HasAns" in o["data"]["text/plain"])
    for run in runs:  # two decimals, as people read them
        assert f"{run.scores()['f1']:.2f}".rstrip("0").rstrip(".") in shown
    assert "always abstaining" in shown
    headline = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    floor = 100 * (~runs[0].table["has_answer"]).mean()
    assert f"always abstaining {floor:.1f} / 0 / 100" in headline


def test_distillation_lab_runs(monkeypatch, tmp_path, squad_file):
    from conftest import build_tiny_model

    from xdanalysis.runs.run import load_run

    shared = shared_path()
    if shared is not None:
        env = {"XDANALYSIS_TEACHER": shared / "models" / "minilm-l6-squad2-demo",
               "XDANALYSIS_DATA": shared / "data" / "squad-v2-dev-half.json", **LAB_CI}
    else:  # a 6-layer random teacher: trained on one article (4 questions), evaluated on the other
        env = {"XDANALYSIS_TEACHER": build_tiny_model(tmp_path / "teacher", layers=6, seed=4),
               "XDANALYSIS_DATA": squad_file, "XDANALYSIS_TITLES": "Paris", **LAB_TINY}
    env.update({"XDANALYSIS_RUNS": tmp_path / "runs"})
    notebook = execute(ROOT / "notebooks" / "05_distillation_lab.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    students = sorted((tmp_path / "runs" / "students").iterdir())
    assert len(students) == 4  # three recipe students and one from other layers
    entries = json.loads((tmp_path / "runs" / "lab_results.json").read_text())["students"]
    assert len(entries) == 4
    for entry in entries:  # the record matches the runs, which cover held-out articles only
        run = load_run(tmp_path / "runs" / entry["eval_run"])
        assert run.scores()["f1"] == entry["scores"]["f1"]
        trained = json.loads((tmp_path / "runs" / entry["checkpoint"] / "distill.json").read_text())
        assert set(run.table["title"]).isdisjoint(trained["trained_on_titles"])
        assert entry["windows"] <= int(env["XDANALYSIS_LAB_WINDOWS"]) + 16  # the budget, to the batch
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    for said in ("collapse", "The two levers", "soft targets − hard labels", "Confounded", "layers "):
        assert said in text  # each verdict is stated, whichever way it goes


def test_robustness_and_calibration_runs(offline_env, monkeypatch, tmp_path):
    from xdanalysis.labs.probes import load_probes
    from xdanalysis.analysis.probes.summary import probe_summary

    env = {k: v for k, v in offline_env.items() if k in ("XDANALYSIS_MODEL", "XDANALYSIS_DATA")}
    env.update({"XDANALYSIS_OUT": tmp_path / "probes", "XDANALYSIS_RUN": tmp_path / "run"})
    if shared_path() is not None:
        env["XDANALYSIS_PER_ARTICLE"] = 25  # both held-out articles: probes borrow from the other one
    notebook = execute(ROOT / "notebooks" / "06_robustness_and_calibration.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    probes = load_probes(tmp_path / "probes")
    results = probes.table
    assert results["title"].nunique() == 2
    # the consistency table on screen is the package's, on the probes the notebook ran
    summary = probe_summary(probes).round(1).set_index("probe")
    shown = next(o["data"]["text/html"] for o in outputs
                 if "consistency if correct" in o.get("data", {}).get("text/html", ""))
    import re

    for name in summary.index[summary["n"] > 0]:
        row = re.search(rf"<th>{name}</th>(.*?)</tr>", shown, re.S).group(1)
        assert f"<td>{summary.loc[name, 'consistency']}</td>" in row
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    assert "cross-fitted, the honest gain" in text
    # the findings say the base rate behind the deletion probe, computed from the probes run here
    from xdanalysis.analysis.probes.summary import probe_failures

    removed = probe_failures(results).set_index("probe").loc["remove_answer_sentence"]
    assert f"had already abstained on {removed['abstained before']} of them" in text
    html = json.dumps([o.get("data", {}).get("text/html", "") for o in outputs], ensure_ascii=False)
    assert "fold 5 threshold (null odds)" in html and "kept the old answer" in html


def test_attribution_runs(offline_env, monkeypatch, tmp_path):
    env = dict(offline_env, XDANALYSIS_N_STEPS=8, XDANALYSIS_PER_GROUP=2)
    env.pop("XDANALYSIS_ENCODER", None)
    notebook = execute(ROOT / "notebooks" / "07_attribution.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    cases = text.count("convergence delta")  # one per decision found in the run (a tiny model lacks some)
    assert cases >= 1
    # the top words of each case, the correlation by layer, the deletion curves
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= cases + 2
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    html = json.dumps([o.get("data", {}).get("text/html", "") for o in outputs], ensure_ascii=False)
    assert "pushes up" in html and "merged (max)" in html
    # the long context is read across several windows, so the merge is shown
    printed = "".join(str(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    windows = re.search(r"characters, (\d+) windows of \d+ tokens", printed)
    assert windows and int(windows.group(1)) > 1, printed[-500:]


def test_running_a_notebook_in_place_changes_nothing_git_would_commit():
    """make install sets nbstripout up as a git filter: a notebook saved with outputs, execution counts and
    JupyterLab's language_info is, to git, the notebook committed (``git diff`` shows nothing, ``git add``
    stages nothing; ``git status`` may list it until then, as git compares file sizes first)."""
    path = ROOT / "notebooks" / "01_quickstart.ipynb"
    try:
        subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    configured = subprocess.run(["git", "config", "filter.nbstripout.clean"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    assert configured, "the nbstripout git filter is not set up: run make install (make test does)"
    status = subprocess.run(["git", "diff", "--stat", "--", str(path)], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    if status.strip():
        pytest.skip(f"{path.name} has uncommitted changes of its own")
    original = path.read_bytes()
    notebook = json.loads(original)
    notebook["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    for number, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = number + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
    try:
        path.write_text(json.dumps(notebook, indent=1) + "\n")
        diff = subprocess.run(["git", "diff", "--stat", "--", str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        assert diff.strip() == "", f"running a notebook shows in git diff: {diff}"
    finally:
        path.write_bytes(original)


def test_inside_the_model_runs(monkeypatch, tmp_path, squad_file):
    from conftest import build_tiny_model

    shared = shared_path()
    if shared is not None:
        env = {"XDANALYSIS_TEACHER": shared / "models" / "minilm-l6-squad2-demo",
               "XDANALYSIS_DATA": shared / "data" / "squad-v2-dev-half.json", "XDANALYSIS_LIMIT": 40}
    else:  # a 6-layer random teacher: trained on one article, read on the other
        env = {"XDANALYSIS_TEACHER": build_tiny_model(tmp_path / "teacher", layers=6, seed=4),
               "XDANALYSIS_DATA": squad_file, "XDANALYSIS_TITLES": "Paris"}
    env.update({"XDANALYSIS_RUNS": tmp_path / "runs", **(LAB_CI if shared is not None else LAB_TINY),
                "XDANALYSIS_LENS_TRAIN": 20, "XDANALYSIS_PAIRS": 3})
    notebook = execute(ROOT / "notebooks" / "09_inside_the_model.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # accuracy, distributions, patching, CKA
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    assert "decision to abstain" in text and "Layers from evidence" in text and "Student layers" in text
    import re

    from transformers import AutoConfig

    # the peak the sentence names is a layer of the teacher (0 = the embeddings), said with what it means
    found = re.search(r"answerable F1 peaks at layer (\d+) .*?The peak is ", text)
    layers = AutoConfig.from_pretrained(env["XDANALYSIS_TEACHER"]).num_hidden_layers
    assert found and 0 <= int(found.group(1)) <= layers
    printed = "".join(str(o.get("text", "")) for o in outputs)
    assert "the last layer of the logit lens is the model itself" in printed


def test_compression_runs(monkeypatch, tmp_path, tiny_model_dir, squad_file):
    shared = shared_path()
    env = {"XDANALYSIS_RUNS": tmp_path / "runs", "XDANALYSIS_CACHE": tmp_path / "cache",
           "XDANALYSIS_SPEED_QUESTIONS": 8, "XDANALYSIS_IMPORTANCE_QUESTIONS": 20}
    if shared is not None:  # the demo model on its held-out articles (its training.json names them)
        env.update({"XDANALYSIS_MODEL": as_readme_writes_it(shared / "models" / "minilm-l6-squad2-demo"),
                    "XDANALYSIS_DATA": as_readme_writes_it(shared / "data" / "squad-v2-dev-half.json"),
                    "XDANALYSIS_LIMIT": 60, "XDANALYSIS_VARIANTS": "fp32,int8-naive,int8,heads:0.3,layers:0,2,4"})
    else:
        env.update({"XDANALYSIS_MODEL": tiny_model_dir, "XDANALYSIS_DATA": squad_file, "XDANALYSIS_TITLES": "Paris",
                    "XDANALYSIS_VARIANTS": "fp32,int8,heads:0.5,layers:0"})
    notebook = execute(ROOT / "notebooks" / "08_compression.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    text = json.dumps([o.get("data", {}).get("text/markdown", "") for o in outputs], ensure_ascii=False)
    variants = env["XDANALYSIS_VARIANTS"].split(",")
    assert text.count("x float32's speed") == len([v for v in variants if not v.isdigit()]) - 1  # one verdict each
    assert "held-out questions" in text and "unanswerable" in text
    # two frontiers (speed, size), the threshold shifts, the transitions, the head importance
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "runs" / "compress").is_dir()  # under XDANALYSIS_RUNS, as every notebook's runs


def test_why_unanswerable_runs(monkeypatch, tmp_path, tiny_model_dir, squad_file):
    """On the complete dev set with SQuAD2-CR's real annotations when the shared assets are given (a small
    limit and samples); else the tiny model on the tiny data with causes and rationales written here."""
    shared = shared_path()
    small = {"XDANALYSIS_ATTRIBUTION_QUESTIONS": 6, "XDANALYSIS_IG_QUESTIONS": 2, "XDANALYSIS_N_STEPS": 4,
             "XDANALYSIS_DELETION_QUESTIONS": 20, "XDANALYSIS_RUNS": tmp_path / "runs"}
    if shared is not None:
        env = {"XDANALYSIS_MODEL": as_readme_writes_it(shared / "models" / "minilm-l6-squad2-demo"),
               "XDANALYSIS_DATA": as_readme_writes_it(shared / "data" / "squad-v2-dev.json"),
               "XDANALYSIS_CAUSES": as_readme_writes_it(shared / "data" / "squad2-cr" / "causes-dev.tsv"),
               "XDANALYSIS_RATIONALES": as_readme_writes_it(shared / "data" / "squad2-cr" / "rationales-dev.tsv"),
               "XDANALYSIS_LIMIT": 400, **small}
    else:
        causes, rationales = tmp_path / "causes.tsv", tmp_path / "rationales.tsv"
        causes.write_text("qid\treason\nn4\tE\np3\tE\np4\t#\n")
        rationales.write_text("qid\tquestion\tword_att\n"
                              "n4\tWho gave their name to Normandy in the 1000s and 1100s ?\t0,0,0,0,0,1,0,0,0,0,0,0\n"
                              "p3\tWhat is the capital of Spain ?\t0,0,0,0,0,1,0\n"
                              "p4\tHow tall is the Eiffel Tower ?\t0,1,0,0,0,0,0\n")
        env = {"XDANALYSIS_MODEL": tiny_model_dir, "XDANALYSIS_DATA": squad_file, "XDANALYSIS_CAUSES": causes,
               "XDANALYSIS_RATIONALES": rationales, **small}
    notebook = execute(ROOT / "notebooks" / "10_why_unanswerable.ipynb", env, monkeypatch, tmp_path)
    outputs = outputs_of(notebook)
    markdown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "falls most for" in markdown  # the cause finding, computed
    assert "vs random" in markdown and ("abstentions, deleting the words humans marked" in markdown
                                        or "abstained on none of the questions the deletion probe" in markdown)
    # causes, margins, plausibility overall and per cause, deletion flips
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "text-decoration:underline" in html  # the human rationale shown beside an attribution


def test_finished_bars_give_way_in_a_notebook_and_stay_in_a_terminal():
    """A lab's many stages show one bar at a time in a notebook (each closed when done), not a stack."""
    from xdanalysis.core.common import bars_stay

    assert bars_stay()  # here, a terminal
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("from xdanalysis.core.common import bars_stay, progress_bar\n"
                                                "print(bars_stay(), progress_bar(range(2), disable=True).leave)")]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    assert [o["text"] for o in notebook.cells[0].outputs if o["output_type"] == "stream"] == ["False False\n"]
    from xdanalysis.core.common import progress_bar

    assert progress_bar(range(2), disable=True).leave and not progress_bar(range(2), disable=True, leave=False).leave


def test_transformers_own_bars_give_way_in_a_notebook_too(tiny_model_dir, tmp_path):
    """Loading and saving a model draws transformers' own bars ("Loading weights", "Writing model shards"): in
    a notebook they are asked to go when done (leave=False), like ours; a hook set before is still called and
    put back; in a terminal they are left as transformers draws them."""
    code = f"""
from transformers.utils import logging
from xdanalysis.model.checkpoint import save_checkpoint
from xdanalysis.model.loading import load_qa_model
asked = []
def outer(factory, args, kwargs):
    asked.append((kwargs.get("desc"), kwargs.get("leave", True)))
    return factory(*args, **kwargs)
logging.set_tqdm_hook(outer)
model, tokenizer = load_qa_model({str(tiny_model_dir)!r})
save_checkpoint(model, tokenizer, {str(tmp_path / "copy")!r})
print(sorted(set(asked)), logging.set_tqdm_hook(None) is outer)
"""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(code)]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    printed = "".join(o["text"] for o in notebook.cells[0].outputs if o["output_type"] == "stream"
                      and o["name"] == "stdout")
    assert printed.strip() == "[('Loading weights', False), ('Writing model shards', False)] True", printed
    namespace = {}
    exec(code.replace("print(", "result = ("), namespace)  # here, a terminal: transformers' own choice stays
    assert ("Loading weights", True) in namespace["asked"] and ("Loading weights", False) not in namespace["asked"]
