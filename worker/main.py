"""A worker process's entry point: ``python -m worker`` and ``runledger worker``.

Reads ``WorkerSettings`` from the environment / ``.env`` and runs ``run_worker`` with the
executor factory (the Playwright executor by default) until a signal:

* first SIGTERM/SIGINT — graceful: no new jobs, in-flight runs finish, exit 0;
* second — immediate: exit 128 + signal number; un-acknowledged jobs are reclaimed by others.

Exit codes: 0 stopped gracefully · 1 could not start (the message names the setting) ·
2 invalid configuration · 128+N forced stop by signal N.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import asyncpg

from ledger.aio import Signals
from ledger.errors import ConfigurationError
from ledger.settings import load_settings
from ledger.text import EscapedLogRecords
from worker.errors import StartupError
from worker.ports import Executor
from worker.service import ExecutorFactory, run_worker
from worker.settings import WorkerSettings

log = logging.getLogger("worker")

EXIT_STARTUP = 1
EXIT_CONFIG = 2


def playwright_executor(settings: WorkerSettings, pool: asyncpg.Pool) -> Executor:
    """The production executor (``worker.agent``), imported only when a worker starts."""
    try:
        from worker.agent import build_executor
    except ImportError as exc:
        raise StartupError(f"the Playwright executor (worker.agent) cannot be loaded: {exc}"
                           ) from exc
    return build_executor(settings, pool)


async def serve(settings: WorkerSettings, build_executor: ExecutorFactory) -> int:
    """Run one worker until signalled; returns the process exit code (128 + N when a
    second signal N forced the stop)."""
    with Signals(what="finishing in-flight runs, taking no new jobs") as signals:
        if build_executor is playwright_executor:
            # The Playwright executor needs a browser: find, install or wait for one.
            from worker.waiting import run_worker_when_browser

            await run_worker_when_browser(settings, build_executor, signals.stop,
                                          force_stop=signals.force_stop)
        else:
            await run_worker(settings, build_executor, signals.stop,
                             force_stop=signals.force_stop)
    if signals.exit_code == 0:
        log.info("Worker exited cleanly")
    return signals.exit_code


def run(build_executor: ExecutorFactory = playwright_executor) -> int:
    """Load settings, serve, and map start-up failures to exit codes (logged, not raised)."""
    try:
        settings = load_settings(WorkerSettings)
    except ConfigurationError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    try:
        return asyncio.run(serve(settings, build_executor))
    except StartupError as exc:
        log.error("Worker cannot start: %s", exc)
        return EXIT_STARTUP
    except ConfigurationError as exc:  # raised by an executor factory reading its settings
        log.error("%s", exc)
        return EXIT_CONFIG


def main() -> None:
    """``python -m worker``: plain log lines on stderr, level from ``LOG_LEVEL``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(EscapedLogRecords())
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(run())
