"""Followers survive poison: an event a follower cannot apply (or decode) is retried, then
parked, and everything after it still flows — against real PostgreSQL and Valkey, with poison
written straight into the log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis

from ledger.aio import Backoff
from ledger.codec import RecordedEvent
from ledger.store import PgEventStore
from ledger.streams import RELAY_MARKER, stream_key
from projections import runs, steps
from projections.follower import Follower, ReadModel
from projections.parking import parked_counts, parked_events
from projections.rebuild import READ_MODELS, rebuild
from projections.relay import RedisRelay
from projections.retry import retry_parked
from projections.service import retry_parked_events, run_projector
from runledger.testing import follower_position, log_head, wait_for_position, wait_until

from .conftest import (
    advance,
    append_raw,
    encoded,
    new_run,
    projector_settings,
    running,
    table_rows,
    write_runs,
)

pytestmark = pytest.mark.integration

FOLLOWERS = ("locator_memory", "relay", "retries", "run_steps", "runs", "test_stats", "webhooks")
UNDECODABLE = b"\xff\xfe not json \x00"


class Flaky:
    """A follower that records what it applied (a primary key refuses a second time) and
    refuses the events of one run while ``broken``: a bug, fixed by flipping the flag."""

    def __init__(self, poison: uuid.UUID) -> None:
        self.poison = poison
        self.broken = True

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        if self.broken and any(e.run_id == self.poison for e in events):
            raise ValueError(f"cannot handle run {self.poison}")
        await conn.execute("INSERT INTO applied SELECT unnest($1::bigint[])",
                           [e.notification_id for e in events])

    def follower(self) -> Follower:
        return Follower("flaky", self.apply, tables=("applied",))


async def test_a_failing_event_is_parked_and_the_rest_of_its_batch_applied_once(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await pool.execute("CREATE TABLE applied (notification_id bigint PRIMARY KEY)")
    await write_runs(store, 3, seed=1)
    poison = new_run("poison")
    await store.save(poison)
    await write_runs(store, 3, seed=2)
    flaky = Flaky(poison.id)
    async with running(flaky.follower(), pool, database_url, batch_size=100):
        await wait_for_position(pool, "flaky")
    everything = {r[0] for r in await pool.fetch("SELECT notification_id FROM stored_events")}
    position = await pool.fetchval(
        "SELECT notification_id FROM stored_events WHERE originator_id = $1", poison.id)
    applied = {r[0] for r in await pool.fetch("SELECT notification_id FROM applied")}
    assert applied == everything - {position}
    [parked] = await parked_events(pool)
    assert parked["follower"] == "flaky" and parked["notification_id"] == position
    assert parked["run_id"] == poison.id and parked["event_type"] == "queued"
    assert parked["attempts"] == 3  # the first try and FAST_RETRY's two retries
    assert "cannot handle run" in parked["error"]
    assert await parked_counts(pool) == {"flaky": 1}

    # Still broken: the retry reports it and counts the attempt.
    result = await retry_parked(pool, [flaky.follower()])
    assert result.cleared == [] and [p[:2] for p in result.parked] == [("flaky", position)]
    assert (await parked_events(pool))[0]["attempts"] == 4

    flaky.broken = False
    # Two operators retry at once: the event is applied once (``applied``'s primary key
    # would refuse a second time), by whichever claimed the parked row first.
    results = await asyncio.gather(*(retry_parked(pool, [flaky.follower()]) for _ in "ab"))
    assert [c for r in results for c in r.cleared] == [("flaky", position)]
    assert [p for r in results for p in r.parked] == []
    assert await parked_events(pool) == []
    assert {r[0] for r in await pool.fetch("SELECT notification_id FROM applied")} == everything


async def test_an_undecodable_row_is_parked_by_every_follower_and_the_pipeline_flows(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    settings = projector_settings(database_url, redis_url)
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        await write_runs(store, 2, seed=1)
        bad_run = uuid.uuid4()
        bad = await append_raw(pool, bad_run, 1, "queued", UNDECODABLE)
        # Valid JSON carrying NUL in the cancel reason: PostgreSQL refuses NUL in text.
        nul = new_run("nul")
        nul.cancel(reason="stop-now")
        queued, cancelled = nul.collect_events()
        await store.append([queued], expected_version=0)
        await append_raw(pool, nul.id, 2, "cancelled",
                         encoded(store, cancelled).replace(b"stop-now", b"stop\\u0000now"))
        # An ordinary run after the poison is projected and relayed.
        written = await write_runs(store, 3, seed=2)
        head = await log_head(pool)
        for name in FOLLOWERS:
            await wait_for_position(pool, name, head)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await parked_counts(pool) == dict.fromkeys(FOLLOWERS, 1)
    for row in await parked_events(pool):
        assert (row["notification_id"], row["run_id"], row["attempts"]) == (bad, bad_run, 1)
        assert "cannot be decoded" in row["error"]
    row = await pool.fetchrow("SELECT status, error FROM runs WHERE id = $1", nul.id)
    assert (row["status"], row["error"]) == ("cancelled", "stop\ufffdnow")
    assert await redis.xlen(stream_key(nul.id)) == 2
    for run in written:
        assert await pool.fetchval("SELECT version FROM runs WHERE id = $1", run.id) == run.version
        assert await redis.xlen(stream_key(run.id)) == run.version
    assert not await redis.exists(stream_key(bad_run))


async def test_a_write_redis_refuses_is_parked_by_the_relay_and_retried_after_a_fix(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    store: PgEventStore,
) -> None:
    settings = projector_settings(database_url, redis_url)
    blocked = new_run("blocked")
    # Something else owns the stream's key: Redis answers WRONGTYPE to every XADD.
    await redis.set(stream_key(blocked.id), "in the way")
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        await write_runs(store, 2, seed=1)
        await store.save(blocked)
        written = await write_runs(store, 2, seed=2)
        await wait_for_position(pool, "relay", await log_head(pool))
        for run in written:
            await wait_until(lambda r=run: _stream_has(redis, r.id, r.version),
                             what="the runs after the refused one relayed")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    [parked] = await parked_events(pool)
    assert (parked["follower"], parked["run_id"]) == ("relay", blocked.id)
    assert "WRONGTYPE" in parked["error"] and parked["attempts"] == 2

    await redis.delete(stream_key(blocked.id))
    result = await retry_parked_events(settings)
    assert result.cleared == [("relay", parked["notification_id"])] and result.parked == []
    assert await redis.xlen(stream_key(blocked.id)) == 1
    assert await parked_events(pool) == []


async def _stream_has(redis: aioredis.Redis, run_id: uuid.UUID, version: int) -> bool:
    return bool(await redis.exists(stream_key(run_id))) and (
        await redis.xlen(stream_key(run_id)) == version)


async def test_rebuild_parks_instead_of_aborting(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 4, seed=3)
    await append_raw(pool, uuid.uuid4(), 1, "queued", UNDECODABLE)
    await write_runs(store, 4, seed=4)
    for model in (runs.MODEL, steps.MODEL):
        async with running(model.follower(), pool, database_url):
            await wait_for_position(pool, model.name)
    live = {name: await table_rows(pool, name) for name in ("runs", "run_steps")}
    assert await parked_counts(pool) == {"runs": 1, "run_steps": 1}

    result = await rebuild(database_url, list(READ_MODELS.values()), batch_size=7)
    assert result.parked == len(READ_MODELS)  # each rebuilt model parks it once
    assert result.position == await log_head(pool)
    assert {name: await table_rows(pool, name) for name in ("runs", "run_steps")} == live
    assert await parked_counts(pool) == dict.fromkeys(READ_MODELS, 1)


async def test_a_run_running_for_25_days_finishes_without_overflow(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    run = new_run("long")
    advance(run, "timed-out", steps=1)
    events = run.collect_events()
    await store.append(events[:-1], expected_version=0)
    started = datetime.fromisoformat(orjson.loads(encoded(store, events[1]))["timestamp"])
    state = orjson.loads(encoded(store, events[-1]))
    state["timestamp"] = (started + timedelta(days=25)).isoformat()
    await append_raw(pool, run.id, events[-1].originator_version, "timed-out",
                     orjson.dumps(state))
    async with running(runs.MODEL.follower(), pool, database_url):
        await wait_for_position(pool, "runs")
    row = await pool.fetchrow("SELECT status, duration_ms FROM runs WHERE id = $1", run.id)
    assert (row["status"], row["duration_ms"]) == ("failed", 25 * 86_400_000)
    assert await parked_events(pool) == []
    assert await follower_position(pool, "runs") == await log_head(pool)


async def test_the_relay_marker_moves_past_a_parked_event(
    pool: asyncpg.Pool, database_url: str, redis: aioredis.Redis, store: PgEventStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A parked last event must not look like data Redis lost when the relay next starts.
    relay = RedisRelay(pool, redis, check_interval_seconds=0.05)
    await write_runs(store, 2, seed=1)
    head = await append_raw(pool, uuid.uuid4(), 1, "queued", UNDECODABLE)
    async with running(relay.follower(), pool, database_url):
        await wait_for_position(pool, "relay", head)
    assert int(await redis.get(RELAY_MARKER)) == head
    async with running(RedisRelay(pool, redis).follower(), pool, database_url):
        await write_runs(store, 1, seed=2)
        await wait_for_position(pool, "relay")
    assert "lost data" not in caplog.text
    assert await parked_counts(pool) == {"relay": 1}


async def test_redis_out_of_memory_is_waited_out_never_parked(
    pool: asyncpg.Pool, database_url: str, redis_url: str, redis: aioredis.Redis,
    store: PgEventStore, caplog: pytest.LogCaptureFixture,
) -> None:
    """OOM (noeviction) says something about Redis, not about the event: the relay backs off
    until Redis takes writes again — no event parked, no follower dying and restarting —
    and the runs written meanwhile are relayed."""
    caplog.set_level(logging.WARNING, logger="projections")
    settings = projector_settings(database_url, redis_url)
    before = await redis.config_get("maxmemory*")
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        first = await write_runs(store, 1, seed=3)
        await wait_until(lambda: _stream_has(redis, first[0].id, first[0].version),
                         what="the relay running (its marker set)")
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)
        written = await write_runs(store, 3, seed=4)

        async def refused_repeatedly() -> bool:
            # Four failed attempts: past the point where a content error would be parked
            # (one try and one retry here).
            return sum("maxmemory" in r.getMessage() for r in caplog.records) >= 4

        await wait_until(refused_repeatedly, within=30,
                         what="the relay's writes refused again and again")
        assert await parked_events(pool) == []
        await redis.config_set("maxmemory", 0)
        for run in written:
            await wait_until(lambda r=run: _stream_has(redis, r.id, r.version),
                             what="the runs relayed once Redis takes writes again")
    finally:
        await redis.config_set("maxmemory", before.get("maxmemory", "0"))
        await redis.config_set("maxmemory-policy", before.get("maxmemory-policy", "noeviction"))
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await parked_events(pool) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_events_after_a_parked_event_of_their_run_park_at_once(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    """Once a run's queued event is parked, its later events cannot apply (no row): they
    are parked on their first failure instead of stalling the follower with retries."""
    poison = new_run("poison")
    poison.start(worker="w-1", browser={})
    events = poison.collect_events()
    await append_raw(pool, poison.id, 1, "queued", UNDECODABLE)
    await store.append(events[1:], expected_version=1)
    written = await write_runs(store, 2, seed=5)
    async with running(runs.MODEL.follower(), pool, database_url) as runner:
        runner.retry = Backoff(retries=3, base_seconds=5.0)  # a stall would time the test out
        await wait_for_position(pool, runs.NAME, within=10)
    parked = {p["notification_id"]: p for p in await parked_events(pool, follower=runs.NAME)}
    assert [(p["event_type"], p["attempts"]) for p in parked.values()] == [
        ("queued", 1), ("started", 1)]
    assert {r["id"] for r in await table_rows(pool, "runs")} == {w.id for w in written}


async def test_a_runs_event_retried_after_later_ones_still_counts(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    """The ``runs`` fold ignores an event older than the row: a parked ``started`` retried
    after its run's later events were applied is folded with the run's whole history."""
    run = new_run("late")
    advance(run, "passed", steps=2)
    await store.save(run)
    broken = True

    async def flaky_apply(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        if broken and any(e.type == "started" for e in events):
            raise ValueError("cannot handle started")
        await runs.apply(conn, events)

    model = ReadModel(runs.NAME, runs.TABLES, flaky_apply, reapply=runs.refold)
    async with running(model.follower(), pool, database_url) as runner:
        runner.retry = Backoff(retries=0)
        await wait_for_position(pool, runs.NAME)
    [row] = await table_rows(pool, "runs")
    assert row["started_at"] is None and row["worker"] is None  # started is parked
    broken = False
    result = await retry_parked(pool, [model.follower()])
    assert [c[0] for c in result.cleared] == [runs.NAME] and result.parked == []
    [row] = await table_rows(pool, "runs")
    assert row["worker"] == "w-1" and row["started_at"] is not None
    assert row["status"] == "passed" and row["version"] == run.version
