"""``RedisRunQueue``: the worker's side of the ``runs:queue`` stream, and worker liveness.

The relay (projections) adds one job entry per ``queued`` event; its names and fields are the
Redis contract (``ledger.streams``: ``QUEUE``, ``WORKER_GROUP``, ``DEAD``, ``decode_job``,
``encode_dead_letter``). Workers read it through the consumer group; an entry stays in the group's
pending list (PEL) until its run reached a terminal event and the entry is acknowledged —
at-least-once delivery. (The relay trims acknowledged entries from the stream.)

Liveness: every third of ``CLAIM_IDLE_SECONDS`` a worker re-claims the entries it is running
to itself (``XCLAIM … JUSTID``: no delivery is counted), which resets their idle time. So

* an entry idle longer than ``CLAIM_IDLE_SECONDS`` belongs to a dead consumer (or one that
  gave up on it, or one cut off by a Redis outage: ``leases`` judges which) and is taken over
  with ``XAUTOCLAIM`` — a long run is never stolen;
* the runs of the entries idle less than that (``held_runs``) are being executed by a live
  worker right now: stuck-run recovery leaves them alone, so a run that is progressing —
  even inside a long step — is never timed out under its worker.

redis-py errors are translated here, and only here, into ``QueueError`` / ``QueueUnavailable``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

import redis.asyncio as aioredis
from redis import exceptions as rex

from ledger.streams import (
    DEAD,
    QUEUE,
    WORKER_GROUP,
    JobFields,
    MalformedEntry,
    decode_job,
    encode_dead_letter,
    redis_unavailable,
)
from worker.errors import (
    GroupMissing,
    MalformedJob,
    QueueError,
    QueueUnavailable,
    StartupError,
)

log = logging.getLogger(__name__)

# Pending entries looked at by ``held_runs``: far more than all workers run at once.
HELD_SCAN = 10_000
_PRUNE_CONSUMERS = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local field = {}
    for i = 1, #consumer, 2 do field[consumer[i]] = consumer[i + 1] end
    if tonumber(field['pending']) == 0 and tonumber(field['idle']) > tonumber(ARGV[2]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], field['name'])
        removed = removed + 1
    end
end
return removed
"""
# Per job entry, the deliveries that reached its run's start (``count_start``); kept a week,
# far longer than any job stays pending.
STARTS_PREFIX = "runs:starts:"
STARTS_TTL_SECONDS = 7 * 24 * 3600
# `idle` is the time since the consumer's last read on Valkey and Redis 7.2+ (even one that
# found nothing), but since its last delivery on Redis 7.0: there an idle live worker holding
# nothing may be pruned too — harmless, its next read that delivers re-creates it.
# Dead letters are kept for inspection; the cap only guards against a runaway producer.
DEAD_MAXLEN = 100_000


def _code(exc: BaseException) -> str:
    return str(exc).split(" ", 1)[0]


def translate(exc: BaseException) -> QueueError:
    """Map a redis-py or socket error into the worker's tree: ``GroupMissing`` when the
    queue or its group is gone, ``QueueUnavailable`` when Redis cannot serve for now
    (connection or server state), ``QueueError`` for any other refusal."""
    if isinstance(exc, QueueError):
        return exc
    # Valkey answers a read on a deleted or flushed queue with NOGROUP; Redis 7 wakes a read
    # blocked on it with "UNBLOCKED the stream key no longer exists". Same meaning: the group
    # is gone and is re-created. (Checked first: redis-py may file either under a subclass.)
    if isinstance(exc, rex.ResponseError) and (
            _code(exc) == "NOGROUP" or "no longer exists" in str(exc)):
        return GroupMissing(f"consumer group {WORKER_GROUP} on {QUEUE} is missing: {exc}")
    if redis_unavailable(exc):
        return QueueUnavailable(f"Redis unavailable: {exc}")
    return QueueError(f"Redis command failed: {exc}")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except QueueError:
        raise
    except (rex.RedisError, OSError, TimeoutError) as exc:
        raise translate(exc) from exc


