"""``POST``/``PUT /tests`` and NAVIGATION_POLICY: a url or navigate target whose literal
host the policy blocks is refused with 422 naming the field, however the host is spelled."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from tests.api.conftest import MakeSettings, asgi_client
from tests.api.helpers import AUTH, a_test

pytestmark = pytest.mark.e2e


def _with_url(url: str, target: str | None = None) -> dict[str, Any]:
    steps = [{"action": "navigate", "instruction": "Open it", "target": target or "/"}]
    return {**a_test(steps=steps), "url": url}


def _errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in response.json()["errors"]}


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xa9fea9fe/",
    "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fe80::1]/",
])
async def test_the_default_policy_refuses_metadata_and_link_local(
    client: httpx.AsyncClient, url: str
) -> None:
    errors = _errors(await client.post("/tests", json=_with_url(url)))
    assert list(errors) == ["url"]
    assert errors["url"].startswith("NAVIGATION_POLICY=default blocked the host ")


async def test_the_default_policy_keeps_loopback_and_refuses_a_navigate_target(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/tests", json=_with_url("http://127.0.0.1:8000/"))
    assert created.status_code == 201, created.text
    body = _with_url("http://127.0.0.1:8000/", target="http://169.254.169.254/")
    errors = _errors(await client.put(f"/tests/{created.json()['id']}", json=body))
    assert list(errors) == ["definition.steps[0].target"]
    assert "(cloud metadata)" in errors["definition.steps[0].target"]


@pytest.fixture
async def public(make_settings: MakeSettings, followers: None) -> Any:
    app: FastAPI = create_app(make_settings(navigation_policy="public",
                                            navigation_allow="127.0.0.1:8000"))
    async with asgi_client(app, headers=AUTH) as client:
        yield client


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://2130706433:8001/",
                                 "http://0177.1/", "http://localhost:8000/",
                                 "http://10.0.0.1/", "http://[::1]/", "http://192.168.1.1/"])
async def test_the_public_policy_refuses_private_hosts(public: httpx.AsyncClient,
                                                        url: str) -> None:
    assert list(_errors(await public.post("/tests", json=_with_url(url)))) == ["url"]


async def test_navigation_allow_exempts_what_it_names(public: httpx.AsyncClient) -> None:
    for url in ("http://127.0.0.1:8000/", "http://2130706433:8000/", "https://example.com/"):
        response = await public.post("/tests", json=_with_url(url))
        assert response.status_code == 201, (url, response.text)


async def test_an_invalid_address_is_refused(client: httpx.AsyncClient) -> None:
    errors = _errors(await client.post("/tests", json=_with_url("http://1.2.3.999/")))
    assert "not a valid IPv4 address" in errors["url"]


async def test_secret_references_are_checked(client: httpx.AsyncClient) -> None:
    body = a_test(steps=[{"action": "fill", "instruction": "Type it",
                          "value": "{{secrets.bad-name}}"}])
    errors = _errors(await client.post("/tests", json=body))
    assert "is not a secret reference" in errors["definition.steps[0].value"]
    body = {**a_test(), "url": "http://{{secrets.HOST}}/"}
    assert "query string" in _errors(await client.post("/tests", json=body))["url"]
    body = {**a_test(), "url": "http://127.0.0.1:9/?token={{secrets.TOKEN}}"}
    assert (await client.post("/tests", json=body)).status_code == 201
