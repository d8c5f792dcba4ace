"""The live tail over a real uvicorn server: history then live, resume from every
position, exactly once and in order, gaps filled, Redis down, keep-alives, disconnects."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from ledger.artifacts import FileArtifactStore
from ledger.store import PgEventStore
from ledger.streams import QUEUE, decode_event, stream_key
from tests.api.conftest import running_followers
from tests.api.helpers import AUTH, FakeWorker, SseReader, a_test, serve, wait_until
from tests.api.test_tests import assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.redis_servers]


async def new_run(http: httpx.AsyncClient) -> uuid.UUID:
    test_id = (await http.post("/tests", json=a_test())).json()["id"]
    return uuid.UUID((await http.post("/runs", json={"test_id": test_id})).json()["run_id"])


async def history(http: httpx.AsyncClient, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return (await http.get(f"/runs/{run_id}/events", params={"limit": 1000})).json()["items"]


async def read_stream(http: httpx.AsyncClient, url: str, **kwargs: Any) -> list[Any]:
    async with http.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        return await SseReader(response).collect()


async def test_finished_run_replays_then_closes(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    run_id = await new_run(http)
    await worker.finish(run_id, steps=3)
    async with http.stream("GET", f"/runs/{run_id}/stream") as response:
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["cache-control"] == "no-store"
        events = await SseReader(response).collect()  # returns: the server closed it
    expected = await history(http, run_id)
    assert [e.data for e in events] == expected
    assert [e.id for e in events] == [str(v) for v in range(1, 7)]
    assert [e.event for e in events] == ["queued", "started", "step", "step", "step",
                                         "completed"]


async def test_resume_from_every_position(http: httpx.AsyncClient, worker: FakeWorker) -> None:
    run_id = await new_run(http)
    await worker.finish(run_id, steps=4)
    expected = await history(http, run_id)
    for position in range(len(expected) + 1):
        by_query = await read_stream(http, f"/runs/{run_id}/stream", params={"after": position})
        by_header = await read_stream(http, f"/runs/{run_id}/stream",
                                      headers={"Last-Event-ID": str(position)})
        # Last-Event-ID wins over ?after (a browser reconnects to the original URL)
        both = await read_stream(http, f"/runs/{run_id}/stream", params={"after": 0},
                                 headers={"Last-Event-ID": str(position)})
        assert [e.data for e in by_query] == expected[position:], position
        assert by_header == by_query == both
    beyond = await read_stream(http, f"/runs/{run_id}/stream", params={"after": 99})
    assert beyond == []
    problem = await http.get(f"/runs/{run_id}/stream", headers={"Last-Event-ID": "abc"})
    assert_problem(problem, 422)
    assert problem.json()["errors"][0]["field"] == "Last-Event-ID"


async def test_live_tail_delivers_each_event_once_in_order(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    run_id = await new_run(http)
    seen: dict[int, list[Any]] = {0: [], 1: []}

    async def tail(after: int) -> None:
        async with http.stream("GET", f"/runs/{run_id}/stream",
                               params={"after": after}) as response:
            async for event in SseReader(response).events():
                seen[after].append(event)

    tails = [asyncio.create_task(tail(after), name=f"tail-{after}") for after in seen]

    async def first_tail_live() -> bool:
        return len(seen[0]) == 1
    await wait_until(first_tail_live, what="the queued event on the first tail")
    await worker.start(run_id)
    for index in range(15):
        await worker.step(run_id, index)
    await worker.complete(run_id)
    await asyncio.wait_for(asyncio.gather(*tails), 10)  # both end after `completed`
    expected = await history(http, run_id)
    assert len(expected) == 18
    assert [e.data for e in seen[0]] == expected
    assert [e.data for e in seen[1]] == expected[1:]
    assert [e.id for e in seen[0]] == [str(e["version"]) for e in expected]


async def test_tail_opened_before_the_relay_published_the_run(
    make_settings: Any, database_url: str, redis_url: str, worker: FakeWorker,
    redis: aioredis.Redis
) -> None:
    """The run is only in PostgreSQL (followers not running yet: nothing in Redis, no job
    queued). The tail serves it from the ledger, then picks up the live stream once the
    relay starts."""
    from api.app import create_app

    app = create_app(make_settings())
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH,
                                                    timeout=30) as http:
        run_id = await new_run(http)
        assert await redis.exists(stream_key(run_id)) == 0
        assert await redis.exists(QUEUE) == 0
        async with http.stream("GET", f"/runs/{run_id}/stream") as response:
            events = SseReader(response).events()
            first = await anext(events)
            assert first.event == "queued"
            async with running_followers(database_url, redis_url):
                await wait_until(lambda: redis.exists(stream_key(run_id)),
                                 what="the relay to publish")
                await worker.finish(run_id, steps=2)
                rest = [event async for event in events]
    assert [e.event for e in rest] == ["started", "step", "step", "completed"]
    assert [e.id for e in rest] == ["2", "3", "4", "5"]


async def test_gap_in_the_redis_stream_is_filled_from_postgres(
    http: httpx.AsyncClient, worker: FakeWorker, redis: aioredis.Redis
) -> None:
    run_id = await new_run(http)
    key = stream_key(run_id)
    await worker.start(run_id)
    async with http.stream("GET", f"/runs/{run_id}/stream") as response:
        events = SseReader(response).events()
        assert [(await anext(events)).id for _ in range(2)] == ["1", "2"]
        # From now on the relay's entries for versions 3..5 vanish before the tail reads
        # them (as after a trim or a partial Redis restore); 6 and 7 arrive.
        for index in range(3):
            await worker.step(run_id, index)
        await wait_until(lambda: _has_entry(redis, key, "5-0"), what="entry 5")
        await redis.xdel(key, "3-0", "4-0", "5-0")
        await worker.step(run_id, 3)
        await worker.complete(run_id)
        rest = [event async for event in events]
    assert [e.id for e in rest] == ["3", "4", "5", "6", "7"]
    assert [e.data for e in rest] == (await history(http, run_id))[2:]


async def _has_entry(redis: aioredis.Redis, key: str, entry_id: str) -> bool:
    return bool(await redis.xrange(key, entry_id, entry_id))


async def test_tail_survives_redis_going_down(
    make_settings: Any, database_url: str, pool: asyncpg.Pool, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Relay and API share a Redis that stops mid-stream: the tail carries on from
    PostgreSQL, woken by LISTEN."""
    from api.app import create_app
    from runledger.embedded import start_valkey

    valkey = start_valkey(tmp_path / "valkey", ephemeral=True)
    worker = FakeWorker(PgEventStore(pool), FileArtifactStore(tmp_path / "artifacts"))
    try:
        app = create_app(make_settings(redis_url=valkey.url))
        async with running_followers(database_url, valkey.url), serve(app) as url, \
                httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as http:
            run_id = await new_run(http)
            await worker.start(run_id)
            async with http.stream("GET", f"/runs/{run_id}/stream") as response:
                events = SseReader(response).events()
                assert [(await anext(events)).id for _ in range(2)] == ["1", "2"]
                await worker.step(run_id, 0)
                assert (await anext(events)).id == "3"  # live, from Redis
                valkey.stop()
                for index in range(1, 5):
                    await worker.step(run_id, index)
                await worker.complete(run_id)
                rest = [event async for event in events]
            assert [e.id for e in rest] == ["4", "5", "6", "7", "8"]
            assert [e.data for e in rest] == (await history(http, run_id))[3:]
            assert any("reads PostgreSQL" in r.getMessage() for r in caplog.records)
            health = await http.get("/health")
            assert health.status_code == 503
            body = health.json()  # (other members, e.g. parked events, are not the point)
            assert {k: body[k] for k in ("status", "database", "redis")} == {
                "status": "degraded", "database": "ok", "redis": "unavailable"}
    finally:
        valkey.stop()


