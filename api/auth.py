"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key``; ``?access_token=`` on streams.

Keys are compared in constant time (digests, every configured key checked, no early exit),
and never logged: requests are identified by a key's short fingerprint at most. Wrong keys
are counted per client address (``FailedKeyThrottle``): past ``API_KEY_FAILURE_LIMIT``
within the window, every attempt from that address gets 429 with ``Retry-After`` until the
oldest failure leaves the window.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from api.errors import TooManyFailedKeys, Unauthorized

ANONYMOUS = "anonymous"

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")
_query = APIKeyQuery(
    name="access_token", auto_error=False,
    description="The API key, for EventSource clients that cannot set headers (streams only)",
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class FailedKeyThrottle:
    """Wrong keys per client address within a sliding window; in memory, per process, for
    at most ``MAX_CLIENTS`` addresses (the least recently failing are forgotten first)."""

    MAX_CLIENTS = 10_000

    def __init__(self, limit: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def ensure_allowed(self, client: str) -> None:
        """Raise ``TooManyFailedKeys`` while ``client`` is over the limit."""
        failures = self._recent(client)
        if len(failures) >= self.limit:
            wait = failures[-self.limit] + self.window - self._clock()
            raise TooManyFailedKeys(max(1, math.ceil(wait)))

    def failed(self, client: str) -> None:
        failures = self._failures.setdefault(client, deque(maxlen=self.limit))
        failures.append(self._clock())
        self._failures.move_to_end(client)
        while len(self._failures) > self.MAX_CLIENTS:
            self._failures.popitem(last=False)


class ApiKeys:
    """The configured keys, as digests. Without keys every request is anonymous."""

    def __init__(self, keys: Sequence[SecretStr],
                 throttle: FailedKeyThrottle | None = None) -> None:
        self._digests = [_digest(key.get_secret_value()) for key in keys]
        self.throttle = throttle or FailedKeyThrottle(10, 60.0)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def principal(self, *presented: str | None) -> str:
        """Who is calling: a fingerprint of the matching key; ``Unauthorized`` otherwise."""
        if not self.enabled:
            return ANONYMOUS
        for candidate in presented:
            if not candidate:
                continue
            digest = _digest(candidate)
            matched = False
            for known in self._digests:
                # No short-circuit: the time taken does not depend on which key matched.
                matched |= hmac.compare_digest(digest, known)
            if matched:
                return "key:" + digest.hex()[:12]
        if any(presented):
            raise Unauthorized("the API key is not valid")
        raise Unauthorized(
            "this API requires a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )


def _keys(request: Request) -> ApiKeys:
    return request.app.state.api_keys


def _checked(request: Request, *presented: str | None) -> str:
    keys = _keys(request)
    if not keys.enabled:
        return ANONYMOUS
    client = request.client.host if request.client else "unknown"
    keys.throttle.ensure_allowed(client)
    try:
        return keys.principal(*presented)
    except Unauthorized:
        if any(presented):
            keys.throttle.failed(client)  # a missing key guesses nothing
        raise


Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
HeaderKey = Annotated[str | None, Security(_header)]
QueryToken = Annotated[str | None, Security(_query)]


async def authenticate(request: Request, bearer: Bearer, header: HeaderKey) -> str:
    """Dependency of every route but ``/health``: the caller's principal."""
    return _checked(request, bearer.credentials if bearer else None, header)


async def authenticate_stream(
    request: Request, bearer: Bearer, header: HeaderKey, token: QueryToken
) -> str:
    """Streams also accept ``?access_token=``: browsers' EventSource cannot send headers."""
    return _checked(request, bearer.credentials if bearer else None, header, token)
