"""Fixtures of the API tests: settings on the per-test database and Redis, the followers
running as a task, the app with its lifespan entered, an httpx client through ASGI, and a
real uvicorn server for streaming."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.settings import ApiSettings
from ledger.artifacts import FileArtifactStore
from ledger.store import PgEventStore
from projections.service import ProjectorSettings, run_projector
from tests.api.helpers import API_KEY, AUTH, FakeWorker, serve

MakeSettings = Callable[..., ApiSettings]


@pytest.fixture
def make_settings(database_url: str, redis_url: str, tmp_path: Path) -> MakeSettings:
    def make(**overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "database_url": database_url, "redis_url": redis_url, "api_keys": [API_KEY],
            "artifacts_dir": tmp_path / "artifacts", "stream_block_ms": 1000,
            "listen_poll_seconds": 0.5, "redis_retry_seconds": 0.5,
            # Tests send wrong keys on purpose, more than the default limit allows.
            "api_key_failure_limit": 1000,
        }
        values.update(overrides)
        return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]
    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> ApiSettings:
    return make_settings()


@contextlib.asynccontextmanager
async def running_followers(database_url: str, redis_url: str) -> AsyncIterator[None]:
    """The projector (runs, run_steps, relay) as a task; stopped and awaited on exit, so a
    follower that failed fails the test."""
    stop = asyncio.Event()
    settings = ProjectorSettings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, redis_url=redis_url,
        projector_poll_interval_seconds=0.2, follower_standby_retry_seconds=0.2,
    )
    task = asyncio.create_task(run_projector(settings, stop), name="test-projector")
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def followers(database_url: str, redis_url: str) -> AsyncIterator[None]:
    async with running_followers(database_url, redis_url):
        yield


class WithState:
    """What an ASGI server does with lifespan state: each request sees a copy of it."""

    def __init__(self, app: FastAPI, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "state": dict(self.state)}, receive, send)


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=WithState(app, state or {}))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     **kwargs) as client:
            yield client


@pytest.fixture
async def app(settings: ApiSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI, followers: None) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client through ASGI, with the followers running."""
    async with asgi_client(app, headers=AUTH) as client:
        yield client


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def server(app: FastAPI, followers: None) -> AsyncIterator[str]:
    """A real uvicorn server (streams need one); yields its base URL."""
    async with serve(app) as url:
        yield url


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture
def worker(pool: Any, settings: ApiSettings) -> FakeWorker:
    return FakeWorker(PgEventStore(pool), FileArtifactStore(settings.artifacts_dir))
