"""The layout keeps its promise: imports run one way, system -> pipeline -> jobs -> imagepipe.

A package may import those to its right, never one to its left. The project's URL and websocket
routing confs are the one exception: that is where the project names its apps' views.
"""

import ast
from pathlib import Path

import pytest

from imagepipe.processes import BASE_DIR

LAYERS = ["system", "pipeline", "jobs", "imagepipe"]  # each may import only those after it
ROUTING = {"imagepipe/urls.py", "imagepipe/routing.py"}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, relative imports resolved to its own package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = path.relative_to(BASE_DIR).parts[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(own if node.level else (node.module or "").split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    found = sorted((BASE_DIR / package).rglob("*.py"))
    assert found, package
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_layers_below_it(package):
    above = set(LAYERS[: LAYERS.index(package)])
    offenders = {
        str(path.relative_to(BASE_DIR)): sorted(imported_packages(path) & above)
        for path in modules(package)
        if str(path.relative_to(BASE_DIR)) not in ROUTING
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_sees_an_import_that_runs_the_wrong_way(tmp_path, monkeypatch):
    module = BASE_DIR / "jobs" / "views.py"
    assert "pipeline" not in imported_packages(module)
    wrong = tmp_path / "jobs" / "wrong.py"
    wrong.parent.mkdir()
    wrong.write_text("from pipeline import kafka\nfrom .models import Job\n")
    monkeypatch.setattr("tests.test_layout.BASE_DIR", tmp_path)
    assert imported_packages(wrong) == {"pipeline", "jobs"}


def test_the_core_needs_no_django():
    core = modules("imagepipe/core")
    assert {str(p.relative_to(BASE_DIR)) for p in core if "django" in imported_packages(p)} == set()
