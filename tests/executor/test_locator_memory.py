"""The locator-memory read model: keys, the fold, and the follower's batch on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from ledger.codec import RecordedEvent
from ledger.domain import Run, StepResult
from ledger.store import PgEventStore
from projections.locator_memory import (
    MemoryEntry,
    PgLocatorMemory,
    apply,
    fold,
    memory_key,
    normalise_instruction,
    normalise_url,
    observe,
)

# Async tests share the module's loop, like this folder's ``pool`` fixture.
module_loop = pytest.mark.asyncio(loop_scope="module")

URL = "https://shop.example/orders/42"
LOCATOR = 'get_by_role("button", name="Pay", exact=True)'


@pytest.mark.unit
def test_urls_are_normalised_to_a_page_pattern() -> None:
    assert normalise_url("https://Shop.Example:443/orders/42/?tab=2#top") == (
        "https://shop.example/orders/{n}")
    assert normalise_url("http://127.0.0.1:8000/u/3f2b9c4e-1d2a-4b6c-9e8f-0a1b2c3d4e5f/edit") == (
        "http://127.0.0.1:8000/u/{uuid}/edit")
    assert normalise_url("https://x.example/p/a1b2c3d4e5f6a7b8c9") == "https://x.example/p/{id}"
    assert normalise_url("https://x.example/") == normalise_url("https://x.example")
    assert normalise_url("about:blank") == "about:blank"


@pytest.mark.unit
def test_instructions_are_folded_and_values_templated() -> None:
    assert normalise_instruction("Fill  'Email' with 'ada@example.com'", "ada@example.com") == (
        "fill 'email' with {value}")
    assert normalise_instruction("Type ada@example.com in Email", "ada@example.com") == (
        "type {value} in email")
    same = memory_key(URL, "fill", "Fill 'Email' with 'a@x.io'", "a@x.io")
    assert same == memory_key("https://shop.example/orders/7", "fill",
                              "fill 'Email'  with 'b@y.io'", "b@y.io")
    assert same != memory_key(URL, "click", "Fill 'Email' with 'a@x.io'", "a@x.io")
    assert same != memory_key("https://shop.example/invoices/7", "fill",
                              "Fill 'Email' with 'a@x.io'", "a@x.io")


def step_event(*, status: str = "passed", locator: str | None = LOCATOR, result: str = "none",
               key: str = "k1", fingerprint: dict[str, Any] | None = None,
               position: int = 1) -> RecordedEvent:
    details: dict[str, Any] = {"memory": {"key": key, "instruction": "click 'pay'",
                                          "result": result}}
    if locator:
        details["locator"] = locator
        details["fingerprint"] = fingerprint or {"tag": "button", "name": "Pay"}
    return RecordedEvent(position, uuid.uuid4(), 3, "step", "2030-01-01T00:00:00+00:00", {
        "index": 1, "action": "click", "instruction": "Click 'Pay'", "status": status,
        "url": URL, "details": details,
    })


@pytest.mark.unit
def test_fold_learns_counts_replaces_and_drops() -> None:
    seen = observe(step_event())
    assert seen is not None
    entry = fold(None, seen)
    assert entry is not None and (entry.successes, entry.failures) == (1, 0)
    assert entry.url == "https://shop.example/orders/{n}" and entry.reliable

    again = fold(entry, observe(step_event(result="hit")))  # type: ignore[arg-type]
    assert again is not None and again.successes == 2

    missed = fold(again, observe(step_event(status="failed", locator=None, result="miss")))  # type: ignore[arg-type]
    assert missed is not None and (missed.failures, missed.consecutive_failures) == (1, 1)
    assert missed.reliability == pytest.approx(2 / 3) and not missed.reliable

    # Another locator worked after the remembered one missed: it replaces it.
    other = 'get_by_role("button", name="Pay now", exact=True)'
    replaced = fold(missed, observe(step_event(locator=other, result="miss")))  # type: ignore[arg-type]
    assert replaced is not None and replaced.locator == other
    assert (replaced.successes, replaced.failures, replaced.consecutive_failures) == (1, 0, 0)

    # A failure that did not involve memory (e.g. the click was blocked) teaches nothing.
    unrelated = observe(step_event(status="failed", locator=None))
    assert unrelated is not None and fold(entry, unrelated) == entry


@pytest.mark.unit
def test_three_misses_in_a_row_drop_even_a_long_reliable_record() -> None:
    entry: MemoryEntry | None = MemoryEntry("k1", URL, "click", "click 'pay'", LOCATOR,
                                            successes=50)
    miss = observe(step_event(status="failed", locator=None, result="miss"))
    assert miss is not None
    for streak in (1, 2):
        entry = fold(entry, miss)
        assert entry is not None and entry.consecutive_failures == streak and entry.reliable
    assert fold(entry, miss) is None


@pytest.mark.unit
def test_steps_without_a_memory_key_are_not_observed() -> None:
    event = step_event()
    event.data["details"] = {}
    assert observe(event) is None
    queued = RecordedEvent(1, uuid.uuid4(), 1, "queued", "2030-01-01T00:00:00+00:00", {})
    assert observe(queued) is None


@pytest.mark.integration
@module_loop
async def test_the_batch_applies_in_order_and_the_reader_serves_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await apply(conn, [step_event(key="a"), step_event(key="b"),
                           step_event(key="a", result="hit")])
    memory = PgLocatorMemory(pool)
    found = await memory.by_keys(["a", "b", "c"])
    assert {k: e.successes for k, e in found.items()} == {"a": 2, "b": 1}
    assert found["a"].fingerprint == {"tag": "button", "name": "Pay"}

    miss = step_event(key="a", status="failed", locator=None, result="miss")
    for _ in range(3):
        async with pool.acquire() as conn, conn.transaction():
            await apply(conn, [miss])
    assert set(await memory.by_keys(["a", "b"])) == {"b"}  # "a" was dropped

    # What the executor asks at the start of a run: every page's entry for its steps.
    for_run = await memory.for_steps([("click", "click 'pay'", None), ("fill", "x", "y")])
    assert set(for_run) == {"b"}


@pytest.mark.integration
@module_loop
async def test_real_step_events_are_observed(pool: asyncpg.Pool) -> None:
    """The shape the executor records survives the event store and codec."""
    store = PgEventStore(pool)
    run = Run.queue(test_id="t", test_name="t", url=URL,
                    steps=[{"action": "click", "instruction": "Click 'Pay'"}])
    run.start(worker="w", browser={"name": "chromium", "version": "1"})
    source = step_event(key=memory_key(URL, "click", "Click 'Pay'")).data
    run.record_step(StepResult(index=0, action="click", instruction="Click 'Pay'",
                               status="passed", strategy="dom", url=URL,
                               details=source["details"]))
    await store.save(run)
    events = await store.read_after(0)
    async with pool.acquire() as conn, conn.transaction():
        await apply(conn, events)
    entries = await PgLocatorMemory(pool).for_steps([("click", "Click 'Pay'", None)])
    assert [e.locator for e in entries.values()] == [LOCATOR]
