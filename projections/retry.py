"""``runledger followers retry``: re-apply parked events once a follower's code is fixed.

Parked events (``projections.parking``) are re-applied in notification order through their
follower's own ``apply``; those that apply now are unparked, in the same transaction for a
transactional follower. The rest stay parked, their attempts counted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from ledger.codec import UndecodableRow
from ledger.db import translated
from ledger.errors import TransientStoreError
from ledger.store import read_log_entries
from projections.errors import RelayUnavailable
from projections.follower import Follower
from projections.parking import Q, describe, parked_events

log = logging.getLogger(__name__)

#: how long a retry waits for the live follower to let go of its tables
RETRY_LOCK_TIMEOUT = "5s"


@dataclass
class RetryResult:
    """``cleared``: (follower, position) that now applied and were unparked; ``parked``:
    (follower, position, error) of those that still fail (their rows stay, attempts+1)."""

    cleared: list[tuple[str, int]] = field(default_factory=list)
    parked: list[tuple[str, int, str]] = field(default_factory=list)


async def retry_parked(
    pool: asyncpg.Pool, followers: Sequence[Follower], *, follower: str | None = None,
    ids: Sequence[int] | None = None,
) -> RetryResult:
    """Re-apply parked events (all, one follower's, or the given positions) in notification
    order through their follower's ``apply``; unpark those that apply now.

    A transactional follower's event is applied, and its row deleted, in one transaction
    that first locks the follower's tables: the live follower is folding the same rows.
    Events of followers not in ``followers`` are left alone (reported as still parked).
    """
    by_name = {f.name: f for f in followers}
    result = RetryResult()
    for row in await parked_events(pool, follower=follower, ids=ids):
        name, position = row["follower"], row["notification_id"]
        target = by_name.get(name)
        if target is None:
            result.parked.append((name, position, "no such follower in this process"))
            continue
        async with pool.acquire() as conn:
            error = await _retry_one(conn, target, position)
            if error is None:
                result.cleared.append((name, position))
                log.info("follower %s: parked event at position %d applied; unparked",
                         name, position)
            elif error is _GONE:
                log.info("follower %s: parked event at position %d was cleared meanwhile",
                         name, position)
            else:
                with translated():
                    await conn.execute(Q["failed_again"], name, position, error)
                result.parked.append((name, position, error))
    return result


#: what ``_retry_one`` answers when the parked row was cleared (or is being retried) meanwhile
_GONE = "cleared meanwhile"


class _Gone(Exception):
    """The parked row is no longer there to claim."""


async def _retry_one(conn: asyncpg.Connection, follower: Follower, position: int) -> str | None:
    """Apply the event at ``position`` through ``follower``; None when it applied, else why
    not. Connection-level failures are raised: nothing was decided."""
    with translated():
        entries = await read_log_entries(conn, position - 1, 1)
    if not entries or entries[0].notification_id != position:
        return f"no event at position {position}"
    entry = entries[0]
    if isinstance(entry, UndecodableRow):
        return entry.error
    try:
        with translated(), contextlib.suppress(_Gone):
            async with conn.transaction():
                if await conn.fetchval(Q["claim_parked"], follower.name, position) is None:
                    raise _Gone
                if follower.transactional:
                    await _lock_tables(conn, follower.tables)
                # A failure rolls back the rows (and leaves the parked row): the relay's
                # Redis writes are idempotent, so repeating them later is harmless.
                await (follower.reapply or follower.apply)(conn, [entry])
                await conn.execute(Q["unpark"], follower.name, position)
            return None
        return _GONE
    except (TransientStoreError, RelayUnavailable):
        raise
    except Exception as exc:  # whatever the follower's apply refuses: reported, not raised
        return describe(exc)


async def _lock_tables(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    await conn.fetchval(Q["set_lock_timeout"], RETRY_LOCK_TIMEOUT)
    for table in tables:
        await conn.execute(await conn.fetchval(Q["lock_table_ddl"], table))




__all__ = ["RetryResult", "retry_parked"]
