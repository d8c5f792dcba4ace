"""The retry process manager: a follower that queues the next attempt of a failed run.

For each terminal event in the log it reads the run's history (its ``queued`` event says
the test's ``retries``, the attempt number and the first attempt), asks ``ledger.retries``
whether the failure earns another attempt, and if so appends the ``queued`` event of attempt
*n + 1* — a new run with the same snapshot, id ``attempt_id(first, n + 1)``.

It is a transactional follower: the new run's ``queued`` event is appended in the batch's
transaction, together with the checkpoint, so each retry is queued exactly once, also
across restarts and failovers. The deterministic id is a second guard: an attempt that
already exists (appended by an instance that lost its lock late) is left alone. The relay
then puts the new run on ``runs:queue`` like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from ledger.codec import RecordedEvent
from ledger.domain import TERMINAL_TYPES, Run
from ledger.retries import attempt_id, first_of, retry_wanted
from ledger.sql import load_queries
from ledger.store import PgEventStore
from projections.follower import Follower

log = logging.getLogger(__name__)

NAME = "retries"
_STORE = load_queries("ledger", "event_store.sql")


class RetryManager:
    """Handed a pool (for the store's encoder); appends on the follower's connection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._store = PgEventStore(pool)

    def follower(self) -> Follower:
        return Follower(NAME, self.apply)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            if event.type in TERMINAL_TYPES:
                await self._consider(conn, event)

    async def _consider(self, conn: asyncpg.Connection, ended: RecordedEvent) -> None:
        history = [RecordedEvent.from_row(*row)
                   for row in await conn.fetch(_STORE["run_events"], ended.run_id, 0, None)]
        queued = next((e.data for e in history if e.type == "queued"), None)
        if queued is None:
            return
        attempt = int(queued.get("attempt", 1))
        if not retry_wanted(ended.type, ended.data, attempt=attempt,
                            retries=int(queued.get("retries", 0)),
                            failing_step_kind=_failing_kind(history, ended.data)):
            return
        first = first_of(ended.run_id, queued)
        next_id = attempt_id(first, attempt + 1)
        if await conn.fetchval(_STORE["run_version"], next_id):
            return  # queued already (by an instance that lost its lock late)
        run = Run.queue(
            test_id=queued["test_id"], test_name=queued["test_name"], url=queued["url"],
            steps=queued["steps"], attempt=attempt + 1,
            auto_handle_popups=queued.get("auto_handle_popups", True), run_id=next_id,
            retries=int(queued.get("retries", 0)), first_run_id=UUID(first),
        )
        await self._store.save(run, connection=conn)
        log.info("run %s failed (%s): queued attempt %d as run %s", ended.run_id, ended.type,
                 attempt + 1, next_id)


def _failing_kind(history: list[RecordedEvent], ended: dict[str, Any]) -> str | None:
    """The ``error_kind`` the executor gave the step a failed run stopped at."""
    step = ended.get("error_step")
    for event in history:
        if event.type == "step" and event.data.get("index") == step \
                and event.data.get("status") == "failed":
            kind = (event.data.get("details") or {}).get("error_kind")
            return str(kind) if kind is not None else None
    return None
