"""The asyncpg event store against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from ledger.codec import MAX_EVENT_BYTES
from ledger.domain import Run, StepResult
from ledger.errors import (
    ConcurrencyConflict,
    EventTooLarge,
    RunNotFound,
    TransientStoreError,
    UndecodableEvent,
)
from ledger.store import LogListener, PgEventStore

pytestmark = pytest.mark.integration

BROWSER = {"name": "chromium", "version": "156"}


def new_run(**kw: object) -> Run:
    return Run.queue(
        test_id="t-1", test_name="login", url="http://127.0.0.1/",
        steps=[{"action": "navigate", "instruction": "Open"}], **kw,  # type: ignore[arg-type]
    )


async def test_append_load_and_read_shapes(pool: asyncpg.Pool) -> None:
    store = PgEventStore(pool)
    run = new_run()
    ids = await store.save(run)
    assert len(ids) == 1
    loaded = await store.load_run(run.id)
    loaded.start(worker="w1", browser=BROWSER)
    loaded.record_step(StepResult(index=0, action="navigate", instruction="Open", status="passed",
                       artifacts=[{"id": "a1", "kind": "screenshot"}]))
    loaded.complete(status="passed", duration_ms=42)
    more = await store.save(loaded)
    assert more == sorted(more) and more[0] > ids[0]

    again = await store.load_run(run.id)
    assert vars(again) == vars(loaded)
    assert again.status == "passed" and again.version == 4

    history = await store.read_run(run.id)
    assert [e.type for e in history] == ["queued", "started", "step", "completed"]
    assert history[2].data["artifacts"] == [{"id": "a1", "kind": "screenshot"}]
    public = history[0].public()
    assert set(public) == {"run_id", "version", "type", "timestamp", "data"}
    assert "originator_topic" not in public["data"] and public["data"]["test_id"] == "t-1"
    assert [e.version for e in await store.read_run(run.id, after=2)] == [3, 4]
    assert [e.version for e in await store.read_run(run.id, after=1, limit=1)] == [2]
    assert await store.run_version(run.id) == 4
    assert await store.head_id() == more[-1]
    tail = await store.read_after(ids[0], limit=10)
    assert [e.notification_id for e in tail] == more


async def test_conflicting_append_raises_and_stores_nothing(pool: asyncpg.Pool) -> None:
    store = PgEventStore(pool)
    run = new_run()
    await store.save(run)
    first, second = await store.load_run(run.id), await store.load_run(run.id)
    first.start(worker="w1", browser=BROWSER)
    second.start(worker="w2", browser=BROWSER)
    second.record_step(StepResult(index=0, action="click", instruction="x", status="passed"))
    await store.save(first)
    with pytest.raises(ConcurrencyConflict) as info:
        await store.save(second)
    assert info.value.run_id == run.id and info.value.versions == [2, 3]
    history = await store.read_run(run.id)
    assert [(e.version, e.data.get("worker")) for e in history] == [(1, None), (2, "w1")]


async def test_expected_version_must_match_the_events(pool: asyncpg.Pool) -> None:
    run = new_run()
    with pytest.raises(ValueError, match="expected 5"):
        await PgEventStore(pool).append(run.collect_events(), expected_version=4)


async def test_oversized_event_is_refused_with_a_clear_error(pool: asyncpg.Pool) -> None:
    store = PgEventStore(pool)
    run = new_run()
    await store.save(run)
    run.start(worker="w1", browser=BROWSER)
    run.record_step(StepResult(index=0, action="click", instruction="x", status="failed",
                    error="E" * MAX_EVENT_BYTES))
    with pytest.raises(EventTooLarge, match=r"event 'step' v3 .* over the 16384-byte limit"):
        await store.save(run)
    assert await store.run_version(run.id) == 1


async def test_unknown_run(pool: asyncpg.Pool) -> None:
    with pytest.raises(RunNotFound):
        await PgEventStore(pool).load_run(uuid.uuid4())


async def test_racing_appends_one_winner_per_version(pool: asyncpg.Pool) -> None:
    """8 tasks append at the same expected version, round after round."""
    store = PgEventStore(pool)
    run = new_run()
    await store.save(run)
    run.collect_events()
    await store.save(await _started(store, run.id))
    for round_ in range(40):
        contenders = []
        for task in range(8):
            copy = await store.load_run(run.id)
            copy.record_step(StepResult(
                index=round_, action="click", instruction=f"t{task}", status="passed"))
            contenders.append(copy)
        results = await asyncio.gather(*(store.save(c) for c in contenders),
                                       return_exceptions=True)
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and all(isinstance(e, ConcurrencyConflict) for e in lost)
    history = await store.read_run(run.id)
    assert [e.version for e in history] == list(range(1, 43))
    assert [e.data["index"] for e in history[2:]] == list(range(40))


async def _started(store: PgEventStore, run_id: uuid.UUID) -> Run:
    run = await store.load_run(run_id)
    run.start(worker="w1", browser=BROWSER)
    return run


async def test_readers_never_skip_late_commits(pool: asyncpg.Pool) -> None:
    """Concurrent writers, some sleeping inside their transaction before commit, while a
    reader tails by notification id: it sees every event exactly once and in version order
    per run, though ids are handed out before commits become visible."""
    store = PgEventStore(pool)
    writers, per_writer = 6, 25
    done = asyncio.Event()
    seen: list[tuple[int, uuid.UUID, int]] = []

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        runs = [new_run() for _ in range(5)]
        for i in range(per_writer):
            run = runs[i % len(runs)]
            if not run.pending_events:  # saved before: advance it
                if run.status == "queued":
                    run.start(worker="w", browser=BROWSER)
                else:
                    run.record_step(StepResult(
                        index=run.last_step + 1, action="click", instruction="x", status="passed"))
            events = run.collect_events()
            async with pool.acquire() as conn, conn.transaction():
                await store.append(events, connection=conn)
                if rng.random() < 0.3:
                    await conn.execute("SELECT pg_sleep($1)", rng.uniform(0.005, 0.03))

    async def reader() -> None:
        position = 0
        while True:
            finished = done.is_set()
            batch = await store.read_after(position, limit=7)
            seen.extend((e.notification_id, e.run_id, e.version) for e in batch)
            if batch:
                position = batch[-1].notification_id
            elif finished:
                return
            else:
                await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(s) for s in range(writers)))
    done.set()
    await reading

    rows = await pool.fetch("SELECT notification_id, originator_id, originator_version "
                            "FROM stored_events ORDER BY notification_id")
    assert seen == [tuple(r) for r in rows]
    assert len(seen) == writers * per_writer
    by_run: dict[uuid.UUID, list[int]] = {}
    for _, run_id, version in seen:
        by_run.setdefault(run_id, []).append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in by_run.values())


async def test_maintenance_locks_do_not_delay_appends(pool: asyncpg.Pool) -> None:
    """VACUUM, ANALYZE and autovacuum hold SHARE UPDATE EXCLUSIVE on the log: an append goes
    through while another session holds it (a table lock taken by appenders would wait, and
    with a 100 ms lock_timeout fail). And an open append does not hold maintenance up."""
    store = PgEventStore(pool, lock_timeout_seconds=0.1)
    async with pool.acquire() as maintenance, maintenance.transaction():
        await maintenance.execute("LOCK TABLE stored_events IN SHARE UPDATE EXCLUSIVE MODE")
        ids = await store.save(new_run())
    assert ids == [await store.head_id()]
    async with pool.acquire() as appender, appender.transaction():
        await store.append(new_run().collect_events(), connection=appender)
        async with pool.acquire() as maintenance:
            await maintenance.execute("SET lock_timeout = '100ms'")
            await maintenance.execute("VACUUM (ANALYZE) stored_events")
            analysed = await maintenance.fetchval(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'stored_events'")
    assert analysed >= 1
    assert len(await store.read_after(0)) == 2


async def test_listener_wakes_on_commit_and_honours_stop(
    pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    listener = LogListener(database_url, poll_interval=30)
    await listener.start()
    try:
        since = listener.generation
        waiting = asyncio.create_task(listener.wait(since))
        await asyncio.sleep(0)
        await store.save(new_run())
        assert await asyncio.wait_for(waiting, 10) is True
        assert await store.head_id() == 1
        # A commit between reading the generation and waiting is not lost.
        since = listener.generation
        await store.save(new_run())
        await asyncio.wait_for(listener.wait(since), 10)
        stop = asyncio.Event()
        stopping = asyncio.create_task(listener.wait(listener.generation, stop))
        stop.set()
        assert await asyncio.wait_for(stopping, 10) is False
    finally:
        await listener.close()


async def test_dropped_connection_is_a_transient_error(
    pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    await store.save(new_run())
    async with pool.acquire() as conn:
        pid = conn.get_server_pid()
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        with pytest.raises(TransientStoreError, match="connection"):
            await store.append(new_run().collect_events(), connection=conn)
    # The pool replaces the dead connection: the store keeps working.
    assert await store.head_id() == 1


async def test_listener_survives_a_dropped_connection(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Killing the LISTEN connection wakes waiters; later waits reconnect and are woken by
    commits again."""
    store = PgEventStore(pool)
    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    try:
        assert listener.listening
        since = listener.generation
        await pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        assert await asyncio.wait_for(listener.wait(since, poll_after=30), 10) is True
        deadline = asyncio.get_running_loop().time() + 10
        while not listener.listening:  # reconnects on a later wait, at most once per poll
            assert asyncio.get_running_loop().time() < deadline
            await listener.wait(listener.generation, poll_after=0.05)
        since = listener.generation
        waiting = asyncio.create_task(listener.wait(since, poll_after=30))
        await asyncio.sleep(0)
        await store.save(new_run())
        assert await asyncio.wait_for(waiting, 10) is True
    finally:
        await listener.close()


async def test_an_unreadable_event_is_reported_not_crashed_on(pool: asyncpg.Pool) -> None:
    store = PgEventStore(pool)
    run = new_run()
    await store.save(run)
    await pool.execute(
        "UPDATE stored_events SET topic = 'somewhere:Gone' WHERE originator_id = $1", run.id
    )
    with pytest.raises(UndecodableEvent, match=r"event v1 \(somewhere:Gone\) cannot be replayed"):
        await store.load_run(run.id)