async def test_keep_alive_comments_while_idle(
    make_settings: Any, followers: None
) -> None:
    from api.app import create_app

    app = create_app(make_settings(sse_ping_seconds=0.2))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH,
                                                    timeout=30) as http:
        run_id = await new_run(http)
        async with http.stream("GET", f"/runs/{run_id}/stream") as response:
            reader = SseReader(response)
            events = reader.events()
            assert (await anext(events)).event == "queued"
            # Cancel the run only after two keep-alives arrived while nothing happened.
            cancel = asyncio.create_task(_cancel_after_pings(http, reader, run_id))
            rest = [event async for event in events]
            await cancel
    assert len(reader.comments) >= 2 and all(c.startswith(": ping") for c in reader.comments)
    assert [e.event for e in rest] == ["cancelled"]


async def _cancel_after_pings(http: httpx.AsyncClient, reader: SseReader,
                              run_id: uuid.UUID) -> None:
    async def pinged() -> bool:
        return len(reader.comments) >= 2
    await wait_until(pinged, what="two keep-alive comments")
    assert (await http.post(f"/runs/{run_id}/cancel")).status_code == 200


async def test_client_disconnect_changes_nothing(
    http: httpx.AsyncClient, worker: FakeWorker, server: str
) -> None:
    run_id = await new_run(http)
    await worker.start(run_id)
    async with http.stream("GET", f"/runs/{run_id}/stream") as response:
        events = SseReader(response).events()
        assert [(await anext(events)).id for _ in range(2)] == ["1", "2"]
        metrics = (await http.get("/metrics")).text
        assert "runledger_sse_streams 1.0" in metrics
    # the client went away mid-run: the server's stream ends, the run goes on untouched
    async def stream_closed() -> bool:
        return "runledger_sse_streams 0.0" in (await http.get("/metrics")).text
    await wait_until(stream_closed, what="the server to close the abandoned stream")
    assert [e["type"] for e in await history(http, run_id)] == ["queued", "started"]
    await worker.step(run_id, 0)
    await worker.complete(run_id)
    replay = await read_stream(http, f"/runs/{run_id}/stream", params={"after": 2})
    assert [e.event for e in replay] == ["step", "completed"]


