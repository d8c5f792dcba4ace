"""The relay: publishes the log to Redis, which only ever holds data derived from it.

* Every event becomes the entry ``{version}-0`` of the stream ``run_events:{run_id}`` with
  fields ``type``, ``version``, ``timestamp`` and ``data`` (JSON). Redis refuses an id that
  is not above the stream's top, so re-publishing after a crash leaves one entry per
  version: the relay is at-least-once and its effect exactly-once.
* Every ``queued`` event adds the job ``{run_id, test_id, attempt}`` to ``runs:queue``. A
  duplicate job (crash between Redis and the checkpoint) is harmless: the worker skips a
  run that is no longer queued.
* A terminal event makes its run's stream expire ``retention_seconds`` after the run
  finished (its history stays in PostgreSQL).
* ``runs:queue`` is trimmed, atomically in a script, below the oldest entry some consumer
  group has not acknowledged; without a group nothing is trimmed.
* **Redis losing data.** The relay owns a marker key holding the log position Redis has
  seen. Each batch advances it in the same pipeline with a compare-and-set script; a missing
  marker (restart without persistence, FLUSHALL, eviction) or one behind the relay (restore
  of an older snapshot) makes the relay repair, from the log, the streams of every unfinished
  run and of every run touched since the marker: an intact prefix gets its missing tail, a
  stream with holes is rewritten. Queued runs are enqueued again (after making sure the
  workers' group exists from id 0, so a worker re-creating it cannot skip them). The marker
  is also checked when idle, so a wipe is noticed without new events.
* **The queue losing jobs.** The marker can survive while ``runs:queue`` does not (``DEL``,
  eviction of that key alone). Each check also looks at the queue: a missing queue gets
  the workers' group back and the queued runs of the log re-enqueued. (A queue without
  the group — ``XGROUP DESTROY`` — needs nothing: its entries are the jobs no one
  acknowledged, which trimming keeps, and workers create the group from id 0.) And
  because a worker may re-create an empty queue before the relay looks, every
  ``queued_repair_seconds / 2`` the relay also lists runs queued for longer than
  ``queued_repair_seconds`` and enqueues again each one with no job waiting or delivered
  (pending) in the group. A duplicate job is harmless: the worker skips a run
  that is no longer queued, and two workers racing for one run resolve on its version.

Errors: connection-level Redis failures raise ``RelayUnavailable`` (retried by the runner);
anything else Redis refuses raises ``FollowerError``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ledger.codec import RecordedEvent
from ledger.db import translated
from ledger.domain import EVENT_CLASSES, TERMINAL_TYPES
from ledger.sql import load_queries
from ledger.store import read_runs
from ledger.streams import (
    QUEUE,
    RELAY_MARKER,
    WORKER_GROUP,
    encode_event,
    encode_job,
    redis_unavailable,
    stream_entry_id,
    stream_key,
)
from projections.errors import FollowerError, RelayUnavailable
from projections.follower import Follower

log = logging.getLogger(__name__)

Q = load_queries("projections", "relay.sql")

NAME = "relay"
_TERMINAL_TOPICS = sorted(EVENT_CLASSES[t].TOPIC for t in TERMINAL_TYPES)
_QUEUED_TOPIC = EVENT_CLASSES["queued"].TOPIC
_DUPLICATE = "equal or smaller than the target stream top item"
_REPAIR_CHUNK = 500
#: a position past any log: read a run's history whole
_EVERYTHING = (1 << 63) - 1

# Returns -1 when the marker is missing, else its previous value; moves it forward only
# when Redis still holds everything before this batch (previous >= ARGV[1]).
_ADVANCE_MARKER = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
current = tonumber(current)
if current >= tonumber(ARGV[1]) and tonumber(ARGV[2]) > current then
    redis.call('SET', KEYS[1], ARGV[2])
end
return current
"""

# Trims entries below the oldest one any group has not acknowledged: the smallest pending
# id of a group, or just past its last delivered id when nothing is pending. In a script,
# so no group can read or be created — nor the queue be deleted — between the look and the
# trim.
_TRIM_QUEUE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local best_ms, best_seq
for _, group in ipairs(groups) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    local id = info['last-delivered-id']
    local bump = 1
    if info['pending'] > 0 then
        id = redis.call('XPENDING', KEYS[1], info['name'])[2]
        bump = 0
    end
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    ms = tonumber(ms)
    seq = tonumber(seq) + bump
    if best_ms == nil or ms < best_ms or (ms == best_ms and seq < best_seq) then
        best_ms, best_seq = ms, seq
    end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', best_ms, best_seq))
