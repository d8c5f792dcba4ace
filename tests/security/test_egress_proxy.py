"""The egress proxy spoken to directly, as a misbehaving client would: what it connects to is
the request target it judged, whatever else the request says.

A site on 127.0.0.1 (allowed) and a target on 127.0.0.2 (blocked: ``public``) count what
they are asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from ledger.navigation import Exemption, NavigationPolicy
from runledger.testing import serve_http
from worker.agent.egress import EgressProxy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@dataclass
class Server:
    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc


def _handler(server: Server) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            with server.lock:
                server.seen.append((self.path, self.headers.get("Host", "")))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _answer

    return Handler


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    site, target = Server(), Server()
    with serve_http(_handler(site), "site") as site.url, \
            serve_http(_handler(target), "target", host="127.0.0.2") as target.url:
        yield site, target


def _policy(*allow: str) -> NavigationPolicy:
    return NavigationPolicy("public", tuple(Exemption.parse(a) for a in allow))


async def _exchange(proxy: EgressProxy, request: bytes) -> bytes:
    """Send ``request`` raw and read the proxy's answer until it closes."""
    port = int(proxy.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_host_header_naming_a_blocked_target_does_not_redirect_the_connection(
    servers: tuple[Server, Server],
) -> None:
    site, target = servers
    async with EgressProxy(_policy(site.netloc)) as proxy:
        answer = await _exchange(proxy, (
            f"GET {site.url}/page HTTP/1.1\r\nHost: {target.netloc}\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"ok")
        assert site.seen == [("/page", target.netloc)]  # connected where the URL said
        answer = await _exchange(proxy, (
            f"GET {target.url}/page HTTP/1.1\r\nHost: {site.netloc}\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 403")
    assert target.seen == []


async def test_a_second_request_on_the_same_connection_is_never_forwarded(
    servers: tuple[Server, Server],
) -> None:
    site, target = servers
    async with EgressProxy(_policy(site.netloc)) as proxy:
        answer = await _exchange(proxy, (
            f"POST {site.url}/first HTTP/1.1\r\nHost: {site.netloc}\r\nContent-Length: 2"
            f"\r\n\r\nab"
            f"GET {target.url}/second HTTP/1.1\r\nHost: {target.netloc}\r\n\r\n").encode())
    assert answer.endswith(b"ok") and answer.count(b"HTTP/1.") == 1
    assert [path for path, _ in site.seen] == ["/first"]
    assert target.seen == []


async def test_another_run_s_proxy_cannot_be_used_to_reach_a_blocked_target(
    servers: tuple[Server, Server],
) -> None:
    # Run A's page may reach 127.0.0.1, where run B's proxy listens. A forwards only
    # origin-form requests, and B answers only absolute-form ones: B forwards nothing.
    _site, target = servers
    async with EgressProxy(_policy("127.0.0.1"), name="a") as a, \
            EgressProxy(_policy("127.0.0.1"), name="b") as b:
        b_netloc = urlsplit(b.url).netloc
        for path in (f"/{target.url}/x", f"//{target.netloc}/x"):
            answer = await _exchange(a, (
                f"GET {b.url}{path} HTTP/1.1\r\nHost: {b_netloc}\r\n\r\n").encode())
            assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        assert b.take() == []
    assert target.seen == []


async def test_a_port_specific_exemption_covers_that_port_only(
    servers: tuple[Server, Server],
) -> None:
    site, _target = servers
    host, port = site.netloc.split(":")
    async with EgressProxy(_policy(f"{host}:{int(port) + 1}")) as proxy:
        answer = await _exchange(proxy, f"CONNECT {site.netloc} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 403")
        [refusal] = proxy.take()
        assert (refusal.kind, refusal.reason) == ("blocked", "loopback")
    assert site.seen == []


@pytest.mark.parametrize(("mode", "authority", "reason"), [
    ("public", "0.0.0.0:{port}", "unspecified"),
    ("public", "[::]:{port}", "unspecified"),
    ("public", "[::ffff:127.0.0.2]:{port}", "loopback"),
    ("public", "[::ffff:7f00:2]:{port}", "loopback"),
    ("public", "[::127.0.0.2]:{port}", "loopback"),
    ("default", "[::ffff:169.254.169.254]:80", "cloud metadata"),
    ("default", "[::ffff:a9fe:a9fe]:80", "cloud metadata"),
    ("default", "[fe80::1]:80", "link-local"),
    ("default", "0251.0376.0251.0376:80", "cloud metadata"),
])
async def test_connect_is_judged_on_the_address_however_it_is_spelled(
    servers: tuple[Server, Server], mode: str, authority: str, reason: str,
) -> None:
    _site, target = servers
    authority = authority.format(port=urlsplit(target.url).port)
    async with EgressProxy(NavigationPolicy(mode)) as proxy:  # type: ignore[arg-type]
        answer = await _exchange(proxy, f"CONNECT {authority} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 403"), answer[:80]
        assert [r.reason for r in proxy.take()] == [reason]
    assert target.seen == []


class _Rebinding(EgressProxy):
    """A resolver answering a public address and the blocked target together, as a
    rebinding DNS server would."""

    async def _resolve(self, name: str, port: int, url: str | None
                       ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("127.0.0.2")]


async def test_a_name_with_one_blocked_answer_among_public_ones_is_refused(
    servers: tuple[Server, Server],
) -> None:
    _site, target = servers
    port = urlsplit(target.url).port
    async with _Rebinding(_policy()) as proxy:
        answer = await _exchange(proxy, f"CONNECT rebind.example:{port} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 403")
        [refusal] = proxy.take()
        assert (refusal.host, refusal.address, refusal.reason) == (
            "rebind.example", "127.0.0.2", "loopback")
    assert target.seen == []