async def test_unknown_run_and_bad_ids(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get(f"/runs/{uuid.uuid4()}/stream"), 404)
    assert_problem(await http.get(f"/results/{uuid.uuid4()}/stream"), 404)
    assert_problem(await http.get("/runs/123/stream"), 422)


async def test_many_concurrent_tails_each_see_everything(
    http: httpx.AsyncClient, worker: FakeWorker
) -> None:
    run_ids = [await new_run(http) for _ in range(4)]

    async def tail(run_id: uuid.UUID) -> list[str]:
        return [e.id for e in await read_stream(http, f"/runs/{run_id}/stream")]

    tails = [asyncio.create_task(tail(r)) for r in run_ids for _ in range(5)]
    for run_id in run_ids:
        await worker.finish(run_id, steps=5)
    results = await asyncio.wait_for(asyncio.gather(*tails), 20)
    assert all(ids == [str(v) for v in range(1, 9)] for ids in results)


async def test_tail_survives_dropped_database_connections(
    make_settings: Any, database_url: str, followers: None, worker: FakeWorker,
    pool: asyncpg.Pool,
) -> None:
    """Every database connection of the API is killed mid-stream (as in a failover or a
    proxy restart) while its tail reads PostgreSQL (its Redis is unreachable): the tail
    pauses, reconnects, and still delivers every event once, in order."""
    from api.app import create_app

    app = create_app(make_settings(database_url=f"{database_url}?application_name=api-x",
                                   redis_url="redis://127.0.0.1:1/0"))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH,
                                                    timeout=30) as http:
        run_id = await new_run(http)
        async with http.stream("GET", f"/runs/{run_id}/stream") as response:
            events = SseReader(response).events()
            assert (await anext(events)).id == "1"
            killed = await pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'api-x'")
            assert killed >= 2  # the pool's and the LISTEN connection
            await worker.finish(run_id, steps=3)
            rest = [event async for event in events]
        assert [e.id for e in rest] == ["2", "3", "4", "5", "6"]
        assert [e.data for e in rest] == (await history(http, run_id))[1:]


