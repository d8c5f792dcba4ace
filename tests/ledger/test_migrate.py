"""Schema migrations: numbered, recorded, idempotent, safe to run concurrently."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.errors import MigrationError
from ledger.migrate import discover, migrate
from runledger.schema import all_migrations
from runledger.testing import schema_dump


@pytest.mark.integration
async def test_migrating_again_is_a_no_op(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        before = await schema_dump(conn)
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert applied == len(all_migrations())
        assert await migrate(conn, all_migrations()) == []
        assert await schema_dump(conn) == before
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == applied


@pytest.mark.integration
async def test_from_zero_concurrently_equals_the_template(pool: asyncpg.Pool) -> None:
    """Dropping everything and migrating from three connections at once gives the schema
    every test database was cloned from."""
    async with pool.acquire() as conn:
        expected = await schema_dump(conn)
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conns = [await pool.acquire() for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, all_migrations()) for c in conns))
    finally:
        for conn in conns:
            await pool.release(conn)
    assert sorted(len(r) for r in results) == [0, 0, len(all_migrations())]
    async with pool.acquire() as conn:
        assert await schema_dump(conn) == expected


@pytest.mark.unit
def test_labels_are_numbered_per_component() -> None:
    labels = [m.label for m in all_migrations()]
    assert labels[0] == "ledger/0001_stored_events"
    assert len(labels) == len(set(labels))


@pytest.mark.unit
def test_badly_named_migration_is_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "badmigrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "1_oops.sql").write_text("SELECT 1;")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MigrationError, match=r"'1_oops\.sql' is not named NNNN_name\.sql"):
        discover("bad", "badmigrations")
