"""One Chromium per worker process, a fresh context per run, replaced when worn or dead.

``ChromiumHost`` finds a Chromium (``CHROMIUM_PATH``, the system's headless shell or
Chromium, Playwright's managed browser), launches it on ``open()`` and hands out contexts.
After ``BROWSER_MAX_RUNS`` runs, or when the browser disconnects (crash, killed), the next
run gets a newly launched browser; a replaced browser is closed once its last run ends, so
concurrent runs never lose their browser under them.

Signals meant for the worker never reach the browser (``runledger dev`` or ``worker`` in a
terminal, a ``kill`` of the process group): an operator's Ctrl-C or SIGTERM asks the worker
to *finish* its runs, so the browser they run in must outlive it. Three things see to it:

* Chromium is launched without Playwright's signal handlers (``handle_sigint`` and its
  siblings): by default the driver closes every browser on SIGINT/SIGTERM/SIGHUP;
* the driver (Playwright's Node.js process) runs in a session of its own
  (``_driver_in_own_session``), so a signal sent to the terminal's process group (Ctrl-C,
  ``kill -TERM -PGID``, a shell's SIGHUP) does not reach it — Node's default action on
  SIGTERM and SIGHUP is to exit, and a driver that exits takes its browsers with it;
* Chromium itself already leads a process group of its own (the driver spawns it detached).

The driver still ends with the worker: it exits when its stdin (a pipe from this process)
closes, even after a kill -9, and closes its browsers then.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from worker.agent.sandbox import EGRESS_ARGS, use_sandbox
from worker.agent.settings import ExecutorConfig
from worker.errors import BrowserUnavailable, ExecutorError

log = logging.getLogger(__name__)

VIEWPORT: ViewportSize = {"width": 1280, "height": 720}
INSTALL_HINT = (
    "set CHROMIUM_PATH to a Chromium binary, or install one: "
    "`apt-get install chromium-headless-shell` (Debian/Ubuntu) or "
    "`uv run playwright install chromium`"
)
# Debian/Ubuntu ship the real binaries here; /usr/bin/chromium* are shell wrappers that
# Playwright would kill without reaching the browser behind them.
_SYSTEM = (
    ("chromium-headless-shell", "/usr/lib/chromium/chromium-headless-shell"),
    ("chromium", "/usr/lib/chromium/chromium"),
)
_CLOSE_SECONDS = 10.0


def find_chromium(configured: str | None, managed: str | None = None) -> Path:
    """The Chromium to launch; ``BrowserUnavailable`` saying how to get one otherwise."""
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrowserUnavailable(
                f"CHROMIUM_PATH={configured} is not an executable file; {INSTALL_HINT}",
                kind="no-browser",
            )
        return path
    for command, real in _SYSTEM:
        if os.access(real, os.X_OK):
            return Path(real)
        found = shutil.which(command)
        if found:
            return Path(found)
    if managed and os.access(managed, os.X_OK):
        return Path(managed)
    raise BrowserUnavailable(f"no Chromium found; {INSTALL_HINT}", kind="no-browser")


@dataclass(eq=False)  # compared and hashed by identity: one per launched browser
class Lease:
    """A launched browser and the runs it serves (one per browser generation)."""

    browser: Browser
    number: int
    runs: int = 0
    active: int = 0
    retired: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class ChromiumHost:
    """Owns Playwright and the browser; constructed without I/O, opened once per process."""

    def __init__(self, config: ExecutorConfig) -> None:
        self._config = config
        self._playwright: Playwright | None = None
        self._current: Lease | None = None
        self._lock = asyncio.Lock()
        self._generations = 0
        self._retired: set[Lease] = set()
        self.executable: Path | None = None
        #: on every browser's command line, so tools can tell our processes apart
        self.tag = f"--runledger-host={uuid.uuid4().hex}"
        self.info: dict[str, Any] = {"name": "chromium", "version": "unknown"}

    @property
    def launched(self) -> int:
        """How many browsers this host has launched (recycling and crashes add to it)."""
        return self._generations

    async def open(self) -> None:
        if self._playwright is not None:
            return
        _driver_in_own_session()
        self._playwright = await async_playwright().start()
        try:
            managed = self._playwright.chromium.executable_path
            self.executable = find_chromium(self._config.chromium_path, managed)
            async with self._lock:
                self._current = await self._launch()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        leases = [lease for lease in (self._current, *self._retired) if lease is not None]
        self._current = None
        self._retired.clear()
        for lease in leases:
            lease.retired = True  # an expected disconnect, not a crash
            await _close_browser(lease.browser)
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(PlaywrightError):
                await asyncio.shield(playwright.stop())

    @contextlib.asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[tuple[BrowserContext, Lease]]:
        """A fresh 1280x720 context for one run, closed afterwards whatever happens;
        ``options`` go to Playwright's ``new_context`` (the run's egress ``proxy``)."""
        lease = await self._acquire()
        try:
            try:
                context = await lease.browser.new_context(viewport=VIEWPORT, **options)
            except PlaywrightError as exc:
                lease.retired = True
                raise ExecutorError(f"could not open a browser context: {exc}",
                                    kind="browser-crash") from exc
            try:
                yield context, lease
            finally:
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    await asyncio.shield(asyncio.wait_for(context.close(), _CLOSE_SECONDS))
        finally:
            await self._release(lease)

    async def _acquire(self) -> Lease:
        if self._playwright is None:
            raise ExecutorError("the executor is not open", kind="not-open")
        idle: Lease | None = None
        async with self._lock:
            current = self._current
            if current is None or current.retired or current.runs >= self._config.browser_max_runs:
                if current is not None:
                    log.info("browser #%d %s after %d run(s)", current.number,
                             "replaced" if current.retired else "recycled", current.runs)
                    current.retired = True
                    if current.active:
                        self._retired.add(current)  # closed when its last run ends
                    else:
                        idle = current
                current = self._current = await self._launch()
            current.runs += 1
            current.active += 1
        if idle is not None:
            await _close_browser(idle.browser)
        return current

    async def _release(self, lease: Lease) -> None:
        lease.active -= 1
        if lease.retired and lease.active == 0 and lease in self._retired:
            self._retired.discard(lease)
            await _close_browser(lease.browser)

    async def _launch(self) -> Lease:
        assert self._playwright is not None and self.executable is not None
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=str(self.executable), headless=True,
                args=["--disable-dev-shm-usage", "--disable-gpu", self.tag, *EGRESS_ARGS],
                chromium_sandbox=use_sandbox(self._config.chromium_sandbox, self.executable),
                # The worker decides when the browser closes: a signal asks it to finish
                # its runs first (see the module docstring).
                handle_sigint=False, handle_sigterm=False, handle_sighup=False,
            )
        except PlaywrightError as exc:
            raise BrowserUnavailable(
                f"could not launch {self.executable}: {str(exc).splitlines()[0]}; {INSTALL_HINT}",
                kind="no-browser",
            ) from exc
        self._generations += 1
        lease = Lease(browser, self._generations)
        browser.on("disconnected", lambda _: self._on_disconnected(lease))
        name = "chromium-headless-shell" if "headless" in self.executable.name else "chromium"
        self.info = {"name": name, "version": browser.version}
        log.info("launched %s %s (browser #%d) from %s", name, browser.version, lease.number,
                 self.executable)
        return lease

    def _on_disconnected(self, lease: Lease) -> None:
        if not lease.retired:
            log.warning("browser #%d disconnected (crashed or killed); the next run gets a "
                        "new one", lease.number)
        lease.retired = True
        lease.disconnected.set()


async def _close_browser(browser: Browser) -> None:
    with contextlib.suppress(PlaywrightError, TimeoutError):
        await asyncio.shield(asyncio.wait_for(browser.close(), _CLOSE_SECONDS))


class _SessionAsyncio:
    """``asyncio`` as Playwright's pipe transport sees it, but starting subprocesses (its
    Node.js driver is the only one it starts) in a session of their own."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def create_subprocess_exec(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        kwargs.setdefault("start_new_session", True)
        return await asyncio.create_subprocess_exec(*args, **kwargs)


