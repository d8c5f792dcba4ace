"""An open API answers only loopback ``Host`` names; keys are long enough; wrong keys are
throttled per client address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import FailedKeyThrottle
from api.errors import TooManyFailedKeys
from api.middleware import host_allowed
from api.settings import ApiSettings
from ledger.errors import ConfigurationError
from ledger.settings import load_settings
from tests.api.conftest import MakeSettings, WithState
from tests.api.helpers import API_KEY

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def client_of(settings: ApiSettings, client: tuple[str, int] = ("127.0.0.1", 5000)
                    ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=WithState(app, state or {}), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "LOCALHOST:80", "[::1]:8000",
                                  "app.localhost:3000", "127.0.0.2", "[::ffff:127.0.0.1]"])
async def test_without_keys_loopback_hosts_are_answered(make_settings: MakeSettings,
                                                       host: str) -> None:
    async with client_of(make_settings(api_keys=[])) as client:
        assert (await client.get("/tests", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "10.0.0.5",
                                  "localhost.evil.example", "2130706433.evil", ""])
async def test_without_keys_other_hosts_get_400(make_settings: MakeSettings, host: str) -> None:
    async with client_of(make_settings(api_keys=[])) as client:
        body = _problem(await client.get("/tests", headers={"Host": host}), 400)
    assert body["type"] == "urn:runledger:problem:host-not-allowed"
    assert "ALLOWED_HOSTS" in body["detail"]


async def test_allowed_hosts_extends_the_list_and_star_turns_it_off(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(api_keys=[], allowed_hosts="qa.example.com, *.corp.example")
    async with client_of(settings) as client:
        for host in ("qa.example.com", "api.corp.example:8000", "localhost"):
            assert (await client.get("/tests", headers={"Host": host})).status_code == 200
        _problem(await client.get("/tests", headers={"Host": "other.example"}), 400)
    async with client_of(make_settings(api_keys=[], allowed_hosts="*")) as client:
        assert (await client.get("/tests", headers={"Host": "any.example"})).status_code == 200


async def test_with_keys_the_host_check_applies_only_when_configured(
    make_settings: MakeSettings,
) -> None:
    auth = {"X-API-Key": API_KEY}
    async with client_of(make_settings()) as client:
        response = await client.get("/tests", headers={**auth, "Host": "api.example.com"})
        assert response.status_code == 200
    async with client_of(make_settings(allowed_hosts="api.example.com")) as client:
        response = await client.get("/tests", headers={**auth, "Host": "api.example.com"})
        assert response.status_code == 200
        _problem(await client.get("/tests", headers={**auth, "Host": "x.example"}), 400)


@pytest.mark.parametrize("keys", ["short", "long-enough-key-0001,short-key"])
def test_a_short_key_stops_start_up_naming_api_keys(
    keys: str, monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str,
) -> None:
    monkeypatch.setenv("API_KEYS", keys)
    with pytest.raises(ConfigurationError, match=r"API_KEYS: key #\d has \d+ characters; "
                                                 "keys must have at least 16"):
        load_settings(ApiSettings, _env_file=None, database_url=database_url,
                      redis_url=redis_url)


async def test_wrong_keys_are_throttled_per_client_address(make_settings: MakeSettings) -> None:
    settings = make_settings(api_key_failure_limit=3, api_key_failure_window_seconds=600)
    async with client_of(settings, client=("10.1.1.1", 4000)) as attacker:
        for _ in range(3):
            wrong = await attacker.get("/tests", headers={"X-API-Key": "x" * 20})
            assert wrong.status_code == 401
        throttled = _problem(await attacker.get("/tests", headers={"X-API-Key": API_KEY}), 429)
        assert throttled["type"] == "urn:runledger:problem:too-many-failed-keys"
        retry = (await attacker.get("/tests", headers={"X-API-Key": "y" * 20})).headers
        assert 590 <= int(retry["retry-after"]) <= 600
    # Another address is not affected (each client gets its own app here: a fresh count)
    async with client_of(settings, client=("10.1.1.2", 4000)) as other:
        assert (await other.get("/tests", headers={"X-API-Key": API_KEY})).status_code == 200
        # a missing key guesses nothing and is not counted
        for _ in range(5):
            assert (await other.get("/tests")).status_code == 401
        assert (await other.get("/tests", headers={"X-API-Key": API_KEY})).status_code == 200


def test_the_throttle_forgets_failures_leaving_the_window() -> None:
    now = [1000.0]
    throttle = FailedKeyThrottle(2, 60.0, clock=lambda: now[0])
    throttle.failed("a")
    now[0] += 30
    throttle.failed("a")
    with pytest.raises(TooManyFailedKeys) as refused:
        throttle.ensure_allowed("a")
    assert refused.value.retry_after == 30
    throttle.ensure_allowed("b")
    now[0] += 30.5
    throttle.ensure_allowed("a")  # the first failure left the window


@pytest.mark.parametrize(("header", "ok"), [
    ("127.0.0.1", True), ("0x7f.1:80", True), ("[::1]", True), ("localhost.", True),
    ("127.0.0.1.evil.example", False), ("[::1", False), (None, False), ("999.1.1.1", False),
])
def test_host_allowed(header: str | None, ok: bool) -> None:
    assert host_allowed(header, ()) is ok


@pytest.mark.parametrize(("header", "allowed"), [
    ("[2001:db8::1]:8000", "[2001:db8::1]"), ("[2001:db8::1]", "2001:0db8:0:0::1"),
    ("10.0.0.5:8000", "10.0.0.5"), ("api.example.:443", "API.Example."),
    ("a.api.example", "*.api.example"),
])
def test_allowed_hosts_entries_match_however_they_are_written(header: str, allowed: str) -> None:
    # ALLOWED_HOSTS=[2001:db8::1] (written as in a URL) matched no Host header at all.
    assert host_allowed(header, (allowed,))
    assert not host_allowed("[2001:db8::2]", (allowed,))


def test_the_throttle_keeps_addresses_apart_and_its_memory_bounded() -> None:
    now = [0.0]
    throttle = FailedKeyThrottle(3, 60.0, clock=lambda: now[0])
    for _ in range(10):
        throttle.failed("attacker")
    with pytest.raises(TooManyFailedKeys) as refused:
        throttle.ensure_allowed("attacker")
    assert refused.value.retry_after == 60
    throttle.ensure_allowed("neighbour")  # same process, another address
    for number in range(FailedKeyThrottle.MAX_CLIENTS + 500):
        throttle.failed(f"10.0.{number // 256}.{number % 256}")
    assert len(throttle._failures) == FailedKeyThrottle.MAX_CLIENTS
    assert max(len(f) for f in throttle._failures.values()) <= 3
    assert "attacker" not in throttle._failures  # the least recently failing went first
    last = FailedKeyThrottle.MAX_CLIENTS + 499
    address = f"10.0.{last // 256}.{last % 256}"
    assert address in throttle._failures
    now[0] += 60.0
    throttle.ensure_allowed(address)  # failures leaving the window are dropped too
    assert address not in throttle._failures