async def test_tail_waits_out_a_database_outage(
    pool: asyncpg.Pool, database_url: str, redis_url: str, worker: FakeWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While every read fails with a transient error the tail keeps waiting (it does not
    end the stream); once reads work again it delivers from where it was."""
    from api.tail import RunTail
    from ledger.db import create_pool
    from ledger.domain import Run
    from ledger.store import LogListener

    run = Run.queue(test_id="t", test_name="t", url="http://127.0.0.1:9/",
                    steps=[{"action": "click", "instruction": "Go"}])
    await worker.store.save(run)
    down = await create_pool(database_url, min_size=1, max_size=1)
    await down.close()  # every query on it fails like a lost connection
    listener = LogListener(database_url, poll_interval=0.1)
    await listener.start()
    client = aioredis.from_url(redis_url, decode_responses=True)
    tail = RunTail(PgEventStore(pool), client, listener, block_ms=200,
                   redis_retry_seconds=0.1, poll_seconds=0.1)
    try:
        events = await tail.open(run.id)
        tail.store = PgEventStore(down)
        reading = asyncio.create_task(anext(events))

        async def warned() -> bool:
            return any("waits for the database" in r.getMessage() for r in caplog.records)
        await wait_until(warned, what="the tail to notice the outage")
        assert not reading.done()
        tail.store = PgEventStore(pool)  # the database is back
        first = await asyncio.wait_for(reading, 10)
        assert (first["version"], first["type"]) == (1, "queued")
        await events.aclose()
    finally:
        await client.aclose()
        await listener.close()


async def test_one_redis_connection_serves_every_stream(
    http: httpx.AsyncClient, worker: FakeWorker, redis: aioredis.Redis
) -> None:
    run_ids = [await new_run(http) for _ in range(12)]
    streams = [await _open_stream(http, run_id) for run_id in run_ids]
    try:
        clients = await redis.client_list()
        api = [c for c in clients if c["name"] == "runledger-api"]
        blocked = [c for c in api if c["cmd"] == "xread"]
        assert len(blocked) == 1 and len(api) <= 3, api  # the hub, plus short commands
        for run_id in run_ids:
            await worker.finish(run_id, steps=1)
        results = await asyncio.wait_for(
            asyncio.gather(*(_drain(events) for _, events in streams)), 20)
    finally:
        for context, _ in streams:
            await context.__aexit__(None, None, None)
    assert results == [["2", "3", "4"]] * 12


async def test_a_new_stream_is_live_at_once(
    make_settings: Any, followers: None, worker: FakeWorker
) -> None:
    """The hub is blocked reading the first stream (for up to a minute here) when a second
    one opens: it is woken, so the second stream's events do not wait for that read."""
    from api.app import create_app

    app = create_app(make_settings(stream_block_ms=60_000))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH,
                                                    timeout=30) as http:
        first, second = await new_run(http), await new_run(http)
        one = await _open_stream(http, first)
        two = await _open_stream(http, second)
        try:
            await worker.finish(second, steps=2)
            assert await asyncio.wait_for(_drain(two[1]), 10) == ["2", "3", "4", "5"]
            await worker.finish(first, steps=1)
            assert await asyncio.wait_for(_drain(one[1]), 10) == ["2", "3", "4"]
        finally:
            for context, _ in (one, two):
                await context.__aexit__(None, None, None)


