"""The API process's settings: database, Redis, auth, limits and the live tail's timings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from ledger.settings import DatabaseSettings, RedisSettings


def _split(value: Any) -> Any:
    # Comma-separated in the environment ("a,b"); a list when built in code.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ApiSettings(DatabaseSettings, RedisSettings):
    """``runledger api``. Without ``API_KEYS`` every route is open (a warning is logged)."""

    #: comma-separated keys accepted as ``Authorization: Bearer`` / ``X-API-Key``
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    #: comma-separated origins allowed by CORS (``*`` for any); empty disables CORS
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    artifacts_dir: Path = Path(".runledger/artifacts")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    #: proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs, or ``*``)
    forwarded_allow_ips: str = "127.0.0.1"

    #: keep-alive comment interval on SSE streams
    sse_ping_seconds: Annotated[float, Field(gt=0)] = 15.0
    #: how long the stream hub's ``XREAD BLOCK`` waits; a tail without an entry for this
    #: long also checks PostgreSQL
    stream_block_ms: Annotated[int, Field(ge=100, le=60_000)] = 5000
    #: after a Redis failure, a tail reads PostgreSQL (woken by LISTEN) this long before retrying
    redis_retry_seconds: Annotated[float, Field(gt=0)] = 2.0
    #: polling interval of the PostgreSQL fallback when LISTEN is unavailable
    listen_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    #: how long an ``Idempotency-Key`` keeps returning the same run
    idempotency_ttl_seconds: Annotated[int, Field(gt=0)] = 24 * 3600

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @model_validator(mode="after")
    def _keys_not_blank(self) -> ApiSettings:
        if any(not key.get_secret_value().strip() for key in self.api_keys):
            raise ValueError("API_KEYS must not contain empty keys")
        return self

    @property
    def redis_socket_timeout(self) -> float:
        """Longer than one XREAD BLOCK, or the client would abort a healthy blocking read."""
        return self.stream_block_ms / 1000 + 5.0
