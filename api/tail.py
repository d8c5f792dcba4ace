"""The live tail of one run: every event after a version, exactly once, in order, ending
after the terminal event.

History comes from PostgreSQL (the truth) until the reader has caught up; then live events
come from the relay's stream ``run_events:{run_id}``, read by ``XREAD BLOCK`` from the last
version seen (the process's ``StreamHub`` does one such read for all its tails). Entries are
de-duplicated by version, and a gap between the last version and the next entry (e.g. the
stream was trimmed or re-published) is filled from PostgreSQL. When a block passes without
an entry the tail also asks PostgreSQL, so a stalled relay delays events by at most one
block period. When Redis fails, the tail reads PostgreSQL woken by the process's shared
``LogListener`` (LISTEN/NOTIFY, polling fallback) and tries Redis again later: slower, never
stuck.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import KW_ONLY, dataclass
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from api.hub import StreamHub, Subscription
from ledger.domain import TERMINAL_TYPES
from ledger.errors import RunNotFound, TransientStoreError
from ledger.store import LogListener, PgEventStore
from ledger.streams import MalformedEntry, decode_event, entry_version, stream_key
from ledger.text import escape

log = logging.getLogger(__name__)

BATCH = 500
Event = dict[str, Any]  # the public shape: {run_id, version, type, timestamp, data}


@dataclass(eq=False)
class RunTail:
    """Opens tails. One per process; handed the store, the hub and the listener, closes none.

    ``block_ms``: how long a tail waits for a Redis entry before it checks PostgreSQL;
    ``redis_retry_seconds``: how long it follows PostgreSQL alone after a Redis failure;
    ``poll_seconds``: its polling interval when LISTEN is unavailable.
    """

    store: PgEventStore
    hub: StreamHub
    listener: LogListener
    _: KW_ONLY
    block_ms: int
    redis_retry_seconds: float
    poll_seconds: float

    async def open(self, run_id: UUID, after: int = 0) -> AsyncGenerator[Event, None]:
        """Check the run exists (``RunNotFound`` before a byte is sent), then return the
        iterator of its events with a version above ``after``."""
        version = await self.store.run_version(run_id)
        if version == 0:
            raise RunNotFound(run_id)
        if after >= version:
            last = await self.store.read_run(run_id, after=version - 1, limit=1)
            if last and last[0].type in TERMINAL_TYPES:
                return _empty()
            # A position beyond the head names events that do not exist (yet): resuming
            # there would skip the ones that come, the terminal event among them, and the
            # stream would never close. Resume from the head instead.
            after = version
        return self._follow(_Reader(self, run_id), after)

    async def _follow(self, reader: _Reader, after: int) -> AsyncGenerator[Event, None]:
        last = after
        try:
            while True:
                for event in await reader.next(last):
                    yield event
                    last = event["version"]
                    if event["type"] in TERMINAL_TYPES:
                        return
        finally:
            reader.close()


async def _empty() -> AsyncGenerator[Event, None]:
    return
    yield  # pragma: no cover - makes this an async generator


class _Reader:
    """One tail's source of batches: catching up from PostgreSQL, then live from Redis, with
    PostgreSQL + LISTEN while Redis is failing."""

    def __init__(self, tail: RunTail, run_id: UUID) -> None:
        self.tail = tail
        self.run_id = run_id
        self.key = stream_key(run_id)
        self.catching_up = True
        self.redis_retry_at = 0.0
        self.subscription: Subscription | None = None

    def close(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None

    async def next(self, last: int) -> list[Event]:
        """The next events after version ``last`` (possibly none, after a wait). A database
        that is briefly unavailable (restart, failover) pauses the tail, never ends it."""
        generation = self.tail.listener.generation
        try:
            return await self._next(last)
        except TransientStoreError as exc:
            log.warning("tail of run %s waits for the database: %s", self.run_id, exc)
            # LISTEN reconnects (and wakes us) once the database is back; else poll.
            await self.tail.listener.wait(generation, poll_after=self.tail.poll_seconds)
            return []

    async def _next(self, last: int) -> list[Event]:
        if self.catching_up:
            events = await self._from_store(last)
            if len(events) < BATCH:
                self.catching_up = False
            if events:
                return events
        if time.monotonic() >= self.redis_retry_at:
            try:
                events = await self._from_redis(last)
            except (RedisError, OSError) as exc:
                # Loud when the tail switches to PostgreSQL; its retries during an outage
                # are routine (the hub logs the outage itself).
                level = logging.DEBUG if self.redis_retry_at else logging.WARNING
                log.log(level, "tail of run %s reads PostgreSQL for %.1fs: Redis failed: %s",
                        self.run_id, self.tail.redis_retry_seconds, exc)
                self.close()
                self.redis_retry_at = time.monotonic() + self.tail.redis_retry_seconds
            else:
                self.redis_retry_at = 0.0
                return events
        return await self._wait_store(last)

    async def _from_store(self, last: int, limit: int = BATCH) -> list[Event]:
        return [e.public() for e in await self.tail.store.read_run(
            self.run_id, after=last, limit=limit)]

    async def _from_redis(self, last: int) -> list[Event]:
        if self.subscription is None:
            self.subscription = self.tail.hub.subscribe(self.key, last)
        else:
            self.subscription.advance(last)  # what PostgreSQL delivered meanwhile
        entries = await self.subscription.next(self.tail.block_ms / 1000)
        if not entries:
            # Nothing within a block: the relay may be behind, down, or Redis may have lost
            # the stream. PostgreSQL is the truth; ask it before blocking again.
            return await self._from_store(last)
        events: list[Event] = []
        expected = last + 1
        for fields in entries:
            try:
                version = entry_version(fields)
                event = decode_event(self.run_id, fields) if version >= expected else None
            except MalformedEntry as exc:
                # Redis is derived data and anyone with access can write to it: skip the
                # entry and take this and everything after it from PostgreSQL, the truth.
                log.warning("tail of run %s skips a malformed stream entry: %s", self.run_id,
                            escape(str(exc), 300))
                return events + await self._from_store(expected - 1)
            if event is None:
                continue  # already delivered (history overlap or a re-published entry)
            if version > expected:
                filled = await self._from_store(expected - 1, limit=version - expected)
                events += filled
                expected += len(filled)
                if version != expected:
                    # PostgreSQL lacks what Redis has (the relay publishes only committed
                    # events, so this is not expected): stop here; the next PostgreSQL
                    # check, at the latest after a block, delivers the rest.
                    break
            events.append(event)
            expected = version + 1
        return events

    async def _wait_store(self, last: int) -> list[Event]:
        listener = self.tail.listener
        # Take the generation before reading: a commit in between makes wait() return at once.
        generation = listener.generation
        events = await self._from_store(last)
        if events:
            return events
        until_retry = max(0.05, self.redis_retry_at - time.monotonic())
        await listener.wait(generation, poll_after=min(self.tail.poll_seconds, until_retry))
        return []
