"""Imports point inward, as the architecture's package table says."""

from __future__ import annotations

import ast
from pathlib import Path

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
