"""``StreamHub``: one ``XREAD BLOCK`` for all the live tails of a process.

A tail that has caught up from PostgreSQL subscribes to its run's stream at the last version
it delivered. The hub's task reads every subscribed stream with a single ``XREAD BLOCK`` on
one dedicated connection, each stream from the lowest position any of its subscribers needs,
and hands every subscriber the entries after its own position. So a thousand open streams
cost one Redis connection, and when events arrive faster than the process turns them
around, one read returns them for many streams at once (a read per event per stream would
cost a round trip each).

A new subscription must not wait for the blocked read to time out: the hub is woken with
``CLIENT UNBLOCK`` sent on another connection (it makes the blocked read return at once,
empty). The read may still be on its way to the server when a subscription arrives, so the
waker retries for a moment until the server has it blocked (or the read came back anyway).
Nothing is written to Redis.

When Redis fails, every subscriber gets the error (its tail then follows PostgreSQL) and new
subscriptions fail at once until the hub has reconnected, which it retries with backoff.

The hub is stopped with ``stop()`` (or the event handed to ``run``), never by cancelling its
task: redis-py (5.x) can swallow a cancellation that arrives while it sends a command or
reads a reply, and the task would then carry on. ``stop()`` sets a flag and wakes the hub
wherever it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ledger.aio import Backoff, wait_any
from ledger.streams import MalformedEntry, entry_version
from ledger.text import escape

log = logging.getLogger(__name__)

Fields = dict[str, str]
COUNT = 500  # entries per stream per read
UNBLOCK_ATTEMPTS = 200
UNBLOCK_RETRY_SECONDS = 0.001
#: reconnecting after a Redis failure: 0.1 s, 0.2 s, 0.4 s … at most 2 s apart, for ever
RECONNECT_BACKOFF = Backoff(base_seconds=0.1, max_seconds=2.0)


class Subscription:
    """One tail's interest in one stream. Entries arrive in version order, each once."""

    def __init__(self, hub: StreamHub, key: str, position: int) -> None:
        self.hub = hub
        self.key = key
        #: the highest version handed to (or already known by) this subscriber
        self.position = position
        self._entries: list[Fields] = []
        self._error: BaseException | None = None
        self._ready = asyncio.Event()

    def advance(self, version: int) -> None:
        """The tail delivered up to ``version`` by other means (PostgreSQL)."""
        self.position = max(self.position, version)

    def deliver(self, version: int, fields: Fields) -> None:
        if version > self.position:
            self.position = version
            self._entries.append(fields)
            self._ready.set()

    def fail(self, exc: BaseException) -> None:
        self._error = exc
        self._ready.set()

    async def next(self, wait_seconds: float) -> list[Fields]:
        """The entries received since the last call, waiting up to ``wait_seconds`` for
        some; raises a Redis error if the hub failed meanwhile."""
        if not self._entries and self._error is None:
            await wait_any(self._ready, seconds=wait_seconds)
        self._ready.clear()
        if self._error is not None:
            # A fresh exception per subscriber: the hub's one is shared by all of them.
            raise RedisConnectionError(f"stream hub: {self._error}") from self._error
        entries, self._entries = self._entries, []
        return entries

    def close(self) -> None:
        self.hub.unsubscribe(self)