"""


@dataclass(eq=False)
class RedisRelay:
    """Publishes batches of the log to Redis. Handed a pool and a client; closes neither.

    ``retention_seconds``: how long a finished run's stream is kept; the intervals: how often
    the queue is trimmed, the marker checked and (at most) the checkpoint saved.
    """

    pool: asyncpg.Pool
    redis: aioredis.Redis
    _: KW_ONLY
    retention_seconds: int = 86400
    trim_interval_seconds: float = 10.0
    check_interval_seconds: float = 1.0
    checkpoint_interval_seconds: float = 0.5
    queued_repair_seconds: float = 60.0
    # How far Redis holds the log, and when the next upkeep is due (monotonic seconds).
    _position: int = field(default=0, init=False)
    _next_check: float = field(default=0.0, init=False)
    _next_trim: float = field(default=0.0, init=False)
    _next_repair: float = field(default=0.0, init=False)

    def follower(self) -> Follower:
        return Follower(NAME, self.apply, transactional=False, activate=self.activate,
                        maintain=self.maintain, passed=self.passed, reapply=self.reapply,
                        checkpoint_every_seconds=self.checkpoint_interval_seconds)

    # -- follower hooks -------------------------------------------------------------------

    async def activate(self, position: int) -> None:
        """Resume at ``position``: repair Redis first if it lost what the relay published."""
        self._position = position
        await self.verify()

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        start, end = self._position, events[-1].notification_id
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            self._add_entry(pipe, event)
            if event.type == "queued":
                self._enqueue(pipe, event)
        pipe.eval(_ADVANCE_MARKER, 1, RELAY_MARKER, str(start), str(end))
        results = await _execute(pipe)
        _check(results)
        previous = int(results[-1])
        self._position = end
        if previous < start:
            reason = "marker missing" if previous < 0 else f"marker at {previous} < {start}"
            since = None if previous < 0 else previous
            await self._recover(conn, end, since, reason, {e.run_id for e in events})

    async def passed(self, position: int) -> None:
        """An event up to ``position`` was parked: move the marker past it as if published,
        or the relay would take the gap for lost data when it next starts."""
        result = await _call(self.redis.eval(
            _ADVANCE_MARKER, 1, RELAY_MARKER, str(self._position), str(position)))
        if int(result) >= self._position:
            self._position = max(self._position, position)

    async def reapply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Re-publish parked events (``followers retry``): a queued event's job, and each
        event's run stream completed from the log — an entry older than the stream's top
        cannot simply be added, so holes are repaired as after a loss of Redis data. No
        marker check: the live relay owns the marker."""
        queued = [e for e in events if e.type == "queued"]
        if queued:
            pipe = self.redis.pipeline(transaction=False)
            for event in queued:
                self._enqueue(pipe, event)
            _check(await _execute(pipe))
        histories: dict[UUID, list[RecordedEvent]] = defaultdict(list)
        for entry in await read_runs(conn, list({e.run_id for e in events}), _EVERYTHING):
            if isinstance(entry, RecordedEvent):
                histories[entry.run_id].append(entry)
        await self._repair_streams(histories)

    async def maintain(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval_seconds
            await self.verify()
        if now >= self._next_trim:
            self._next_trim = now + self.trim_interval_seconds
            await self.trim_queue()
        if now >= self._next_repair:
            self._next_repair = now + self.queued_repair_seconds / 2
            await self.repair_queued()

    # -- Redis upkeep ---------------------------------------------------------------------

    async def verify(self) -> None:
        """Compare the marker with the relay's position; repair Redis when it lost data."""
        marker = await _call(self.redis.get(RELAY_MARKER))
        position = self._position
        if marker is None and position == 0:
            await _call(self.redis.set(RELAY_MARKER, 0, nx=True))
        elif marker is None or int(marker) < position:
            since = None if marker is None else int(marker)
            reason = "marker missing" if marker is None else f"marker at {marker} < {position}"
            with translated():
                async with self.pool.acquire() as conn:
                    await self._recover(conn, position, since, reason, set())
        elif position > 0:
            await self._check_queue(position)

    async def _check_queue(self, position: int) -> None:
        """The marker is intact: make sure the queue and the workers' group are too."""
        groups = await self._queue_groups()
        if groups is None:
            log.warning("relay: %s is gone while the marker survived; re-enqueueing the "
                        "queued runs of the log", QUEUE)
            await self._ensure_group()
            with translated():
                async with self.pool.acquire() as conn:
                    unfinished = await conn.fetch(Q["unfinished_runs"], position,
                                                  _TERMINAL_TOPICS)
                    queued = sorted(row["run_id"] for row in unfinished
                                    if row["last_topic"] == _QUEUED_TOPIC)
                    jobs = await self._requeue(await _first_events(conn, queued))
            log.warning("relay: re-enqueued %d queued run(s)", jobs)

    async def _queue_groups(self) -> list[dict[str, Any]] | None:
        """``XINFO GROUPS`` of the queue, or None when the queue does not exist."""
        try:
            return list(await self.redis.xinfo_groups(QUEUE))
        except redis_errors.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise _translated(exc, "XINFO GROUPS") from exc
        except (redis_errors.RedisError, OSError) as exc:
            raise _translated(exc, "XINFO GROUPS") from exc

    async def repair_queued(self) -> int:
        """Enqueue again every run queued for longer than ``queued_repair_seconds`` that has
        no job waiting or pending in the workers' group; returns how many."""
        with translated():
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(Q["stale_queued_runs"], self.queued_repair_seconds,
                                        _REPAIR_CHUNK)
        if not rows:
            return 0
        waiting = await self._runs_with_jobs()
        lost = sorted(row["run_id"] for row in rows if str(row["run_id"]) not in waiting)
        if not lost:
            return 0
        with translated():
            async with self.pool.acquire() as conn:
                events = await _first_events(conn, lost)
        jobs = await self._requeue(events)
        for event in events:
            log.warning("relay: run_id=%s queued for over %gs without a job in %s; enqueued "
                        "again", event.run_id, self.queued_repair_seconds, QUEUE)
        return jobs

    async def _runs_with_jobs(self) -> set[str]:
        """The run ids of the jobs waiting (not yet delivered) or pending (delivered, not
        acknowledged) in the workers' group."""
        groups = await self._queue_groups() or []
        group = next((g for g in groups if g["name"] == WORKER_GROUP), None)
        if group is None:
            return set()
        runs: set[str] = set()
        start = f"({group['last-delivered-id']}"
        while entries := await _call(self.redis.xrange(QUEUE, start, "+", count=_REPAIR_CHUNK)):
            runs.update(fields.get("run_id", "") for _, fields in entries)
            start = f"({entries[-1][0]}"
        start = "-"
        while pending := await _call(self.redis.xpending_range(
                QUEUE, WORKER_GROUP, min=start, max="+", count=_REPAIR_CHUNK)):
            look = self.redis.pipeline(transaction=False)
            for entry in pending:
                look.xrange(QUEUE, entry["message_id"], entry["message_id"])
            for found in await _execute(look):
                if isinstance(found, Exception):
                    raise _translated(found, "XRANGE")
                runs.update(fields.get("run_id", "") for _, fields in found)
            start = f"({pending[-1]['message_id']}"
        return runs

    async def trim_queue(self) -> int:
        """Trim ``runs:queue`` below every group's oldest unacknowledged entry."""
        trimmed = int(await _call(self.redis.eval(_TRIM_QUEUE, 1, QUEUE)))
        if trimmed:
            log.debug("relay: trimmed %d acknowledged job(s) from %s", trimmed, QUEUE)
        return trimmed

    # -- writing --------------------------------------------------------------------------

    def _add_entry(self, pipe: Any, event: RecordedEvent) -> None:
        key = stream_key(event.run_id)
        pipe.xadd(key, encode_event(event), id=stream_entry_id(event.version))
        if event.type in TERMINAL_TYPES:
            finished = datetime.fromisoformat(event.timestamp).timestamp()
            pipe.pexpireat(key, int((finished + self.retention_seconds) * 1000))

    @staticmethod
    def _enqueue(pipe: Any, queued: RecordedEvent) -> None:
        pipe.xadd(QUEUE, encode_job(queued))

    # -- recovery -------------------------------------------------------------------------

    async def _recover(
        self, conn: asyncpg.Connection, position: int, since: int | None, reason: str,
        extra: set[UUID],
    ) -> None:
        log.warning("relay: Redis lost data (%s); repairing from the log up to %d",
                    reason, position)
        with translated():
            unfinished = await conn.fetch(Q["unfinished_runs"], position, _TERMINAL_TOPICS)
            runs = {row["run_id"] for row in unfinished} | extra
            if since is not None:
                runs |= {row["run_id"] for row in
                         await conn.fetch(Q["runs_touched"], since, position)}
        queued = {row["run_id"] for row in unfinished if row["last_topic"] == _QUEUED_TOPIC}
        repaired = jobs = 0
        ordered = sorted(runs)
        for i in range(0, len(ordered), _REPAIR_CHUNK):
            chunk = ordered[i:i + _REPAIR_CHUNK]
            histories: dict[UUID, list[RecordedEvent]] = defaultdict(list)
            for event in await read_runs(conn, chunk, position):
                # An undecodable event was parked when it came by; its stream skips it.
                if isinstance(event, RecordedEvent):
                    histories[event.run_id].append(event)
            repaired += await self._repair_streams(histories)
            jobs += await self._requeue([h[0] for r, h in histories.items() if r in queued])
        await _call(self.redis.set(RELAY_MARKER, position))
        log.warning("relay: repaired %d stream(s) of %d run(s), re-enqueued %d queued run(s)",
                    repaired, len(runs), jobs)

    async def _repair_streams(self, histories: dict[UUID, list[RecordedEvent]]) -> int:
        """Complete each run's stream: append a missing tail to an intact prefix (entries
        1..n and nothing was ever added past n), rewrite anything else."""
        look = self.redis.pipeline(transaction=False)
        for run_id in histories:
            look.xinfo_stream(stream_key(run_id))
        seen = await _execute(look)
        fix = self.redis.pipeline(transaction=True)
        repaired = 0
        for info, (run_id, events) in zip(seen, histories.items(), strict=True):
            intact = _intact_prefix(info)
            if intact is None:
                fix.delete(stream_key(run_id))
                missing = events
            else:
                missing = [e for e in events if e.version > intact]
            for event in missing:
                self._add_entry(fix, event)
            repaired += bool(missing)
        if repaired:
            _check(await _execute(fix))
        return repaired

    async def _ensure_group(self) -> None:
        """The workers' group, from id 0 (with the queue if need be), so a worker re-creating
        it cannot skip what is enqueued."""
        try:
            await self.redis.xgroup_create(QUEUE, WORKER_GROUP, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _translated(exc, "XGROUP CREATE") from exc
        except (redis_errors.RedisError, OSError) as exc:
            raise _translated(exc, "XGROUP CREATE") from exc

    async def _requeue(self, queued_events: Iterable[RecordedEvent]) -> int:
        events = list(queued_events)
        if not events:
            return 0
        await self._ensure_group()
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            self._enqueue(pipe, event)
        _check(await _execute(pipe))
        return len(events)


async def _first_events(conn: asyncpg.Connection, run_ids: Sequence[UUID]
                        ) -> list[RecordedEvent]:
    """The ``queued`` event that opens each of ``run_ids``."""
    with translated():
        events = await read_runs(conn, list(run_ids), _EVERYTHING)
    return [e for e in events
            if isinstance(e, RecordedEvent) and e.version == 1 and e.type == "queued"]


def _intact_prefix(info: Any) -> int | None:
    """From ``XINFO STREAM``: n when the stream holds exactly versions 1..n and nothing was
    ever added after n (0 when it does not exist); None when it must be rewritten."""
    if isinstance(info, redis_errors.ResponseError):
        if "no such key" in str(info).lower():
            return 0
        raise FollowerError(NAME, -1, f"Redis refused XINFO STREAM: {info}")
    if isinstance(info, Exception):
        raise RelayUnavailable(f"Redis failed during a pipeline: {info}")
    last = info.get("last-entry")
    top = _text(last[0]) if last else "0-0"
    if _text(info["last-generated-id"]) != top:
        return None
    version = int(top.split("-")[0])
    return version if info["length"] == version else None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _translated(exc: BaseException, what: str) -> Exception:
    """The follower's error for a failed Redis call: retried when Redis is unavailable (or
    in a state that passes), else a refusal of ``what``."""
    # Waiting helps a Redis that is down or in a passing state; parking the event would not
    # (the queued runs of the outage would stay stuck until retried by hand).
    if redis_unavailable(exc):
        return RelayUnavailable(f"Redis unavailable: {exc}")
    return FollowerError(NAME, -1, f"Redis refused {what}: {exc}")


async def _execute(pipe: Any) -> list[Any]:
    try:
        return list(await pipe.execute(raise_on_error=False))
    except (redis_errors.RedisError, OSError) as exc:
        raise _translated(exc, "a pipeline") from exc


async def _call(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (redis_errors.RedisError, OSError) as exc:
        raise _translated(exc, "a command") from exc


def _check(results: Sequence[Any]) -> None:
    """Raise for any error in pipeline results except a duplicate entry id (already there)."""
    for result in results:
        if not isinstance(result, Exception):
            continue
        if redis_unavailable(result) or not isinstance(result, redis_errors.ResponseError):
            raise RelayUnavailable(f"Redis failed during a pipeline: {result}")
        if _DUPLICATE not in str(result):
            raise FollowerError(NAME, -1, f"Redis refused a write: {result}")
