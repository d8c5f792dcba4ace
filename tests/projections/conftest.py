"""Fixtures and helpers for the followers' tests: runs written through the real event store,
followers run as tasks against the real PostgreSQL and Valkey."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from ledger.aio import Backoff
from ledger.domain import EVENT_CLASSES, Run, StepResult
from ledger.store import LogListener, PgEventStore
from projections.follower import Follower, FollowerRunner
from runledger.testing import follower_position, log_head

BROWSER = {"name": "chromium", "version": "test"}
#: retries of an event that fails before it is parked, fast enough for tests
FAST_RETRY = Backoff(retries=2, base_seconds=0.01, max_seconds=0.02)
OUTCOMES = ("passed", "failed", "errored", "timed-out", "cancelled", "running", "queued")


@pytest.fixture
def store(pool: asyncpg.Pool) -> PgEventStore:
    return PgEventStore(pool)


def new_run(test_id: str = "t-1", *, attempt: int = 1) -> Run:
    return Run.queue(
        test_id=test_id, test_name=f"test {test_id}", url="http://127.0.0.1/",
        steps=[{"action": "click", "instruction": "Click 'Go'"}], attempt=attempt,
    )


def advance(run: Run, outcome: str, steps: int = 2, rng: random.Random | None = None) -> None:
    """Drive a queued run through its lifecycle to ``outcome`` (pending events, unsaved)."""
    rng = rng or random.Random(0)
    if outcome == "queued":
        return
    if outcome == "cancelled" and rng.random() < 0.5:
        run.cancel(reason="cancelled by user")
        return
    run.start(worker="w-1", browser=BROWSER)
    for index in range(steps):
        status = "failed" if outcome == "failed" and index == steps - 1 else "passed"
        run.record_step(StepResult(
            index=index, action="click", instruction=f"Click #{index}", status=status,
            strategy="dom", healed=index % 2 == 1, duration_ms=10 + index, attempts=1,
            url="http://127.0.0.1/", error="not found" if status == "failed" else None,
            artifacts=[{"id": f"a{index}", "kind": "screenshot", "size": 3}],
            details={"locator": f"#b{index}"},
        ))
    if outcome in ("passed", "failed"):
        run.complete(status=outcome, duration_ms=123,
                     error="step failed" if outcome == "failed" else None,
                     error_step=steps - 1 if outcome == "failed" else None)
    elif outcome == "errored":
        run.fail(message="browser crashed", kind="browser", step=steps - 1)
    elif outcome == "timed-out":
        run.time_out(timeout_seconds=600, detected_by="recovery")
    elif outcome == "cancelled":
        run.cancel(reason="cancelled by user")


def plan_runs(count: int, *, seed: int = 1, one_event_per_append: bool = False
              ) -> list[list[Any]]:
    """The appends that write ``count`` runs with random outcomes, their events interleaved
    in the log: each append takes the next event(s) of a random run that has some left."""
    rng = random.Random(seed)
    pending: list[list[Any]] = []
    for n in range(count):
        run = new_run(f"t-{n % 3}")
        advance(run, rng.choice(OUTCOMES), steps=rng.randint(0, 4), rng=rng)
        pending.append(run.collect_events())
    appends = []
    while pending:
        events = rng.choice(pending)
        take = 1 if one_event_per_append else rng.randint(1, 3)
        appends.append(events[:take])
        events[:take] = []
        pending = [p for p in pending if p]
    return appends


async def append_all(store: PgEventStore, appends: list[list[Any]]) -> None:
    for chunk in appends:
        await store.append(chunk, expected_version=chunk[0].originator_version - 1)


async def write_runs(
    store: PgEventStore, count: int, *, seed: int = 1, one_event_per_append: bool = False
) -> list[Any]:
    """Append ``count`` runs (see ``plan_runs``); returns their final ``(id, version)``."""
    appends = plan_runs(count, seed=seed, one_event_per_append=one_event_per_append)
    await append_all(store, appends)
    last: dict[Any, int] = {}
    for chunk in appends:
        last[chunk[0].originator_id] = chunk[-1].originator_version
    return [_Written(run_id, version) for run_id, version in last.items()]


@dataclass(frozen=True)
class _Written:
    id: Any
    version: int


async def checkpoint(pool: asyncpg.Pool, name: str) -> int:
    return await follower_position(pool, name)


async def caught_up(pool: asyncpg.Pool, name: str) -> bool:
    return await follower_position(pool, name) == await log_head(pool)


@contextlib.asynccontextmanager
async def running(
    follower: Follower, pool: asyncpg.Pool, database_url: str, *, batch_size: int = 100,
    listener: LogListener | None = None, retry: Backoff | None = None,
) -> AsyncIterator[FollowerRunner]:
    """Run ``follower`` in a task for the block; stop it (and check it did not fail) after."""
    own_listener = listener is None
    listener = listener or LogListener(database_url, poll_interval=0.5)
    if own_listener:
        await listener.start()
    stop = asyncio.Event()
    runner = FollowerRunner(follower, dsn=database_url, listener=listener,
                            stop=stop, batch_size=batch_size, standby_retry_seconds=0.1,
                            retry=retry or FAST_RETRY)
    task = asyncio.create_task(runner.run(), name=f"test-follower:{follower.name}")
    try:
        yield runner
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 10)
        finally:
            if own_listener:
                await listener.close()


async def table_rows(pool: asyncpg.Pool, table: str) -> list[dict[str, Any]]:
    order = {"runs": "id", "run_steps": "run_id, index"}[table]
    return [dict(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY {order}")]


async def append_raw(
    pool: asyncpg.Pool, run_id: Any, version: int, event_type: str, state: bytes
) -> int:
    """Append one event with exactly these stored bytes, through the log's own append
    function (lock, NOTIFY): poison as an older release or a bug could have left it."""
    topic = EVENT_CLASSES[event_type].TOPIC
    position = await pool.fetchval(
        "SELECT runledger_append($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $5::text)",
        [run_id], [version], [topic], [state], "5s")
    return int(position)


def encoded(store: PgEventStore, event: Any) -> bytes:
    """``event``'s stored bytes as the store would write them."""
    return store.encode([event])[3][0]


def projector_settings(database_url: str, redis_url: str, **overrides: Any) -> Any:
    """Projector settings for tests: quick polls, and a failing event parked after one
    quick retry (override to taste)."""
    from ledger.settings import load_settings
    from projections.service import ProjectorSettings

    fast = {"projector_poll_interval_seconds": 0.2, "follower_apply_retries": 1,
            "follower_retry_base_seconds": 0.01}
    return load_settings(ProjectorSettings, database_url=database_url, redis_url=redis_url,
                         **{**fast, **overrides})
