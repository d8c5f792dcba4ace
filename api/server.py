"""Serving the app with uvicorn: what ``runledger api`` runs.

uvicorn handles SIGTERM/SIGINT: it stops accepting connections, lets requests finish
(streams are ended by sse-starlette when the server exits) for up to
``SHUTDOWN_GRACE_SECONDS``, then runs the lifespan's shutdown, which closes what it opened.
The access log is the app's own (``api.access``, with credentials masked), not uvicorn's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from ledger.db import create_pool

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn, with the shutdown protocol of every runledger process: the first signal
    stops gracefully and the process then exits 0; a second one stops at once. (uvicorn
    itself re-raises the signal after shutting down, so the exit status would be -15.)"""

    #: False when the caller owns the signals and stops the server through ``serve(stop=)``
    owns_signals = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self.owns_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            log.warning("%s again: stopping at once", signal.Signals(sig).name)
            self.force_exit = True
        else:
            log.info("%s: stopping (finishing requests, ending streams)",
                     signal.Signals(sig).name)
        super().handle_exit(sig, frame)


async def serve(settings: ApiSettings, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT, or until ``stop`` is set when given (then the caller
    owns the signals, e.g. a process running several services); the exit status: 0, 1
    when a background task died, 3 when start-up failed (uvicorn's convention)."""
    await _database_reachable(settings)
    failures: list[BaseException] = []
    server: _Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.should_exit = True  # stop loudly: a supervisor restarts the process

    config = uvicorn.Config(
        create_app(settings, on_fatal=on_fatal), host=settings.host, port=settings.port,
        lifespan="on", access_log=False, log_config=None, proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = _Server(config)
    # Everything imported and built so far lives as long as the process: keep it out of
    # the cyclic collector's full passes, which otherwise scan it all and stall every
    # open stream for milliseconds (it shows in the live tail's p99).
    gc.collect()
    gc.freeze()
    try:
        if stop is None:
            await server.serve()
        else:
            server.owns_signals = False
            await _serve_until(server, stop)
    except SystemExit as exc:
        # uvicorn exits the process (status 3) when the lifespan fails at start-up; a
        # caller composing several services gets the status instead. The error is logged.
        return exc.code if isinstance(exc.code, int) else 1
    if failures:
        log.critical("API stopped after a fatal error: %s", failures[0])
        return 1
    return 0


async def _database_reachable(settings: ApiSettings) -> None:
    """Fail fast with one clear line (``TransientStoreError``) rather than a start-up
    traceback from inside the server. Redis is not required to start: without it the API
    serves from PostgreSQL and reports itself degraded."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    await pool.close()


async def _serve_until(server: _Server, stop: asyncio.Event) -> None:
    serving = asyncio.create_task(server.serve(), name="api-uvicorn")
    stopping = asyncio.create_task(stop.wait(), name="api-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving  # an error of the server is raised here
    finally:
        stopping.cancel()
        if not serving.done():  # we were cancelled: cut the server short too
            server.force_exit = True
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
