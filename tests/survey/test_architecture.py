"""The shape of survey/ (docs/architecture.md), checked on the source itself: a folder per
domain, the web and console frameworks only at the edges, the DBAPI layer only in stores.

The domains' order (access < registry < ... < demo) is import-linter's `layers` contract in
pyproject.toml, run by .ci/run; these rules are the ones a layers contract cannot say.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SURVEY = Path(__file__).resolve().parents[2] / "survey"
DOMAINS = (
    "access",
    "registry",
    "sampling",
    "ingestion",
    "outreach",
    "answering",
    "results",
    "publication",
    "demo",
)
EDGES = ("api.py", "pages.py", "cli.py")  # a domain's modules that may speak HTTP or argv
TOP_LEVEL = {"__init__.py", "app.py", "cli.py", "config.py", "context.py", "errors.py", "models.py"}


def _modules() -> Iterator[Path]:
    for path in sorted(SURVEY.rglob("*.py")):
        if "migrations" not in path.relative_to(SURVEY).parts:
            yield path


def _imported(path: Path) -> set[str]:
    """Every module a file imports at run time, at any depth of the file (function bodies
    included; imports under `if TYPE_CHECKING:` only name types and are left out)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # not walked below: ast.walk reads the children lazily
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _uses(names: set[str], package: str) -> bool:
    return any(name == package or name.startswith(f"{package}.") for name in names)


def _name(path: Path) -> str:
    return path.relative_to(SURVEY.parent).as_posix()


def test_the_top_of_survey_holds_only_the_service_frame() -> None:
    top = {p.name for p in SURVEY.glob("*.py")}
    assert top <= TOP_LEVEL, sorted(top - TOP_LEVEL)
    assert len(top) <= 8
    folders = {p.name for p in SURVEY.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {*DOMAINS, "kernel", "http", "migrations"}


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_is_a_package_with_its_edges_named_alike(domain: str) -> None:
    folder = SURVEY / domain
    assert (folder / "__init__.py").exists()
    assert (folder / "cli.py").exists() or (folder / "api.py").exists()
    # A domain's controllers and commands live in api.py, pages.py and cli.py only.
    web = [p for p in folder.rglob("*.py") if p.name not in EDGES and "Controller" in p.read_text()]
    assert not [p for p in web if "(Controller)" in p.read_text()], web


def test_only_the_edges_import_litestar_or_argparse() -> None:
    offenders = []
    for path in _modules():
        relative = path.relative_to(SURVEY)
        edge = (
            relative.parts[0] == "http"
            or relative.as_posix() in ("app.py", "cli.py")
            or (relative.parts[0] in DOMAINS and relative.name in EDGES)
        )
        names = _imported(path)
        if not edge and (_uses(names, "litestar") or _uses(names, "argparse")):
            offenders.append(_name(path))
    assert offenders == []


def test_services_never_import_an_edge() -> None:
    """A service that imported a domain's api, pages or cli (or http/) would drag the web
    framework into the pure layers through the back door."""
    offenders = []
    for path in _modules():
        relative = path.relative_to(SURVEY)
        if relative.parts[0] not in (*DOMAINS, "kernel") or relative.name in EDGES:
            continue
        for name in _imported(path):
            parts = name.split(".")
            if parts[0] != "survey" or len(parts) < 2:
                continue
            if parts[1] == "http" or (len(parts) > 2 and f"{parts[2]}.py" in EDGES):
                offenders.append(f"{_name(path)} -> {name}")
    assert offenders == []


def test_only_stores_use_the_dbapi_layer() -> None:
    users = sorted(
        _name(path)
        for path in _modules()
        if _uses(_imported(path), "survey.kernel.dbapi") and path.name != "dbapi.py"
    )
    assert users and all(name.endswith("/store.py") for name in users), users


_SQL_BUILDERS = {"select", "insert", "update", "delete", "text"}  # sa.select(...)
_SQL_RUNNERS = {"scalar", "scalars", "execute", "exec_driver_sql"}  # session.execute(...)


def _sql_calls(path: Path) -> list[str]:
    """Calls that build or run SQL: `sa.select(...)`, `session.execute(...)`, `conn.scalars(...)`
    (a dict's update or an axis's text are not)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, receiver = node.func.attr, node.func.value
        builds = name in _SQL_BUILDERS and isinstance(receiver, ast.Name)
        builds = builds and receiver.id in ("sa", "sqlalchemy")
        if builds or name in _SQL_RUNNERS:
            found.append(f"{_name(path)}:{node.lineno} .{name}(")
    return found


def test_every_domain_keeps_its_sql_in_its_store() -> None:
    offenders = []
    for domain in DOMAINS:
        for path in (SURVEY / domain).rglob("*.py"):
            if path.name != "store.py":
                offenders.extend(_sql_calls(path))
    assert offenders == []


def test_handlers_take_their_context_by_injection() -> None:
    """No handler digs the context out of the app's state: Litestar injects it by name."""
    offenders = [
        _name(path)
        for path in _modules()
        if path.relative_to(SURVEY).parts[0] in DOMAINS and "app.state" in path.read_text()
    ]
    assert offenders == []
