"""Rebuild: fresh tables from the log, swapped in while readers and followers keep going."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from ledger.store import LogListener, PgEventStore
from projections import RunQueries, runs, steps
from projections.errors import RebuildError
from projections.rebuild import READ_MODELS, rebuild

from .conftest import caught_up, checkpoint, running, table_rows, wait_for, write_runs

SCHEMA = """
SELECT c.relname, c.relkind::text, coalesce(pg_get_indexdef(i.indexrelid), '') AS def
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname = 'public' AND c.relname LIKE ANY (ARRAY['runs%', 'run_steps%'])
UNION ALL
SELECT conrelid::regclass::text, contype::text, conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid IN ('runs'::regclass, 'run_steps'::regclass)
UNION ALL
SELECT table_name, column_name, data_type || ' ' || is_nullable || ' '
       || coalesce(column_default, '')
FROM information_schema.columns WHERE table_name IN ('runs', 'run_steps')
ORDER BY 1, 2, 3
"""


async def apply_all(pool: asyncpg.Pool, database_url: str) -> None:
    for model in (runs.MODEL, steps.MODEL):
        async with running(model.follower(), pool, database_url, batch_size=50):
            await wait_for(lambda n=model.name: caught_up(pool, n), message=model.name)


async def test_rebuild_equals_the_live_tables_and_keeps_their_schema(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 40, seed=12)
    await apply_all(pool, database_url)
    live = {t: await table_rows(pool, t) for t in ("runs", "run_steps")}
    schema = [tuple(r) for r in await pool.fetch(SCHEMA)]
    progress: list[tuple[int, int]] = []

    result = await rebuild(database_url, list(READ_MODELS.values()), batch_size=25,
                           on_progress=lambda done, total: progress.append((done, total)))

    assert {t: await table_rows(pool, t) for t in live} == live
    assert [tuple(r) for r in await pool.fetch(SCHEMA)] == schema
    head = await store.head_id()
    assert result.position == head and result.events == progress[-1][0] == head
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert await checkpoint(pool, "runs") == await checkpoint(pool, "run_steps") == head
    assert not await pool.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'runledger_rebuild'")


async def test_rebuilding_one_model_leaves_the_other_alone(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 10, seed=3)
    await apply_all(pool, database_url)
    await pool.execute("UPDATE run_steps SET error = 'marker'")
    await pool.execute("UPDATE runs SET error = 'marker'")
    await pool.execute("UPDATE follower_checkpoints SET position = 1 WHERE name = 'run_steps'")
    await rebuild(database_url, [READ_MODELS["runs"]])
    assert await pool.fetchval("SELECT count(*) FROM runs WHERE error = 'marker'") == 0
    assert await pool.fetchval("SELECT count(*) FROM run_steps WHERE error <> 'marker'") == 0
    assert await checkpoint(pool, "run_steps") == 1


async def test_rebuild_while_followers_run_writers_write_and_readers_read(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 60, seed=21)
    queries = RunQueries(pool)
    reads = 0
    reading = True

    async def reader() -> None:
        nonlocal reads
        while reading:
            page, _ = await queries.list_runs(limit=20)
            if page:
                assert await queries.get_run(page[0]["id"]) is not None
                await queries.run_steps(page[-1]["id"])
            reads += 1
            await asyncio.sleep(0)

    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    try:
        async with running(runs.MODEL.follower(), pool, database_url, listener=listener), \
                running(steps.MODEL.follower(), pool, database_url, listener=listener):
            read_task = asyncio.create_task(reader(), name="test-reader")
            writer = asyncio.create_task(write_runs(store, 40, seed=22), name="test-writer")
            try:
                for _ in range(2):
                    await rebuild(database_url, list(READ_MODELS.values()), batch_size=20)
                await writer
                for name in ("runs", "run_steps"):
                    await wait_for(lambda n=name: caught_up(pool, n), message=name)
            finally:
                reading = False
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                await read_task  # re-raises any error a reader met during the swaps
    finally:
        await listener.close()
    assert reads > 0
    live = {t: await table_rows(pool, t) for t in ("runs", "run_steps")}
    assert len(live["runs"]) == 100
    await rebuild(database_url, list(READ_MODELS.values()))
    assert {t: await table_rows(pool, t) for t in live} == live


async def test_a_second_rebuild_is_refused(pool: asyncpg.Pool, database_url: str) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT pg_advisory_lock(hashtextextended('runledger.rebuild', 0))")
        try:
            with pytest.raises(RebuildError, match="another rebuild is running"):
                await rebuild(database_url, [READ_MODELS["runs"]])
        finally:
            await conn.fetchval(
                "SELECT pg_advisory_unlock(hashtextextended('runledger.rebuild', 0))")


async def test_swap_gives_up_on_a_reader_that_holds_the_table(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 5, seed=2)
    await apply_all(pool, database_url)
    live = await table_rows(pool, "runs")
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await conn.fetch("SELECT * FROM runs")  # holds ACCESS SHARE until the end
        try:
            with pytest.raises(RebuildError, match="could not lock the live tables"):
                await rebuild(database_url, [READ_MODELS["runs"]], lock_timeout_seconds=0.05,
                              swap_attempts=2)
        finally:
            await transaction.rollback()
    assert await table_rows(pool, "runs") == live
    assert not await pool.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'runledger_rebuild'")
    await rebuild(database_url, [READ_MODELS["runs"]])
    assert await table_rows(pool, "runs") == live


async def test_privileges_on_the_live_table_survive(
    pool: asyncpg.Pool, database_url: str
) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    await pool.execute(f'CREATE ROLE "{role}"')
    try:
        await pool.execute(f'GRANT SELECT ON runs TO "{role}"')
        await rebuild(database_url, [READ_MODELS["runs"]])
        assert await pool.fetchval("SELECT has_table_privilege($1, 'runs', 'SELECT')", role)
        assert not await pool.fetchval(
            "SELECT has_table_privilege($1, 'runs', 'INSERT')", role)
    finally:
        await pool.execute(f'REVOKE ALL ON runs FROM "{role}"')
        await pool.execute(f'DROP ROLE "{role}"')
