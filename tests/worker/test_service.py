"""``run_worker`` in-process with the real projector: end to end through the ledger, the
relay, ``runs:queue`` and the ``runs`` read model — concurrency, reclaiming, shutdown,
dropped connections, logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.domain import StepResult
from ledger.store import PgEventStore
from ledger.streams import DEAD, QUEUE, WORKER_GROUP, stream_key
from tests.worker.conftest import (
    event_types,
    pending_entries,
    queue_run,
    reached,
    release,
    running_worker,
    wait_relayed,
    wait_row,
    wait_until,
    worker_settings,
)
from tests.worker.proxy import CuttableProxy
from tests.worker.scripted import ScriptedExecutor
from worker.errors import BrowserUnavailable, StartupError
from worker.queue import STARTS_PREFIX
from worker.service import run_worker

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("projector")]


def gate_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def test_a_queued_run_is_executed_projected_and_streamed(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:
    async with running_worker(database_url, redis_url) as worker:
        run_id = await queue_run(store, "pass", "pass")
        row = await wait_row(pool, run_id, "passed")
    assert (row["steps_passed"], row["worker"]) == (2, worker.settings.redis_consumer_name)
    assert row["completed_at"] is not None
    assert await event_types(store, run_id) == ["queued", "started", "step", "step", "completed"]
    await wait_relayed(pool, redis)  # the row is the runs follower's; the stream the relay's
    entries = await redis.xrange(stream_key(run_id))
    assert [fields["type"] for _, fields in entries][-1] == "completed"
    assert await pending_entries(redis) == 0
    assert (worker.executor.opened, worker.executor.closed) == (1, 1)


async def test_concurrency_is_bounded(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:
    gates = [gate_name() for _ in range(3)]
    async with running_worker(database_url, redis_url, worker_concurrency=2):
        runs = [await queue_run(store, f"gate {gate}") for gate in gates]
        await wait_row(pool, runs[0], "running")
        await wait_row(pool, runs[1], "running")
        await reached(redis, gates[0])
        await reached(redis, gates[1])
        # Two slots, both busy: the third job is not even read.
        assert await event_types(store, runs[2]) == ["queued"]
        assert await pending_entries(redis) == 2
        for gate in gates[:2]:
            await release(redis, gate)
        await reached(redis, gates[2])
        await release(redis, gates[2])
        for run_id in runs:
            await wait_row(pool, run_id, "passed")


async def test_graceful_stop_finishes_the_run_in_flight_and_takes_no_new_job(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    gate = gate_name()
    async with running_worker(database_url, redis_url) as worker:
        first = await queue_run(store, "pass", f"gate {gate}", "pass")
        await reached(redis, gate)
        worker.stop.set()
        await wait_until(_logged(caplog, "draining 1 in-flight run"), what="the drain")
        second = await queue_run(store, "pass")
        await wait_row(pool, second, "queued")
        await release(redis, gate)
        await asyncio.wait_for(worker.task, 30)
    assert await event_types(store, first) == [
        "queued", "started", "step", "step", "step", "completed"]
    assert await event_types(store, second) == ["queued"]
    assert await pending_entries(redis) == 0
    consumers = await redis.xinfo_consumers(QUEUE, WORKER_GROUP)
    assert worker.settings.redis_consumer_name not in {c["name"] for c in consumers}
    assert worker.executor.closed == 1


async def test_force_stop_abandons_the_run_and_leaves_its_job_pending(
    database_url: str, redis_url: str, store: PgEventStore, redis: aioredis.Redis,
) -> None:
    gate = gate_name()
    async with running_worker(database_url, redis_url) as worker:
        run_id = await queue_run(store, "pass", f"gate {gate}")
        await reached(redis, gate)
        worker.stop.set()
        worker.force_stop.set()
        # A drain would wait for the gate, never released: ending at all shows the stop was
        # forced; the bound only has to outlast a loaded machine.
        await asyncio.wait_for(worker.task, 30)
    assert worker.executor.stopped == [(run_id, "interrupted")]
    assert await event_types(store, run_id) == ["queued", "started", "step"]
    assert await pending_entries(redis) == 1  # reclaimed by another worker, later
    assert worker.executor.closed == 1


async def test_jobs_of_a_dead_consumer_are_reclaimed_and_run(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:
    run_id = await queue_run(store, "pass")
    await wait_until(lambda: redis.xlen(QUEUE), what="the relay to enqueue the job")
    await redis.xgroup_create(QUEUE, WORKER_GROUP, id="0")
    # A consumer took the job and died before starting it.
    assert await redis.xreadgroup(WORKER_GROUP, "ghost", {QUEUE: ">"}, count=1)
    async with running_worker(database_url, redis_url, claim_idle_seconds=0.5) as worker:
        await wait_row(pool, run_id, "passed")
    [started] = [e for e in await store.read_run(run_id) if e.type == "started"]
    assert started.data["worker"] == worker.settings.redis_consumer_name
    assert await pending_entries(redis) == 0


async def test_a_run_left_running_by_a_dead_worker_is_timed_out_once(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    run_id = await queue_run(store, "pass", "pass")
    await wait_until(lambda: redis.xlen(QUEUE), what="the relay to enqueue the job")
    await redis.xgroup_create(QUEUE, WORKER_GROUP, id="0")
    await redis.xreadgroup(WORKER_GROUP, "ghost", {QUEUE: ">"}, count=1)
    run = await store.load_run(run_id)  # the ghost started it, recorded a step, and died
    run.start(worker="ghost", browser={})
    run.record_step(StepResult(index=0, action="click", instruction="pass", status="passed"))
    await store.save(run)
    async with running_worker(
        database_url, redis_url, claim_idle_seconds=0.5, recovery_check_interval_seconds=0.1,
    ):
        row = await wait_row(pool, run_id, "failed")
        # The ghost's lease lapsed: its job was reclaimed, the run ended naming the lost
        # worker (well before STUCK_RUN_TIMEOUT_MINUTES), and the job acknowledged.
        await wait_until(lambda: _zero(pending_entries(redis)), what="the job to be acked")
    assert row["error"].startswith("worker ghost was lost")
    assert row["completed_at"] is not None
    types = await event_types(store, run_id)
    assert types == ["queued", "started", "step", "timed-out"]
    await wait_relayed(pool, redis)  # the row is the runs follower's; the stream the relay's
    entries = await redis.xrange(stream_key(run_id))
    assert [f["type"] for _, f in entries][-1] == "timed-out"
    assert f"Worker lost: ended its run run_id={run_id}" in caplog.text


async def test_a_dropped_database_connection_mid_run_is_retried(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="worker")
    proxy = CuttableProxy(database_url)
    await proxy.start()
    gate = gate_name()
    try:
        async with running_worker(proxy.url, redis_url):
            run_id = await queue_run(store, "pass", f"gate {gate}", "pass")
            await reached(redis, gate)
            await proxy.cut()  # every worker connection reset, new ones refused
            await release(redis, gate)
            await wait_until(_logged(caplog, "retry 1/3"), within=10, what="a retry")
            await proxy.restore()
            await wait_row(pool, run_id, "passed")
    finally:
        await proxy.close()
    assert await event_types(store, run_id) == [
        "queued", "started", "step", "step", "step", "completed"]
    assert await pending_entries(redis) == 0


async def test_a_database_outage_that_persists_leaves_the_job_pending_then_recovered(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the step nor the ``errored`` fallback can be written: the job is not
    acknowledged. Once the database is back, the worker reclaims the job, recognises its own
    ``started`` (nothing recorded after it) and runs the steps again: nothing was silently
    dropped, and the run was not failed for an outage."""
    caplog.set_level(logging.INFO, logger="worker")
    proxy = CuttableProxy(database_url)
    await proxy.start()
    gate = gate_name()
    try:
        async with running_worker(
            proxy.url, redis_url, claim_idle_seconds=0.5, recovery_check_interval_seconds=0.1,
            # Both deliveries reached the start (the second by recognising its own).
            max_deliveries=2,
        ):
            run_id = await queue_run(store, f"gate {gate}", "pass")
            await reached(redis, gate)
            await proxy.cut()
            await release(redis, gate)
            await wait_until(_logged(caplog, "Job left pending"), within=30, what="give-up")
            assert await pending_entries(redis) == 1
            await wait_until(_logged(caplog, "no new jobs until it answers"), what="the pause")
            # Queued during the outage: not read, so not made pending, so not poisoned.
            later = await queue_run(store, "pass")
            await wait_row(pool, later, "queued")
            await proxy.restore()
            await reached(redis, gate)  # carried on from the start
            await release(redis, gate)
            await wait_row(pool, run_id, "passed")
            await wait_row(pool, later, "passed")
            await wait_until(lambda: _zero(pending_entries(redis)), what="the job to be acked")
    finally:
        await proxy.close()
    assert f"Recognised our own start of run run_id={run_id}" in caplog.text
    assert await redis.xlen(DEAD) == 0
    assert await event_types(store, run_id) == [
        "queued", "started", "step", "step", "completed"]


