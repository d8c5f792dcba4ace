"""``GET /tests/{id}/stats`` and the runs feed (``GET /runs/feed``) through a real server:
the feed carries runs queued, started and ended (not steps), with log positions a client
resumes from exactly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.helpers import FakeWorker, Sse, SseReader, a_test
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e


async def first(messages: AsyncIterator[Sse], count: int) -> list[Sse]:
    found = []
    async for message in messages:
        found.append(message)
        if len(found) == count:
            break
    return found


async def test_stats_of_a_test_without_runs_and_of_no_test(http: httpx.AsyncClient) -> None:
    test_id = (await http.post("/tests", json=a_test())).json()["id"]
    stats = (await http.get(f"/tests/{test_id}/stats")).json()
    assert (stats["runs"], stats["pass_rate"], stats["flaky"], stats["recent"]) == (
        0, None, False, [])
    assert_problem(await http.get(f"/tests/{uuid.uuid4()}/stats"), 404)


async def test_the_feed_resumes_from_the_last_event_id(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    test_id = (await http.post("/tests", json=a_test())).json()["id"]
    async with http.stream("GET", "/runs/feed") as response:
        assert response.status_code == 200
        messages = SseReader(response).events()
        run_id = uuid.UUID((await http.post("/runs", json={"test_id": test_id})).json()["run_id"])
        [queued] = await first(messages, 1)
    assert (queued.event, queued.data["run_id"], queued.data["version"]) == (
        "queued", str(run_id), 1)
    assert queued.id == str(queued.data["position"])

    await worker.finish(run_id, steps=2)
    async with http.stream("GET", "/runs/feed",
                           headers={"Last-Event-ID": queued.id}) as response:
        later = await first(SseReader(response).events(), 2)
    assert [m.event for m in later] == ["started", "completed"]  # steps are left out
    assert int(later[0].id or 0) > int(queued.id or 0)
