"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key``; ``?access_token=`` on streams.

Keys are compared in constant time (digests, every configured key checked, no early exit),
and never logged: requests are identified by a key's short fingerprint at most.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from api.errors import Unauthorized

ANONYMOUS = "anonymous"

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")
_query = APIKeyQuery(
    name="access_token", auto_error=False,
    description="The API key, for EventSource clients that cannot set headers (streams only)",
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The configured keys, as digests. Without keys every request is anonymous."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._digests = [_digest(key.get_secret_value()) for key in keys]

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


Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
HeaderKey = Annotated[str | None, Security(_header)]
QueryToken = Annotated[str | None, Security(_query)]


async def authenticate(request: Request, bearer: Bearer, header: HeaderKey) -> str:
    """Dependency of every route but ``/health``: the caller's principal."""
    return _keys(request).principal(bearer.credentials if bearer else None, header)


async def authenticate_stream(
    request: Request, bearer: Bearer, header: HeaderKey, token: QueryToken
) -> str:
    """Streams also accept ``?access_token=``: browsers' EventSource cannot send headers."""
    return _keys(request).principal(bearer.credentials if bearer else None, header, token)
