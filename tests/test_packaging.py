"""environment.yml (conda users) and pyproject.toml (pip) declare the same dependencies."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_environment_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = set(project["dependencies"]) | set(extras["test"]) | set(extras["ray"]) | set(extras["openvino"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_items = {re.sub(r"^\s*-\s*", "", line).strip() for line in lines[start + 1:] if line.strip().startswith("-")}
    pip_items.discard("-e .")
    assert pip_items == declared


def test_torch_is_pinned_everywhere():
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0" in (ROOT / "environment.yml").read_text()
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_library_calls_switch_no_matplotlib_backend():
    source = "".join(f.read_text() for f in (ROOT / "xdanalysis").rglob("*.py"))
    assert "matplotlib.use(" not in source


def test_every_progress_bar_is_the_package_one():
    """A bar made with tqdm directly would stay on screen in a notebook, stacking under the next one; every
    bar goes through ``core.common.progress_bar`` (leave: ``bars_stay()``), the one place tqdm is called."""
    calls = [f"{path.relative_to(ROOT)}:{number}" for path in sorted((ROOT / "xdanalysis").rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\btqdm\(", line) and path.name != "common.py"]
    assert calls == []
