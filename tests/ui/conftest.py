"""Fixtures of the page tests: a running stack (followers, the API on a real port, a real
worker when a test needs one) and a real Chromium driven by Playwright, with every request
to another host blocked — the pages must work with no network.

Each page a test visits is saved as a screenshot under the test's tmp path; with
``UPDATE_UI_SCREENSHOTS=1`` the ones named for the docs also go to ``docs/ui/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from api.app import create_app
from api.settings import ApiSettings
from ledger.artifacts import FileArtifactStore
from ledger.store import PgEventStore
from runledger.testing import local_site
from tests.api.conftest import running_followers
from tests.api.helpers import API_KEY, FakeWorker, serve
from tests.worker.proxy import CuttableProxy
from worker.agent.browser import find_chromium
from worker.main import playwright_executor
from worker.service import run_worker
from worker.settings import WorkerSettings

SITE = Path(__file__).resolve().parent.parent / "executor" / "site"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
LOCAL_HOSTS = ("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    with local_site(SITE, name="ui-test-site") as url:
        yield url


@dataclass
class Stack:
    """The API (through a proxy a test can cut) with the followers; ``http`` is a client
    with the key; ``fake`` appends as a worker would, without a browser."""

    url: str
    settings: ApiSettings
    proxy: CuttableProxy
    http: httpx.AsyncClient
    fake: FakeWorker
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    async def create_test(self, name: str, url: str, steps: list[dict[str, Any]]) -> str:
        response = await self.http.post("/tests", json={
            "name": name, "url": url, "definition": {"steps": steps},
            "auto_handle_popups": True})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def queue(self, test_id: str) -> str:
        response = await self.http.post("/runs", json={"test_id": test_id})
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])


MakeStack = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def make_stack(database_url: str, redis_url: str, tmp_path: Path, pool: Any) -> MakeStack:
    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Stack]:
        values: dict[str, Any] = {
            "database_url": database_url, "redis_url": redis_url, "api_keys": [],
            "artifacts_dir": tmp_path / "artifacts", "stream_block_ms": 1000,
            "listen_poll_seconds": 0.5, "redis_retry_seconds": 0.5,
        }
        values.update(overrides)
        settings = ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]
        headers = {"Authorization": f"Bearer {API_KEY}"} if settings.api_keys else {}
        async with running_followers(database_url, redis_url), \
                serve(create_app(settings)) as direct:
            proxy = CuttableProxy(direct)
            await proxy.start()
            try:
                async with httpx.AsyncClient(base_url=direct, headers=headers,
                                             timeout=30) as http:
                    stack = Stack(proxy.url, settings, proxy, http, FakeWorker(
                        PgEventStore(pool), FileArtifactStore(settings.artifacts_dir)))
                    try:
                        yield stack
                    finally:
                        await _stop_workers(stack)
            finally:
                await proxy.close()
    return make


async def _stop_workers(stack: Stack) -> None:
    for task in stack.workers:
        task.cancel()
    for task in stack.workers:
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def real_worker(stack: Stack, **overrides: Any) -> AsyncIterator[None]:
    """A worker with the Playwright executor (its own Chromium) until the block ends."""
    values: dict[str, Any] = {
        "database_url": stack.settings.database_url, "redis_url": stack.settings.redis_url,
        "artifacts_dir": stack.settings.artifacts_dir, "redis_consumer_name": "ui-worker",
        "screenshots": "all", "traces": "all", "step_timeout_seconds": 5,
        "worker_block_seconds": 0.2,
    }
    values.update(overrides)
    settings = WorkerSettings(_env_file=None, **values)  # type: ignore[call-arg]
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, playwright_executor, stop),
                               name="ui-test-worker")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@dataclass
class Browsing:
    """One browser context: ``blocked`` lists the requests to other hosts it refused,
    ``problems`` the console errors and CSP violations seen."""

    browser: Browser
    shots: Path
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def page(self, *, width: int = 1100, height: int = 900) -> Page:
        context = await self.browser.new_context(viewport={"width": width, "height": height})
        await context.route("**/*", self._only_local)
        page = await context.new_page()
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        return page

    async def _only_local(self, route: Route) -> None:
        host = route.request.url.split("/")[2].split(":")[0] if "://" in route.request.url \
            else ""
        if host in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.blocked.append(route.request.url)
            await route.abort()

    async def shot(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        """Saves the page under the test's output (and in docs/ui when asked to)."""
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        if os.environ.get("UPDATE_UI_SCREENSHOTS") == "1":
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            (DOCS_SHOTS / f"{name}.png").write_bytes(path.read_bytes())
        return path

    def assert_clean(self, *, dropped_connections: bool = False,
                     refused_keys: bool = False) -> None:
        """No request left the machine and no error was logged — but the browser's report
        of the requests the test cut itself, or of the 401s that made a page ask for a key."""
        assert not self.blocked, f"requests to other hosts: {self.blocked}"
        problems = [p for p in self.problems if not (
            (dropped_connections and p.startswith("Failed to load resource: net::ERR_"))
            or (refused_keys and p.endswith("status of 401 (Unauthorized)")))]
        assert not problems, f"console errors: {problems}"


@pytest.fixture
async def browsing(tmp_path: Path) -> AsyncIterator[Browsing]:
    async with async_playwright() as playwright:
        chromium = find_chromium(None, playwright.chromium.executable_path)
        browser = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            shots = tmp_path / "screenshots"
            shots.mkdir()
            yield Browsing(browser, shots)
        finally:
            await browser.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     within: float = 20) -> None:
    from runledger.testing import wait_until

    await wait_until(check, within=within, what=what)
