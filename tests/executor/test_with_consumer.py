"""The executor behind the real queue consumer: a job from ``runs:queue`` becomes
``started``, one ``step`` event per step (with the executor's details and artifact
references), then ``completed`` — or ``errored`` when the browser dies, keeping the steps
recorded before."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from ledger.aio import Backoff
from ledger.codec import RecordedEvent
from ledger.domain import Run
from ledger.store import PgEventStore
from ledger.streams import QUEUE
from runledger.testing import wait_until
from worker.agent import AgentExecutor
from worker.agent.browser import ChromiumHost
from worker.consumer import ConsumerConfig, RunConsumer
from worker.queue import RedisRunQueue

from .conftest import chromium_processes

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.asyncio(loop_scope="module")]

MakeExecutor = Callable[..., AgentExecutor]


@pytest_asyncio.fixture(loop_scope="module")
async def queue(redis_url: str) -> AsyncIterator[RedisRunQueue]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    queue = RedisRunQueue(client, "agent-test", claim_idle_seconds=30, block_seconds=0.05)
    await queue.ensure_group()
    queue.client = client  # type: ignore[attr-defined]  # to enqueue as the relay does
    try:
        yield queue
    finally:
        await client.aclose()


async def consume(
    store: PgEventStore, pool: asyncpg.Pool, queue: RedisRunQueue, executor: AgentExecutor,
    url: str, steps: list[dict[str, Any]],
) -> tuple[str, list[RecordedEvent]]:
    run = Run.queue(test_id="consumer-test", test_name="with the consumer", url=url,
                    steps=steps)
    await store.save(run)
    await queue.client.xadd(  # type: ignore[attr-defined]
        QUEUE, {"run_id": str(run.id), "test_id": "consumer-test", "attempt": 1})
    [job] = await queue.read(1)
    consumer = RunConsumer(store, pool, queue, executor,
                           ConsumerConfig(consumer="agent-test", max_deliveries=3,
                                          run_timeout_seconds=60),
                           backoff=Backoff(base_seconds=0.01))
    outcome = await consumer.handle(job)
    return outcome, await store.read_run(run.id)


async def test_a_run_through_the_consumer(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, queue: RedisRunQueue
) -> None:
    store = PgEventStore(pool)
    steps = [
        {"action": "fill", "instruction": "Fill 'Email' with 'ada@example.com'",
         "value": "ada@example.com"},
        {"action": "fill", "instruction": "Fill 'Password'", "value": "correct horse"},
        {"action": "click", "instruction": "Click 'Log in'"},
        {"action": "verify", "instruction": "Welcome", "expected": "Welcome, ada"},
    ]
    outcome, events = await consume(store, pool, queue, make_executor(), f"{site}/login.html",
                                    steps)
    assert outcome == "passed"
    assert [e.type for e in events] == ["queued", "started", "step", "step", "step", "step",
                                        "completed"]
    assert events[1].data["browser"]["name"] == "chromium-headless-shell"
    click = events[4].data
    assert click["strategy"] == "dom" and click["details"]["locator"] == (
        'get_by_role("button", name="Log in", exact=True)')
    assert [a["kind"] for a in events[5].data["artifacts"]] == ["screenshot", "trace"]
    assert events[-1].data["status"] == "passed"


async def test_a_browser_crash_becomes_errored_keeping_earlier_steps(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, queue: RedisRunQueue,
    host: ChromiumHost
) -> None:
    store = PgEventStore(pool)
    steps = [{"action": "navigate", "instruction": "Open the users page"},
             {"action": "wait_for", "instruction": "Wait for 'Payroll exported'"}]
    executor = make_executor(screenshots="off", traces="off", step_timeout_seconds=30.0)

    async def kill_after_first_step() -> None:
        await wait_until(lambda: pool.fetchval(
            "SELECT count(*) FROM stored_events WHERE topic = 'runledger:Run.StepRecorded'"
        ), what="the first step to be recorded")
        for pid in chromium_processes(host.tag)["browser"]:
            os.kill(pid, signal.SIGKILL)

    killer = asyncio.create_task(kill_after_first_step(), name="browser-killer")
    outcome, events = await consume(store, pool, queue, executor, f"{site}/table.html", steps)
    await killer
    # errored by the crash — not failed at step 1 after its 30 s timeout
    assert outcome == "errored"
    assert [e.type for e in events] == ["queued", "started", "step", "errored"]
    assert events[-1].data["kind"] == "browser-crash" and events[-1].data["step"] == 1
