"""``/runs``: queue (idempotently), list, read, history, cancel, artifacts — with the
followers running, asserting on HTTP bodies and on the ledger's events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from ledger.store import PgEventStore
from projections.queries import RunQueries
from tests.api.helpers import STEPS, FakeWorker, a_test, wait_until
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + b"screenshot bytes" * 10


async def new_test(client: httpx.AsyncClient, name: str = "login") -> str:
    response = await client.post("/tests", json=a_test(name))
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def queue(client: httpx.AsyncClient, test_id: str, **kwargs: Any) -> httpx.Response:
    return await client.post("/runs", json={"test_id": test_id}, **kwargs)


async def projected(
    client: httpx.AsyncClient, pool: asyncpg.Pool, run_id: str, version: int
) -> dict[str, Any]:
    """The run document once the read models (not the ledger fold) have applied
    ``version``."""
    queries = RunQueries(pool)

    async def check() -> bool:
        row = await queries.get_run(uuid.UUID(run_id))
        steps = await queries.run_steps(uuid.UUID(run_id))
        return bool(row and row["version"] >= version
                    and len(steps) == row["steps_passed"] + row["steps_failed"])
    await wait_until(check, what=f"run {run_id} projected at v{version}")
    return (await client.get(f"/runs/{run_id}")).json()


async def test_queue_appends_a_queued_event_with_the_steps_snapshot(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    test_id = await new_test(client)
    response = await queue(client, test_id)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {"run_id": body["run_id"], "status": "queued", "version": 1}
    assert response.headers["location"] == f"http://testserver/runs/{body['run_id']}"

    events = await PgEventStore(pool).read_run(uuid.UUID(body["run_id"]))
    assert [e.type for e in events] == ["queued"]
    data = events[0].data
    assert data["test_id"] == test_id and data["test_name"] == "login"
    assert data["steps"] == STEPS and data["attempt"] == 1 and data["auto_handle_popups"]

    # editing the test later does not change the queued run
    await client.put(f"/tests/{test_id}", json=a_test("renamed", STEPS[:1]))
    history = (await client.get(f"/runs/{body['run_id']}/events")).json()
    assert history["items"][0]["data"]["steps"] == STEPS


async def test_run_for_missing_test_is_404(client: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    problem = assert_problem(await queue(client, missing), 404)
    assert missing in problem["detail"]
    assert_problem(await client.post("/runs", json={"test_id": "nope"}), 422)
    problem = assert_problem(
        await client.post("/runs", json={"test_id": missing, "priority": 1}), 422)
    assert problem["errors"][0]["field"] == "priority"


async def test_run_document_before_and_after_projection(
    client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool
) -> None:
    run_id = (await queue(client, await new_test(client))).json()["run_id"]
    # Read right away: served from the ledger if the projection has not caught up.
    first = await client.get(f"/runs/{run_id}")
    assert first.status_code == 200
    assert first.json()["status"] == "queued" and first.json()["version"] == 1

    rid = uuid.UUID(run_id)
    await worker.start(rid)
    ref = await worker.step(rid, 0, screenshot=PNG)
    await worker.step(rid, 1, status="failed", healed=True)
    await worker.complete(rid, status="failed")
    body = await projected(client, pool, run_id, 5)
    assert body["status"] == "failed" and body["worker"] == "worker-test"
    assert body["steps_passed"] == 1 and body["steps_failed"] == 1
    assert body["error"] == "step failed" and body["error_step"] == 1
    assert body["duration_ms"] == 123 and body["completed_at"] and body["started_at"]
    assert [s["index"] for s in body["steps"]] == [0, 1]
    assert body["steps"][1]["healed"] is True and body["steps"][1]["error"] == "not found"
    assert ref is not None
    artifact = body["steps"][0]["artifacts"][0]
    assert artifact["id"] == ref.id and artifact["content_type"] == "image/png"
    assert artifact["href"] == f"http://testserver/runs/{run_id}/artifacts/{ref.id}"

    download = await client.get(artifact["href"])
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["etag"] == f'"{ref.id}"'


async def finish_as(worker: FakeWorker, run_id: uuid.UUID, ending: str) -> None:
    """Drive a run to one of its possible endings, as a worker or recovery would."""
    if ending == "cancelled-queued":
        run = await worker.store.load_run(run_id)
        run.cancel(reason="not needed")
        await worker.store.save(run)
        return
    await worker.start(run_id)
    await worker.step(run_id, 0)
    await worker.step(run_id, 1, status="failed")
    run = await worker.store.load_run(run_id)
    if ending == "completed-failed":
        run.complete(status="failed", duration_ms=77, error="no", error_step=1)
    elif ending == "errored":
        run.fail(message="browser crashed", kind="executor", step=1)
    elif ending == "timed-out":
        run.time_out(timeout_seconds=600, detected_by="recovery")
    else:
        run.cancel(reason="user asked")
    await worker.store.save(run)


@pytest.mark.parametrize(
    "ending", ["completed-failed", "errored", "timed-out", "cancelled", "cancelled-queued"])
async def test_fallback_fold_equals_projected_row(
    client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool, ending: str
) -> None:
    """The fold served before projection (and by /results) is exactly the row the
    projection holds, for every way a run can end: both are the one fold."""
    from api.reads import RunReads

    run_id = (await queue(client, await new_test(client))).json()["run_id"]
    rid = uuid.UUID(run_id)
    await finish_as(worker, rid, ending)
    version = await PgEventStore(pool).run_version(rid)
    await projected(client, pool, run_id, version)
    store = PgEventStore(pool)
    row, steps = await RunReads(store, _NoRows(), worker.artifacts).run(rid)
    projected_row, projected_steps = await RunReads(
        store, RunQueries(pool), worker.artifacts).run(rid)
    assert row == projected_row
    assert steps == projected_steps


class _NoRows:
    async def get_run(self, run_id: uuid.UUID) -> None:
        return None

    async def run_steps(self, run_id: uuid.UUID) -> list[Any]:
        return []


async def test_history_pages_and_missing_run(
    client: httpx.AsyncClient, worker: FakeWorker
) -> None:
    run_id = (await queue(client, await new_test(client))).json()["run_id"]
    await worker.finish(uuid.UUID(run_id), steps=4)
    page = (await client.get(f"/runs/{run_id}/events", params={"limit": 3})).json()
    assert [e["version"] for e in page["items"]] == [1, 2, 3] and page["next_after"] == 3
    assert [e["type"] for e in page["items"]] == ["queued", "started", "step"]
    assert set(page["items"][0]) == {"run_id", "version", "type", "timestamp", "data"}
    rest = (await client.get(f"/runs/{run_id}/events",
                             params={"after": 3, "limit": 10})).json()
    assert [e["version"] for e in rest["items"]] == [4, 5, 6, 7] and rest["next_after"] is None
    assert rest["items"][-1]["type"] == "completed"
    empty = await client.get(f"/runs/{run_id}/events", params={"after": 7})
    assert empty.json() == {"items": [], "next_after": None}

    unknown = uuid.uuid4()
    assert_problem(await client.get(f"/runs/{unknown}/events"), 404)
    assert_problem(await client.get(f"/runs/{unknown}"), 404)
    assert_problem(await client.get(f"/runs/{unknown}/events", params={"after": -1}), 422)


async def test_list_filters_and_cursors_over_many_pages(
    client: httpx.AsyncClient, worker: FakeWorker
) -> None:
    first, second = await new_test(client, "a"), await new_test(client, "b")
    queued: dict[str, list[str]] = {first: [], second: []}
    order: list[str] = []
    for index in range(30):
        test_id = first if index % 3 else second
        order.append((await queue(client, test_id)).json()["run_id"])
        queued[test_id].append(order[-1])
    done = queued[second][:4]
    for run_id in done:
        await worker.finish(uuid.UUID(run_id), steps=1)

    async def all_projected() -> bool:
        page = (await client.get("/runs", params={"limit": 200})).json()["items"]
        return len(page) == 30 and sum(r["status"] == "passed" for r in page) == 4
    await wait_until(all_projected, what="30 runs projected")

    async def walk(**params: Any) -> list[str]:
        seen, cursor = [], None
        while True:
            query = {**params, "limit": 4, **({"cursor": cursor} if cursor else {})}
            page = await client.get("/runs", params=query)
            assert page.status_code == 200, page.text
            seen += [row["id"] for row in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return seen

    assert await walk() == list(reversed(order))  # newest first, each run once
    assert await walk(test_id=second) == list(reversed(queued[second]))
    assert set(await walk(status="passed")) == set(done)
    assert set(await walk(status="queued", test_id=second)) == set(queued[second][4:])
    assert await walk(status="running") == []
    assert_problem(await client.get("/runs", params={"status": "exploded"}), 422)
    assert_problem(await client.get("/runs", params={"limit": 0}), 422)
    problem = assert_problem(await client.get("/runs", params={"cursor": "bm90IGEgY3Vyc29y"}),
                             422)
    assert problem["errors"][0]["field"] == "cursor"


async def test_idempotency_key_returns_the_same_run(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    test_id = await new_test(client)
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await queue(client, test_id, headers=key)
    again = await queue(client, test_id, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    other_test = await new_test(client, "other")
    problem = assert_problem(await queue(client, other_test, headers=key), 422)
    assert problem["errors"][0]["field"] == "Idempotency-Key"

    fresh = await queue(client, test_id, headers={"Idempotency-Key": "another"})
    assert fresh.json()["run_id"] != first.json()["run_id"]
    no_key = await queue(client, test_id)
    assert no_key.json()["run_id"] not in (first.json()["run_id"], fresh.json()["run_id"])
    count = await pool.fetchval("SELECT count(DISTINCT originator_id) FROM stored_events")
    assert count == 3

    assert_problem(await queue(client, test_id, headers={"Idempotency-Key": "x" * 256}), 422)


async def test_concurrent_requests_with_one_key_queue_one_run(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    test_id = await new_test(client)
    key = {"Idempotency-Key": "the-same-key"}
    responses = await asyncio.gather(*(queue(client, test_id, headers=key) for _ in range(12)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert await pool.fetchval("SELECT count(*) FROM stored_events") == 1


async def test_idempotency_keys_are_scoped_to_the_caller(
    make_settings: Any, followers: None, pool: asyncpg.Pool
) -> None:
    from api.app import create_app
    from tests.api.conftest import asgi_client

    app = create_app(make_settings(api_keys=["key-one-0123456789", "key-two-0123456789"]))
    async with asgi_client(app) as client:
        test_id = (await client.post("/tests", json=a_test(),
                                     headers={"X-API-Key": "key-one-0123456789"})).json()["id"]
        one = await queue(client, test_id, headers={"X-API-Key": "key-one-0123456789",
                                                    "Idempotency-Key": "k"})
        two = await queue(client, test_id, headers={"X-API-Key": "key-two-0123456789",
                                                    "Idempotency-Key": "k"})
    assert one.json()["run_id"] != two.json()["run_id"]


async def test_expired_idempotency_key_queues_a_new_run(
    make_settings: Any, followers: None, pool: asyncpg.Pool
) -> None:
    from api.app import create_app
    from tests.api.conftest import asgi_client
    from tests.api.helpers import AUTH

    app = create_app(make_settings(idempotency_ttl_seconds=60))
    async with asgi_client(app, headers=AUTH) as client:
        test_id = await new_test(client)
        first = await queue(client, test_id, headers={"Idempotency-Key": "k"})
        await pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 min'")
        second = await queue(client, test_id, headers={"Idempotency-Key": "k"})
        third = await queue(client, test_id, headers={"Idempotency-Key": "k"})
    assert first.json()["run_id"] != second.json()["run_id"] == third.json()["run_id"]


async def test_janitor_deletes_expired_keys_only(
    make_settings: Any, pool: asyncpg.Pool
) -> None:
    from api.app import create_app
    from tests.api.conftest import asgi_client

    await pool.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, run_id, created_at) "
        "SELECT 's', 'old-' || i, 'h', gen_random_uuid(), now() - interval '2 hours' "
        "FROM generate_series(1, 5) AS i"
    )
    await pool.execute("INSERT INTO idempotency_keys (scope, key, request_hash, run_id) "
                       "VALUES ('s', 'live', 'h', gen_random_uuid())")
    app = create_app(make_settings(idempotency_ttl_seconds=3600))
    async with asgi_client(app):  # the lifespan starts the janitor, which runs at once

        async def only_live_left() -> bool:
            keys = await pool.fetch("SELECT key FROM idempotency_keys")
            return [row["key"] for row in keys] == ["live"]
        await wait_until(only_live_left, what="expired keys deleted")


async def test_cancel(client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool) -> None:
    test_id = await new_test(client)
    run_id = (await queue(client, test_id)).json()["run_id"]
    await worker.start(uuid.UUID(run_id))
    response = await client.post(f"/runs/{run_id}/cancel", json={"reason": "not needed"})
    assert response.status_code == 200, response.text
    assert response.json() == {"run_id": run_id, "status": "cancelled", "version": 3}
    events = await PgEventStore(pool).read_run(uuid.UUID(run_id))
    assert events[-1].type == "cancelled" and events[-1].data["reason"] == "not needed"

    again = assert_problem(await client.post(f"/runs/{run_id}/cancel"), 409)
    assert "finished" in again["detail"]
    body = await projected(client, pool, run_id, 3)
    assert body["status"] == "cancelled" and body["error"] == "not needed"

    queued = (await queue(client, test_id)).json()["run_id"]
    response = await client.post(f"/runs/{queued}/cancel")  # no body: default reason
    assert response.json()["version"] == 2
    assert_problem(await client.post(f"/runs/{uuid.uuid4()}/cancel"), 404)
    assert_problem(await client.post(f"/runs/{queued}/cancel", json={"reason": ""}), 422)


async def test_cancel_racing_a_worker_never_loses_an_event(
    client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool
) -> None:
    """Cancel and a worker's appends race; each either lands before the other or is
    refused. The history is a legal lifecycle either way."""
    test_id = await new_test(client)
    for _ in range(5):
        rid = uuid.UUID((await queue(client, test_id)).json()["run_id"])
        await worker.start(rid)

        async def steps(run_id: uuid.UUID = rid) -> None:
            from ledger.errors import ConcurrencyConflict, InvalidTransition
            for index in range(20):
                try:
                    await worker.step(run_id, index)
                except (ConcurrencyConflict, InvalidTransition):
                    return

        cancel, _ = await asyncio.gather(client.post(f"/runs/{rid}/cancel"), steps())
        assert cancel.status_code == 200, cancel.text
        events = await PgEventStore(pool).read_run(rid)
        assert events[-1].type == "cancelled"
        assert [e.version for e in events] == list(range(1, len(events) + 1))
        assert cancel.json()["version"] == len(events)


async def test_artifacts_belong_to_their_run(
    client: httpx.AsyncClient, worker: FakeWorker
) -> None:
    test_id = await new_test(client)
    one = (await queue(client, test_id)).json()["run_id"]
    two = (await queue(client, test_id)).json()["run_id"]
    await worker.start(uuid.UUID(one))
    ref = await worker.step(uuid.UUID(one), 0, screenshot=PNG)
    assert ref is not None
    assert (await client.get(f"/runs/{one}/artifacts/{ref.id}")).content == PNG
    # the bytes exist, but run two does not reference them
    assert_problem(await client.get(f"/runs/{two}/artifacts/{ref.id}"), 404)
    assert_problem(await client.get(f"/runs/{one}/artifacts/{'0' * 64}"), 404)
    assert_problem(await client.get(f"/runs/{uuid.uuid4()}/artifacts/{ref.id}"), 404)
    # referenced but removed from the store (retention): 404, not 500
    await worker.artifacts.delete(ref.id)
    assert_problem(await client.get(f"/runs/{one}/artifacts/{ref.id}"), 404)


async def test_attempts_of_a_retried_run_end_flaky(
    client: httpx.AsyncClient, worker: FakeWorker
) -> None:
    created = await client.post("/tests", json={**a_test("retried"), "retries": 2})
    assert created.status_code == 201, created.text
    first = (await queue(client, created.json()["id"])).json()["run_id"]
    single = (await client.get(f"/runs/{first}/attempts")).json()
    assert single == {"items": [{"run_id": first, "attempt": 1, "status": "queued"}],
                      "flaky": False}

    await worker.start(uuid.UUID(first))
    await worker.complete(uuid.UUID(first), status="failed")

    async def retried() -> bool:
        items = (await client.get(f"/runs/{first}/attempts")).json()["items"]
        return len(items) == 2
    await wait_until(retried, what="the retries follower to queue attempt 2")
    second = (await client.get(f"/runs/{first}/attempts")).json()["items"][1]
    assert second["attempt"] == 2 and second["status"] == "queued"
    await worker.start(uuid.UUID(second["run_id"]))
    await worker.complete(uuid.UUID(second["run_id"]))

    # Asked from either attempt, the answer is the same chain.
    for run_id in (first, second["run_id"]):
        body = (await client.get(f"/runs/{run_id}/attempts")).json()
        assert [(a["attempt"], a["status"]) for a in body["items"]] == [
            (1, "failed"), (2, "passed")]
        assert body["flaky"] is True
    assert_problem(await client.get(f"/runs/{uuid.uuid4()}/attempts"), 404)
