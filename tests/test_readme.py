"""The README's endpoint table against the URL conf, both ways.

Every `METHOD /path` in the first column of a README table must resolve (HTTP through
``imagepipe.urls``, ``WS`` through ``imagepipe.routing.websocket_urlpatterns``), with a method its
view serves where the view declares its methods; and every route the project defines must be
listed, except the admin's pages behind ``/admin/``, Django's ``accounts/`` views other than login
and logout, and DRF's format-suffix variants. Paths are compared, never view modules, so views may
move between apps freely. Pure: no database, no cache, no broker.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.exceptions import Resolver404

from imagepipe.routing import websocket_urlpatterns

README = Path(__file__).resolve().parent.parent / "README.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "WS")
ENTRY = re.compile(rf"^({'|'.join(METHODS)}) (/\S*)$")
FIRST_CELL = re.compile(r"^\|((?:`[^`]*`|[^|`])*)\|")  # a | inside a code span doesn't end the cell
CODE = re.compile(r"`([^`]*)`")
PLACEHOLDER = re.compile(r"\{(\w+)\}|<(\w+)>")
SAMPLE_ID = str(uuid.UUID(int=0x1234))
# Any other placeholder is an id: a UUID.
SAMPLES = {
    "stage": "0",
    "index": "0",
    "which": "result",
    "level": "0",
    "column": "0",
    "row": "0",
    "extension": "jpg",
}
ALWAYS_LISTED = {"accounts/login/", "accounts/logout/", "admin/"}


@pytest.fixture
def fresh_throttle_counts():
    """Overrides tests/conftest.py's, which clears the Redis cache: this module needs none."""


@dataclass(frozen=True)
class Entry:
    method: str
    path: str  # as the README writes it, placeholders and all
    line: int

    def __str__(self) -> str:
        return f"{self.method} {self.path} (README.md line {self.line})"

    @property
    def sample(self) -> str:
        """The path with sample values for its placeholders, without any query string."""

        def value(match: re.Match) -> str:
            return SAMPLES.get(match[1] or match[2], SAMPLE_ID)

        return PLACEHOLDER.sub(value, self.path.split("?")[0])


def endpoint_entries(text: str) -> tuple[list[Entry], list[str]]:
    """Every `METHOD /path` in the first column of the README's tables, and what couldn't be read.

    A table is an endpoint table when a first cell holds one; there every code span of the first
    column must be one, or `.../rest` continuing the previous entry's path.
    """
    entries: list[Entry] = []
    unreadable: list[str] = []
    table: list[tuple[int, str]] = []
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.startswith("|"):
            table.append((number, line))
            continue
        cells = [(n, match[1]) for n, row in table[2:] if (match := FIRST_CELL.match(row))]
        table = []
        if not any(ENTRY.match(span) for _, cell in cells for span in CODE.findall(cell)):
            continue
        for row_number, cell in cells:
            for span in CODE.findall(cell):
                if match := ENTRY.match(span):
                    entries.append(Entry(match[1], match[2], row_number))
                elif span.startswith(".../") and entries:
                    entries.append(continued(entries[-1], span, row_number))
                else:
                    unreadable.append(f"`{span}` (README.md line {row_number})")
    return entries, unreadable


def continued(previous: Entry, span: str, line: int) -> Entry:
    """`.../preview/result/` after `GET /api/jobs/{id}/preview/original/`: the same up to `preview/`."""
    rest = span.removeprefix(".../")
    head = rest.split("/")[0]
    cut = previous.path.rfind(f"/{head}/")
    return Entry(previous.method, (previous.path[: cut + 1] if cut >= 0 else "/") + rest, line)


def join(route: str, rest: str) -> str:
    """Join two routes as Django does for ResolverMatch.route: without the second one's ^."""
    return rest if not route else route + rest.removeprefix("^")


