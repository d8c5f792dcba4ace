"""``PgTestRepository``: the tests users define, in PostgreSQL (SQL in ``definitions.sql``).

A test is validated by the ledger's ``TestSpec`` before it gets here; runs snapshot its
steps when queued, so updating or deleting a test never changes a run already queued.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg

from api.errors import PreconditionFailed, TestNotFound
from ledger.db import translated
from ledger.definition import STORED, TestSpec
from ledger.sql import load_queries
from projections.queries import decode_cursor, encode_cursor

Q = load_queries("api", "definitions.sql")


def _columns(spec: TestSpec) -> tuple[str, str, dict[str, Any], bool, int]:
    definition = spec.definition.model_dump(mode="json", exclude_none=True)
    return spec.name, spec.url, definition, spec.auto_handle_popups, spec.retries


class PgTestRepository:
    """Create, read, update, delete and page through tests. Handed a pool; never closes it."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, spec: TestSpec) -> dict[str, Any]:
        with translated():
            row = await self._pool.fetchrow(Q["insert_test"], uuid.uuid4(), *_columns(spec))
        return dict(row)

    async def get(self, test_id: UUID) -> dict[str, Any]:
        with translated():
            row = await self._pool.fetchrow(Q["get_test"], test_id)
        if row is None:
            raise TestNotFound(test_id)
        return dict(row)

    async def spec(self, test_id: UUID) -> TestSpec:
        """The stored test as the definition object a run is queued from. It was validated
        when saved; a size rule tightened since then must not make it unrunnable."""
        row = await self.get(test_id)
        return TestSpec.model_validate({
            "name": row["name"], "url": row["url"], "definition": row["definition"],
            "auto_handle_popups": row["auto_handle_popups"], "retries": row["retries"],
        }, context=STORED)

    async def update(
        self, test_id: UUID, spec: TestSpec, *, if_version: int | None = None
    ) -> dict[str, Any]:
        with translated():
            row = await self._pool.fetchrow(
                Q["update_test"], test_id, *_columns(spec), if_version
            )
        if row is None:
            raise await self._missing_or_changed(test_id, if_version)
        return dict(row)

    async def delete(self, test_id: UUID, *, if_version: int | None = None) -> None:
        with translated():
            deleted = await self._pool.fetchval(Q["delete_test"], test_id, if_version)
        if deleted is None:
            raise await self._missing_or_changed(test_id, if_version)

    async def _missing_or_changed(self, test_id: UUID, if_version: int | None) -> Exception:
        with translated():
            exists = await self._pool.fetchval(Q["exists_test"], test_id)
        if exists and if_version is not None:
            return PreconditionFailed(
                f"test {test_id} is no longer at version {if_version}; read it again"
            )
        return TestNotFound(test_id)

    async def page(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` tests, newest first, and the cursor of the next page (or None)."""
        # The same keyset cursor as run listings: (created_at, id) of the last row.
        after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
        with translated():
            rows = await self._pool.fetch(Q["list_tests"], after_at, after_id, limit + 1)
        items = [dict(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(last["created_at"], last["id"])
        return items, next_cursor
