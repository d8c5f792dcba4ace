"""Webhooks: each terminal event is POSTed, signed, to a real local HTTP server; while the
server is down the delivery is retried and the follower's checkpoint stays put, so a
restart delivers it again; a delivery given up on is counted and passed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest

from ledger.store import LogListener, PgEventStore
from projections.follower import FollowerRunner
from projections.webhooks import WebhookSender, WebhookSettings, webhook_counts
from runledger.testing import follower_position, log_head, wait_for_position, wait_until
from tests.cli.helpers import free_port
from tests.projections.conftest import FAST_RETRY, advance, new_run

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"


@contextlib.contextmanager
def receiver(port: int = 0) -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """An HTTP server on ``port`` that records each POST (headers, body) and answers 204."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _settings(url: str, **overrides: Any) -> WebhookSettings:
    values = {"webhook_urls": url, "webhook_secret": SECRET, "webhook_attempts": 100,
              "webhook_retry_base_seconds": 0.02, "webhook_retry_max_seconds": 0.1,
              "public_url": "http://runledger.example"} | overrides
    return WebhookSettings(**values)


@contextlib.asynccontextmanager
async def following(sender: WebhookSender, database_url: str) -> AsyncIterator[None]:
    """Run the webhooks follower for the block, then cancel it (as the projector does after
    its grace period): a delivery in progress is abandoned, not checkpointed."""
    listener = LogListener(database_url, poll_interval=0.2)
    await listener.start()
    stop = asyncio.Event()
    runner = FollowerRunner(sender.follower(), dsn=database_url, listener=listener, stop=stop,
                            batch_size=100, standby_retry_seconds=0.1, retry=FAST_RETRY)
    task = asyncio.create_task(runner.run(), name="test-follower:webhooks")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await listener.close()


async def _received(inbox: queue.Queue[tuple[dict[str, str], bytes]]
                    ) -> tuple[dict[str, str], bytes]:
    async def check() -> tuple[dict[str, str], bytes] | None:
        try:
            return inbox.get_nowait()
        except queue.Empty:
            return None
    return await wait_until(check, what="a webhook delivery")


def _check_signature(headers: dict[str, str], body: bytes) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Runledger-Signature"], expected)


async def test_terminal_events_are_posted_signed(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    failed, running, cancelled = new_run("t-a"), new_run("t-b"), new_run("t-c")
    advance(failed, "failed")
    advance(running, "running")
    cancelled.cancel(reason="enough")
    for run in (failed, running, cancelled):
        await store.save(run)
    with receiver() as (url, inbox):
        async with following(WebhookSender(_settings(url)), database_url):
            bodies = []
            for _ in range(2):
                headers, body = await _received(inbox)
                _check_signature(headers, body)
                assert headers["Content-Type"] == "application/json"
                bodies.append(json.loads(body))
            await wait_for_position(pool, "webhooks")
    assert inbox.empty()  # the running run has no terminal event: nothing sent for it
    first, second = bodies
    assert {k: first[k] for k in ("event", "run_id", "status", "test_id", "test_name",
                                  "attempt", "error", "error_step", "link")} == {
        "event": "completed", "run_id": str(failed.id), "status": "failed",
        "test_id": "t-a", "test_name": "test t-a", "attempt": 1, "error": "step failed",
        "error_step": 1, "link": f"http://runledger.example/ui/runs/{failed.id}"}
    assert (second["event"], second["status"], second["error"]) == (
        "cancelled", "cancelled", "enough")
    assert (await webhook_counts(pool))["delivered"] == 2


async def test_a_delivery_waits_for_a_server_that_was_down_and_survives_a_restart(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    run = new_run("t-down")
    advance(run, "passed")
    await store.save(run)
    head = await log_head(pool)
    port = free_port()  # nothing listens there yet
    sender = WebhookSender(_settings(f"http://127.0.0.1:{port}/hook"))

    async def failed_tries(at_least: int) -> bool:
        return (await webhook_counts(pool))["failed_attempt"] >= at_least

    async with following(sender, database_url):
        await wait_until(lambda: failed_tries(3), what="failed delivery attempts")
    # Stopped while the server was down: the event was not passed.
    assert await follower_position(pool, "webhooks") < head

    with receiver(port) as (_, inbox):
        async with following(sender, database_url):
            headers, body = await _received(inbox)
            await wait_for_position(pool, "webhooks", head)
    _check_signature(headers, body)
    assert json.loads(body)["run_id"] == str(run.id)
    assert headers["X-Runledger-Delivery"].endswith(str(run.id))
    counts = await webhook_counts(pool)
    assert counts["delivered"] == 1 and counts["gave_up"] == 0


async def test_a_delivery_given_up_is_counted_and_passed(
    pool: asyncpg.Pool, database_url: str, store: PgEventStore
) -> None:
    run = new_run("t-gone")
    advance(run, "errored")
    await store.save(run)
    sender = WebhookSender(_settings(f"http://127.0.0.1:{free_port()}/hook",
                                     webhook_attempts=2))
    async with following(sender, database_url):
        await wait_for_position(pool, "webhooks")
    assert await webhook_counts(pool) == {"delivered": 0, "failed_attempt": 2, "gave_up": 1}
