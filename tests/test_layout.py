"""The layout keeps its promise: dependencies run from the apps to the project, not back."""

import ast
from pathlib import Path

from imagepipe.processes import BASE_DIR

APPS = {"jobs", "workers", "system"}
# The URL and websocket routing confs are where the project names its apps' views.
ROUTING = {"imagepipe/urls.py", "imagepipe/routing.py"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_in_imagepipe_but_the_routing_imports_an_app():
    offenders = {
        str(path.relative_to(BASE_DIR)): sorted(imported_packages(path) & APPS)
        for path in sorted((BASE_DIR / "imagepipe").rglob("*.py"))
        if str(path.relative_to(BASE_DIR)) not in ROUTING
    }
    assert {path: apps for path, apps in offenders.items() if apps} == {}


def test_the_core_needs_no_django():
    core = sorted((BASE_DIR / "imagepipe" / "core").glob("*.py"))
    assert core
    assert {str(p.relative_to(BASE_DIR)) for p in core if "django" in imported_packages(p)} == set()
