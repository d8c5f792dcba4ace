"""The worker as a real process: kill -9, SIGTERM (once and twice), start-up failures, and
duplicate delivery across processes. Waits on log lines, events, rows and stream entries."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.store import PgEventStore
from ledger.streams import QUEUE, WORKER_GROUP, stream_key
from tests.worker.conftest import (
    enqueue,
    event_types,
    pending_entries,
    queue_drained,
    queue_run,
    reached,
    release,
    wait_relayed,
    wait_row,
    wait_until,
)
from tests.worker.proxy import CuttableProxy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, proc: asyncio.subprocess.Process, name: str, log: Path) -> None:
        self.proc = proc
        self.name = name
        self.log = log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def logged(self, needle: str, within: float = 20.0) -> None:
        async def check() -> bool:
            return needle in self.text()

        await wait_until(check, within=within, what=f"{self.name} to log {needle!r}")

    async def exit_code(self, within: float) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} still running after {within}s; log:\n{self.text()}"
            ) from None


@pytest.fixture
async def spawn(
    database_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start worker processes; any still running at the end are killed."""
    started: list[WorkerProcess] = []

    async def start(module: str = "tests.worker.scripted_worker", *args: str, wait: bool = True,
                    **env: Any) -> WorkerProcess:
        name = f"proc-{len(started)}-{uuid.uuid4().hex[:6]}"
        environment = {
            **os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "REDIS_CONSUMER_NAME": name, "CLAIM_IDLE_SECONDS": "1",
            "RECOVERY_CHECK_INTERVAL_SECONDS": "0.2",
            "WORKER_BLOCK_SECONDS": "0.2", "LOG_LEVEL": "INFO",
        }
        environment.update({k.upper(): str(v) for k, v in env.items()})
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, *args, cwd=ROOT, env=environment,
                stdout=out, stderr=asyncio.subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, name, log)
        started.append(worker)
        if wait:
            await worker.logged("Stuck-run recovery every")
        return worker

    yield start
    for worker in started:
        if worker.proc.returncode is None:
            worker.proc.kill()
            await worker.proc.wait()


def gate_name() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


@pytest.mark.usefixtures("projector")
async def test_kill_9_mid_run_ends_in_one_timeout_seen_by_the_other_worker(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
) -> None:
    doomed = await spawn()
    gate = gate_name()
    run_id = await queue_run(store, "pass", f"gate {gate}", "pass")
    await reached(redis, gate)
    survivor = await spawn()
    doomed.proc.send_signal(signal.SIGKILL)
    assert await doomed.exit_code(10) == -signal.SIGKILL
    row = await wait_row(pool, run_id, "failed", within=30)
    assert row["error"].startswith(f"worker {doomed.name} was lost")
    assert row["completed_at"] is not None
    await survivor.logged(f"Worker lost: ended its run run_id={run_id}")
    types = await event_types(store, run_id)
    assert types == ["queued", "started", "step", "timed-out"]
    assert sum(t in {"completed", "errored", "timed-out", "cancelled"} for t in types) == 1
    await wait_relayed(pool, redis)  # the row is the runs follower's; the stream the relay's
    entries = await redis.xrange(stream_key(run_id))
    assert [f["type"] for _, f in entries][-1] == "timed-out"
    # The dead worker's job was reclaimed, found running, and acknowledged.
    await wait_until(lambda: _is_zero(pending_entries(redis)), what="the job to be acked")
    survivor.proc.send_signal(signal.SIGTERM)
    assert await survivor.exit_code(15) == 0


@pytest.mark.usefixtures("projector")
async def test_sigterm_mid_run_completes_it_acknowledges_and_exits_0(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
) -> None:
    worker = await spawn()
    gate = gate_name()
    run_id = await queue_run(store, "pass", f"gate {gate}", "pass")
    await reached(redis, gate)
    worker.proc.send_signal(signal.SIGTERM)
    await worker.logged("Received SIGTERM: finishing in-flight runs")
    await worker.logged("draining 1 in-flight run")
    later = await queue_run(store, "pass")  # after the signal: must not be taken
    await wait_row(pool, later, "queued")
    await release(redis, gate)
    assert await worker.exit_code(20) == 0
    assert await event_types(store, run_id) == [
        "queued", "started", "step", "step", "step", "completed"]
    assert await pending_entries(redis) == 0
    assert await event_types(store, later) == ["queued"]
    text = worker.text()
    for line in ("Stopping recovery and heartbeat", "Executor closed", "PostgreSQL pool closed",
                 "Redis connection closed", "Worker exited cleanly"):
        assert line in text
    # Closed in the documented order: browser, PostgreSQL pool, Redis.
    assert text.index("Executor closed") < text.index("PostgreSQL pool closed") < text.index(
        "Redis connection closed")


