"""Serving the app with uvicorn: what ``runledger api`` runs.

The signals are handled as in every runledger process (``ledger.aio.Signals``): the first
SIGTERM/SIGINT makes uvicorn stop accepting connections, end the open streams and let
requests finish for up to ``SHUTDOWN_GRACE_SECONDS``, then run the lifespan's shutdown,
which closes what it opened; a second one stops at once. A server composed into another
process (``runledger dev``) stops the same way when its owner's ``stop`` is set: open
streams end at once with a complete response (clients reconnect with ``Last-Event-ID``),
rather than being cut when the grace period runs out. The access log is the app's own
(``api.access``, with credentials masked), not uvicorn's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator

import uvicorn

from api.app import create_app
from api.services import CLIENT_NAME
from api.settings import ApiSettings
from ledger.aio import Signals
from ledger.db import close_quietly, connect

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn, leaving the signals to its caller: uvicorn's own handlers would re-raise
    the signal after shutting down (exit status -15) and know no forced stop by SIGTERM."""

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self.closing = closing

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def begin_shutdown(self) -> None:
        """Stop accepting connections and let requests finish; open streams end at once.

        The app's ``closing`` event ends the streams (``api.routes.stream``): per app, so it
        works the same whether this server is the whole process or one service of several
        (sse-starlette's own detection relies on uvicorn's signal handlers, which this
        server does not install, and on a process-wide flag that is never reset)."""
        self.closing.set()
        self.should_exit = True


async def serve(settings: ApiSettings, stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT, or until ``stop`` is set when given (then the caller
    owns the signals, e.g. a process running several services); the exit status: 0, 1
    when a background task died, 3 when start-up failed (uvicorn's convention), 128 + N
    when a second signal N forced the stop."""
    await _database_reachable(settings)
    failures: list[BaseException] = []
    server: _Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.begin_shutdown()  # stop loudly: a supervisor restarts the process

    app = create_app(settings, on_fatal=on_fatal)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port,
        lifespan="on", access_log=False, log_config=None, proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = _Server(config, app.state.closing)
    # Everything imported and built so far lives as long as the process: keep it out of
    # the cyclic collector's full passes, which otherwise scan it all and stall every
    # open stream for milliseconds (it shows in the live tail's p99).
    gc.collect()
    gc.freeze()
    signals = Signals(what="stopping (finishing requests, ending streams)")
    try:
        if stop is not None:
            await _serve_until(server, stop)
        else:
            with _handling(signals):
                await _serve_until(server, signals.stop, signals.force_stop)
    except SystemExit as exc:
        # uvicorn exits the process (status 3) when the lifespan fails at start-up; a
        # caller composing several services gets the status instead. The error is logged.
        return exc.code if isinstance(exc.code, int) else 1
    if failures:
        log.critical("API stopped after a fatal error: %s", failures[0])
        return 1
    return signals.exit_code


async def _database_reachable(settings: ApiSettings) -> None:
    """Fail fast with one clear line (``TransientStoreError``) rather than a start-up
    traceback from inside the server. Redis is not required to start: without it the API
    serves from PostgreSQL and reports itself degraded."""
    await close_quietly(await connect(settings.database_url, application_name=CLIENT_NAME))


@contextlib.contextmanager
def _handling(signals: Signals) -> Iterator[None]:
    """``signals`` receive SIGINT/SIGTERM inside the block (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with signals:
        yield


async def _serve_until(
    server: _Server, stop: asyncio.Event, force_stop: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` (graceful) and ``force_stop`` (at once, if it comes)."""
    serving = asyncio.create_task(server.serve(), name="api-uvicorn")
    stopping = asyncio.create_task(_stop_on(server, stop, force_stop), name="api-stop")
    try:
        await serving  # an error of the server is raised here
    finally:
        stopping.cancel()
        if not serving.done():  # we were cancelled: cut the server short too
            server.force_exit = True
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def _stop_on(
    server: _Server, stop: asyncio.Event, force_stop: asyncio.Event | None
) -> None:
    await stop.wait()
    server.begin_shutdown()
    if force_stop is not None:
        await force_stop.wait()
        server.force_exit = True
