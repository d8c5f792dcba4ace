"""Imports point inward, as the architecture's package table says."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
OURS = {"ledger", "projections", "worker", "api", "runledger"}
ALLOWED = {
    "ledger": set(),
    "projections": {"ledger"},
    "worker": {"ledger", "projections"},
    "api": {"ledger", "projections"},
    # the command line is the composition root: the only place that wires everything
    "runledger": {"ledger", "projections", "worker", "api"},
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_no_forbidden_import_arrows() -> None:
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in imports_of(path) - allowed - {package}:
                violations.append(f"{path.relative_to(ROOT)} imports {target}")
    assert violations == []


def test_domain_is_pure() -> None:
    """The Run aggregate does no I/O: no drivers, sockets, environment or event loop."""
    banned = {"asyncpg", "redis", "asyncio", "os", "socket", "playwright", "httpx", "psycopg"}
    source = ROOT / "ledger" / "domain.py"
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert names & banned == set()


# --- import cycles ---------------------------------------------------------------------------
# A cycle makes import order matter (a partly initialised module, an ImportError that depends
# on which module is imported first) and usually means a fact lives in the wrong module.
# Two checks: cycles among imports run at import time, and cycles that close only through an
# import deferred into a function or under ``if TYPE_CHECKING:`` — such an import hides a
# circle without removing it (api.metrics ⇄ api.services and runledger.cli ⇄ runledger.dev
# were two), so it is refused as well.


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_time_nodes(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported: module level, nested in
    ``if``/``try``/``with``/class bodies, but not in functions nor ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += import_time_nodes(node.body)
            found += import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(handler.body for handler in node.handlers)):
                found += import_time_nodes(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += import_time_nodes(node.body)
    return found


def every_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, deferred ones included."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def imported_modules(name: str, tree: ast.Module, modules: set[str], *,
                     is_package: bool, deferred: bool = False) -> set[str]:
    """The ``modules`` that module ``name`` imports at import time, each the most specific
    module named (``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``)."""
    package = name if is_package else name.rpartition(".")[0]

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    targets: set[str | None] = set()
    for node in every_import(tree) if deferred else import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            targets.update(resolve(alias.name) for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: level 1 is this package, each further dot one level up
            parts = package.split(".")
            anchor = parts[: len(parts) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        targets.update(resolve(f"{base}.{alias.name}") for alias in node.names)
    return {t for t in targets if t is not None and t != name}


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    """Product module → the product modules it imports (at import time, or at all)."""
    paths = {module_name(p): p for package in OURS for p in (ROOT / package).rglob("*.py")}
    return {name: imported_modules(name, ast.parse(path.read_text(), str(path)), set(paths),
                                   is_package=path.name == "__init__.py", deferred=deferred)
            for name, path in paths.items()}


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str,
                   within: set[str]) -> list[str]:
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        if path[-1] == goal:
            return path
        for step in sorted(graph[path[-1]] & within - seen):
            seen.add(step)
            paths.append([*path, step])
    return []


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle that closes through one edge of a strongly connected group (the
    shortest way back), each listed once, starting from its smallest module name."""
    # Strongly connected groups by reachability: fine for a few hundred modules.
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        reach[start] = seen
    cycles: set[tuple[str, ...]] = set()
    for source, targets in graph.items():
        group = {m for m in reach[source] if source in reach[m]}
        for target in targets & group:
            path = [source, *_shortest_path(graph, target, source, group)]
            ring = path[:-1]
            turn = ring.index(min(ring))
            cycles.add(tuple(ring[turn:] + ring[:turn]))
    return [[*cycle, cycle[0]] for cycle in sorted(cycles)]


def test_the_cycle_finder_sees_relative_imports_and_skips_deferred_ones() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "from . import sibling\nfrom ..other import thing\nfrom .sub.deep import name\n"
              "if TYPE_CHECKING:\n    import p.typing_only\n"
              "def f():\n    import p.deferred\n"
              "try:\n    import p.optional\nexcept ImportError:\n    pass\n")
    modules = {"p", "p.a", "p.sibling", "p.sub", "p.sub.deep", "p.typing_only", "p.deferred",
               "p.optional", "other", "other.thing"}
    found = imported_modules("p.a", ast.parse(source), modules, is_package=False)
    assert found == {"p.sibling", "other.thing", "p.sub.deep", "p.optional"}
    everything = imported_modules("p.a", ast.parse(source), modules, is_package=False,
                                  deferred=True)
    assert everything == found | {"p.typing_only", "p.deferred"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"], ["e", "e2", "e"]]


@pytest.mark.parametrize("deferred", [False, True], ids=["at-import-time", "even-deferred"])
def test_no_import_cycles(deferred: bool) -> None:
    cycles = import_cycles(import_graph(deferred=deferred))
    kind = "import cycles" + (" (counting imports in functions and TYPE_CHECKING blocks)"
                              if deferred else "")
    assert not cycles, f"{kind}: move the shared fact down a layer instead:\n  " + (
        "\n  ".join(" → ".join(cycle) for cycle in cycles))
