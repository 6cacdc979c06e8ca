"""environment.yml (conda users) and pyproject.toml (pip) declare the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_items = {re.sub(r"^\s*-\s*", "", line).strip() for line in lines[start + 1:] if line.strip().startswith("-")}
    pip_items.discard("-e .")
    assert pip_items == declared


def test_torch_is_pinned_everywhere():
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0" in (ROOT / "environment.yml").read_text()
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_data_metrics_and_errors_never_import_torch():
    import subprocess
    import sys

    code = ("import sys, xdanalysis.data, xdanalysis.metrics, xdanalysis.errors, xdanalysis.decoding; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
