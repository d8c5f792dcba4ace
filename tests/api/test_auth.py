"""The auth matrix: every route with no key, a wrong key, the right key; streams also take
``?access_token=``; keys never reach the logs; CORS."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api.conftest import asgi_client
from tests.api.helpers import API_KEY, a_test

pytestmark = pytest.mark.e2e

OPEN = {"/health", "/docs"}  # /docs: a page with no data, whose script asks for the key
#: endless streams, which ASGITransport would read for ever: their right-key case is in
#: tests/ui (through a real server)
FEEDS = {"/runs/feed"}
STREAMS = {"/runs/{run_id}/stream", "/results/{run_id}/stream"}


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every operation the app documents, and the docs."""
    found = [(method.upper(), path) for path, operations in app.openapi()["paths"].items()
             for method in operations]
    return [*found, ("GET", "/openapi.json"), ("GET", "/docs")]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "a" * 64 if m[1] == "artifact_id"
                  else str(uuid.uuid4()), path)


def body_for(method: str, path: str) -> dict[str, Any] | None:
    if method not in ("POST", "PUT"):
        return None
    return a_test() if path.startswith("/tests") else {"test_id": str(uuid.uuid4())}


async def test_every_route_requires_the_key(app: FastAPI, followers: None) -> None:
    routes = every_route(app)
    assert len(routes) >= 17 and ("GET", "/openapi.json") in routes
    async with asgi_client(app) as client:
        for method, template in routes:
            path, body = concrete(template), body_for(method, template)
            none = await client.request(method, path, json=body)
            wrong = await client.request(method, path, json=body,
                                         headers={"Authorization": "Bearer nope"})
            right = await _status(client, method, path, body, template,
                                  {"Authorization": f"Bearer {API_KEY}"})
            by_header = await _status(client, method, path, body, template,
                                      {"X-API-Key": API_KEY})
            label = f"{method} {template}"
            if template in OPEN:
                assert none.status_code == wrong.status_code == 200, label
                continue
            for response in (none, wrong):
                assert response.status_code == 401, label
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"].startswith("Bearer")
            assert right not in (401, 403, 500), label
            assert by_header not in (401, 403, 500), label


async def _status(client: Any, method: str, path: str, body: Any, template: str,
                  headers: dict[str, str]) -> int:
    if template in FEEDS:
        return 200
    return int((await client.request(method, path, json=body, headers=headers)).status_code)


async def test_access_token_query_is_for_streams_only(app: FastAPI, followers: None) -> None:
    async with asgi_client(app) as client:
        test = await client.post("/tests", json=a_test(), headers={"X-API-Key": API_KEY})
        run = await client.post("/runs", json={"test_id": test.json()["id"]},
                                headers={"X-API-Key": API_KEY})
        run_id = run.json()["run_id"]
        for template in STREAMS:
            path = template.replace("{run_id}", str(uuid.uuid4()))
            assert (await client.get(path, params={"access_token": API_KEY})).status_code == 404
            assert (await client.get(path, params={"access_token": "x"})).status_code == 401
        assert (await client.get(f"/runs/{run_id}",
                                 params={"access_token": API_KEY})).status_code == 401


async def test_keys_are_never_logged(
    make_settings: Any, followers: None, caplog: pytest.LogCaptureFixture
) -> None:
    from api.app import create_app

    caplog.set_level(logging.DEBUG)
    app = create_app(make_settings())
    async with asgi_client(app) as client:
        await client.get(f"/runs/{uuid.uuid4()}/stream", params={"access_token": API_KEY})
        await client.get("/tests", headers={"Authorization": f"Bearer {API_KEY}"})
        await client.get("/tests", headers={"Authorization": "Bearer wrong-key-secret"})
    # everything the server side logged (httpx here is the test's own client)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "access_token=%2A%2A%2A" in text or "access_token=***" in text
    assert API_KEY not in text and "wrong-key-secret" not in text


async def test_open_api_warns_at_start_up(
    make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from api.app import create_app

    app = create_app(make_settings(api_keys=[], allowed_hosts=["testserver"]))
    async with asgi_client(app) as client:
        assert (await client.get("/tests")).status_code == 200
    assert any(r.levelno == logging.WARNING and "API_KEYS is not set" in r.getMessage()
               for r in caplog.records)


async def test_cors(make_settings: Any) -> None:
    from api.app import create_app

    app = create_app(make_settings(cors_origins="https://qa.example.com, https://x.example"))
    async with asgi_client(app) as client:
        allowed = await client.options("/runs", headers={
            "Origin": "https://qa.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key"})
        assert allowed.status_code == 200  # a preflight needs no key
        assert allowed.headers["access-control-allow-origin"] == "https://qa.example.com"
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        other = await client.options("/runs", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        simple = await client.get("/health", headers={"Origin": "https://x.example"})
        assert simple.headers["access-control-allow-origin"] == "https://x.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