def http_routes(patterns, prefix: str = "", format_suffix: bool = False):
    """(route, pattern, is a format-suffix variant) for every URL pattern, includes followed."""
    for pattern in patterns:
        suffix = format_suffix or "format" in pattern.pattern.regex.groupindex
        route = join(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from http_routes(pattern.url_patterns, route, suffix)
        elif isinstance(pattern, URLPattern):
            yield route, pattern, suffix


def must_be_listed(route: str) -> bool:
    static = settings.STATIC_URL.lstrip("/")
    if route in ALWAYS_LISTED:
        return True
    return not route.startswith(("admin/", "accounts/", static))


def readable(route: str) -> str:
    """'api/^jobs/(?P<pk>[^/.]+)/$' -> '/api/jobs/{pk}/', to name a route in a message."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>", lambda m: "{" + (m[1] or m[2]) + "}", route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "")


IMPLIED = {"head", "options"}  # served wherever GET is, so the README doesn't list them


def allowed_methods(view) -> set[str] | None:
    """The methods a view serves, where it declares them; None for a plain function view."""
    if actions := getattr(view, "actions", None):  # a DRF viewset's route: exactly these
        # (less HEAD, which DRF adds to this dict at the first GET it serves)
        return {method.upper() for method in actions if method not in IMPLIED}
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is None:
        return None
    declared = [method for method in cls.http_method_names if method not in IMPLIED and hasattr(cls, method)]
    return {method.upper() for method in declared}


def websocket_route(path: str) -> str | None:
    """The websocket route that serves ``path`` as Channels' URLRouter matches it; None if only the
    catch-all (the route "") would take it."""
    for pattern in websocket_urlpatterns:
        if str(pattern.pattern) and pattern.pattern.match(path.lstrip("/")):
            return str(pattern.pattern)
    return None


def resolve_entry(entry: Entry) -> tuple[str | None, str]:
    """(the route serving the entry, or None; why not, or "")."""
    if entry.method == "WS":
        route = websocket_route(entry.sample)
        return route, "" if route else f"no websocket route matches {entry.sample}"
    try:
        match = get_resolver().resolve(entry.sample)
    except Resolver404:
        return None, f"no URL pattern matches {entry.sample}"
    methods = allowed_methods(match.func)
    if methods is not None and entry.method not in methods:
        return None, f"{match.route!r} serves {', '.join(sorted(methods))}, not {entry.method}"
    return match.route, ""


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    found, unreadable = endpoint_entries(README.read_text(encoding="utf-8"))
    assert not unreadable, "README.md: an endpoint table's first column holds more than `METHOD /path`:\n" + (
        "\n".join(f"  {span}" for span in unreadable)
    )
    assert len(found) > 10, f"README.md: no endpoint table found (only {len(found)} `METHOD /path` entries)"
    return found


def test_every_path_the_readme_lists_is_served(entries):
    problems = []
    for entry in entries:
        route, why = resolve_entry(entry)
        if route is None:
            problems.append(f"  {entry}: {why}")
    assert not problems, "README.md lists endpoints the URL conf does not serve:\n" + "\n".join(problems)


def test_every_route_the_project_defines_is_in_the_readme(entries):
    listed: dict[str, set[str]] = {}  # route -> the methods the README names for it
    for entry in entries:
        route, _ = resolve_entry(entry)
        if route is not None:
            listed.setdefault(route, set()).add(entry.method)
    missing = []
    for route, pattern, format_suffix in http_routes(get_resolver().url_patterns):
        if format_suffix or not must_be_listed(route):
            continue
        if route not in listed:
            missing.append(f"  {readable(route)} (route {route!r}, name {pattern.name!r})")
            continue
        for method in sorted((allowed_methods(pattern.callback) or set()) - listed[route]):
            if getattr(pattern.callback, "actions", None):  # a viewset names each method it routes
                missing.append(f"  {method} {readable(route)} (route {route!r}, name {pattern.name!r})")
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        if route and route not in listed:
            missing.append(f"  WS {readable(route)} (websocket route {route!r})")
    assert not missing, "routes missing from README.md's endpoint table:\n" + "\n".join(missing)


def test_the_table_reader_reads_continuations_and_placeholders():
    text = "\n".join(
        [
            "| method and path | does |",
            "|---|---|",
            "| `GET /api/jobs/{id}/preview/original/`, `.../preview/result/` | previews |",
            "| `GET /api/jobs/{id}/tiles/{stage}/{index}/preview/` | a tile, `a | b` in a span |",
            "",
            "| op | kind |",
            "|---|---|",
            "| `grayscale` | point |",
        ]
    )
    entries, unreadable = endpoint_entries(text)
    assert unreadable == []
    assert [(e.method, e.path, e.line) for e in entries] == [
        ("GET", "/api/jobs/{id}/preview/original/", 3),
        ("GET", "/api/jobs/{id}/preview/result/", 3),
        ("GET", "/api/jobs/{id}/tiles/{stage}/{index}/preview/", 4),
    ]
    assert entries[2].sample == f"/api/jobs/{SAMPLE_ID}/tiles/0/0/preview/"
    assert readable("api/^jobs/(?P<pk>[^/.]+)/preview/(?P<which>original|result)/$") == (
        "/api/jobs/{pk}/preview/{which}/"
    )
    assert readable("ws/jobs/<uuid:job_id>/") == "/ws/jobs/{job_id}/"
