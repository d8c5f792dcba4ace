"""Rebuild: fresh tables from the log, swapped in while readers and followers keep going."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from ledger.codec import RecordedEvent
from ledger.store import LogListener, PgEventStore
from projections import RunQueries, runs, steps
from projections.errors import RebuildError
from projections.follower import Follower, FollowerRunner
from projections.rebuild import READ_MODELS, rebuild
from runledger.testing import wait_for_position, wait_until

from .conftest import caught_up, checkpoint, running, table_rows, write_runs

pytestmark = pytest.mark.integration

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
            await wait_for_position(pool, model.name)


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
                    await wait_for_position(pool, name)
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


async def test_a_follower_ahead_of_the_replay_is_not_rewound_by_the_swap(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events a follower applies between the replay's last read and the swap are carried
    into the new tables: readers lose no rows, and a follower that then sits idle (no
    later batch to notice a moved checkpoint) is not left behind."""
    await write_runs(store, 10, seed=7)
    async with running(runs.MODEL.follower(), pool, database_url):
        await wait_for_position(pool, "runs")
        swap: asyncio.Task[object] | None = None
        try:
            async with pool.acquire() as reader, reader.transaction():
                await reader.fetch("SELECT id FROM runs")  # the swap waits for this reader
                swap = asyncio.create_task(
                    rebuild(database_url, [READ_MODELS["runs"]], lock_timeout_seconds=0.05,
                            swap_attempts=8), name="test-rebuild")
                await wait_until(lambda: _logged(caplog, "readers held the live tables"),
                               what="the swap waiting for the reader")
                await write_runs(store, 5, seed=8)
                await wait_for_position(pool, "runs")
            await swap
        finally:
            if swap is not None and not swap.done():
                swap.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await swap
        assert await checkpoint(pool, "runs") == await store.head_id()
        assert len(await table_rows(pool, "runs")) == 15


async def test_a_batch_read_before_the_swap_is_dropped_and_read_again(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    """A follower behind the replay applies, after the swap, a batch the new tables already
    hold: it fails on a duplicate key before the checkpoint's compare-and-set, and must count
    as stale (resume from the moved checkpoint), not as a permanent failure."""
    await write_runs(store, 10, seed=5)
    entered, release = asyncio.Event(), asyncio.Event()

    async def gated(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        if not release.is_set():
            entered.set()
            await release.wait()  # inside the batch transaction, before any write
        await runs.apply(conn, events)

    async with running(Follower(runs.NAME, gated), pool, database_url) as runner:
        await asyncio.wait_for(entered.wait(), 10)
        await rebuild(database_url, [READ_MODELS["runs"]])
        rebuilt = await table_rows(pool, "runs")
        release.set()
        await write_runs(store, 2, seed=6)
        await wait_until(lambda: _caught_up_or_stopped(pool, runner), what="runs")
        assert runner.active, "the follower stopped"
    after = await table_rows(pool, "runs")
    assert len(after) == 12
    assert [r for r in after if r["id"] in {b["id"] for b in rebuilt}] == rebuilt


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def _caught_up_or_stopped(pool: asyncpg.Pool, runner: FollowerRunner) -> bool:
    return not runner.active or await caught_up(pool, runner.name)


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
