"""``create_app(settings)``: the FastAPI application, built without I/O.

One lifespan opens everything (``api.services``) and closes it; middleware, from the
outside in: request context (id, access log, metrics, last-resort 500), CORS, body limit.
Auth is a dependency of every router but ``/health``; errors map to problem+json in
``api.problems``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware import Middleware
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from api import openapi, problems
from api.auth import ApiKeys, FailedKeyThrottle, authenticate
from api.edges import refuse_control_characters
from api.metrics import Metrics
from api.middleware import BodyLimit, HostCheck, RequestContext
from api.routes import artifacts, compat, feed, ops, runs, stream, tests, ui
from api.services import OnFatal, open_services
from api.settings import ApiSettings

log = logging.getLogger(__name__)

VERSION = "1"


def create_app(settings: ApiSettings, *, on_fatal: OnFatal | None = None) -> FastAPI:
    """The app; ``on_fatal`` is called if a background task of the process dies."""
    keys = ApiKeys(settings.api_keys, FailedKeyThrottle(
        settings.api_key_failure_limit, settings.api_key_failure_window_seconds))
    metrics = Metrics()
    # Set by the server when it begins to shut down (``api.server``): open streams end.
    closing = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        if not keys.enabled:
            log.warning("API_KEYS is not set: every route is open to anyone who can reach "
                        "this server")
        async with open_services(settings, metrics, on_fatal, closing=closing) as services:
            yield {"services": services}

    middleware = [Middleware(RequestContext, metrics=metrics)]
    if (not keys.enabled or settings.allowed_hosts) and "*" not in settings.allowed_hosts:
        middleware.append(Middleware(HostCheck, allowed=settings.allowed_hosts))
    if settings.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key",
                           "If-Match", "Last-Event-ID", "X-Request-ID"],
            expose_headers=["Location", "ETag", "X-Request-ID", "Idempotent-Replayed",
                            "Retry-After"],
            max_age=600,
        ))
    middleware.append(Middleware(BodyLimit, max_bytes=settings.max_body_bytes))

    app = FastAPI(
        title="runledger", version=VERSION, lifespan=lifespan, middleware=middleware,
        # Every route, present and future: strings the ledger cannot store are refused here.
        dependencies=[Depends(refuse_control_characters)],
        description="An event-sourced run ledger for browser tests: define tests, queue runs, "
                    "read their history and follow them live. Errors are "
                    "`application/problem+json`.",
        # Served below behind the API key, like every route but /health.
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.api_keys = keys
    app.state.metrics = metrics
    app.state.closing = closing
    problems.install(app)
    authenticated = [Depends(authenticate)]
    app.include_router(tests.router, dependencies=authenticated)
    app.include_router(feed.router)  # before /runs/{run_id}
    app.include_router(runs.router, dependencies=authenticated)
    app.include_router(artifacts.router)  # the key, or a signed link
    app.include_router(stream.router)
    app.include_router(compat.router, dependencies=authenticated)
    app.include_router(ops.health_router)
    app.include_router(ops.metrics_router)
    app.openapi = lambda: openapi.build(app)  # type: ignore[method-assign]  # FastAPI's hook
    app.include_router(_openapi_router(app), dependencies=authenticated)
    ui.mount(app)  # the pages and /docs: no data in them, their scripts ask for the key
    return app


def _openapi_router(app: FastAPI) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    return router
