"""Pure ASGI middleware: request context (id, access log, metrics, last-resort 500), the
``Host`` check and the request body limit. Pure ASGI rather than ``BaseHTTPMiddleware`` so
SSE responses stream through untouched and cancellation reaches the route when a client
disconnects."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PayloadTooLarge
from api.metrics import Metrics
from api.problems import problem_response
from ledger.navigation import InvalidHost, IPAddress, canonical_host, parse_host
from ledger.settings import SECRET_QUERY_PARAMS, redact_query
from ledger.text import escape

log = logging.getLogger(__name__)
access_log = logging.getLogger("api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SECRET_QUERY = ("access_token", *SECRET_QUERY_PARAMS)
#: the methods a metric label may name: any other string a client sends is ``OTHER``, so
#: junk methods cannot grow the number of series without bound
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TARGET_LOG_CHARS = 2000


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "OTHER"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def loggable_target(scope: Scope) -> str:
    """The request target for one log line: credentials in the query string masked, control
    characters escaped (the path is already percent-decoded: ``%0A`` is a newline)."""
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope.get("path", "")
    if query:
        target += "?" + redact_query(query, _SECRET_QUERY)
    return escape(target, TARGET_LOG_CHARS)


class _HttpMiddleware:
    """Acts on HTTP requests (``handle``); lifespan and other scopes pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestContext(_HttpMiddleware):
    """Gives each request an id (``X-Request-ID``, echoed), logs and measures it, and turns
    an unmapped exception into a logged 500 problem instead of a dropped connection."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error: request_id=%s %s %s", request_id,
                          method_label(scope), loggable_target(scope))
            if started:
                raise
            response = problem_response(
                500, "internal-error", "Internal server error",
                f"an unexpected error occurred; quote request id {request_id} when reporting it",
                request_id=request_id,
            )
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(method_label(scope), route, status, elapsed)
            access_log.info("%s %s %d %.1fms request_id=%s",
                            escape(str(scope["method"]), 20), loggable_target(scope), status,
                            elapsed * 1000, request_id)


class BodyLimit(_HttpMiddleware):
    """Refuses bodies over ``max_bytes`` with 413, before any route parses them: by
    Content-Length when declared, else while reading (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if not chunked and (declared is None or declared in ("", "0")):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(receive)
        except PayloadTooLarge:
            await self._refuse(scope, receive, send)
            return
        if body is None:
            return  # the client went away mid-upload: nobody to answer
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect remains

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(self.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state", {})
        response = problem_response(
            413, "payload-too-large", "Request body too large",
            f"the request body exceeds the {self.max_bytes}-byte limit",
            headers={"Connection": "close"}, request_id=state.get("request_id"),
        )
        await response(scope, receive, send)


#: names a browser only sends for this machine: a DNS-rebinding page cannot use them
LOOPBACK_NAMES = ("localhost", "*.localhost")


def host_allowed(header: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Host`` header names this machine's loopback or one of ``allowed``
    (``name``, ``*.domain``)."""
    if not header:
        return False
    text = header.strip()
    if text.startswith("["):
        name, bracket, _ = text[1:].partition("]")
        if not bracket:
            return False
    else:
        name = text.rpartition(":")[0] if text.count(":") == 1 else text
    try:
        parsed = parse_host(name)
    except InvalidHost:
        return False
    if not isinstance(parsed, str):
        mapped = getattr(parsed, "ipv4_mapped", None)
        return parsed.is_loopback or bool(mapped and mapped.is_loopback) \
            or any(_entry(entry) == parsed for entry in allowed)
    for pattern in (*LOOPBACK_NAMES, *allowed):
        pattern = canonical_host(pattern)
        if parsed == pattern or (pattern.startswith("*.") and parsed.endswith(pattern[1:])):
            return True
    return False


def _entry(entry: str) -> IPAddress | str | None:
    """An ``ALLOWED_HOSTS`` entry as ``parse_host`` reads a header: ``[2001:db8::1]`` and
    ``2001:db8:0::1`` are one address."""
    try:
        return parse_host(entry)
    except InvalidHost:
        return None


class HostCheck(_HttpMiddleware):
    """Answers only requests whose ``Host`` is loopback or in ``ALLOWED_HOSTS``: without
    keys, a web page the operator visits could otherwise drive the API through DNS
    rebinding (its own name, resolving to 127.0.0.1)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        super().__init__(app)
        self.allowed = tuple(a.strip().lower() for a in allowed)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = _header(scope, b"host")
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            400, "host-not-allowed", "Host not allowed",
            f"this API does not answer Host {escape(host or '(none)', 200)!r}: add it to "
            "ALLOWED_HOSTS (loopback names are always answered)",
            request_id=scope.get("state", {}).get("request_id"),
        )
        await response(scope, receive, send)