async def test_redeliveries_from_an_outage_before_the_start_do_not_dead_letter_the_run(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """The worker reads the job while the database is down, cannot load the run and leaves
    the job pending; once the database is back it reclaims it (a second delivery). Neither
    delivery reached the run's start before, so even MAX_DELIVERIES=1 runs it."""
    caplog.set_level(logging.INFO, logger="worker")
    proxy = CuttableProxy(database_url)
    await proxy.start()
    try:
        async with running_worker(
            proxy.url, redis_url, claim_idle_seconds=0.5, recovery_check_interval_seconds=0.1,
            max_deliveries=1,
        ):
            await wait_until(_logged(caplog, "Stuck-run recovery every"), what="the worker")
            await proxy.cut()
            run_id = await queue_run(store, "pass")
            await wait_until(_logged(caplog, "Job left pending"), within=30, what="give-up")
            await proxy.restore()
            await wait_row(pool, run_id, "passed")
            await wait_until(lambda: _zero(pending_entries(redis)), what="the job to be acked")
    finally:
        await proxy.close()
    assert "Reclaimed 1 job(s)" in caplog.text
    assert await event_types(store, run_id) == ["queued", "started", "step", "completed"]
    assert await redis.xlen(DEAD) == 0
    assert [await redis.get(key) async for key in redis.scan_iter(f"{STARTS_PREFIX}*")] == ["1"]


async def test_the_worker_survives_redis_losing_its_data(
    database_url: str, redis_url: str, store: PgEventStore, pool: asyncpg.Pool,
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    """A restart without persistence (here: FLUSHALL) removes the stream and the group; the
    worker re-creates the group and keeps consuming what the relay publishes."""
    caplog.set_level(logging.INFO, logger="worker")
    async with running_worker(database_url, redis_url):
        first = await queue_run(store, "pass")
        await wait_row(pool, first, "passed")
        await redis.flushall()
        await wait_until(_logged(caplog, "re-creating it"), what="the group to be re-created")
        second = await queue_run(store, "pass")
        await wait_row(pool, second, "passed")
    assert await event_types(store, second) == ["queued", "started", "step", "completed"]


async def test_startup_and_heartbeat_logs_name_settings_but_no_secrets(
    database_url: str, redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    # The embedded test server requires a password (a trusting one ignores the one given).
    password = urlsplit(database_url).password or "s3cret-pw"
    secret_url = database_url if urlsplit(database_url).password else database_url.replace(
        "postgres@", f"postgres:{password}@", 1)
    assert password in secret_url
    async with running_worker(secret_url, redis_url, worker_heartbeat_seconds=0.1) as worker:
        await wait_until(_logged(caplog, "Worker heartbeat: idle"), what="an idle heartbeat")
    text = caplog.text
    assert f"consumer={worker.settings.redis_consumer_name}" in text
    assert "DATABASE_URL=postgresql://postgres:***@" in text
    assert "stuck after 10 min" in text and "run 300s" in text
    assert "redis=ok database=ok" in text
    assert password not in text


async def test_unreachable_redis_fails_startup_naming_the_variable(database_url: str) -> None:
    settings = worker_settings(database_url, "redis://127.0.0.1:9/0")
    executor = ScriptedExecutor("redis://127.0.0.1:9/0")
    with pytest.raises(StartupError, match=r"REDIS_URL=redis://127\.0\.0\.1:9/0"):
        await run_worker(settings, executor, asyncio.Event())
    assert executor.opened == 0


async def test_an_executor_that_cannot_open_fails_startup(
    database_url: str, redis_url: str,
) -> None:
    class NoBrowser(ScriptedExecutor):
        async def open(self) -> None:
            raise BrowserUnavailable("no Chromium found; install chromium-headless-shell")

    settings = worker_settings(database_url, redis_url)
    with pytest.raises(StartupError, match="executor cannot start: no Chromium found"):
        await run_worker(settings, NoBrowser(redis_url), asyncio.Event())


def _logged(caplog: pytest.LogCaptureFixture, text: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return text in caplog.text

    return check


async def _zero(count) -> bool:  # type: ignore[no-untyped-def]
    return await count == 0

