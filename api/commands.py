"""``RunCommands``: the API's writes to the ledger — queue a run of a test, cancel a run.

The API only appends events; it never writes to Redis. The relay publishes what the log
holds, so a request can never leave PostgreSQL and Redis disagreeing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import orjson

from api.definitions import PgTestRepository
from api.errors import IdempotencyKeyReused
from ledger.aio import Backoff
from ledger.db import translated
from ledger.definition import TestSpec
from ledger.domain import Run
from ledger.errors import ConcurrencyConflict
from ledger.sql import load_queries
from ledger.store import PgEventStore

log = logging.getLogger(__name__)

Q = load_queries("api", "commands.sql")
#: a cancel that lost a race to a worker's append waits up to 10 ms, 20 ms … 0.2 s (jittered)
#: before it reloads the run and decides again, 10 attempts in all
CANCEL_BACKOFF = Backoff(retries=9, base_seconds=0.01, max_seconds=0.2)


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's ``Idempotency-Key``, scoped to who sent it and to which route."""

    scope: str
    key: str
    request_hash: str

    @classmethod
    def of(cls, key: str, *, principal: str, route: str, request: object) -> IdempotencyKey:
        digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return cls(f"{principal} {route}", key, digest)


@dataclass(frozen=True)
class QueuedRun:
    run_id: UUID
    version: int
    #: True when an Idempotency-Key returned a run queued by an earlier request
    replayed: bool = False


def new_run(test_id: UUID, spec: TestSpec) -> Run:
    """A queued run of ``spec``; the steps are snapshotted into its ``queued`` event."""
    return Run.queue(
        test_id=str(test_id), test_name=spec.name, url=spec.url,
        steps=spec.steps_snapshot(), auto_handle_popups=spec.auto_handle_popups,
        retries=spec.retries,
    )


class RunCommands:
    """Handed the pool and store; never closes them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: PgEventStore,
        tests: PgTestRepository,
        *,
        idempotency_ttl_seconds: int,
    ) -> None:
        self._pool = pool
        self._store = store
        self._tests = tests
        self._ttl = float(idempotency_ttl_seconds)

    def ensure_queueable(self, spec: TestSpec) -> None:
        """Raise ``EventTooLarge`` now, at definition time, if a run of ``spec`` could never
        be queued because its ``queued`` event would exceed the event size limit."""
        self._store.encode(new_run(UUID(int=0), spec).collect_events())

    async def queue(self, test_id: UUID, *, idempotency: IdempotencyKey | None = None) -> QueuedRun:
        """Append a ``queued`` run of the test; with a key, at most one run per key."""
        if idempotency is not None:
            earlier = await self._replay(idempotency)
            if earlier is not None:
                return earlier
        run = new_run(test_id, await self._tests.spec(test_id))
        if idempotency is None:
            await self._store.save(run)
            return QueuedRun(run.id, run.version)
        with translated():
            async with self._pool.acquire() as conn, conn.transaction():
                claimed = await conn.fetchval(
                    Q["claim_key"], idempotency.scope, idempotency.key,
                    idempotency.request_hash, run.id, self._ttl,
                )
                if claimed is not None:
                    # Same transaction as the key: both are stored, or neither is.
                    await self._store.save(run, connection=conn)
                    return QueuedRun(run.id, run.version)
        # Another request holding this key committed first (we waited for it on the key).
        earlier = await self._replay(idempotency)
        if earlier is None:  # it expired in between: a new request in its own right
            return await self.queue(test_id, idempotency=idempotency)
        return earlier

    async def _replay(self, idempotency: IdempotencyKey) -> QueuedRun | None:
        with translated():
            row = await self._pool.fetchrow(
                Q["find_key"], idempotency.scope, idempotency.key, self._ttl
            )
        if row is None:
            return None
        if row["request_hash"] != idempotency.request_hash:
            raise IdempotencyKeyReused()
        log.info("Idempotency-Key replayed: run_id=%s", row["run_id"])
        # The response the first request got: the run as it was queued.
        return QueuedRun(row["run_id"], 1, replayed=True)

    async def cancel(self, run_id: UUID, *, reason: str) -> Run:
        """Append ``cancelled``; ``InvalidTransition`` (→ 409) when the run already finished.

        A worker may append concurrently; on a lost race the run is reloaded and the decision
        taken again, so a run that finished meanwhile is reported as finished, not cancelled.
        The jittered backoff lets a cancel get between the appends of a busy worker.
        """
        lost = 0
        while True:
            run = await self._store.load_run(run_id)
            run.cancel(reason=reason)
            try:
                await self._store.save(run)
            except ConcurrencyConflict:
                lost += 1
                if lost > CANCEL_BACKOFF.retries:
                    raise
                log.info("cancel lost a race, retrying: run_id=%s attempt=%d", run_id, lost)
                # Jitter: a fixed delay could keep landing on the worker's next append.
                await asyncio.sleep(random.uniform(0, CANCEL_BACKOFF.delay(lost)))
                continue
            log.info("run cancelled: run_id=%s", run_id)
            return run

    async def delete_expired_keys(self) -> int:
        with translated():
            status = await self._pool.execute(Q["delete_expired_keys"], self._ttl)
        return int(status.split()[-1])
