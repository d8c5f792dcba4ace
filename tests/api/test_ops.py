"""``/health``, ``/metrics``, request ids, unknown routes, the last-resort 500 and the
supervised background task."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from api.app import create_app
from api.commands import RunCommands
from api.hub import StreamHub
from ledger.streams import NO_BROWSER_PREFIX, QUEUE, WORKER_GROUP
from tests.api.conftest import asgi_client
from tests.api.helpers import AUTH, FakeWorker, a_test, wait_until
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e

DEAD_REDIS = "redis://127.0.0.1:1/0"


def sample(metrics: str, name: str, **labels: str) -> float | None:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{label_text}}}" if labels else name) + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_health(client: httpx.AsyncClient, anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health")  # open: load balancers carry no key
    assert response.status_code == 200
    body = response.json()
    assert not any(body.pop("parked_events").values())  # counts per follower: none parked
    assert body == {"status": "healthy", "database": "ok", "redis": "ok", "browser": "ok",
                    "browser_hint": None}


async def test_health_reports_a_worker_without_a_browser(
    anonymous: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    # What ``worker.waiting`` keeps set while it waits for a browser (with an expiry).
    await redis.set(f"{NO_BROWSER_PREFIX}worker-a", "install chromium", ex=30)
    body = (await anonymous.get("/health")).json()
    assert (body["status"], body["browser"], body["browser_hint"]) == (
        "healthy", "no browser", "install chromium")
    await redis.delete(f"{NO_BROWSER_PREFIX}worker-a")
    assert (await anonymous.get("/health")).json()["browser"] == "ok"


async def test_health_and_metrics_when_redis_is_unreachable(make_settings: Any) -> None:
    app = create_app(make_settings(redis_url=DEAD_REDIS))
    async with asgi_client(app, headers=AUTH) as client:
        response = await client.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "degraded", "database": "ok",
                                    "redis": "unavailable", "parked_events": {},
                                    "browser": "ok", "browser_hint": None}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert sample(metrics.text, "runledger_redis_up") == 0.0
        assert sample(metrics.text, "runledger_database_up") == 1.0
        # writes go to PostgreSQL only: queuing works without Redis
        test_id = (await client.post("/tests", json=a_test())).json()["id"]
        assert (await client.post("/runs", json={"test_id": test_id})).status_code == 202


async def test_metrics(client: httpx.AsyncClient, worker: FakeWorker,
                       redis: aioredis.Redis) -> None:
    test_id = (await client.post("/tests", json=a_test())).json()["id"]
    run_ids = [(await client.post("/runs", json={"test_id": test_id})).json()["run_id"]
               for _ in range(3)]
    await worker.finish(uuid.UUID(run_ids[0]), steps=1)

    async def relayed() -> bool:
        return await redis.xlen(QUEUE) == 3
    await wait_until(relayed, what=f"three jobs in {QUEUE}")
    text = (await client.get("/metrics")).text
    assert sample(text, "runledger_queue_pending") == 0.0  # no consumer group yet
    await redis.xgroup_create(QUEUE, WORKER_GROUP, id="0")
    await redis.xreadgroup(WORKER_GROUP, "w1", {QUEUE: ">"}, count=2)

    async def projected() -> str | None:
        text = (await client.get("/metrics")).text
        # A follower's lag is reported once it has started (its checkpoint row); the runs
        # follower having projected says nothing of the other two.
        started = all(sample(text, "runledger_follower_lag_events", follower=f) is not None
                      for f in ("runs", "run_steps", "relay"))
        return text if started and sample(text, "runledger_runs", status="passed") == 1.0 \
            else None
    text = await wait_until(projected, what="runs by status, and every follower started")
    assert sample(text, "runledger_runs", status="queued") == 2.0
    assert sample(text, "runledger_runs", status="running") == 0.0
    assert sample(text, "runledger_queue_length") == 3.0
    assert sample(text, "runledger_queue_pending") == 2.0
    for follower in ("runs", "run_steps", "relay"):
        assert sample(text, "runledger_follower_lag_events", follower=follower) is not None
    for outcome in ("delivered", "failed_attempt", "gave_up"):  # no WEBHOOK_URLS here
        assert sample(text, "runledger_webhook_deliveries", outcome=outcome) == 0.0
    assert sample(text, "runledger_http_requests_total", method="POST", route="/runs",
                  status="202") == 3.0
    assert sample(text, "runledger_http_requests_total", method="POST", route="/tests",
                  status="201") == 1.0
    assert sample(text, "runledger_http_request_duration_seconds_count", method="POST",
                  route="/runs") == 3.0
    assert sample(text, "runledger_sse_streams") == 0.0
    assert sample(text, "runledger_redis_up") == sample(text, "runledger_database_up") == 1.0


async def test_request_ids_and_routing_errors(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/tests", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/tests", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.patch("/tests"), 405)


async def test_unexpected_error_is_a_logged_500_problem(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings())

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    async with asgi_client(app) as client:
        response = await client.get("/broken", headers={"X-Request-ID": "req-42"})
    problem = assert_problem(response, 500)
    assert problem["request_id"] == "req-42" and "a bug" not in response.text
    assert any("request_id=req-42" in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.parametrize(("owner", "method"), [(RunCommands, "delete_expired_keys"),
                                               (StreamHub, "_connect")],
                         ids=["janitor", "stream-hub"])
async def test_background_task_death_is_loud(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, owner: type, method: str
) -> None:
    async def explode(self: object) -> None:
        raise RuntimeError(f"{method} bug")

    monkeypatch.setattr(owner, method, explode)
    fatal: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    app = create_app(make_settings(), on_fatal=fatal.set_result)
    async with asgi_client(app) as client:
        exc = await asyncio.wait_for(fatal, 10)
        assert str(exc) == f"{method} bug"
        response = await client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "degraded"
