"""RunQueries over rows the runs / run_steps models produced from real events."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from ledger.store import PgEventStore
from projections import InvalidCursor, RunQueries, runs, steps
from projections.queries import STATUSES, encode_cursor
from runledger.testing import wait_for_position

from .conftest import advance, new_run, running, write_runs

pytestmark = pytest.mark.integration


async def project(pool: asyncpg.Pool, database_url: str) -> None:
    for model in (runs.MODEL, steps.MODEL):
        async with running(model.follower(), pool, database_url, batch_size=200):
            await wait_for_position(pool, model.name)


async def test_get_run_and_its_steps(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    run = new_run("t-9")
    advance(run, "failed", steps=3)
    await store.save(run)
    await project(pool, database_url)
    queries = RunQueries(pool)
    row = await queries.get_run(run.id)
    assert row is not None and set(row) == {
        "id", "test_id", "test_name", "status", "attempt", "created_at", "started_at",
        "completed_at", "duration_ms", "steps_passed", "steps_failed", "error", "error_step",
        "worker", "last_event_at", "version"}
    assert (row["id"], row["status"], row["version"]) == (run.id, "failed", 6)
    found = await queries.run_steps(run.id)
    assert [s["index"] for s in found] == [0, 1, 2]
    assert found[2]["artifacts"] == [{"id": "a2", "kind": "screenshot", "size": 3}]
    assert found[0]["details"] == {"locator": "#b0"}
    assert await queries.get_run(new_run().id) is None
    assert await queries.run_steps(new_run().id) == []


async def test_pages_walk_every_run_once_newest_first_with_filters(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 45, seed=31)
    await project(pool, database_url)
    queries = RunQueries(pool)
    everything = await pool.fetch("SELECT id, created_at, test_id, status FROM runs")
    newest_first = sorted(everything, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    for status, test_id in [(None, None), ("queued", None), (None, "t-1"), ("passed", "t-2")]:
        expected = [r["id"] for r in newest_first
                    if status in (None, r["status"]) and test_id in (None, r["test_id"])]
        seen, cursor = [], None
        while True:
            page, cursor = await queries.list_runs(status=status, test_id=test_id, limit=4,
                                                   cursor=cursor)
            assert len(page) <= 4
            seen += [r["id"] for r in page]
            if cursor is None:
                break
        assert seen == expected, (status, test_id)
    page, cursor = await queries.list_runs(limit=45)
    assert len(page) == 45 and cursor is None


async def test_a_page_is_stable_while_new_runs_arrive(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 6, seed=1)
    await project(pool, database_url)
    queries = RunQueries(pool)
    first, cursor = await queries.list_runs(limit=3)
    await write_runs(store, 4, seed=2)
    await project(pool, database_url)
    second, _ = await queries.list_runs(limit=3, cursor=cursor)
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert all(r["created_at"] <= first[-1]["created_at"] for r in second)


@pytest.mark.parametrize("cursor", [
    "not base64 !", "", "bm9wZQ",
    base64.urlsafe_b64encode(orjson.dumps(["2024-01-01T00:00:00", "x"])).decode(),
    base64.urlsafe_b64encode(orjson.dumps(["2024-01-01T00:00:00", str(new_run().id)])).decode(),
    base64.urlsafe_b64encode(orjson.dumps({"a": 1})).decode(),
])
async def test_a_malformed_cursor_is_refused(pool: asyncpg.Pool, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await RunQueries(pool).list_runs(cursor=cursor or "=")


async def test_limits_are_checked(pool: asyncpg.Pool) -> None:
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            await RunQueries(pool).list_runs(limit=limit)
    cursor = encode_cursor(datetime.now(UTC), new_run().id)
    assert await RunQueries(pool).list_runs(cursor=cursor) == ([], None)


async def test_stuck_runs_and_counts(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    made = {}
    for outcome in ("running", "running", "passed", "queued"):
        run = new_run()
        advance(run, outcome, steps=1)
        await store.save(run)
        made.setdefault(outcome, []).append(run)
    await project(pool, database_url)
    queries = RunQueries(pool)
    now = datetime.now(UTC)
    stuck = await queries.stuck_runs(now + timedelta(seconds=1))
    assert sorted(stuck) == sorted((r.id, 3) for r in made["running"])
    assert await queries.stuck_runs(now + timedelta(seconds=1), limit=1) == stuck[:1]
    assert await queries.stuck_runs(now - timedelta(hours=1)) == []
    counts = await queries.count_by_status()
    assert set(counts) == set(STATUSES)
    assert counts == {"queued": 1, "running": 2, "passed": 1, "failed": 0, "cancelled": 0}


async def test_listing_and_recovery_use_their_indexes(pool: asyncpg.Pool) -> None:
    await pool.execute("""
        INSERT INTO runs (id, test_id, test_name, status, attempt, created_at, started_at,
                          last_event_at, version)
        SELECT gen_random_uuid(), 't-' || (n % 50), 'x',
               (ARRAY['queued','running','passed','failed'])[n % 4 + 1], 1,
               now() - n * interval '1 second', now() - n * interval '1 second', now(), 1
        FROM generate_series(1, 20000) n""")
    await pool.execute("ANALYZE runs")
    from projections.queries import Q

    far = datetime(9999, 12, 31, tzinfo=UTC)
    top = new_run().id
    plans = {
        "list_runs": await _plan(pool, Q["list_runs"], far, top, 51),
        "by_status": await _plan(pool, Q["list_runs_by_status"], far, top, 51, "failed"),
        "by_test": await _plan(pool, Q["list_runs_by_test"], far, top, 51, "t-7"),
        "stuck": await _plan(pool, Q["stuck_runs"], datetime.now(UTC), 100),
    }
    assert "runs_created_idx" in plans["list_runs"]
    assert "runs_status_created_idx" in plans["by_status"]
    assert "runs_test_created_idx" in plans["by_test"]
    assert "runs_running_started_idx" in plans["stuck"]


async def _plan(pool: asyncpg.Pool, query: str, *args: object) -> str:
    rows = await pool.fetch("EXPLAIN " + query, *args)
    return "\n".join(r[0] for r in rows)
