"""Migrating from zero gives exactly the committed schema (``schema.txt``), so every schema
change shows in review as a diff of that file, next to the migration that made it."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from runledger.testing import migrated_schema_dump

pytestmark = pytest.mark.integration

DUMP = Path(__file__).with_name("schema.txt")
REGENERATE = ("UPDATE_SCHEMA_DUMP=1 uv run pytest tests/ledger/test_schema_dump.py "
              "(or: uv run python -m runledger.testing dump-schema > tests/ledger/schema.txt)")


async def test_migrated_schema_matches_the_committed_dump(pg_server_url: str) -> None:
    actual = await migrated_schema_dump(pg_server_url)
    if os.environ.get("UPDATE_SCHEMA_DUMP") == "1":
        DUMP.write_text(actual)
    expected = DUMP.read_text() if DUMP.exists() else ""
    diff = "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True),
        fromfile=f"committed {DUMP.name}", tofile="migrated from zero"))
    assert not diff, (
        f"the migrated schema differs from {DUMP.name}; if the change is intended, "
        f"regenerate it with\n  {REGENERATE}\nand commit it with the migration.\n{diff}")
