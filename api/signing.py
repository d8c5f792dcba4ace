"""Signed artifact links: a URL an ``<img>`` or a download can follow without a key.

A link carries ``expires`` (Unix seconds) and ``signature``: HMAC-SHA256 over the run id,
the artifact id and the expiry, so it opens that one artifact of that one run until then and
nothing else. The secret is ``URL_SIGNING_KEY`` or, unset, derived from ``API_KEYS`` (every
replica with the same keys accepts the same links; rotating the keys voids old links).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from uuid import UUID

from pydantic import SecretStr

from api.errors import Unauthorized

_DERIVATION = b"runledger signed artifact links\x00"


def signing_secret(configured: SecretStr | None, api_keys: Sequence[SecretStr]) -> bytes:
    """The HMAC secret: the configured one, or a digest of the API keys (order-free)."""
    if configured is not None:
        return configured.get_secret_value().encode()
    keys = sorted(key.get_secret_value() for key in api_keys)
    return hashlib.sha256(_DERIVATION + b"\x00".join(k.encode() for k in keys)).digest()


class UrlSigner:
    """Signs and checks artifact links; ``clock`` returns Unix seconds."""

    def __init__(self, secret: bytes, *, ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def _mac(self, run_id: UUID, artifact_id: str, expires: int) -> str:
        message = f"{run_id}\n{artifact_id}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, run_id: UUID, artifact_id: str) -> tuple[int, str]:
        """``(expires, signature)`` for a link valid for ``ttl_seconds`` from now."""
        expires = int(self._clock()) + self.ttl_seconds
        return expires, self._mac(run_id, artifact_id, expires)

    def verify(self, run_id: UUID, artifact_id: str, expires: int | None,
               signature: str | None) -> None:
        """``Unauthorized`` unless the pair was signed for this run and artifact and has
        not expired."""
        if expires is None or not signature:
            raise Unauthorized("a signed link needs both `expires` and `signature`")
        expected = self._mac(run_id, artifact_id, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Unauthorized("the link's signature is not valid for this run and artifact")
        if self._clock() >= expires:
            raise Unauthorized("the signed link has expired; reload the page for a new one")
