"""Opening asyncpg pools the same way in every process."""

from __future__ import annotations

import asyncpg
import orjson

from ledger.store import translated


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Read models keep JSON in jsonb columns; orjson is several times faster than json.
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; connection failures raise ``TransientStoreError``. The caller closes it."""
    with translated():
        return await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection,
            command_timeout=60,
        )