@pytest.mark.usefixtures("projector")
async def test_a_second_signal_stops_at_once_leaving_the_job_to_others(
    spawn: Callable[..., Any], store: PgEventStore, redis: aioredis.Redis,
) -> None:
    worker = await spawn()
    gate = gate_name()
    run_id = await queue_run(store, "pass", f"gate {gate}")
    await reached(redis, gate)
    worker.proc.send_signal(signal.SIGTERM)
    await worker.logged("draining 1 in-flight run")
    # Another signal: the same one again within a second would count as a duplicate.
    worker.proc.send_signal(signal.SIGINT)
    # No clock in the verdict: a drain would wait for the gate, which is never released, so
    # exiting at all shows the stop was forced; the bound only has to outlast a loaded machine.
    assert await worker.exit_code(30) == 128 + signal.SIGINT
    assert "Forced stop: 1 run(s) abandoned" in worker.text()
    assert await event_types(store, run_id) == ["queued", "started", "step"]
    [pending] = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
    assert pending["consumer"] == worker.name  # un-acknowledged: reclaimable by others


@pytest.mark.usefixtures("projector")
async def test_two_worker_processes_given_every_job_twice_run_each_once(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
) -> None:
    workers = [await spawn(worker_concurrency=3) for _ in range(2)]
    runs = [await queue_run(store, "pass", "work 0.02") for _ in range(12)]
    for run_id in runs:
        await enqueue(redis, run_id)  # a duplicate of the relay's job
    for run_id in runs:
        await wait_row(pool, run_id, "passed")
    for run_id in runs:
        assert await event_types(store, run_id) == [
            "queued", "started", "step", "step", "completed"]
    # Every run passed on one of its two jobs; the other (the relay's may be published
    # after the run finished) must still be read and skipped before the workers stop.
    await wait_relayed(pool, redis)
    await wait_until(lambda: queue_drained(redis), what="every job read and acked")
    for worker in workers:
        worker.proc.send_signal(signal.SIGINT)
    assert [await w.exit_code(15) for w in workers] == [0, 0]
    skipped = sum(w.text().count("Skipping job: run is") for w in workers)
    lost = sum(w.text().count("Lost the race for run") for w in workers)
    assert skipped + lost == len(runs)


@pytest.mark.parametrize(
    "command", [["worker"], ["runledger.cli", "worker"], ["tests.worker.scripted_worker"]],
    ids=["python -m worker", "runledger worker", "scripted"],
)
async def test_unreachable_redis_exits_non_zero_naming_redis_url(
    spawn: Callable[..., Any], command: list[str],
) -> None:
    worker = await spawn(*command, wait=False, redis_url="redis://127.0.0.1:9/0")
    assert await worker.exit_code(20) == 1
    assert "Worker cannot start: cannot reach Redis at REDIS_URL=redis://127.0.0.1:9/0" in (
        worker.text())


async def test_missing_setting_exits_2_naming_it(spawn: Callable[..., Any]) -> None:
    worker = await spawn("worker", wait=False, worker_concurrency="zero")
    assert await worker.exit_code(20) == 2
    assert "WORKER_CONCURRENCY" in worker.text()


@pytest.mark.usefixtures("projector")
async def test_a_killed_workers_run_is_named_lost_by_a_busy_workers_recovery(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
) -> None:
    """kill -9 while a run is in flight; the other worker has no free slot, so it cannot
    reclaim the job: its recovery pass sees the lapsed lease and ends the run naming the
    lost worker, long before STUCK_RUN_TIMEOUT_MINUTES (10 here). The job itself is
    reclaimed and acknowledged once a slot frees."""
    doomed = await spawn(worker_concurrency=1)
    gates = gate_name(), gate_name()
    run_id = await queue_run(store, "pass", f"gate {gates[0]}", "pass")
    await reached(redis, gates[0])
    busy = await spawn(worker_concurrency=1)
    other = await queue_run(store, f"gate {gates[1]}", "pass")
    await reached(redis, gates[1])
    doomed.proc.send_signal(signal.SIGKILL)
    assert await doomed.exit_code(10) == -signal.SIGKILL
    row = await wait_row(pool, run_id, "failed", within=30)
    assert row["error"].startswith(f"worker {doomed.name} was lost: its lease on the run lapsed")
    await busy.logged(f"Worker lost: ended its run run_id={run_id} worker={doomed.name}")
    [*_, ended] = await store.read_run(run_id)
    assert (ended.type, ended.data["detected_by"]) == ("timed-out", "lease")
    assert await event_types(store, run_id) == ["queued", "started", "step", "timed-out"]
    assert await pending_entries(redis) >= 1  # the lost job: never acked before its end
    await release(redis, gates[1])
    await wait_row(pool, other, "passed")
    await wait_until(lambda: _is_zero(pending_entries(redis)), what="the jobs to be acked")
    busy.proc.send_signal(signal.SIGTERM)
    assert await busy.exit_code(15) == 0


