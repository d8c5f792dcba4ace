"""The egress proxy: every connection a run's browser makes goes through it, and it connects
only where ``NAVIGATION_POLICY`` allows.

Chromium's own checks cannot enforce the policy: request routing sees a URL, not the address
a redirect, a subresource or a rebinding DNS name finally reaches. So each run's browser
context is pointed at its own ``EgressProxy`` (loopback included: ``<-loopback>``), which
resolves the host itself, judges every address it would connect to
(``NavigationPolicy.judge_address``) and connects to exactly the address it judged. HTTPS
and WebSockets arrive as ``CONNECT`` tunnels; plain HTTP as absolute-form requests,
forwarded one per connection so a kept-alive client connection can never carry a second
request to the first request's upstream.

What it refused and what it could not reach is kept (``take``) so the session can fail a
blocked navigation naming the host and list blocked subresources in the step's details.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page, Request

from ledger.navigation import InvalidHost, NavigationPolicy, blocked_message, parse_host
from worker.agent.errors import ActionFailed, NavigationBlocked, StepFailed

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024
HEAD_SECONDS = 30.0
CONNECT_SECONDS = 15.0
CHUNK = 64 * 1024
MAX_KEPT = 200
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization",
               b"proxy-authenticate", b"te", b"trailer", b"upgrade"}


@dataclass(frozen=True)
class Refusal:
    """A connection the proxy did not make: ``blocked`` by the policy, or ``unreachable``."""

    kind: str  # "blocked" | "unreachable"
    host: str  # as the browser named it (canonical)
    port: int
    reason: str  # the policy's class ("loopback") or the network error, Chromium's words
    address: str | None = None
    url: str | None = None  # plain HTTP only: a tunnel's path is encrypted

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def as_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"host": self.target, "reason": self.reason}
        if self.address and self.address != self.host:
            detail["address"] = self.address
        if self.url:
            detail["url"] = self.url[:300]
        return detail


class Refused(Exception):
    """Raised inside the proxy when a connection is not made (never leaves this module)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class EgressProxy:
    """One run's proxy on 127.0.0.1 (a free port). Constructed without I/O; ``async with``
    opens and closes it, cancelling the connections still open."""

    def __init__(self, policy: NavigationPolicy, *, name: str = "egress") -> None:
        self.policy = policy
        self.name = name
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._refusals: list[Refusal] = []

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, so that the connection's task is known from the moment it is
        # accepted: a task cancelled before its first step never runs its ``finally``, and
        # its socket would stay open. Closing one that never started closes its socket.
        if self._server is None:  # accepted while closing: nobody would await its task
            writer.transport.abort()
            return
        task = asyncio.create_task(self._serve(reader, writer), name=f"egress-{self.name}")
        self._connections.add(task)
        task.add_done_callback(lambda done: self._ended(done, writer))

    def _ended(self, task: asyncio.Task[None], writer: asyncio.StreamWriter) -> None:
        self._connections.discard(task)
        if not writer.transport.is_closing():
            writer.transport.abort()
        if not task.cancelled() and task.exception() is not None:
            log.warning("egress %s: a connection failed", self.name, exc_info=task.exception())

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not open"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def playwright_proxy(self) -> dict[str, str]:
        """Playwright's ``proxy`` option for a context: no bypass at all. Chromium bypasses
        loopback unless told ``<-loopback>``; Playwright adds it to an empty list only while
        ``PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK`` is unset, so it is named here."""
        return {"server": self.url, "bypass": "<-loopback>"}

    def take(self) -> list[Refusal]:
        """What was refused since the last call, oldest first."""
        taken, self._refusals = self._refusals, []
        return taken

    def _keep(self, refusal: Refusal) -> None:
        if len(self._refusals) < MAX_KEPT:
            self._refusals.append(refusal)
        if refusal.kind == "blocked":
            log.info("egress %s blocked %s (%s)", self.name, refusal.target, refusal.reason)

    # -- one client connection ---------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError):
            pass  # the browser went away or spoke nonsense: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(HEAD_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEAD_LIMIT:
            return
        line, _, rest = head.partition(b"\r\n")
        method, target, _version = line.decode("latin-1").split(" ", 2)
        if method.upper() == "CONNECT":
            host, port = _split_authority(target)
            url = None
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                await _answer(writer, 400, "the proxy forwards absolute http:// URLs only")
                return
            host, port = _split_authority(parts.netloc.rpartition("@")[2], default=80)
            url = target
        try:
            upstream_reader, upstream_writer = await self._connect(host, port, url)
        except Refused as exc:
            await _refuse(writer, exc.refusal, self.policy)
            return
        try:
            if url is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _pipe_both(reader, writer, upstream_reader, upstream_writer)
            else:
                await _forward(method, url, rest, reader, writer, upstream_reader,
                               upstream_writer)
        finally:
            upstream_writer.close()
            with contextlib.suppress(OSError):
                await upstream_writer.wait_closed()

    async def _connect(self, host: str, port: int, url: str | None
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Resolve, judge every address, connect to a judged one; ``Refused`` otherwise."""
        try:
            parsed = parse_host(host)
        except InvalidHost:
            raise self._refused("unreachable", host, port, "net::ERR_INVALID_URL",
                                url=url) from None
        name = parsed if isinstance(parsed, str) else str(parsed)
        addresses = await self._resolve(name, port, url)
        for address in addresses:
            reason = self.policy.judge_address(name, address, port)
            if reason is not None:
                # One blocked answer refuses the name: a rebinding DNS server must not get
                # to choose between a public and a private answer.
                raise self._refused("blocked", name, port, reason, address=str(address),
                                    url=url)
        failure: OSError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_SECONDS):
                    return await asyncio.open_connection(str(address), port, limit=CHUNK)
            except OSError as exc:  # TimeoutError included
                failure = exc
        raise self._refused("unreachable", name, port, _chromium_words(failure), url=url)

    async def _resolve(self, name: str, port: int, url: str | None
                       ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(name)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise self._refused("unreachable", name, port, "net::ERR_NAME_NOT_RESOLVED",
                                url=url) from None
        found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        return found

    def _refused(self, kind: str, host: str, port: int, reason: str, *,
                 address: str | None = None, url: str | None = None) -> Refused:
        refusal = Refusal(kind, host, port, reason, address, url)
        self._keep(refusal)
        return Refused(refusal)


def _split_authority(authority: str, default: int = 443) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    number = int(port) if port else default
    if not 0 < number < 65536:
        raise ValueError(f"invalid port {port!r}")
    return host, number


def _chromium_words(error: OSError | None) -> str:
    """A connection failure in the words Chromium uses for it without a proxy."""
    code = getattr(error, "errno", None)
    if isinstance(error, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return "net::ERR_CONNECTION_REFUSED"
    if code in (errno.ETIMEDOUT, None):
        return "net::ERR_CONNECTION_TIMED_OUT"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "net::ERR_ADDRESS_UNREACHABLE"
    return "net::ERR_CONNECTION_FAILED"


async def _answer(writer: asyncio.StreamWriter, status: int, text: str,
                  headers: tuple[tuple[str, str], ...] = ()) -> None:
    body = text.encode()
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", "Cache-Control: no-store",
             *(f"{k}: {v}" for k, v in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def _refuse(writer: asyncio.StreamWriter, refusal: Refusal,
                  policy: NavigationPolicy) -> None:
    if refusal.kind == "blocked":
        text = blocked_message("a request to", refusal.target, refusal.reason, policy.mode)
        await _answer(writer, 403, text, (("X-Runledger-Blocked", refusal.reason),))
    else:
        await _answer(writer, 502, f"could not reach {refusal.target}: {refusal.reason}")


async def _forward(method: str, url: str, rest: bytes, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter, upstream_reader: asyncio.StreamReader,
                   upstream_writer: asyncio.StreamWriter) -> None:
    """One plain-HTTP request: origin-form upstream, hop-by-hop headers replaced by
    ``Connection: close`` both ways, the body by its declared length."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = _headers(rest)
    length = 0
    chunked = False
    for key, value in headers:
        if key.lower() == b"content-length":
            length = int(value.strip() or b"0")
        elif key.lower() == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    upstream_writer.write(_head(f"{method} {path} HTTP/1.1".encode("latin-1"), headers))
    await upstream_writer.drain()
    if chunked:
        body = asyncio.create_task(_pipe(reader, upstream_writer), name="egress-request-body")
    else:
        body = asyncio.create_task(_copy(reader, upstream_writer, length),
                                   name="egress-request-body")
    try:
        response = await upstream_reader.readuntil(b"\r\n\r\n")
        status, _, response_rest = response.partition(b"\r\n")
        writer.write(_head(status, _headers(response_rest)))
        await _pipe(upstream_reader, writer)
    finally:
        body.cancel()
        await asyncio.gather(body, return_exceptions=True)


def _headers(block: bytes) -> list[tuple[bytes, bytes]]:
    found = []
    for line in block.split(b"\r\n"):
        if b":" in line:
            key, _, value = line.partition(b":")
            found.append((key.strip(), value.strip()))
    return found


def _head(first: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    kept = [k + b": " + v for k, v in headers if k.lower() not in _HOP_BY_HOP]
    return b"\r\n".join([first, *kept, b"Connection: close", b"", b""])


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int) -> None:
    while length > 0:
        data = await reader.read(min(CHUNK, length))
        if not data:
            return
        length -= len(data)
        writer.write(data)
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


async def _pipe_both(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     upstream_reader: asyncio.StreamReader,
                     upstream_writer: asyncio.StreamWriter) -> None:
    """A tunnel: bytes both ways until either side closes."""
    tasks = [asyncio.create_task(_pipe(reader, upstream_writer), name="egress-up"),
             asyncio.create_task(_pipe(upstream_reader, writer), name="egress-down")]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class NavigationWatch:
    """Tells a step's blocked navigation from its blocked subresources.

    It notes the host of every main-frame navigation request of the run's page (redirect
    hops included); after a step, a refusal of one of those hosts is the step's navigation
    (``NavigationBlocked``, or the network error in Chromium's words), and every other
    refusal goes into the step's details as ``blocked``.
    """

    def __init__(self, proxy: EgressProxy | None) -> None:
        self.proxy = proxy
        self._page: Page | None = None
        self._navigations: set[tuple[str, int]] = set()

    def watch(self, page: Page) -> None:
        self._page = page
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        if self._page is not None and request.is_navigation_request() \
                and request.frame == self._page.main_frame:
            key = _host_port(request.url)
            if key is not None:
                self._navigations.add(key)

    def judge(self, error: StepFailed | None, details: dict[str, Any]) -> StepFailed | None:
        """The step's failure once the proxy's refusals are accounted for."""
        navigations, self._navigations = self._navigations, set()
        if self.proxy is None:
            return error
        refusals = self.proxy.take()
        mine = [r for r in refusals if (r.host, r.port) in navigations]
        blocked = [r.as_detail() for r in refusals if r.kind == "blocked" and r not in mine]
        if blocked:
            details["blocked"] = blocked[:MAX_DETAILED]
            if len(blocked) > MAX_DETAILED:
                details["blocked_more"] = len(blocked) - MAX_DETAILED
        for refusal in mine:
            if refusal.kind == "blocked":
                message = blocked_message("navigation to", refusal.target, refusal.reason,
                                          self.proxy.policy.mode)
                return NavigationBlocked(message, details={"blocked": [refusal.as_detail()]})
        for refusal in mine:
            if error is not None:  # the page could not be reached: say why, not "HTTP 502"
                where = refusal.url or refusal.target
                return ActionFailed(f"navigate to {where} failed: {refusal.reason}")
        return error


MAX_DETAILED = 20


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = 443 if parts.scheme in ("https", "wss") else 80
    try:  # as the proxy names it in its refusals: "localhost." is "localhost"
        host = str(parse_host(parts.hostname))
    except InvalidHost:
        return None
    return host, port if port is not None else default
