"""Read queries over the ``runs`` and ``run_steps`` models (SQL in ``queries.sql``).

``RunQueries`` is handed a pool and never closes it. Rows come back as plain dicts with the
columns' names (uuid, datetime, jsonb already decoded). ``list_runs`` pages newest first
with an opaque keyset cursor: a page costs the same however deep it is, and runs created
while a client pages never shift the pages it has not seen yet.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from ledger.db import translated
from ledger.sql import load_queries
from projections.errors import InvalidCursor

Q = load_queries("projections", "queries.sql")

STATUSES = ("queued", "running", "passed", "failed", "cancelled")
MAX_PAGE = 1000
# A position after every run, for the first page (see queries.sql).
_AFTER_ALL = (datetime(9999, 12, 31, tzinfo=UTC), UUID(int=(1 << 128) - 1))


def encode_cursor(created_at: datetime, run_id: UUID) -> str:
    """The cursor pointing just after the run ``(created_at, run_id)`` in listing order."""
    raw = orjson.dumps([created_at.isoformat(), str(run_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Inverse of ``encode_cursor``; ``InvalidCursor`` for anything it did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = orjson.loads(raw)
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        # In UTC here, not in the driver: a forged offset at the ends of the calendar
        # (0001-01-01T00:00+14:00) overflows when converted, which must be the client's 422.
        position = when.astimezone(UTC), UUID(run_id)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError,
            OverflowError) as exc:
        raise InvalidCursor(f"invalid cursor {cursor[:40]!r}") from exc
    return position


class RunQueries:
    """The queries the API and the worker run against the read models."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_run(self, run_id: UUID) -> dict[str, Any] | None:
        """The ``runs`` row of ``run_id`` (all columns), or None when it has none (yet)."""
        with translated():
            row = await self._pool.fetchrow(Q["get_run"], run_id)
        return dict(row) if row is not None else None

    async def list_runs(
        self,
        *,
        status: str | None = None,
        test_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of runs, newest first, and the cursor of the next page (None on the last).

        ``status`` and ``test_id`` filter; ``cursor`` is one a previous call returned.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        created_at, run_id = decode_cursor(cursor) if cursor else _AFTER_ALL
        args: list[Any] = [created_at, run_id, limit + 1]
        if status is not None and test_id is not None:
            query, args = Q["list_runs_by_test_and_status"], [*args, test_id, status]
        elif status is not None:
            query, args = Q["list_runs_by_status"], [*args, status]
        elif test_id is not None:
            query, args = Q["list_runs_by_test"], [*args, test_id]
        else:
            query = Q["list_runs"]
        with translated():
            rows = [dict(row) for row in await self._pool.fetch(query, *args)]
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["created_at"], rows[-1]["id"])

    async def listed_position(self) -> int:
        """The log position up to which ``list_runs`` shows the runs (0 before any)."""
        with translated():
            return int(await self._pool.fetchval(Q["listed_position"]))

    async def run_steps(self, run_id: UUID) -> list[dict[str, Any]]:
        """The run's ``run_steps`` rows in step order (empty for an unknown run)."""
        with translated():
            rows = await self._pool.fetch(Q["run_steps"], run_id)
        return [dict(row) for row in rows]

    async def stuck_runs(
        self, started_before: datetime, limit: int = 100
    ) -> list[tuple[UUID, int]]:
        """``(run_id, version)`` of running runs started before ``started_before``, oldest
        first. The version is the one a recovery append must expect."""
        with translated():
            rows = await self._pool.fetch(Q["stuck_runs"], started_before, limit)
        return [(row["id"], row["version"]) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        """Number of runs per status; every status is present (0 when none)."""
        with translated():
            rows = await self._pool.fetch(Q["count_by_status"])
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({row["status"]: row["runs"] for row in rows})
        return counts
