"""Protocol junk gets a clean answer, and a run reads consistently: a run read right after
its stream ended is terminal even while the projector is held back; junk methods, forged
cursors, positions beyond the head, malformed Redis entries, outages, secrets and control
characters in URLs, byte ranges of artifacts."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from ledger.errors import TransientStoreError
from ledger.store import PgEventStore
from ledger.streams import stream_key
from projections.queries import RunQueries
from tests.api.helpers import FakeWorker, SseReader, wait_until
from tests.api.test_ops import sample
from tests.api.test_runs import PNG, new_test, queue
from tests.api.test_stream import history, new_run, read_stream
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e


async def _has_entry(redis: aioredis.Redis, key: str, entry_id: str) -> bool:
    return bool(await redis.xrange(key, entry_id, entry_id))


async def test_a_run_read_after_its_stream_ended_is_terminal_while_the_projector_lags(
    http: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool
) -> None:
    run_id = await new_run(http)
    queries = RunQueries(pool)
    await wait_until(lambda: queries.get_run(run_id), what="the queued run projected")
    # Hold the `runs` follower back: it waits on this row lock, while the relay (its own
    # follower) goes on publishing and plain reads are not blocked.
    async with pool.acquire() as conn:
        held = conn.transaction()
        await held.start()
        try:
            await conn.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", run_id)
            await worker.finish(run_id, steps=2)
            events = await asyncio.wait_for(read_stream(http, f"/runs/{run_id}/stream"), 20)
            assert events[-1].event == "completed"
            run = (await http.get(f"/runs/{run_id}")).json()
            legacy = (await http.get(f"/results/{run_id}")).json()
            row = await queries.get_run(run_id)
            assert row is not None and row["status"] == "queued"  # still held back
        finally:
            await held.rollback()
    assert run["status"] == legacy["status"] == "passed"
    assert run["version"] == 5 and run["steps_passed"] == 2
    assert [step["index"] for step in run["steps"]] == [0, 1]

    async def caught_up() -> bool:
        row = await queries.get_run(run_id)
        return row is not None and row["status"] == "passed"
    await wait_until(caught_up, what="the runs follower to catch up once released")


async def test_a_position_beyond_the_head_still_closes_at_the_terminal_event(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    for beyond in ({"headers": {"Last-Event-ID": "40"}}, {"params": {"after": 40}}):
        run_id = await new_run(http)
        await worker.start(run_id)
        async with http.stream("GET", f"/runs/{run_id}/stream", **beyond) as native, \
                http.stream("GET", f"/results/{run_id}/stream", **beyond) as legacy:
            assert native.status_code == legacy.status_code == 200
            # Both tails are open (positions taken) before the run moves on.
            await worker.step(run_id, 0)
            await worker.complete(run_id)
            seen = await asyncio.wait_for(asyncio.gather(
                SseReader(native).collect(), SseReader(legacy).collect()), 20)
        assert [e.event for e in seen[0]] == ["step", "completed"], beyond
        assert seen[1][-1].event == "complete", beyond


async def test_malformed_stream_entries_are_skipped_and_the_hub_lives_on(
    http: httpx.AsyncClient, worker: FakeWorker, redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_id = await new_run(http)
    key = stream_key(run_id)
    await worker.start(run_id)
    await wait_until(lambda: _has_entry(redis, key, "2-0"), what="entry 2")
    async with http.stream("GET", f"/runs/{run_id}/stream") as response:
        events = SseReader(response).events()
        assert [(await anext(events)).id for _ in range(2)] == ["1", "2"]
        # Ahead of the relay (which then finds 3-0 and 4-0 taken: duplicates to it):
        # an entry whose data is not JSON, and one without a version at all.
        await redis.xadd(key, {"version": "3", "type": "step", "timestamp": "x",
                               "data": "\x00not json"}, id="3-0")
        await redis.xadd(key, {"junk": "no version"}, id="4-0")
        await worker.step(run_id, 0)
        await worker.step(run_id, 1)
        await worker.complete(run_id)
        rest = [event async for event in events]
    assert [e.id for e in rest] == ["3", "4", "5"]
    assert [e.data for e in rest] == (await history(http, run_id))[2:]
    logged = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert logged and all("\n" not in m and "\x00" not in m for m in logged)
    # the hub (one reader for every stream of the process) still serves new streams
    other = await new_run(http)
    following = asyncio.create_task(read_stream(http, f"/runs/{other}/stream"))
    await worker.finish(other, steps=1)
    assert [e.event for e in await asyncio.wait_for(following, 20)][-1] == "completed"
    health = await http.get("/health")
    assert health.status_code == 200, health.text


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


FORGED = [
    _cursor(["0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
    _cursor(["9999-12-31T23:59:59-23:59", str(uuid.uuid4())]),
    _cursor(["2026-01-01T00:00:00", str(uuid.uuid4())]),  # no offset
    _cursor(["2026-01-01T00:00:00+00:00", "not a uuid"]),
    _cursor([1e308, -(2**63)]),
    _cursor({"created_at": 1}),
    _cursor("x" * 300),
    "%%%not base64",
    "",
]


async def test_forged_cursors_are_422(client: httpx.AsyncClient) -> None:
    for path in ("/runs", "/tests"):
        for cursor in FORGED:
            response = await client.get(path, params={"cursor": cursor})
            if cursor == "":
                assert response.status_code == 200, response.text  # no cursor: first page
                continue
            problem = assert_problem(response, 422)
            assert problem["errors"][0]["field"] == "cursor", (path, cursor, problem)


async def test_method_labels_are_a_fixed_set(client: httpx.AsyncClient) -> None:
    for method in ("FOO", "BREW", "GETX"):
        assert (await client.request(method, "/tests")).status_code == 405
    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "runledger_http_requests_total", method="OTHER", route="/tests",
                  status="405") == 3
    assert "FOO" not in metrics and "BREW" not in metrics


async def test_log_lines_escape_controls_and_hide_passwords(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await client.get("/nowhere%0A127.0.0.1 GET /forged 200%00")
    await client.get("/tests", params={"password": "hunter2", "sslpassword": "s3cret",
                                       "limit": "5"})
    lines = [r.getMessage() for r in caplog.records if r.name == "api.access"]
    forged = [line for line in lines if "nowhere" in line]
    assert forged and "\n" not in forged[0] and "\\x0a" in forged[0] and "\\x00" in forged[0]
    text = "\n".join(lines)
    assert "hunter2" not in text and "s3cret" not in text
    assert "password=***" in text and "limit=5" in text


async def test_outage_bodies_name_no_internal_address(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def refused(*_: Any, **__: Any) -> None:
        raise TransientStoreError("connection to server at 10.9.8.7, port 6543 failed")

    monkeypatch.setattr(RunQueries, "list_runs", refused)
    response = await client.get("/runs", headers={"X-Request-ID": "outage-1"})
    problem = assert_problem(response, 503)
    assert "10.9.8.7" not in response.text and "6543" not in response.text
    assert "database" in problem["detail"] and response.headers["retry-after"] == "1"
    assert any("outage-1" in r.getMessage() and "10.9.8.7" in r.getMessage()
               for r in caplog.records)


async def test_artifacts_are_served_by_range(
    client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool
) -> None:
    run_id = (await queue(client, await new_test(client))).json()["run_id"]
    await worker.start(uuid.UUID(run_id))
    ref = await worker.step(uuid.UUID(run_id), 0, screenshot=PNG)
    assert ref is not None
    url = f"/runs/{run_id}/artifacts/{ref.id}"
    whole = await client.get(url)
    assert whole.status_code == 200 and whole.content == PNG
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["etag"] == f'"{ref.id}"'
    part = await client.get(url, headers={"Range": "bytes=8-15"})
    assert part.status_code == 206 and part.content == PNG[8:16]
    assert part.headers["content-range"] == f"bytes 8-15/{len(PNG)}"
    tail = await client.get(url, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == PNG[-4:]
    beyond = await client.get(url, headers={"Range": f"bytes={len(PNG) + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(PNG)}"
    stale = await client.get(url, headers={"Range": "bytes=0-3", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == PNG
    assert (await PgEventStore(pool).run_version(uuid.UUID(run_id))) == 3


async def test_a_run_with_a_parked_event_still_reads_and_its_history_says_why(
    http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """An undecodable event in a run's history (parked by the followers) never turns the
    run document into a 500: the row is the answer; the history names the problem."""
    run_id = await new_run(http)
    queries = RunQueries(pool)
    await wait_until(lambda: queries.get_run(run_id), what="the queued run projected")
    await pool.fetchval(
        "SELECT runledger_append($1::uuid[], $2::bigint[], $3::text[], $4::bytea[], $5::text)",
        [run_id], [2], ["runledger:Run.Started"], [b"\xff not json"], "5s")
    response = await http.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    body = assert_problem(await http.get(f"/runs/{run_id}/events"), 500)
    assert body["type"].endswith("event-undecodable") and "cannot be decoded" in body["detail"]
