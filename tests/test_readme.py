"""Every Python snippet of the README runs as written, in order, from a project folder with
``../shared`` beside it (as a newcomer's clone has it)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_snippets_that_compile():
    snippets = python_snippets()
    assert len(snippets) >= 8
    for k, code in enumerate(snippets, 1):
        compile(code, f"README snippet {k}", "exec")


@pytest.mark.slow
def test_every_readme_snippet_runs_as_written(shared, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "shared").symlink_to(shared)  # ../shared, as beside a clone
    monkeypatch.chdir(project)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {}
    for k, code in enumerate(python_snippets(), 1):
        try:
            exec(compile(code, f"README snippet {k}", "exec"), namespace)
        except Exception as error:  # name the snippet, not only the line
            raise AssertionError(f"README snippet {k} fails as written:\n{code}") from error
    # what the snippets promise
    assert namespace["run"].scores()["total"] == 779  # the held-out articles
    assert namespace["short"].windowing.max_seq_length == 256
    assert set(namespace["results"].table["probe"]) == {"remove_answer_sentence", "question_typo"}
    assert "always abstaining" in namespace["result"].metrics.columns
    assert namespace["student"].run.scores()["total"] == 779
    compressed = namespace["lab"]  # the compression lab: four variants on the same 100 held-out questions
    assert list(compressed.table["variant"]) == ["fp32", "int8 naive", "int8", "heads -30%"]
    assert (compressed.table["questions"] == 100).all() and (project / "runs/compress/try/comparison.csv").exists()
    lab = namespace["made"]  # the lab's two students, recorded beside their runs
    assert lab["soft targets"].run.scores()["total"] == 779 and (project / "runs" / "lab_results.json").exists()