@dataclass(frozen=True)
class Lease:
    """A pending job as a lease on its run: held by ``consumer`` while it renews it."""

    entry_id: str
    consumer: str
    run_id: UUID
    #: not renewed for ``CLAIM_IDLE_SECONDS`` by Redis's clock (``idle`` in ``XPENDING``)
    overdue: bool
    #: overdue while Redis was observably up that long: its holder is gone (``Leases``)
    lapsed: bool


@dataclass(frozen=True)
class Leases:
    """Every pending job's lease, judged once for all by ``RedisRunQueue.leases``; ``doubt``
    says why no lease can be judged lapsed right now (None: they can)."""

    leases: list[Lease]
    doubt: str | None = None

    def __iter__(self) -> Iterator[Lease]:
        return iter(self.leases)


@dataclass(frozen=True)
class Job:
    """One delivery of a ``runs:queue`` entry to this consumer."""

    entry_id: str
    fields: dict[str, str]
    #: how many times the group delivered this entry (1 for a first read)
    deliveries: int
    #: taken over from another (presumed dead) consumer
    reclaimed: bool = False

    def decoded(self) -> JobFields:
        """What the entry says (``ledger.streams.decode_job``); ``MalformedJob`` names the
        entry and the bad field."""
        try:
            return decode_job(self.entry_id, self.fields)
        except MalformedEntry as exc:
            raise MalformedJob(str(exc)) from exc

    @property
    def run_id(self) -> UUID:
        return self.decoded().run_id

    @property
    def attempt(self) -> int | None:
        return self.decoded().attempt


