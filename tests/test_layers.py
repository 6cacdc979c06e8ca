"""The folder tree is the architecture: every import in the package (top-level or inside a function,
sub-package ``__init__`` files included) goes down the floors or stays in its own sub-package, no
module reaches itself through imports, and no private name crosses a sub-package."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xdanalysis"

# Lower floors never import higher ones; one floor's sub-packages do not import each other.
FLOORS = {"core": 0, "model": 1, "runs": 2, "analysis": 3, "interpret": 4, "distill": 4, "compress": 5, "labs": 6,
          "views": 7, "apps": 8}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path):
    """``(line, imported module, [names])`` for every import of the package in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("xdanalysis"):
                continue
            names = [a.name for a in node.names]
            if node.module is None or Path(PACKAGE.parent, *target.split("."), *names[:1]).with_suffix(".py").exists():
                for n in names:  # ``from . import x`` imports the module x
                    yield node.lineno, f"{target}.{n}", []
            else:
                yield node.lineno, target, names
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("xdanalysis"):
                    yield node.lineno, a.name, []


def sub_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


MODULES = sorted(PACKAGE.rglob("*.py"))


def graph():
    return {module_name(p): {(line, target, tuple(names)) for line, target, names in imports_of(p)} for p in MODULES}


def test_every_module_is_on_a_floor():
    assert {sub_package(module_name(p)) for p in MODULES} - {None} == set(FLOORS)


def test_imports_go_down_the_floors():
    wrong = []
    for source, edges in graph().items():
        here = sub_package(source)
        if here is None:
            continue  # the package's own __init__ sits on top of everything
        for line, target, _ in edges:
            there = sub_package(target)
            if there is None:
                wrong.append(f"{source}:{line} imports the package root {target} (a circle through __init__)")
            elif there != here and FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{source}:{line} ({here}, floor {FLOORS[here]}) imports {target} "
                             f"({there}, floor {FLOORS[there]})")
    assert not wrong, "\n".join(wrong)


def test_analysis_needs_no_model():
    """``analysis`` works on a run's table: it imports nothing of ``model`` and, of ``runs``, only the reading of
    a finished run (a run directory given instead of a table); everything that runs a model is in ``labs``."""
    wrong = [f"{source}:{line} imports {target}" for source, edges in graph().items()
             if sub_package(source) == "analysis" for line, target, _ in edges
             if sub_package(target) == "model" or (sub_package(target) == "runs" and target != "xdanalysis.runs.run")]
    assert not wrong, "\n".join(wrong)


def test_no_private_name_crosses_a_sub_package():
    wrong = [f"{source}:{line} imports {n} from {target}"
             for source, edges in graph().items() for line, target, names in edges
             for n in names if n.startswith("_") and sub_package(target) != sub_package(source)]
    assert not wrong, "\n".join(wrong)


def test_no_module_reaches_itself():
    edges = {}
    for source, found in graph().items():
        targets = set()
        for _, target, _ in found:
            while target and target not in edges and target not in {module_name(p) for p in MODULES}:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != source:
                targets.add(target)
        edges[source] = targets
    # A sub-package's __init__ re-exports its modules; importing one of them through it is not a circle.
    edges = {s: {t for t in ts if not (s.startswith(t + ".") and t != "xdanalysis")} for s, ts in edges.items()}

    def reaches(start, goal, seen):
        for n in edges.get(start, ()):
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                if reaches(n, goal, seen):
                    return True
        return False

    circles = sorted(m for m in edges if m != "xdanalysis" and reaches(m, m, set()))
    assert not circles, f"modules in an import circle: {circles}"


@pytest.mark.parametrize("source,target,allowed", [
    ("xdanalysis.core.text", "xdanalysis.model.forward", False),
    ("xdanalysis.views.plots", "xdanalysis.analysis.slices", True),
    ("xdanalysis.interpret.attention", "xdanalysis.distill.train", False),
])
def test_the_rule_itself(source, target, allowed):
    """The floor rule says no to an upward or sideways import, yes to a downward one."""
    here, there = sub_package(source), sub_package(target)
    assert (there == here or FLOORS[there] < FLOORS[here]) is allowed


def test_core_and_analysis_never_import_torch():
    import subprocess
    import sys

    code = "import sys, xdanalysis.core, xdanalysis.analysis; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_no_package_file_is_ignored_by_git():
    """A sub-package whose name an ignore rule also matches (``runs/``) would be missing from every
    clone: the package's own files are never ignored."""
    import subprocess

    try:
        ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "xdanalysis"],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert not [f for f in ignored if f.endswith(".py")]