@pytest.mark.usefixtures("projector")
async def test_a_redis_outage_longer_than_the_lease_ends_only_the_killed_workers_run(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
    redis_url: str,
) -> None:
    """Redis unreachable (a cut proxy) for longer than CLAIM_IDLE_SECONDS (1 s here) stops
    every worker's renewals, and one worker is killed meanwhile. When Redis answers again
    the killed worker's run is named lost; the live worker's run, whose lease Redis also
    shows overdue, is left alone by every recovery pass and by the worker reclaiming its
    job (nothing is judged until Redis was back for CLAIM_IDLE_SECONDS), and passes."""
    proxy = CuttableProxy(redis_url)
    await proxy.start()
    try:
        # Gates stay on the real server: the runs themselves need no Redis.
        through = {"redis_url": proxy.url, "scripted_redis_url": redis_url,
                   "worker_concurrency": 1}
        live = await spawn(**through)
        kept_gate, lost_gate = gate_name(), gate_name()
        kept = await queue_run(store, "pass", f"gate {kept_gate}", "pass")
        await reached(redis, kept_gate)
        doomed = await spawn(**through)
        lost = await queue_run(store, f"gate {lost_gate}", "pass")
        await reached(redis, lost_gate)
        judge = await spawn(**through)  # a free slot: it reclaims overdue jobs at once
        await proxy.cut()
        doomed.proc.send_signal(signal.SIGKILL)
        assert await doomed.exit_code(10) == -signal.SIGKILL
        await live.logged("Could not refresh held jobs")

        async def both_leases_overdue() -> bool:
            pending = await redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", 10)
            return len(pending) == 2 and all(
                int(p["time_since_delivered"]) >= 1500 for p in pending)

        await wait_until(both_leases_overdue, within=20, what="the outage to outlast leases")
        await proxy.restore()
        row = await wait_row(pool, lost, "failed", within=30)
        assert row["error"].startswith(f"worker {doomed.name} was lost: its lease")

        # Judged by then, and the live worker's run was not ended: it had renewed its lease.
        assert await event_types(store, kept) == ["queued", "started", "step"]

        async def doubt_logged() -> bool:
            return any("Not judging" in w.text() for w in (live, judge))

        await wait_until(doubt_logged, what="a worker to hold off judging after the outage")
        await release(redis, kept_gate)
        await wait_row(pool, kept, "passed", within=30)
        assert "timed-out" not in await event_types(store, kept)
        await wait_until(lambda: _is_zero(pending_entries(redis)), what="the jobs to be acked")
        for worker in (live, judge):
            worker.proc.send_signal(signal.SIGTERM)
            assert await worker.exit_code(15) == 0
    finally:
        await proxy.close()


@pytest.mark.usefixtures("projector")
async def test_workers_killed_again_and_again_leave_one_terminal_event_per_run(
    spawn: Callable[..., Any], store: PgEventStore, pool: asyncpg.Pool, redis: aioredis.Redis,
) -> None:
    """Three rounds: a worker takes a run, is killed with SIGKILL mid-run, and the next
    worker (started after the kill) names the loss; a last one runs a fresh run through."""
    lost = []
    for _ in range(3):
        worker = await spawn(worker_concurrency=1)
        gate = gate_name()
        run_id = await queue_run(store, f"gate {gate}", "pass")
        await reached(redis, gate)
        worker.proc.send_signal(signal.SIGKILL)
        assert await worker.exit_code(10) == -signal.SIGKILL
        lost.append((run_id, worker.name))
    survivor = await spawn()
    fresh = await queue_run(store, "pass")
    await wait_row(pool, fresh, "passed")
    for run_id, name in lost:
        row = await wait_row(pool, run_id, "failed", within=30)
        assert row["error"].startswith(f"worker {name} was lost")
        assert await event_types(store, run_id) == ["queued", "started", "timed-out"]
    await wait_until(lambda: _is_zero(pending_entries(redis)), what="every job to be acked")
    survivor.proc.send_signal(signal.SIGTERM)
    assert await survivor.exit_code(15) == 0


async def test_a_stuck_run_timeout_not_above_the_run_timeout_is_refused(
    spawn: Callable[..., Any],
) -> None:
    worker = await spawn("worker", wait=False, stuck_run_timeout_minutes="5",
                         run_timeout_seconds="300")
    assert await worker.exit_code(20) == 2
    [line] = [x for x in worker.text().splitlines() if "STUCK_RUN_TIMEOUT_MINUTES" in x]
    assert "STUCK_RUN_TIMEOUT_MINUTES=5 (300s) must be above RUN_TIMEOUT_SECONDS=300 plus " \
        "RUN_FINISH_GRACE_SECONDS=30 (330s)" in line


async def _is_zero(count: Any) -> bool:
    return await count == 0
