"""Webhooks: a follower that POSTs each terminal event of a run to ``WEBHOOK_URLS``.

The body is JSON: the event (``completed``, ``errored``, ``timed-out``, ``cancelled``), the
run, its test, the status it ended with, the error, the attempt (and first attempt), and a
link to the run's page. ``X-Runledger-Signature: sha256=<hex>`` is the HMAC-SHA256 of the
exact body bytes under ``WEBHOOK_SECRET``; ``X-Runledger-Delivery`` identifies the delivery
(the same on every retry of it, so a receiver can drop duplicates).

**At least once.** This is a non-transactional follower: its checkpoint moves only after
``apply`` returned, and ``apply`` returns only once every URL took each event (any 2xx) or
was given up on after ``WEBHOOK_ATTEMPTS`` tries with doubling back-off (logged at ERROR and
counted). A crash, a restart or a failover in between delivers those events again.
Deliveries to one URL keep the log's order. Outcomes are counted in ``webhook_deliveries``
(``delivered``, ``failed_attempt``, ``gave_up``), which ``/metrics`` exposes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import orjson
from pydantic import Field, SecretStr, field_validator

from ledger.aio import Backoff
from ledger.codec import RecordedEvent
from ledger.db import translated
from ledger.domain import TERMINAL_TYPES
from ledger.settings import Settings
from ledger.sql import load_queries
from projections.follower import Follower

log = logging.getLogger(__name__)

Q = load_queries("projections", "webhooks.sql")
NAME = "webhooks"
SIGNATURE_HEADER = "X-Runledger-Signature"
DELIVERY_HEADER = "X-Runledger-Delivery"
EVENT_HEADER = "X-Runledger-Event"
_STATUS = {"errored": "failed", "timed-out": "failed", "cancelled": "cancelled"}


class WebhookSettings(Settings):
    """Where the webhooks follower of ``runledger projector`` posts terminal events."""

    webhook_urls: str = Field(
        "", description="Comma-separated URLs that receive a JSON POST for every finished "
        "run (completed, errored, timed-out, cancelled); empty: no webhooks.")
    webhook_secret: SecretStr | None = Field(
        None, description="Key of the HMAC-SHA256 signature of each body, sent as "
        "`X-Runledger-Signature: sha256=<hex>`.")
    webhook_attempts: int = Field(
        8, ge=1, le=100, description="Tries per delivery before it is given up (logged at "
        "ERROR, counted on /metrics) and the follower moves on.")
    webhook_retry_base_seconds: float = Field(
        1.0, gt=0, description="Seconds before a failed delivery's first retry; doubled at "
        "each further retry, at most WEBHOOK_RETRY_MAX_SECONDS.")
    webhook_retry_max_seconds: float = Field(
        60.0, gt=0, description="The longest pause between two tries of a delivery.")
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Seconds one POST may take.")
    public_url: str = Field(
        "http://127.0.0.1:8000", description="The API's public base URL, for the run page "
        "links in webhook bodies (`{PUBLIC_URL}/ui/runs/{id}`).")

    @field_validator("webhook_urls")
    @classmethod
    def _urls(cls, value: str) -> str:
        for url in _split(value):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"each URL must start with http:// or https://, got {url!r}")
        return value

    @property
    def urls(self) -> list[str]:
        return _split(self.webhook_urls)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(ended: RecordedEvent, queued: dict[str, Any], public_url: str) -> dict[str, Any]:
    """What a receiver gets for a terminal event (``queued``: the run's queued data)."""
    data = ended.data
    status = data.get("status") if ended.type == "completed" else _STATUS.get(ended.type)
    return {
        "event": ended.type, "run_id": str(ended.run_id), "status": status,
        "test_id": queued.get("test_id"), "test_name": queued.get("test_name"),
        "attempt": queued.get("attempt", 1), "first_run_id": queued.get("first_run_id"),
        "error": data.get("error") or data.get("message") or data.get("reason"),
        "error_step": data.get("error_step", data.get("step")),
        "timestamp": ended.timestamp, "position": ended.notification_id,
        "link": f"{public_url.rstrip('/')}/ui/runs/{ended.run_id}",
    }


class WebhookSender:
    """Handed its settings; opens an HTTP client per batch that has something to send."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._backoff = Backoff(retries=settings.webhook_attempts - 1,
                                base_seconds=settings.webhook_retry_base_seconds,
                                max_seconds=settings.webhook_retry_max_seconds)

    def follower(self) -> Follower:
        return Follower(NAME, self.apply, transactional=False)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        ended = [event for event in events if event.type in TERMINAL_TYPES]
        if not self._settings.urls or not ended:
            return
        async with httpx.AsyncClient(timeout=self._settings.webhook_timeout_seconds,
                                     follow_redirects=False) as client:
            for event in ended:
                await self._send(conn, client, event)

    async def _send(self, conn: asyncpg.Connection, client: httpx.AsyncClient,
                    event: RecordedEvent) -> None:
        with translated():
            row = await conn.fetchrow(Q["queued_event"], event.run_id)
        queued = RecordedEvent.from_row(*row).data if row is not None else {}
        body = orjson.dumps(body_of(event, queued, self._settings.public_url))
        for url in self._settings.urls:
            outcome = await self._deliver(conn, client, url, body, event)
            await _count(conn, outcome)

    async def _deliver(self, conn: asyncpg.Connection, client: httpx.AsyncClient, url: str,
                       body: bytes, event: RecordedEvent) -> str:
        """``delivered`` or ``gave_up``; each failed try is counted as it happens."""
        headers = {"Content-Type": "application/json", EVENT_HEADER: f"run.{event.type}",
                   DELIVERY_HEADER: f"{event.notification_id}-{event.run_id}"}
        if self._settings.webhook_secret is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._settings.webhook_secret
                                             .get_secret_value())
        tries = 0
        while True:
            tries += 1
            problem = await _post(client, url, body, headers)
            if problem is None:
                return "delivered"
            await _count(conn, "failed_attempt")
            if tries >= self._settings.webhook_attempts:
                log.error("webhook to %s for run %s (%s) given up after %d tries: %s", url,
                          event.run_id, event.type, tries, problem)
                return "gave_up"
            delay = self._backoff.delay(tries)
            log.warning("webhook to %s for run %s failed (%s); try %d of %d in %.1fs", url,
                        event.run_id, problem, tries + 1, self._settings.webhook_attempts,
                        delay)
            await asyncio.sleep(delay)  # a back-off: nothing would wake this earlier


async def _count(conn: asyncpg.Connection, outcome: str) -> None:
    with translated():
        await conn.execute(Q["count"], outcome, 1)


async def _post(client: httpx.AsyncClient, url: str, body: bytes,
                headers: dict[str, str]) -> str | None:
    """None when the receiver took it (2xx), else what went wrong."""
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


async def webhook_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Deliveries by outcome (``delivered``, ``failed_attempt``, ``gave_up``)."""
    with translated():
        rows = await pool.fetch(Q["counts"])
    counts = dict.fromkeys(("delivered", "failed_attempt", "gave_up"), 0)
    counts.update({row["outcome"]: row["count"] for row in rows})
    return counts
