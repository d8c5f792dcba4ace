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
from ledger.codec import MAX_EVENT_BYTES, RecordedEvent
from ledger.definition import parse_test
from ledger.domain import STEP_BUDGETS, Run
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


async def test_a_poisoned_page_is_recorded_clean_and_the_run_ends_as_the_page_dictates(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, queue: RedisRunQueue
) -> None:
    # NUL, C0 controls and lone surrogates in ids, attributes, the title, dialogs, text and
    # the URL: every step is recorded (none refused by the store), nothing poisonous is.
    store = PgEventStore(pool)
    executor = make_executor(screenshots="off", traces="off", verify_timeout_seconds=2.0)
    url = f"{site}/poison.html"
    passing = [
        {"action": "navigate", "instruction": "Open the poisoned page"},
        {"action": "click", "instruction": "Click the 'Save' button"},
        {"action": "verify", "instruction": "The page says it saved", "expected": "Saved"},
    ]
    outcome, events = await consume(store, pool, queue, executor, url, passing)
    assert outcome == "passed", events[-1].data
    assert [e.type for e in events] == ["queued", "started", "step", "step", "step",
                                        "completed"]
    opened, click = events[2].data, events[3].data
    [alert] = opened["details"]["popups"]
    assert alert["type"] == "alert" and alert["message"].startswith("Welcome\ufffd")
    [confirm] = click["details"]["popups"]
    assert confirm["type"] == "confirm" and "\ufffd" in confirm["message"]
    assert "\ufffd" in str(click["details"]["fingerprint"])
    assert "%00" in click["url"]

    failing = [{"action": "click", "instruction": "Click 'Remove'"}]
    outcome, events = await consume(store, pool, queue, executor, url, failing)
    assert outcome == "failed"
    assert [e.type for e in events] == ["queued", "started", "step", "completed"]
    step = events[2].data
    assert step["status"] == "failed" and "ambiguous" in (step["error"] or "")

    states = await pool.fetch(
        "SELECT state FROM stored_events WHERE topic = 'runledger:Run.StepRecorded'")
    assert len(states) == 4
    for row in states:
        state = bytes(row["state"])
        assert b"\\u0000" not in state and b"\\ud8" not in state and b"\\udf" not in state
        assert not any(f"\\u{c:04x}".encode() in state for c in range(0x20) if c not in (9, 10))


async def test_the_largest_valid_instruction_on_a_poisoned_page_is_recorded(
    site: str, make_executor: MakeExecutor, pool: asyncpg.Pool, queue: RedisRunQueue
) -> None:
    # The longest instruction in 4-byte characters the definition accepts, copied into the
    # step event twice, next to a long URL, a huge dialog and a poisoned fingerprint.
    longest = (STEP_BUDGETS["instruction"] - 4) // 8
    steps = [{"action": "navigate", "instruction": "Open the poisoned page"},
             {"action": "click", "instruction": "😀" * longest, "target": "Save"}]
    spec = parse_test({"name": "n", "url": f"{site}/poison.html",
                       "definition": {"steps": steps}})
    executor = make_executor(screenshots="all", traces="all")
    outcome, events = await consume(PgEventStore(pool), pool, queue, executor, spec.url,
                                    spec.steps_snapshot())
    assert outcome == "passed", events[-1].data
    click = events[3].data
    assert click["instruction"] == "😀" * longest
    assert click["details"]["memory"]["instruction"] == "😀" * longest
    assert len(click["url"]) > 1800 and len(click["artifacts"]) == 2
    [row] = await pool.fetch("SELECT length(state) AS size FROM stored_events "
                             "WHERE originator_id = $1 AND originator_version = 4",
                             events[0].run_id)
    assert row["size"] <= MAX_EVENT_BYTES
