"""Getting a Chromium onto a machine that has none: the first run of ``runledger dev`` or
``runledger worker``.

``locate`` looks where ``ChromiumHost`` looks (``CHROMIUM_PATH``, the system's headless
shell or Chromium, Playwright's managed browser) without launching anything. ``install``
tries, in order, what can work here: on Debian/Ubuntu as root the distribution's
``chromium-headless-shell`` (the best browser for workers), else Playwright's managed
Chromium (``playwright install chromium``). Each installer's output is shown as a one-line
progress display, never dumped. ``wait_for_browser`` lets a process that found none keep
serving and start its worker once a browser appears (someone installed one meanwhile).

Installers run as subprocesses; nothing here changes the machine unless ``install`` is
called, and ``BROWSER_AUTO_INSTALL=false`` keeps the entry points from calling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from worker.agent.browser import INSTALL_HINT, find_chromium
from worker.errors import BrowserUnavailable

log = logging.getLogger(__name__)

#: the one line a process prints when it has no browser and could not install one
NO_BROWSER = f"no browser: runs wait in the queue until one is found; {INSTALL_HINT}"
#: how often a process without a browser looks again (a filesystem check; nothing signals it)
RECHECK_SECONDS = 5.0
_INSTALL_TIMEOUT_SECONDS = 600.0


def managed_chromium() -> str | None:
    """Where Playwright's own Chromium is (or would be) installed; None if Playwright's
    driver cannot say. Starting the driver takes about half a second."""
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            return playwright.chromium.executable_path
    except (Error, OSError) as exc:
        log.debug("Playwright's driver did not name its browser: %s", exc)
        return None


def locate(configured: str | None, managed: str | None = None) -> Path | None:
    """The Chromium ``ChromiumHost`` would launch, or None."""
    try:
        return find_chromium(configured, managed)
    except BrowserUnavailable:
        return None


@dataclass(frozen=True)
class Installer:
    """One way of installing a browser: a command and what it installs."""

    name: str
    argv: list[str]
    env: dict[str, str]


def installers() -> list[Installer]:
    """What can install a browser on this machine, best first."""
    found: list[Installer] = []
    if _debian_like() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        found.append(Installer(
            "apt-get install chromium-headless-shell",
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium-headless-shell"],
            env))
    found.append(Installer("playwright install chromium",
                           [sys.executable, "-m", "playwright", "install", "chromium"], {}))
    return found


def _debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    ids = f"{fields.get('ID', '')} {fields.get('ID_LIKE', '')}".replace('"', "").split()
    return "debian" in ids or "ubuntu" in ids


Progress = Callable[[str], None]


def install(configured: str | None, progress: Progress) -> Path | None:
    """Try each installer until a browser can be located; ``progress`` receives each line
    an installer prints. Returns the browser, or None when every installer failed."""
    for installer in installers():
        progress(f"installing a browser: {installer.name}")
        if _run(installer, progress):
            browser = locate(configured, managed_chromium())
            if browser is not None:
                return browser
        log.info("%s did not give a usable browser", installer.name)
    return None


def _run(installer: Installer, progress: Progress) -> bool:
    try:
        process = subprocess.Popen(
            installer.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, **installer.env}, text=True,
            errors="replace",
        )
    except OSError as exc:
        progress(f"{installer.name}: {exc}")
        return False
    deadline = time.monotonic() + _INSTALL_TIMEOUT_SECONDS
    assert process.stdout is not None
    last = ""
    with process:
        for raw in process.stdout:
            # Text mode splits at carriage returns too: each frame of a redrawn progress
            # bar arrives as a line of its own.
            line = raw.strip()
            if line:
                last = line
                progress(f"{installer.name}: {line}")
            if time.monotonic() > deadline:
                process.kill()
                break
        code = process.wait()
    if code != 0:
        log.info("%s exited with %d: %s", installer.name, code, last)
    return code == 0


def install_with_display(configured: str | None) -> Path | None:
    """``install`` with a rich status line on stderr (a spinner and the installer's latest
    line), for a terminal user waiting on a first start."""
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("looking for a way to install a browser …") as status:
        def show(line: str) -> None:
            status.update(line[: max(20, console.width - 4)])

        browser = install(configured, show)
    if browser is not None:
        console.print(f"installed a browser: {browser}")
    return browser


async def find_or_install(configured: str | None, *, auto_install: bool) -> Path | None:
    """The browser to use: one already there, else (when allowed) one just installed."""
    # Playwright's own browser last, as ChromiumHost does: naming it starts its driver.
    browser = locate(configured) or (
        None if configured else locate(None, await asyncio.to_thread(managed_chromium)))
    if browser is None and auto_install and not configured:
        browser = await asyncio.to_thread(install_with_display, configured)
    return browser


async def wait_for_browser(
    configured: str | None, stop: asyncio.Event, *, recheck_seconds: float = RECHECK_SECONDS,
    waiting: Callable[[], object] | None = None,
) -> Path | None:
    """Look for a browser every ``recheck_seconds`` until one appears (returned) or ``stop``
    is set (None). ``waiting`` is called before each wait (e.g. to report "no browser")."""
    managed = None if configured else await asyncio.to_thread(managed_chromium)
    while True:
        browser = locate(configured, managed)
        if browser is not None:
            return browser
        if waiting is not None:
            result = waiting()
            if asyncio.iscoroutine(result):
                await result
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), recheck_seconds)
        if stop.is_set():
            return None
