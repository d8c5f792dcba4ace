"""Retrying transient failures: 3 retries with exponential backoff, each one logged.

Only errors that say "the operation did not happen, trying again may work" are retried:
the ledger's ``TransientStoreError`` and the queue's ``QueueUnavailable``. Everything else
propagates at once. When the retries are used up the last error propagates, so the caller
decides what "persisting" means (mark the run failed, or leave the job pending).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ledger.errors import TransientStoreError
from worker.errors import QueueUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT = (TransientStoreError, QueueUnavailable)


@dataclass(frozen=True)
class Backoff:
    """``retries`` more attempts after the first, waiting base, 2·base, 4·base … seconds."""

    retries: int = 3
    base_seconds: float = 0.25
    max_seconds: float = 5.0

    def delay(self, retry: int) -> float:
        return min(self.max_seconds, self.base_seconds * 2 ** (retry - 1))

    async def run(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Await ``operation()``; on a transient error wait and try again, up to ``retries``."""
        retry = 0
        while True:
            try:
                return await operation()
            except TRANSIENT as exc:
                retry += 1
                if retry > self.retries:
                    log.error("%s failed after %d retries: %s", what, self.retries, exc)
                    raise
                delay = self.delay(retry)
                log.warning(
                    "%s failed (%s); retry %d/%d in %.2fs", what, exc, retry, self.retries, delay
                )
                # The backoff itself: time is what transient failures need to clear.
                await asyncio.sleep(delay)