async def _open_stream(http: httpx.AsyncClient, run_id: uuid.UUID) -> tuple[Any, Any]:
    context = http.stream("GET", f"/runs/{run_id}/stream")
    response = await context.__aenter__()
    events = SseReader(response).events()
    assert (await anext(events)).id == "1"
    return context, events


async def _drain(events: Any) -> list[str | None]:
    return [event.id async for event in events]


async def test_hub_reconnects_after_its_connection_is_killed(
    http: httpx.AsyncClient, worker: FakeWorker, redis: aioredis.Redis
) -> None:
    async def hub_reading() -> list[Any]:
        return [c for c in await redis.client_list()
                if c["name"] == "runledger-api" and c["cmd"] == "xread"]

    run_id = await new_run(http)
    async with http.stream("GET", f"/runs/{run_id}/stream") as response:
        events = SseReader(response).events()
        assert (await anext(events)).id == "1"
        hub = (await wait_until(hub_reading, what="the hub to block"))[0]
        await redis.client_kill_filter(_id=hub["id"])
        await worker.finish(run_id, steps=2)
        rest = [event.id async for event in events]
    assert rest == ["2", "3", "4", "5"]
    second = await new_run(http)
    async with http.stream("GET", f"/runs/{second}/stream") as response:
        events = SseReader(response).events()
        assert (await anext(events)).id == "1"
        again = (await wait_until(hub_reading, what="the hub to read again"))[0]
        assert again["id"] != hub["id"]
        await worker.finish(second, steps=1)
        assert [event.id async for event in events] == ["2", "3", "4"]


def _upcast_cancelled_v1_v2(state: dict[str, Any]) -> None:
    # A made-up second version of ``cancelled``: it records who asked, and its reason is
    # normalised. Events stored by the first version are brought up to it when read.
    state["requested_by"] = "an earlier release"
    state["reason"] = state["reason"].strip().capitalize()


async def test_a_versioned_event_is_seen_upcast_by_read_model_history_and_stream(
    http: httpx.AsyncClient, pool: asyncpg.Pool, redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One decode path: an event stored in shape v1 reaches the ``runs`` read model,
    ``GET /runs/{id}/events``, the relay's live stream and an SSE client in the shape of
    the current class (v2)."""
    from ledger.domain import Run
    from ledger.store import Q

    monkeypatch.setattr(Run.Cancelled, "class_version", 2, raising=False)
    monkeypatch.setattr(Run.Cancelled, "upcast_v1_v2",
                        staticmethod(_upcast_cancelled_v1_v2), raising=False)
    run_id = await new_run(http)
    store = PgEventStore(pool)
    run = await store.load_run(run_id)
    run.cancel(reason="  stopped by hand ")
    ids, versions, topics, states = store.encode(run.collect_events())
    v1 = orjson.loads(states[0])
    assert v1.pop("class_version") == 2  # written today it would be v2: store it as v1
    await pool.fetch(Q["append"], ids, versions, topics, [orjson.dumps(v1)], "5s")

    async def projected() -> asyncpg.Record | None:
        return await pool.fetchrow(
            "SELECT error FROM runs WHERE id = $1 AND status = 'cancelled'", run_id)

    assert (await wait_until(projected, what="the cancelled row"))["error"] == "Stopped by hand"
    expected = {"reason": "Stopped by hand", "requested_by": "an earlier release"}
    assert (await history(http, run_id))[-1]["data"] == expected
    async def relayed() -> list[Any]:
        return [e for e in await redis.xrange(stream_key(run_id)) if e[1]["type"] == "cancelled"]

    live = (await wait_until(relayed, what="the relayed cancelled entry"))[0]
    assert decode_event(run_id, live[1])["data"] == expected
    streamed = await read_stream(http, f"/runs/{run_id}/stream")
    assert streamed[-1].event == "cancelled" and streamed[-1].data["data"] == expected
    assert (await store.load_run(run_id)).error == "Stopped by hand"