class RedisRunQueue:
    """Reads, refreshes, acknowledges and dead-letters jobs for one consumer. It is handed a
    client (``decode_responses=True``) and never closes it."""

    def __init__(
        self, redis: aioredis.Redis, consumer: str, *, claim_idle_seconds: float,
        block_seconds: float,
    ) -> None:
        self._redis = redis
        self.consumer = consumer
        self._claim_idle_ms = max(1, int(claim_idle_seconds * 1000))
        self._block_ms = max(1, int(block_seconds * 1000))
        self._cursor = "0-0"
        # Since when Redis has answered this process without a break (``_contact``); None
        # while it does not answer. The start counts as a break: what happened to Redis
        # before this process existed is unknown to it (``leases``).
        self._answering_since: float | None = time.monotonic()

    @contextlib.contextmanager
    def _contact(self, waits: float = 0.0) -> Iterator[None]:
        """One exchange with Redis: errors translated (``translated``), and the answer (or
        its absence) noted for ``leases``. An answer later than a third of
        ``CLAIM_IDLE_SECONDS`` beyond what the command may wait (``waits``: the blocking
        read) counts as a break too: Redis was paused or stalled (``CLIENT PAUSE``, a slow
        fork, a hung connection) for as long as workers need to miss a renewal."""
        began = time.monotonic()
        try:
            with translated():
                yield
        except QueueUnavailable:
            self._answering_since = None
            raise
        now = time.monotonic()
        if (self._answering_since is None
                or (now - began - waits) * 1000 > self._claim_idle_ms / 3):
            self._answering_since = now

    async def ensure_group(self) -> None:
        """Create the workers' group on the queue (MKSTREAM); "already exists" is fine."""
        try:
            await self._redis.xgroup_create(QUEUE, WORKER_GROUP, id="0", mkstream=True)
            log.info("Created consumer group %s on %s", WORKER_GROUP, QUEUE)
        except rex.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StartupError(
                    f"cannot create consumer group {WORKER_GROUP} on {QUEUE}: {exc}"
                ) from exc
        except (rex.RedisError, OSError) as exc:
            raise StartupError(
                f"cannot create consumer group {WORKER_GROUP} on {QUEUE} at REDIS_URL: {exc}"
            ) from exc

    async def ping(self) -> None:
        with self._contact():
            await self._redis.ping()

    # -- receiving ------------------------------------------------------------------------

    async def read(self, count: int) -> list[Job]:
        """New entries for this consumer, blocking up to the block time when there are none."""
        with self._contact(waits=self._block_ms / 1000):
            reply = await self._redis.xreadgroup(
                WORKER_GROUP, self.consumer, {QUEUE: ">"}, count=count, block=self._block_ms
            )
        jobs: list[Job] = []
        for _stream, entries in reply or ():
            jobs.extend(Job(entry_id, fields or {}, 1) for entry_id, fields in entries)
        return jobs

    async def reclaim(self, count: int) -> list[Job]:
        """Take over up to ``count`` entries idle past ``CLAIM_IDLE_SECONDS`` (their consumer
        stopped refreshing them: it died). Walks the PEL with a cursor across calls."""
        with self._contact():
            reply = await self._redis.xautoclaim(
                QUEUE, WORKER_GROUP, self.consumer, self._claim_idle_ms, self._cursor,
                count=count,
            )
            self._cursor = reply[0]
            # Entries deleted from the stream come back as (None, None) on old servers; newer
            # servers drop them from the PEL and list them separately.
            claimed = [(entry_id, fields) for entry_id, fields in reply[1] if entry_id]
            if not claimed:
                return []
            counts = await self._delivery_counts([entry_id for entry_id, _ in claimed])
        return [
            Job(entry_id, fields or {}, counts.get(entry_id, 1), reclaimed=True)
            for entry_id, fields in claimed
        ]

    async def _delivery_counts(self, entry_ids: Sequence[str]) -> dict[str, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(QUEUE, WORKER_GROUP, min=entry_id, max=entry_id, count=1)
            replies = await pipe.execute()
        return {
            info["message_id"]: int(info["times_delivered"])
            for reply in replies for info in reply
        }

    # -- while running --------------------------------------------------------------------

    async def keep_fresh(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of the entries this consumer is running (and its own)."""
        if not entry_ids:
            return
        with self._contact():
            # JUSTID: claiming to ourselves must not count as a delivery.
            await self._redis.xclaim(
                QUEUE, WORKER_GROUP, self.consumer, 0, list(entry_ids), justid=True
            )

    async def release(self, entry_ids: Sequence[str]) -> None:
        """Hand entries read but not started back to the group (at shutdown): marking them
        idle for ``CLAIM_IDLE_SECONDS`` lets the next ``XAUTOCLAIM`` of any worker take them
        at once instead of a full idle period later."""
        if not entry_ids:
            return
        with self._contact():
            await self._redis.xclaim(
                QUEUE, WORKER_GROUP, self.consumer, 0, list(entry_ids), idle=self._claim_idle_ms,
                justid=True,
            )

    async def held_runs(self) -> set[UUID]:
        """Runs whose job entry a live worker keeps fresh: they are executing right now."""
        with self._contact():
            pending = await self._redis.xpending_range(QUEUE, WORKER_GROUP, "-", "+", HELD_SCAN)
            fresh = [p["message_id"] for p in pending
                     if int(p["time_since_delivered"]) < self._claim_idle_ms]
            if not fresh:
                return set()
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry_id in fresh:
                    pipe.xrange(QUEUE, entry_id, entry_id, count=1)
                replies = await pipe.execute()
        held = set()
        for entry_id, fields in (entry for reply in replies for entry in reply):
            with contextlib.suppress(MalformedEntry):
                held.add(decode_job(entry_id, fields).run_id)
        return held

    async def leases(self) -> Leases:
        """The lease of every pending job: its holder, and whether it lapsed — the one
        judgement of a lost worker, used by recovery and by a worker that reclaims a job.

        A lease is renewed (``keep_fresh``) only while Redis answers, so Redis's idle time
        alone cannot tell a dead worker from a live one cut off by an outage, or from a
        restart (the pending list is reloaded with the old delivery times). A lease is
        therefore judged lapsed only when it is overdue *and* Redis was observably up for
        the whole last ``CLAIM_IDLE_SECONDS``, which gave every live worker three renewals:
        this process has had answers without a break that long (``_contact``: a failure,
        a stalled answer or this process's start is a break) and the server's
        ``uptime_in_seconds`` is that long (a restart this process never noticed). Else
        ``doubt`` says why, and nothing is lapsed (every pending job counts as held). A
        dead worker is thus named within ``CLAIM_IDLE_SECONDS`` of Redis being back; when
        Redis stayed up, as soon as its lease is overdue."""
        with self._contact():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.info("server")
                pipe.xpending_range(QUEUE, WORKER_GROUP, "-", "+", HELD_SCAN)
                server, pending = await pipe.execute(raise_on_error=False)
            if isinstance(pending, Exception):
                raise pending
            replies = []
            if pending:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for info in pending:
                        pipe.xrange(QUEUE, info["message_id"], info["message_id"], count=1)
                    replies = await pipe.execute()
        # A server that refuses INFO (an ACL without it) leaves this process's own contact
        # as the only evidence: a restart it never noticed then goes unseen.
        uptime = None if isinstance(server, Exception) else float(server["uptime_in_seconds"])
        doubt = self._lapse_doubt(uptime)
        leases = []
        for info, reply in zip(pending, replies, strict=True):
            for entry_id, fields in reply:
                with contextlib.suppress(MalformedEntry):
                    overdue = int(info["time_since_delivered"]) >= self._claim_idle_ms
                    leases.append(Lease(entry_id, str(info["consumer"]),
                                        decode_job(entry_id, fields).run_id, overdue=overdue,
                                        lapsed=overdue and doubt is None))
        return Leases(leases, doubt)

    def _lapse_doubt(self, uptime: float | None) -> str | None:
        need = self._claim_idle_ms / 1000
        since = self._answering_since
        answered = 0.0 if since is None else time.monotonic() - since
        if answered < need:
            return (f"Redis has answered this worker without a break for {answered:.1f}s "
                    f"only, less than CLAIM_IDLE_SECONDS={need:g}")
        if uptime is not None and uptime < need:
            return (f"the Redis server has been up for {uptime:g}s only (restarted), less "
                    f"than CLAIM_IDLE_SECONDS={need:g}")
        return None

    async def count_start(self, job: Job) -> int:
        """Count one more delivery of ``job`` that reached its run's start; returns how many
        have (deliveries that ended before the start — an outage — are not counted)."""
        key = f"{STARTS_PREFIX}{job.entry_id}"
        with self._contact():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, STARTS_TTL_SECONDS)
                count, _ = await pipe.execute()
        return int(count)

    # -- finishing ------------------------------------------------------------------------

    async def ack(self, job: Job) -> None:
        with self._contact():
            await self._redis.xack(QUEUE, WORKER_GROUP, job.entry_id)

    async def dead_letter(self, job: Job, reason: str, run_id: UUID | None = None) -> str:
        """Move the entry to ``runs:dead`` with the reason, acknowledging it atomically."""
        letter = encode_dead_letter(
            job.entry_id, job.fields, reason=reason, deliveries=job.deliveries,
            consumer=self.consumer, run_id=run_id,
        )
        with self._contact():
            async with self._redis.pipeline(transaction=True) as pipe:
                # A copy typed for redis-py, whose field dict (dict[FieldT, EncodableT]) is
                # invariant and so refuses the dict[str, str] that the encoder returns.
                pipe.xadd(DEAD, dict(letter.items()), maxlen=DEAD_MAXLEN, approximate=True)
                pipe.xack(QUEUE, WORKER_GROUP, job.entry_id)
                replies = await pipe.execute()
        return replies[0]

    async def pending_count(self) -> int:
        """Entries delivered to this consumer and not yet acknowledged."""
        with self._contact():
            for consumer in await self._redis.xinfo_consumers(QUEUE, WORKER_GROUP):
                if consumer["name"] == self.consumer:
                    return int(consumer["pending"])
        return 0

    async def prune_consumers(self, idle_seconds: float) -> int:
        """Remove consumers idle for ``idle_seconds`` that hold nothing (workers that were
        killed, or left entries to others at shutdown). Atomic: a consumer cannot take an
        entry between the check and the removal, so nothing pending is ever dropped."""
        with self._contact():
            # redis-py types eval for its sync and async clients at once (Awaitable | str);
            # this client is the async one, and the script returns a count.
            pruned = cast("Awaitable[int]", self._redis.eval(
                _PRUNE_CONSUMERS, 1, QUEUE, WORKER_GROUP, str(int(idle_seconds * 1000))
            ))
            return int(await pruned)

    async def leave_group(self) -> bool:
        """Remove this consumer from the group when it holds no pending entry (so names of
        stopped workers do not pile up in ``XINFO CONSUMERS``). Call only after the last read.
        """
        if await self.pending_count():
            return False
        with self._contact():
            await self._redis.xgroup_delconsumer(QUEUE, WORKER_GROUP, self.consumer)
        return True
