"""environment.yml (conda users) and pyproject.toml (pip) declare the same dependencies."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_and_pyproject_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = set(project["dependencies"]) | set(extras["test"]) | set(extras["ray"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pip_items = {re.sub(r"^\s*-\s*", "", line).strip() for line in lines[start + 1:] if line.strip().startswith("-")}
    pip_items.discard("-e .")
    assert pip_items == declared


def test_torch_is_pinned_everywhere():
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0" in (ROOT / "environment.yml").read_text()
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_data_metrics_errors_and_probes_never_import_torch():
    import subprocess
    import sys

    code = ("import sys, xdanalysis.data, xdanalysis.metrics, xdanalysis.errors, xdanalysis.decoding, xdanalysis.probes; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_module_imports_form_no_circle():
    """Every ``from .x import`` in the package, top-level or inside a function, as a graph: no cycles."""
    import ast

    package = ROOT / "xdanalysis"
    graph = {}
    for file in package.glob("*.py"):
        edges = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    edges.add(node.module.split(".")[0])
                else:
                    edges.update(alias.name for alias in node.names)
        graph[file.stem] = edges - {file.stem}

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, (*seen, n))) for n in graph.get(start, ()))

    circles = sorted(m for m in graph if m != "__init__" and reaches(m, m))
    assert not circles, f"modules in an import circle: {circles}"


def test_library_calls_switch_no_matplotlib_backend():
    source = "".join(f.read_text() for f in (ROOT / "xdanalysis").glob("*.py"))
    assert "matplotlib.use(" not in source
