"""``AgentExecutor``: the Playwright implementation of ``worker.ports.Executor``.

Owns (or borrows) a ``ChromiumHost``, the artifact store, the locator-memory reader and the
optional LLM advisor. ``execute`` gives each run a fresh context on the shared browser,
fetches the run's locator memory in one query, runs the steps (``RunSession``) and closes
the context whatever happened — a ``RunCancelled`` from the sink or a cancellation from the
consumer included. After a run it applies artifact retention, at most once per
``RETENTION_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from ledger.artifacts import ArtifactStore, RetentionPolicy
from ledger.errors import StoreError
from projections.locator_memory import MemoryEntry
from worker.agent.browser import ChromiumHost
from worker.agent.egress import EgressProxy
from worker.agent.llm import LocatorAdvisor
from worker.agent.session import NO_TARGET, RunSession, recall_texts
from worker.agent.settings import ExecutorConfig
from worker.ports import Outcome, RunJob, StepSink

log = logging.getLogger(__name__)


class LocatorMemory(Protocol):
    async def for_steps(
        self, steps: list[tuple[str, str, str | None]]
    ) -> dict[str, MemoryEntry]: ...


class AgentExecutor:
    """Runs test steps in Chromium. ``open``/``close`` bracket the process's lifetime."""

    def __init__(
        self,
        config: ExecutorConfig,
        *,
        artifacts: ArtifactStore,
        memory: LocatorMemory | None = None,
        advisor: LocatorAdvisor | None = None,
        host: ChromiumHost | None = None,
    ) -> None:
        self.config = config
        self._artifacts = artifacts
        self._memory = memory
        self._advisor = advisor
        # A host handed in belongs to whoever made it (tests share one browser this way).
        self._owns_host = host is None
        self.host = host or ChromiumHost(config)
        self._last_prune = float("-inf")
        self._prune_lock = asyncio.Lock()

    @property
    def browser(self) -> dict[str, Any]:
        return dict(self.host.info)

    async def open(self) -> None:
        if self._owns_host:
            await self.host.open()
        if self._advisor is not None:
            try:
                await self._advisor.open()
            except BaseException:
                # Whoever opened the browser closes it: the caller only closes an executor
                # whose open() succeeded.
                if self._owns_host:
                    await asyncio.shield(self.host.close())
                raise
        log.info("executor ready: %s %s, screenshots=%s traces=%s healing=%s llm=%s",
                 self.host.info["name"], self.host.info["version"], self.config.screenshots,
                 self.config.traces, self.config.healing,
                 "on" if self._advisor is not None else "off")

    async def close(self) -> None:
        try:
            if self._advisor is not None:
                await self._advisor.close()
        finally:
            if self._owns_host:
                await self.host.close()

    async def execute(self, job: RunJob, sink: StepSink) -> Outcome:
        began = time.monotonic()
        memory = await self._recall(job)
        try:
            # Every connection of the run goes through its own egress proxy (NAVIGATION_POLICY).
            async with EgressProxy(self.config.navigation, name=str(job.run_id)) as egress, \
                    self.host.context(proxy=egress.playwright_proxy()) as (context, lease):
                session = RunSession(job, context, lease, self.config, self._artifacts, memory,
                                     self._advisor, egress)
                outcome = await session.run(sink, began)
        finally:
            await self._retention()
        log.info("run %s %s in %d ms", job.run_id, outcome.status, outcome.duration_ms)
        return outcome

    async def _recall(self, job: RunJob) -> dict[str, MemoryEntry]:
        """The run's locator memory in one query; without it the run still works."""
        if self._memory is None:
            return {}
        wanted = [
            (s.action.value, *recall_texts(s)) for s in job.steps
            if s.action.value not in NO_TARGET
        ]
        try:
            return await self._memory.for_steps(wanted)
        except StoreError as exc:
            log.warning("locator memory unavailable run_id=%s: %s", job.run_id, exc)
            return {}

    async def _retention(self) -> None:
        # Only stores that can prune (the file store; an object store may rely on its own
        # lifecycle rules instead).
        prune = getattr(self._artifacts, "prune", None)
        if prune is None or self._prune_lock.locked():
            return
        if time.monotonic() - self._last_prune < self.config.retention_interval_seconds:
            return
        async with self._prune_lock:
            self._last_prune = time.monotonic()
            policy = RetentionPolicy(self.config.screenshot_retention_runs,
                                     self.config.trace_retention_days)
            try:
                await prune(policy)
            except OSError as exc:
                # Retention is housekeeping: a full or read-only disk must not fail runs.
                log.warning("artifact retention failed: %s", exc)