def _driver_in_own_session() -> None:
    """Make Playwright start its driver with ``start_new_session=True`` (``setsid``).

    playwright-python spawns the driver with ``asyncio.create_subprocess_exec`` and offers
    no way to pass ``Popen`` options (upstream: microsoft/playwright-python#1170). Nothing
    else works from outside: the driver cannot be moved to another process group once it
    has exec'd (``setpgid`` answers EACCES), an ignored SIGINT/SIGTERM does not survive
    Node's start-up (it resets every disposition), and a wrapper named by
    ``PLAYWRIGHT_NODEJS_PATH`` would mean editing this process's environment and shipping
    an executable script. So the transport module's view of ``asyncio`` is replaced by one
    that adds the option — for that module only, once per process. A test checks that the
    driver runs in another session, so a Playwright release that moves this seam fails
    loudly instead of silently bringing the problem back.
    """
    try:
        module = importlib.import_module("playwright._impl.transport")
    except ImportError:
        module = None
    seen = getattr(module, "asyncio", None)
    if isinstance(seen, _SessionAsyncio):
        return
    if seen is not asyncio:
        log.warning("Playwright's driver transport has changed: its driver shares this "
                    "process group, and a Ctrl-C or group SIGTERM may close the browser "
                    "mid-run")
        return
    setattr(module, "asyncio", _SessionAsyncio())  # noqa: B010 - a private module's name
