"""Named SQL queries kept in ``.sql`` files next to the code that runs them.

A file holds blocks introduced by ``-- name: <query_name>``; each block is one statement
(or a few, for simple-protocol execution). Values are always bind parameters (``$1``…),
never formatted in.
"""

from __future__ import annotations

import re
from importlib import resources

from ledger.errors import LedgerError

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str) -> dict[str, str]:
    """Read ``filename`` from ``package`` and return its queries by name."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise LedgerError(f"{package}/{filename}: query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries
