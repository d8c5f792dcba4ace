"""The follower runner against a real PostgreSQL: tailing, exactly-once under crashes,
checkpoint moves, standby takeover inside one process, lag."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Sequence

import asyncpg
import pytest

from ledger.codec import RecordedEvent
from ledger.store import LogListener, PgEventStore
from projections import follower_lag, runs, steps
from projections.errors import FollowerError
from projections.follower import ApplyBatch, Follower, FollowerRunner
from projections.rebuild import rebuild
from runledger.testing import wait_for_position, wait_until

from .conftest import (
    FAST_RETRY,
    append_all,
    checkpoint,
    plan_runs,
    running,
    table_rows,
    write_runs,
)

pytestmark = pytest.mark.integration


async def test_follows_the_log_as_it_grows(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    await write_runs(store, 5, seed=1)
    assert await follower_lag(pool) == {}
    async with running(runs.MODEL.follower(), pool, database_url, batch_size=3):
        await wait_for_position(pool, "runs")
        assert await follower_lag(pool) == {"runs": 0}
        # Woken by NOTIFY: new events are applied without a restart.
        written = await write_runs(store, 5, seed=2)
        await wait_for_position(pool, "runs")
    rows = await pool.fetch("SELECT id, version FROM runs")
    assert len(rows) == 10
    projected = {r["id"]: r["version"] for r in rows}
    assert all(projected[r.id] == r.version for r in written)
    await write_runs(store, 1, seed=3)
    lag = await follower_lag(pool)
    assert lag["runs"] == await store.head_id() - await checkpoint(pool, "runs") > 0


class Crasher:
    """Wraps a model's apply: on the armed batch it pauses after writing the rows (before
    the checkpoint moves) until the test decides how that batch dies."""

    def __init__(self, apply: ApplyBatch) -> None:
        self._apply = apply
        self.armed = False
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self.server_pid = 0

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        await self._apply(conn, events)
        if self.armed:
            self.armed = False
            self.server_pid = conn.get_server_pid()
            self.paused.set()
            await self.resume.wait()

    def arm(self) -> None:
        self.armed = True
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()


async def test_crashes_between_and_inside_batches_never_lose_or_double_apply(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    """Rounds of: append a slice of the log, start both followers with a random batch size,
    crash one of them — cancelled inside a batch transaction, its connection terminated
    inside one, or cancelled between batches. Afterwards the tables equal a rebuild."""
    rng = random.Random(42)
    crashers = {m.name: Crasher(m.apply) for m in (runs.MODEL, steps.MODEL)}
    followers = {name: Follower(name, crasher) for name, crasher in crashers.items()}
    appends = plan_runs(80, seed=5)
    rounds = 24
    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    crashes: dict[str, int] = {"inside": 0, "terminated": 0, "between": 0}
    try:
        for n in range(rounds):
            await append_all(store, appends[n * len(appends) // rounds:
                                            (n + 1) * len(appends) // rounds])
            mode, name = rng.choice(list(crashes)), rng.choice(list(crashers))
            await crash_once(mode, name, crashers[name], rng, pool, database_url, listener,
                             followers)
            crashes[mode] += 1
        async with running(followers["runs"], pool, database_url, listener=listener), \
                running(followers["run_steps"], pool, database_url, listener=listener):
            for name in crashers:
                await wait_for_position(pool, name)
    finally:
        await listener.close()
    assert all(crashes.values()), crashes

    live = {t: await table_rows(pool, t) for t in ("runs", "run_steps")}
    await rebuild(database_url, [runs.MODEL, steps.MODEL])
    assert {t: await table_rows(pool, t) for t in live} == live
    step_events = dict(await pool.fetch(
        "SELECT originator_id, count(*) FROM stored_events "
        "WHERE topic = 'runledger:Run.StepRecorded' GROUP BY originator_id"))
    for row in live["runs"]:
        assert row["steps_passed"] + row["steps_failed"] == step_events.get(row["id"], 0)
    assert len(live["runs"]) == 80


async def crash_once(
    mode: str, name: str, crasher: Crasher, rng: random.Random, pool: asyncpg.Pool,
    database_url: str, listener: LogListener, followers: dict[str, Follower],
) -> None:
    """Start both followers on a log with work pending for them, and crash ``name``."""
    before = await checkpoint(pool, name)
    if mode != "between":
        crasher.arm()  # before starting, so the first batch it applies is the one that dies
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(FollowerRunner(
            f, dsn=database_url, listener=listener, stop=stop,
            batch_size=rng.randint(1, 9), standby_retry_seconds=0.05).run())
        for f in followers.values()
    ]
    try:
        if mode == "between":
            # Cancelled right after a batch committed, or during the next read.
            await wait_until(lambda: _unless_failed(tasks, _past(pool, name, before)),
                           what="a batch")
        else:
            await wait_until(lambda: _unless_failed(tasks, _true(crasher.paused.is_set())),
                           what="a paused batch")
        if mode == "terminated":
            # The connection dies inside the batch transaction: the runner sees a transient
            # error, and resumes from the checkpoint, which did not move.
            await pool.fetchval("SELECT pg_terminate_backend($1)", crasher.server_pid)
            crasher.resume.set()
            assert await checkpoint(pool, name) == before
            await wait_until(lambda: _past(pool, name, before), what="recovery")
        # "inside": the runners are cancelled while the batch is paused mid-transaction.
    finally:
        crasher.armed = False
        stop.set()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError | None) for r in results), results
    if mode == "inside":
        assert await checkpoint(pool, name) == before


async def _unless_failed(tasks: list[asyncio.Task[None]], check: Awaitable[bool]) -> bool:
    """``check``, but first re-raise the error of a runner that already died."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception():
            check.close()  # type: ignore[attr-defined]
            raise task.exception()  # type: ignore[misc]
    return await check


async def _past(pool: asyncpg.Pool, name: str, position: int) -> bool:
    return await checkpoint(pool, name) > position


async def test_a_rewound_checkpoint_makes_a_running_follower_apply_again(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    """What a rebuild's swap does to a live follower: emptied tables and checkpoint 0,
    moved under it in one transaction; its next batch notices and starts over."""
    await write_runs(store, 10, seed=8)
    async with running(runs.MODEL.follower(), pool, database_url, batch_size=4):
        await wait_for_position(pool, "runs")
        before = await table_rows(pool, "runs")
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT position FROM follower_checkpoints "
                               "WHERE name = 'runs' FOR UPDATE")
            await conn.execute("TRUNCATE runs")
            await conn.execute("UPDATE follower_checkpoints SET position = 0 "
                               "WHERE name = 'runs'")
        await write_runs(store, 2, seed=9)
        await wait_for_position(pool, "runs")
    after = await table_rows(pool, "runs")
    assert len(after) == 12
    assert [r for r in after if r["id"] in {b["id"] for b in before}] == before


async def test_second_instance_stands_by_and_takes_over(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    follower = runs.MODEL.follower()
    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    stops = [asyncio.Event(), asyncio.Event()]
    first, second = (
        FollowerRunner(follower, dsn=database_url, listener=listener, stop=stop,
                       standby_retry_seconds=0.05)
        for stop in stops
    )
    tasks = [asyncio.create_task(first.run())]
    try:
        await wait_until(lambda: _true(first.active), what="first active")
        tasks.append(asyncio.create_task(second.run()))
        await write_runs(store, 3, seed=1)
        await wait_for_position(pool, "runs")
        assert first.active and not second.active
        stops[0].set()
        await asyncio.wait_for(tasks[0], 10)
        await wait_until(lambda: _true(second.active), what="second active")
        await write_runs(store, 3, seed=2)
        await wait_for_position(pool, "runs")
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await listener.close()
    assert await pool.fetchval("SELECT count(*) FROM runs") == 6


async def _true(value: bool) -> bool:
    return value


async def test_a_failure_it_cannot_park_ends_the_runner_with_follower_error(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    # An event that fails is parked (test_parking.py); when even parking fails, the runner
    # stops loudly, naming follower and position, and the checkpoint stays.
    await write_runs(store, 2, seed=1)
    await pool.execute("DROP TABLE parked_events")

    async def broken(conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        await conn.execute("INSERT INTO runs (id) VALUES (NULL)")

    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    runner = FollowerRunner(Follower("runs", broken), dsn=database_url,
                            listener=listener, stop=asyncio.Event(), retry=FAST_RETRY)
    try:
        with pytest.raises(FollowerError, match="follower 'runs' at position 0"):
            await asyncio.wait_for(runner.run(), 10)
    finally:
        await listener.close()
    assert await checkpoint(pool, "runs") == 0
    assert not runner.active
