"""The asyncio idioms every runledger process shares, written once.

* ``wait_any`` — wait for the first of some events, or a timeout: how every loop sleeps
  ("wake on a signal, poll only as a fallback, always listen for stop").
* ``Backoff`` — the one back-off policy: exponential from ``base_seconds``, capped, with
  ``run`` to retry an operation on the errors a caller names as transient.
* ``Signals`` — the signal protocol of every entry point: the first SIGINT/SIGTERM asks for
  a graceful stop, the second for an immediate one (a repeat of the same signal within
  ``Signals.REPEAT_SECONDS`` is one delivery).
* ``supervise`` — the task-supervision idiom: named tasks that run until ``stop``; one that
  fails or returns on its own stops the others and its error is raised.

Nothing here knows about PostgreSQL, Redis or the browser.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the signals an operator stops a process with (a terminal's Ctrl-C, systemd, Kubernetes)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def wait_any(*events: asyncio.Event, seconds: float | None = None) -> bool:
    """Wait until one of ``events`` is set or ``seconds`` pass (None: no limit).

    Returns True when an event is set (at once if one already is), False on timeout.
    """
    if any(event.is_set() for event in events):
        return True
    if not events:
        await asyncio.sleep(seconds or 0)
        return False
    if len(events) == 1:
        # The common case (a loop's stop event), and on hot paths: no helper tasks.
        try:
            async with asyncio.timeout(seconds):
                await events[0].wait()
        except TimeoutError:
            return False
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


@dataclass(frozen=True)
class Backoff:
    """``retries`` more attempts after the first, waiting base, 2·base, 4·base … seconds,
    never more than ``max_seconds`` at a time."""

    retries: int = 3
    base_seconds: float = 0.25
    max_seconds: float = 5.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, …)."""
        return min(self.max_seconds, self.base_seconds * (1 << max(0, failures - 1)))

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        what: str,
        *,
        transient: tuple[type[BaseException], ...],
        stop: asyncio.Event | None = None,
    ) -> T:
        """Await ``operation()``; on a ``transient`` error wait and try again, up to
        ``retries`` times, then re-raise the last error. Every failure is logged. ``stop``
        cuts a wait short (the next attempt is then the last)."""
        failures = 0
        while True:
            try:
                return await operation()
            except transient as exc:
                failures += 1
                if failures > self.retries or (stop is not None and stop.is_set()):
                    log.error("%s failed after %d retries: %s", what, failures - 1, exc)
                    raise
                delay = self.delay(failures)
                log.warning("%s failed (%s); retry %d/%d in %.2fs",
                            what, exc, failures, self.retries, delay)
                # The back-off itself: time is what transient failures need to clear.
                if stop is None:
                    await asyncio.sleep(delay)
                else:
                    await wait_any(stop, seconds=delay)


class Signals:
    """First SIGINT/SIGTERM sets ``stop`` (graceful), the second ``force_stop`` (at once).

    The same signal again within ``REPEAT_SECONDS`` of the one that counted is the same
    request delivered twice, not a second one: a terminal's Ctrl-C reaches ``uv run`` and
    its child alike, and uv may forward what it got, so the child can see one Ctrl-C
    twice; a group ``kill`` through a forwarding wrapper does the same.

    ``forced_by`` is the signal number of the forcing signal, for an exit status of
    128 + N. Use as a context manager inside the running loop, or ``install``/``remove``.
    """

    #: deliveries of one signal this close together count once
    REPEAT_SECONDS = 1.0

    def __init__(self, *, what: str = "stopping gracefully",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stop = asyncio.Event()
        self.force_stop = asyncio.Event()
        self.forced_by: int | None = None
        self._what = what
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self._last: tuple[int, float] | None = None  # the signal that counted, and when

    def __call__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        now = self._clock()
        if self._last is not None and self._last[0] == signum \
                and now - self._last[1] < self.REPEAT_SECONDS:
            log.info("Received %s again within %gs: the same request, delivered twice",
                     name, self.REPEAT_SECONDS)
            return
        self._last = (signum, now)
        if not self.stop.is_set():
            log.info("Received %s: %s (send it again to stop at once)", name, self._what)
            self.stop.set()
        else:
            log.warning("Received %s again: stopping at once", name)
            self.forced_by = signum
            self.force_stop.set()

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            self._loop.add_signal_handler(sig, self, sig)

    def remove(self) -> None:
        if self._loop is None:
            return
        for sig in STOP_SIGNALS:
            self._loop.remove_signal_handler(sig)
        self._loop = None

    def __enter__(self) -> Signals:
        self.install()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    @property
    def exit_code(self) -> int:
        """0 after a graceful stop, 128 + N after a forced one (as shells report signals)."""
        return 0 if self.forced_by is None else 128 + self.forced_by


class TaskEndedEarly(RuntimeError):
    """Raised by ``supervise`` when a task returned although nobody asked it to stop."""


async def supervise(
    tasks: Iterable[tuple[str, Coroutine[Any, Any, Any]]],
    *,
    stop: asyncio.Event,
    halt: asyncio.Event | None = None,
    grace_seconds: float | None = 10.0,
    force: asyncio.Event | None = None,
) -> None:
    """Run each ``(name, coroutine)`` as a named task until ``stop`` is set or one ends.

    Then ``halt`` (the stop signal the coroutines themselves watch; ``stop`` when None) is
    set and the others get ``grace_seconds`` (None: as long as they need) to return; those
    still running after that, or as soon as ``force`` is set, are cancelled. A task that
    failed has its error raised here (the first one; the others are logged); one that
    returned before anybody asked it to stop raises ``TaskEndedEarly``: a background task
    never dies silently.
    """
    halt = halt or stop
    running = [asyncio.create_task(coro, name=name) for name, coro in tasks]
    stopping = asyncio.create_task(stop.wait(), name="supervise:stop")
    try:
        done, _ = await asyncio.wait([*running, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.set()
        stopping.cancel()
        await _drain(running, grace_seconds, force)
    failed = [t for t in running if not t.cancelled() and t.exception() is not None]
    for task in failed[1:]:
        log.error("%s failed too: %r", task.get_name(), task.exception())
    if failed:
        raise failed[0].exception()  # type: ignore[misc]  # checked not None just above
    early = [t.get_name() for t in done if t is not stopping]
    if early and not stop.is_set():
        raise TaskEndedEarly(f"{', '.join(early)} ended without being stopped")


async def _drain(
    running: list[asyncio.Task[Any]], grace_seconds: float | None, force: asyncio.Event | None
) -> None:
    """Give asked-to-stop tasks ``grace_seconds`` (None: no limit), or until ``force`` is
    set, to return; then cancel the rest and collect every outcome."""
    loop = asyncio.get_running_loop()
    deadline = None if grace_seconds is None else loop.time() + grace_seconds
    forcing = asyncio.ensure_future(force.wait()) if force is not None else None
    try:
        while not (forcing is not None and forcing.done()):
            pending = {t for t in running if not t.done()}
            left = None if deadline is None else deadline - loop.time()
            if not pending or (left is not None and left <= 0):
                break
            await asyncio.wait(pending | ({forcing} if forcing else set()), timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)
    finally:
        if forcing is not None:
            forcing.cancel()
    late = [t for t in running if not t.done()]
    for task in late:
        log.warning("%s did not stop %s; cancelling it", task.get_name(),
                    "before a forced stop" if force is not None and force.is_set()
                    else f"within {grace_seconds}s")
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


__all__ = ["STOP_SIGNALS", "Backoff", "Signals", "TaskEndedEarly", "supervise", "wait_any"]
