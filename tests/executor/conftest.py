"""Executor test fixtures: the test site on 127.0.0.1, one Chromium per module, a sink
that keeps what the executor records, and executors configured per test.

The browser tests run in their module's event loop (the browser outlives each test), so
this folder's ``pool`` fixture opens its pool on that loop too.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from ledger.artifacts import FileArtifactStore
from ledger.db import create_pool
from ledger.definition import parse_steps
from runledger.testing import local_site
from worker.agent import AgentExecutor, ExecutorConfig
from worker.agent.browser import ChromiumHost
from worker.ports import RunJob, StepResult

SITE = Path(__file__).parent / "site"


def _new_random_values(page: str) -> str:
    """``{{RANDOM}}`` in a page becomes a new value on every load."""
    return page.replace("{{RANDOM}}", str(secrets.randbelow(10**8)))


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """Base URL of the test site, served from a thread for the whole session."""
    with local_site(SITE, render=_new_random_values, name="test-site") as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host() -> AsyncIterator[ChromiumHost]:
    """One browser for the module's tests; each run still gets a fresh context."""
    chromium = ChromiumHost(ExecutorConfig())
    await chromium.open()
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()


class RecordingSink:
    """A ``StepSink`` keeping every ``StepResult``; ``on_record`` runs before keeping one."""

    def __init__(self, on_record: Callable[[StepResult], Awaitable[None]] | None = None) -> None:
        self.results: list[StepResult] = []
        self._on_record = on_record

    async def record(self, result: StepResult) -> None:
        if self._on_record is not None:
            await self._on_record(result)
        self.results.append(result)

    def by_index(self, index: int) -> StepResult:
        return next(r for r in self.results if r.index == index)


def make_job(url: str, steps: list[dict[str, Any]], *, auto_handle_popups: bool = True,
             test_id: str | None = None) -> RunJob:
    return RunJob(
        run_id=uuid.uuid4(), test_id=test_id or f"test-{uuid.uuid4().hex[:8]}",
        test_name="executor test", url=url, steps=parse_steps(steps),
        auto_handle_popups=auto_handle_popups, attempt=1,
    )


@pytest.fixture
def make_executor(host: ChromiumHost, tmp_path: Path) -> Callable[..., AgentExecutor]:
    """``make_executor(memory=None, **config)``: an executor on the module's browser."""

    def make(memory: Any = None, advisor: Any = None, **overrides: Any) -> AgentExecutor:
        settings: dict[str, Any] = {
            "artifacts_dir": tmp_path / "artifacts", "step_timeout_seconds": 10.0,
            "verify_timeout_seconds": 2.0, **overrides,
        }
        config = ExecutorConfig(**settings)
        return AgentExecutor(config, artifacts=FileArtifactStore(config.artifacts_dir),
                             memory=memory, advisor=advisor, host=host)

    return make


def chromium_processes(tag: str) -> dict[str, list[int]]:
    """PIDs of a host's browser processes by type (``browser``, ``renderer`` …), from /proc.

    Only the browser process carries the host's tag; its helpers are found as descendants.
    (Chromium rewrites its helpers' command lines into one space-separated string.)
    """
    cmdlines: dict[int, str] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        cmdlines[int(entry.name)] = raw.decode(errors="replace").replace("\0", " ")
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    roots = {pid for pid, line in cmdlines.items() if tag in line and "--type=" not in line}
    found: dict[str, list[int]] = {"browser": sorted(roots)}
    for pid, line in cmdlines.items():
        ancestor, hops = parents.get(pid), 0
        while ancestor and ancestor not in roots and hops < 10:
            ancestor, hops = parents.get(ancestor), hops + 1
        if ancestor in roots:
            kind = re.search(r"--type=(\S+)", line)
            found.setdefault(kind.group(1) if kind else "other", []).append(pid)
    return found
