"""Parked events are visible to operators: a gauge on ``/metrics`` and counts in ``/health``'s
body — which stays 200, since parked events are not an outage."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from runledger.testing import log_head, wait_for_position
from tests.api.test_ops import sample
from tests.projections.conftest import append_raw

pytestmark = pytest.mark.integration


async def test_parked_events_show_on_metrics_and_health(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, pool: asyncpg.Pool,
    followers: None,
) -> None:
    await append_raw(pool, uuid.uuid4(), 1, "queued", b"\xff not json")
    head = await log_head(pool)
    for name in ("runs", "run_steps", "relay"):
        await wait_for_position(pool, name, head)
    metrics = (await client.get("/metrics")).text
    assert sample(metrics, "runledger_follower_parked_events", follower="runs") == 1.0
    assert sample(metrics, "runledger_follower_parked_events", follower="relay") == 1.0
    response = await anonymous.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["parked_events"]["runs"] == 1 and body["parked_events"]["relay"] == 1
