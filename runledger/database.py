"""Bring a database to the project's schema — shared by ``runledger migrate`` and
``runledger dev``, so neither entry point imports the other."""

from __future__ import annotations

from ledger.db import create_pool
from ledger.migrate import migrate as apply_migrations
from runledger.schema import all_migrations


async def migrate_database(database_url: str) -> list[str]:
    """Apply the migrations ``database_url`` lacks; return the names applied (idempotent)."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await apply_migrations(conn, all_migrations())
    finally:
        await pool.close()
