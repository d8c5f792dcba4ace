"""Helpers of the API tests: a worker stand-in that appends to the ledger, an SSE reader,
waiting on conditions with a deadline, and starting a real uvicorn server in the loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from ledger.artifacts import ArtifactRef, FileArtifactStore
from ledger.domain import StepResult
from ledger.store import PgEventStore
from runledger.testing import wait_until

T = TypeVar("T")
API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BROWSER = {"name": "chromium", "version": "test"}

STEPS = [
    {"action": "navigate", "instruction": "Open the login page", "target": "/login"},
    {"action": "fill", "instruction": "Type the user name", "value": "ada"},
    {"action": "click", "instruction": "Click 'Sign in'"},
    {"action": "verify", "instruction": "The dashboard shows", "expected": "Dashboard"},
]


def a_test(name: str = "login", steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "url": "http://127.0.0.1:9/",
            "definition": {"steps": STEPS if steps is None else steps},
            "auto_handle_popups": True}


@dataclass
class FakeWorker:
    """Does what a worker does to the ledger (appends with expected versions), no browser."""

    store: PgEventStore
    artifacts: FileArtifactStore
    name: str = "worker-test"

    async def start(self, run_id: UUID) -> None:
        run = await self.store.load_run(run_id)
        run.start(worker=self.name, browser=BROWSER)
        await self.store.save(run)

    async def step(self, run_id: UUID, index: int, *, status: str = "passed",
                   screenshot: bytes | None = None, healed: bool = False,
                   details: dict[str, Any] | None = None) -> ArtifactRef | None:
        ref = None
        if screenshot is not None:
            ref = await self.artifacts.put(screenshot, kind="screenshot", content_type="image/png")
        run = await self.store.load_run(run_id)
        run.record_step(StepResult(
            index=index, action="click", instruction=f"Step {index}", status=status,
            strategy="dom", healed=healed, duration_ms=10 + index, attempts=1,
            url="http://127.0.0.1:9/", error=None if status == "passed" else "not found",
            artifacts=[ref.as_dict()] if ref else [], details=details or {},
        ))
        await self.store.save(run)
        return ref

    async def complete(self, run_id: UUID, status: str = "passed") -> None:
        run = await self.store.load_run(run_id)
        run.complete(status=status, duration_ms=123,
                     error=None if status == "passed" else "step failed",
                     error_step=None if status == "passed" else run.last_step)
        await self.store.save(run)

    async def finish(self, run_id: UUID, steps: int = 3) -> None:
        await self.start(run_id)
        for index in range(steps):
            await self.step(run_id, index)
        await self.complete(run_id)


@dataclass
class Sse:
    id: str | None
    event: str | None
    data: Any


@dataclass
class SseReader:
    """Parses a ``text/event-stream`` response; keeps comments (keep-alives) apart."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)

    async def events(self) -> AsyncIterator[Sse]:
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if data or fields:
                    yield Sse(fields.get("id"), fields.get("event"),
                              orjson.loads("\n".join(data)) if data else None)
                fields, data = {}, []
            elif line.startswith(":"):
                self.comments.append(line)
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value

    async def collect(self, limit: int | None = None) -> list[Sse]:
        found = []
        async for event in self.events():
            found.append(event)
            if limit is not None and len(found) >= limit:
                break
        return found


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """A real uvicorn server on a free port, in this event loop; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning",
                            timeout_graceful_shutdown=5, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test-uvicorn")

    async def started() -> bool:
        if task.done():
            task.result()  # surfaces a failed start-up
        return server.started

    try:
        await wait_until(started, within=20, what="uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
