"""Following runs to their end, attempt after attempt, and what they came to.

``follow_chain`` tails a run live (``RunledgerClient.follow``); when it fails and the test's
retries earn another attempt (the rule is ``ledger.retries``, the same the retries follower
applies), it waits for that attempt's run — whose id it can derive — and follows it too.
The result is an ``Outcome``: the attempts in order, the final status, and "flaky" when the
last attempt passed after a failed one.

``submit`` creates or updates the tests by name, queues one run of each (at most
``parallel`` followed at a time) and returns their outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.retries import attempt_id, first_of, retry_wanted
from runledger.client.files import Definition
from runledger.client.http import ClientError, NotFound, RunledgerClient

#: called with (test name, event document) for every event followed
OnEvent = Callable[[str, dict[str, Any]], None]


@dataclass
class Attempt:
    """One run of a test, as its events tell it."""

    run_id: str
    attempt: int = 1
    status: str = "queued"  # queued | running | passed | failed | cancelled
    ended_by: str | None = None  # the terminal event's type
    started: str | None = None
    ended: str | None = None
    duration_ms: int | None = None
    error: str | None = None
    error_step: int | None = None
    failing_step: str | None = None  # the instruction of the step it failed at
    kind: str | None = None  # an errored run's kind (infrastructure, no-browser ...)
    steps: dict[int, dict[str, Any]] = field(default_factory=dict)
    queued: dict[str, Any] = field(default_factory=dict)

    def apply(self, event: dict[str, Any]) -> None:
        kind, data = event["type"], event.get("data") or {}
        if kind == "queued":
            self.queued = data
            self.attempt = int(data.get("attempt", 1))
        elif kind == "started":
            self.status, self.started = "running", event.get("timestamp")
        elif kind == "step":
            self.steps[int(data.get("index", len(self.steps)))] = data
        else:
            self._end(kind, data, event.get("timestamp"))

    def _end(self, kind: str, data: dict[str, Any], at: str | None) -> None:
        self.ended_by, self.ended = kind, at
        if kind == "completed":
            self.status = data.get("status", "failed")
            self.duration_ms = data.get("duration_ms")
            self.error, self.error_step = data.get("error"), data.get("error_step")
        elif kind == "cancelled":
            self.status, self.error = "cancelled", data.get("reason")
        else:  # errored, timed-out
            self.status, self.error = "failed", data.get("message")
            self.error_step, self.kind = data.get("step"), data.get("kind")
        if self.duration_ms is None and self.started and at:
            delta = datetime.fromisoformat(at) - datetime.fromisoformat(self.started)
            self.duration_ms = int(delta.total_seconds() * 1000)
        step = self.steps.get(self.error_step) if self.error_step is not None else None
        if step is not None:
            self.failing_step = step.get("instruction")

    @property
    def failing_kind(self) -> str | None:
        step = self.steps.get(self.error_step) if self.error_step is not None else None
        kind = ((step or {}).get("details") or {}).get("error_kind")
        return str(kind) if kind is not None else None

    def as_json(self, link: str) -> dict[str, Any]:
        return {"run_id": self.run_id, "attempt": self.attempt, "status": self.status,
                "ended_by": self.ended_by, "duration_ms": self.duration_ms,
                "error": self.error, "error_step": self.error_step,
                "failing_step": self.failing_step, "url": link}


@dataclass
class Outcome:
    """A test's runs in this submission: one per attempt."""

    name: str
    test_id: str | None
    attempts: list[Attempt] = field(default_factory=list)
    source: str | None = None

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def status(self) -> str:
        return self.final.status if self.attempts else "not run"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def flaky(self) -> bool:
        return self.passed and len(self.attempts) > 1

    @property
    def seconds(self) -> float:
        return sum((a.duration_ms or 0) for a in self.attempts) / 1000

    def as_json(self, client: RunledgerClient) -> dict[str, Any]:
        return {"name": self.name, "test_id": self.test_id, "status": self.status,
                "flaky": self.flaky, "source": self.source,
                "run_id": self.final.run_id if self.attempts else None,
                "url": client.run_page(self.final.run_id) if self.attempts else None,
                "attempts": [a.as_json(client.run_page(a.run_id)) for a in self.attempts]}


async def follow_run(client: RunledgerClient, run_id: str, name: str,
                     on_event: OnEvent) -> Attempt:
    attempt = Attempt(run_id)
    async for event in client.follow(run_id):
        attempt.apply(event)
        on_event(name, event)
    return attempt


async def follow_chain(client: RunledgerClient, run_id: str, name: str, on_event: OnEvent,
                       *, test_id: str | None = None) -> Outcome:
    """Follow ``run_id`` and every retry it earns; the attempts before it are not read."""
    outcome = Outcome(name, test_id)
    while True:
        attempt = await follow_run(client, run_id, name, on_event)
        outcome.attempts.append(attempt)
        outcome.test_id = outcome.test_id or attempt.queued.get("test_id")
        if not _retried(attempt):
            return outcome
        run_id = str(attempt_id(first_of(attempt.run_id, attempt.queued), attempt.attempt + 1))
        if not await client.wait_for_run(run_id):
            raise ClientError(f"run {attempt.run_id} failed and earned a retry, but its next "
                              f"attempt (run {run_id}) was not queued: is a projector running?")


def _retried(attempt: Attempt) -> bool:
    if attempt.ended_by is None:
        return False
    data = {"status": attempt.status, "kind": attempt.kind}
    return retry_wanted(attempt.ended_by, data, attempt=attempt.attempt,
                        retries=int(attempt.queued.get("retries", 0)),
                        failing_step_kind=attempt.failing_kind)


async def attempts_of(client: RunledgerClient, run_id: str) -> list[str]:
    """Every attempt's run id of the run ``run_id`` belongs to, in order (from the first)."""
    history = await client.history(run_id)
    queued: dict[str, Any] = next((e["data"] for e in history if e["type"] == "queued"), {})
    first = first_of(run_id, queued)
    ids = [first]
    for number in range(2, 5):
        candidate = str(attempt_id(first, number))
        try:
            await client.history(candidate)
        except NotFound:
            break
        ids.append(candidate)
    return ids


async def upsert(client: RunledgerClient, definitions: list[Definition]) -> dict[str, str]:
    """Create the tests that do not exist, update those that changed; name → test id."""
    existing = await client.tests_by_name()
    ids: dict[str, str] = {}
    for definition in definitions:
        body = definition.spec.model_dump(mode="json", exclude_none=True)
        stored = existing.get(definition.name)
        if stored is None:
            ids[definition.name] = (await client.request("POST", "/tests", json=body))["id"]
            continue
        ids[definition.name] = stored["id"]
        if any(stored.get(key) != value for key, value in body.items()):
            await client.request("PUT", f"/tests/{stored['id']}", json=body)
    return ids


async def submit(client: RunledgerClient, definitions: list[Definition], *, parallel: int,
                 on_event: OnEvent) -> list[Outcome]:
    """Run each test once (plus the retries its failures earn); outcomes in input order."""
    ids = await upsert(client, definitions)
    gate = asyncio.Semaphore(parallel)

    async def one(definition: Definition) -> Outcome:
        async with gate:
            test_id = ids[definition.name]
            queued = await client.request("POST", "/runs", json={"test_id": test_id})
            outcome = await follow_chain(client, str(queued["run_id"]), definition.name,
                                         on_event, test_id=test_id)
            outcome.source = str(definition.source)
            return outcome

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(d), name=f"submit:{d.name}") for d in definitions]
    return [task.result() for task in tasks]