class StreamHub:
    """Owns one connection (made from ``factory``); ``control`` sends the wake-ups. The
    caller runs ``run()`` as a task and stops it with ``stop()`` or ``run``'s event."""

    def __init__(self, factory: ConnectionPool, control: Redis, *, block_ms: int) -> None:
        self._factory = factory
        self._control = control
        self._block_ms = block_ms
        self._subscribers: dict[str, set[Subscription]] = {}
        self._changed = asyncio.Event()
        self._conn: AbstractConnection | None = None
        self._client_id: int | None = None
        self._error: BaseException | None = None
        self._blocked = False
        self._waker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- subscribers -----------------------------------------------------------------------

    def subscribe(self, key: str, position: int) -> Subscription:
        subscription = Subscription(self, key, position)
        if self._error is not None:
            subscription.fail(self._error)  # Redis is down: follow PostgreSQL right away
            return subscription
        self._subscribers.setdefault(key, set()).add(subscription)
        self._wake()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        # No wake-up: the next read simply leaves the stream out.
        subscribers = self._subscribers.get(subscription.key)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.key]

    # -- the reading task ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Read until ``stop()`` (or until ``stop`` is set); Redis failures are reported to
        the subscribers and retried with backoff (a reconnect delay that stopping cuts
        short)."""
        stopper = None
        if stop is not None:
            stopper = asyncio.create_task(self._stop_when(stop), name="stream-hub-stop")
        try:
            await self._read_with_reconnects()
        finally:
            self._fail_all(RedisConnectionError("the API is shutting down"))
            if self._waker is not None:
                self._waker.cancel()
            await self._disconnect()
            if stopper is not None and stop is not None:
                await _end_stopper(stopper, stop)

    async def _read_with_reconnects(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                conn = await self._connect()
                failures = 0
                await self._read_until_stopped(conn)
            except (RedisError, OSError) as exc:
                if self._stopping.is_set():
                    return
                failures += 1
                delay = RECONNECT_BACKOFF.delay(failures)
                # Loud once per outage; the retries while it lasts are routine.
                level = logging.WARNING if self._error is None else logging.DEBUG
                log.log(level, "stream hub: Redis failed (%s); tails follow PostgreSQL "
                        "meanwhile; reconnecting in %.1fs", exc, delay)
                self._fail_all(exc)
                await self._disconnect()
                await wait_any(self._stopping, seconds=delay)

    async def _stop_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.stop()

    async def stop(self) -> None:
        """Make ``run()`` return: wakes it from an idle wait, a blocked read or a backoff."""
        self._stopping.set()
        self._changed.set()
        try:
            await self._unblock()
        except (RedisError, OSError) as exc:  # then the read ends at its block timeout
            log.warning("stream hub: could not wake the blocked read to stop: %s", exc)

    async def _read_until_stopped(self, conn: AbstractConnection) -> None:
        while True:
            while not self._subscribers and not self._stopping.is_set():
                await self._changed.wait()
                self._changed.clear()
            if self._stopping.is_set():
                return
            self._changed.clear()
            streams = {key: f"{min(s.position for s in subs)}-0"
                       for key, subs in self._subscribers.items()}
            self._blocked = True
            try:
                await conn.send_command("XREAD", "COUNT", COUNT, "BLOCK", self._block_ms,
                                        "STREAMS", *streams, *streams.values())
                reply = await conn.read_response()
            finally:
                self._blocked = False
            if reply:
                self._dispatch(reply)

    def _dispatch(self, reply: list[Any]) -> None:
        for key, entries in reply:
            subscribers = self._subscribers.get(key)
            if not subscribers:
                continue  # unsubscribed while the read was out
            for entry_id, flat in entries:
                try:
                    fields = dict(zip(flat[::2], flat[1::2], strict=True))
                    version = entry_version(fields)
                except (MalformedEntry, ValueError, TypeError) as exc:
                    # One bad entry must not end the reading task that every stream of the
                    # process shares; its subscribers' tails take it from PostgreSQL when
                    # they see the gap (or at their next check).
                    log.warning("stream hub: skipping malformed entry %s of %s: %s",
                                escape(str(entry_id), 60), escape(str(key), 100),
                                escape(str(exc), 200))
                    continue
                for subscription in tuple(subscribers):
                    subscription.deliver(version, fields)

    async def _connect(self) -> AbstractConnection:
        conn = self._conn = self._factory.make_connection()
        await conn.connect()
        await conn.send_command("CLIENT", "ID")
        self._client_id = int(await conn.read_response())
        if self._error is not None:
            log.info("stream hub: Redis is back")
        self._error = None
        return conn

    async def _disconnect(self) -> None:
        conn, self._conn, self._client_id = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.disconnect())

    def _fail_all(self, exc: BaseException) -> None:
        self._error = exc
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.fail(exc)
        self._subscribers.clear()

    # -- waking the blocked read -----------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        if self._blocked and (self._waker is None or self._waker.done()):
            self._waker = asyncio.create_task(self._unblock(), name="stream-hub-unblock")
            self._waker.add_done_callback(_log_waker_failure)

    async def _unblock(self) -> None:
        """Unblock whichever read is out while a change (or stop) waits for the next one."""
        for _ in range(UNBLOCK_ATTEMPTS):
            if not (self._blocked and self._changed.is_set()) or self._client_id is None:
                return  # the read came back: the next one includes the change
            if await self._control.client_unblock(self._client_id):
                return
            # The read is still on its way to the server; it is about to block.
            await asyncio.sleep(UNBLOCK_RETRY_SECONDS)


async def _end_stopper(stopper: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A stopper still waiting for its event is cancelled; one that is waking the read
    (a ``CLIENT UNBLOCK`` in flight, bounded) is let finish, so its reply is not cut off."""
    if not stop.is_set():
        stopper.cancel()
    await asyncio.wait([stopper])
    if not stopper.cancelled() and stopper.exception() is not None:
        log.warning("stream hub: stopping failed: %s", stopper.exception())


def _log_waker_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        # The blocked read then returns at its timeout: later, not lost.
        log.warning("stream hub: could not wake the blocked read: %s", task.exception())
