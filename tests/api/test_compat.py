"""The routes and vocabulary of the system runledger replaces: its clients keep working."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from ledger.store import PgEventStore
from tests.api.helpers import FakeWorker, SseReader, a_test
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\nlegacy"


async def legacy_run(http: httpx.AsyncClient) -> str:
    test_id = (await http.post("/tests", json=a_test())).json()["id"]
    response = await http.post("/test/run", json={"test_id": test_id, "browser": "chrome"})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"run_id"}
    return response.json()["run_id"]


async def play(worker: FakeWorker, run_id: str, *, fail_last: bool = False) -> None:
    rid = uuid.UUID(run_id)
    await worker.start(rid)
    await worker.step(rid, 0, screenshot=PNG, details={"llm_calls": 2, "cost_usd": 0.0125})
    await worker.step(rid, 1, healed=True)
    await worker.step(rid, 2, status="failed" if fail_last else "passed", screenshot=PNG + b"2")
    await worker.complete(rid, status="failed" if fail_last else "passed")


async def test_post_test_run_queues_a_run(http: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    run_id = await legacy_run(http)
    events = await PgEventStore(pool).read_run(uuid.UUID(run_id))
    assert [e.type for e in events] == ["queued"]
    assert_problem(await http.post("/test/run", json={"test_id": str(uuid.uuid4())}), 404)
    assert_problem(await http.post("/test/run", json={}), 422)


async def test_results_has_the_old_shape(http: httpx.AsyncClient, worker: FakeWorker) -> None:
    run_id = await legacy_run(http)
    await play(worker, run_id, fail_last=True)
    result = (await http.get(f"/results/{run_id}")).json()
    assert set(result) == {
        "id", "test_id", "status", "started_at", "completed_at", "duration_ms", "screenshots",
        "logs", "step_results", "self_healed", "llm_calls", "cost_usd", "error", "error_step",
        "created_at",
    }
    assert result["id"] == run_id and result["status"] == "failed"
    assert result["error"] == "step failed" and result["error_step"] == 2
    assert result["duration_ms"] == 123 and result["self_healed"] is True
    assert result["llm_calls"] == 2 and result["cost_usd"] == 0.0125
    assert [s["step"] for s in result["step_results"]] == [0, 1, 2]
    assert result["step_results"][1] == {
        "step": 1, "status": "passed", "strategy": "dom", "self_healed": True,
        "duration_ms": 11, "attempts": 1, "error": None,
    }
    assert [s["step"] for s in result["screenshots"]] == [0, 2]
    for shot in result["screenshots"]:
        assert shot["timestamp"] and "base64" not in shot["url"]
        image = await http.get(shot["url"])
        assert image.status_code == 200 and image.content.startswith(PNG)
    assert [log["status"] for log in result["logs"]] == [
        "queued", "running", "passed", "passed", "failed"]
    assert_problem(await http.get(f"/results/{uuid.uuid4()}"), 404)


async def test_old_stream_vocabulary_and_resume(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    run_id = await legacy_run(http)
    await play(worker, run_id)
    async with http.stream("GET", f"/results/{run_id}/stream") as response:
        events = await SseReader(response).collect()
    kinds = [e.event for e in events]
    assert kinds == ["log", "log", "log", "screenshot", "log", "log", "screenshot", "complete"]
    for event in events:
        assert set(event.data) == {"type", "timestamp", "data"}
        assert event.data["type"] == event.event
    # the id is the version, set on the last message of each version
    assert [e.id for e in events] == ["1", "2", None, "3", "4", None, "5", "6"]
    step_log = events[2].data["data"]
    assert step_log["step"] == 0 and step_log["status"] == "passed"
    assert step_log["duration_ms"] == 10 and "Step 0" in step_log["message"]
    assert set(events[3].data["data"]) == {"step", "url"}
    assert events[3].data["data"]["step"] == 0
    assert events[-1].data["data"] == {"status": "passed", "duration_ms": 123,
                                       "steps_completed": 3, "message": "Test passed"}

    # Resuming after any id gives exactly the messages of the later versions.
    version_of, pending = [], 0
    for event in reversed(events):
        pending = int(event.id) if event.id is not None else pending
        version_of.insert(0, pending)
    for position in range(7):
        async with http.stream("GET", f"/results/{run_id}/stream",
                               headers={"Last-Event-ID": str(position)}) as response:
            resumed = await SseReader(response).collect()
        later = [e for e, v in zip(events, version_of, strict=True) if v > position]
        assert resumed == later, position


async def test_terminal_errors_become_error_events(
    http: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool
) -> None:
    store = PgEventStore(pool)
    messages: list[Any] = []
    for finish in ("cancel", "time_out", "fail"):
        run_id = await legacy_run(http)
        run = await store.load_run(uuid.UUID(run_id))
        if finish == "cancel":
            run.cancel(reason="user asked")
        else:
            run.start(worker="w", browser={"name": "chromium", "version": "1"})
            if finish == "time_out":
                run.time_out(timeout_seconds=600, detected_by="recovery")
            else:
                run.fail(message="browser crashed", kind="executor")
        await store.save(run)
        async with http.stream("GET", f"/results/{run_id}/stream") as response:
            events = await SseReader(response).collect()
        assert events[-1].event == "error"
        messages.append(events[-1].data["data"])
    assert messages == [{"message": "Cancelled: user asked"}, {"message": "Execution timeout"},
                        {"message": "browser crashed"}]
