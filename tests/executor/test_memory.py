"""Locator memory end to end: steps recorded as real ``step`` events in PostgreSQL, the
``locator_memory`` follower applying them through the follower runner, the next run
reading what it learnt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from ledger.domain import Run
from ledger.store import LogListener, PgEventStore
from projections.follower import FollowerRunner
from projections.locator_memory import FOLLOWER, NAME, PgLocatorMemory
from runledger.testing import follower_position, wait_until
from worker.agent import AgentExecutor
from worker.ports import Outcome, RunJob, StepResult

from .conftest import make_job

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.asyncio(loop_scope="module")]

MakeExecutor = Callable[..., AgentExecutor]


class LedgerSink:
    """Appends each step as the consumer does: one ``step`` event at the next version."""

    def __init__(self, store: PgEventStore, run: Run) -> None:
        self._store = store
        self._run = run

    async def record(self, result: StepResult) -> None:
        self._run.record_step(result)
        await self._store.save(self._run)


async def run_in_ledger(executor: AgentExecutor, store: PgEventStore, job: RunJob) -> Outcome:
    run = Run.queue(test_id=job.test_id, test_name=job.test_name, url=job.url,
                    steps=[s.model_dump(mode="json", exclude_none=True) for s in job.steps],
                    run_id=job.run_id)
    run.start(worker="test-worker", browser=executor.browser)
    await store.save(run)
    outcome = await executor.execute(job, LedgerSink(store, run))
    run.complete(status=outcome.status, duration_ms=outcome.duration_ms, error=outcome.error,
                 error_step=outcome.error_step)
    await store.save(run)
    return outcome


async def catch_up(pool: asyncpg.Pool, dsn: str) -> None:
    """Run the follower until it has applied the whole log."""
    head = await PgEventStore(pool).head_id()
    stop = asyncio.Event()
    listener = LogListener(dsn, poll_interval=0.2)
    await listener.start()
    runner = FollowerRunner(FOLLOWER, dsn=dsn, listener=listener, stop=stop)
    task = asyncio.create_task(runner.run(), name="locator-memory-follower")
    try:
        async def applied() -> bool:
            assert not task.done(), task.exception()
            return runner.active and await follower_position(pool, NAME) >= head

        await wait_until(applied, what="the locator-memory follower to apply the log")
    finally:
        stop.set()
        await task
        await listener.close()


async def memory_rows(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM locator_memory ORDER BY updated_at")
    return [dict(row) for row in rows]


PLACE_ORDER = [
    {"action": "navigate", "instruction": "Open checkout"},
    {"action": "click", "instruction": "Click 'Place order'"},
    {"action": "verify", "instruction": "The order is placed", "expected": "Order placed"},
]


async def test_the_second_run_hits_memory(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    executor = make_executor(memory=PgLocatorMemory(pool), screenshots="off", traces="off")
    first = make_job(f"{site}/checkout.html", PLACE_ORDER, test_id="checkout")
    assert (await run_in_ledger(executor, store, first)).status == "passed"
    click = (await store.read_run(first.run_id))[3].data  # queued, started, navigate, click
    assert click["strategy"] == "dom" and click["details"]["memory"]["result"] == "none"

    await catch_up(pool, database_url)
    [row] = await memory_rows(pool)
    assert (row["action"], row["instruction"], row["successes"], row["failures"]) == (
        "click", "click 'place order'", 1, 0)
    assert row["locator"] == 'get_by_role("button", name="Place order", exact=True)'
    assert row["url"].endswith("/checkout.html") and row["fingerprint"]["tag"] == "button"

    second = make_job(f"{site}/checkout.html", PLACE_ORDER, test_id="checkout")
    assert (await run_in_ledger(executor, store, second)).status == "passed"
    click = (await store.read_run(second.run_id))[3].data
    assert click["strategy"] == "memory" and click["healed"] is False
    assert click["details"]["memory"]["result"] == "hit"
    assert click["details"]["locator"] == row["locator"]

    await catch_up(pool, database_url)
    [row] = await memory_rows(pool)
    assert (row["successes"], row["failures"], row["consecutive_failures"]) == (2, 0, 0)


async def test_a_stale_remembered_locator_heals_and_is_replaced(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    executor = make_executor(memory=PgLocatorMemory(pool), screenshots="off", traces="off")
    job = make_job(f"{site}/checkout.html", PLACE_ORDER, test_id="checkout")
    assert (await run_in_ledger(executor, store, job)).status == "passed"
    await catch_up(pool, database_url)

    # The product team renamed the button: the remembered exact name no longer matches.
    renamed = [dict(PLACE_ORDER[0], target="/checkout.html?label=Place+your+order"),
               *PLACE_ORDER[1:]]
    job = make_job(f"{site}/checkout.html", renamed, test_id="checkout")
    assert (await run_in_ledger(executor, store, job)).status == "passed"
    click = (await store.read_run(job.run_id))[3].data
    assert click["healed"] is True and click["strategy"] == "dom"
    assert click["details"]["memory"]["result"] == "miss"
    heal = click["details"]["heal"]
    assert heal["from"] == "memory"
    assert heal["old"] == 'get_by_role("button", name="Place order", exact=True)'
    assert heal["new"] == 'get_by_role("button", name="Place your order", exact=True)'

    await catch_up(pool, database_url)
    [row] = await memory_rows(pool)
    assert row["locator"] == heal["new"] and (row["successes"], row["failures"]) == (1, 0)


async def test_strict_mode_refuses_a_stale_memory_which_then_stops_being_served(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, database_url: str
) -> None:
    store = PgEventStore(pool)
    learn = make_executor(memory=PgLocatorMemory(pool), screenshots="off", traces="off")
    job = make_job(f"{site}/checkout.html", PLACE_ORDER, test_id="checkout")
    assert (await run_in_ledger(learn, store, job)).status == "passed"
    await catch_up(pool, database_url)

    strict = make_executor(memory=PgLocatorMemory(pool), healing="strict", screenshots="off",
                           traces="off")
    renamed = [dict(PLACE_ORDER[0], target="/checkout.html?label=Place+your+order"),
               *PLACE_ORDER[1:]]
    job = make_job(f"{site}/checkout.html", renamed, test_id="checkout")
    outcome = await run_in_ledger(strict, store, job)
    assert outcome.status == "failed" and outcome.error_step == 1
    assert (outcome.error or "").startswith(
        'HEALING=strict: the remembered locator get_by_role("button", name="Place order", '
        'exact=True) matched 0 visible elements')
    await catch_up(pool, database_url)
    [row] = await memory_rows(pool)
    assert (row["successes"], row["failures"], row["consecutive_failures"]) == (1, 1, 1)

    # At 50 % reliability the entry is no longer served: the instruction alone decides, which
    # is no heal, and memory learns the new name.
    job = make_job(f"{site}/checkout.html", renamed, test_id="checkout")
    assert (await run_in_ledger(strict, store, job)).status == "passed"
    click = (await store.read_run(job.run_id))[3].data
    assert click["details"]["memory"]["result"] == "unreliable" and not click["healed"]
    await catch_up(pool, database_url)
    [row] = await memory_rows(pool)
    assert row["locator"] == 'get_by_role("button", name="Place your order", exact=True)'
