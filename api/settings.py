"""The API process's settings: database, Redis, auth, limits and the live tail's timings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from ledger.navigation import NavigationConfig
from ledger.settings import DatabaseSettings, RedisSettings

#: a key any shorter can be guessed, throttling or not
MIN_KEY_CHARS = 16


def _split(value: Any) -> Any:
    # Comma-separated in the environment ("a,b"); a list when built in code.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ApiSettings(DatabaseSettings, RedisSettings, NavigationConfig):
    """``runledger api``. Without ``API_KEYS`` every route is open (a warning is logged)."""

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="Comma-separated keys accepted as `Authorization: Bearer <key>` or "
        "`X-API-Key: <key>`; unset leaves every route open (a warning is logged).",
    )
    url_signing_key: SecretStr | None = Field(
        None,
        description="Secret of the signed artifact links the web pages use (HMAC-SHA256, bound "
        "to the run, the artifact and an expiry); unset derives it from `API_KEYS`, so every "
        "replica with the same keys accepts the same links. Changing it voids the links out.",
    )
    signed_url_seconds: Annotated[int, Field(ge=10, le=86_400)] = Field(
        300, description="Seconds a signed artifact link stays valid."
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated `Host` names the API answers besides loopback ones "
        "(`localhost`, `127.0.0.1`, `[::1]`); `*.domain` for subdomains, `*` turns the check "
        "off. Without API_KEYS only loopback names are answered (DNS rebinding); with keys "
        "the check applies only when this is set.",
    )
    api_key_failure_limit: Annotated[int, Field(ge=1)] = Field(
        10,
        description="Wrong API keys one client address may send within "
        "API_KEY_FAILURE_WINDOW_SECONDS before it gets 429 with `Retry-After`.",
    )
    api_key_failure_window_seconds: Annotated[float, Field(gt=0)] = Field(
        60.0, description="Seconds over which wrong API keys are counted per client address."
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Comma-separated origins allowed by CORS (`*` for any); unset disables CORS.",
    )
    max_body_bytes: Annotated[int, Field(gt=0)] = Field(
        1024 * 1024, description="Largest request body in bytes; a larger one gets 413."
    )
    artifacts_dir: Path = Field(
        Path(".runledger/artifacts"),
        description="Directory of the screenshot and trace files the worker stores; the API "
        "serves them from here, so point both at the same place.",
    )
    host: str = Field("127.0.0.1", description="Interface `runledger api` binds (`--host` wins).")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        8000, description="Port `runledger api` binds (`--port` wins)."
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are trusted "
        "(comma-separated addresses, or `*`).",
    )

    sse_ping_seconds: Annotated[float, Field(gt=0)] = Field(
        15.0, description="Seconds between keep-alive comments on an SSE stream."
    )
    stream_block_ms: Annotated[int, Field(ge=100, le=60_000)] = Field(
        5000,
        description="Milliseconds one `XREAD BLOCK` of the stream hub waits; a tail without "
        "an entry for this long also checks PostgreSQL.",
    )
    redis_retry_seconds: Annotated[float, Field(gt=0)] = Field(
        2.0,
        description="After a Redis failure, seconds a tail follows PostgreSQL (woken by "
        "LISTEN) before it tries Redis again.",
    )
    listen_poll_seconds: Annotated[float, Field(gt=0)] = Field(
        1.0, description="Seconds between polls of PostgreSQL when LISTEN is unavailable."
    )
    idempotency_ttl_seconds: Annotated[int, Field(gt=0)] = Field(
        24 * 3600,
        description="Seconds an `Idempotency-Key` on `POST /runs` keeps returning the same run.",
    )

    @field_validator("api_keys", "cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @model_validator(mode="after")
    def _keys_not_blank(self) -> ApiSettings:
        if any(not key.get_secret_value().strip() for key in self.api_keys):
            raise ValueError("API_KEYS must not contain empty keys")
        for number, key in enumerate(self.api_keys, 1):
            if len(key.get_secret_value()) < MIN_KEY_CHARS:
                raise ValueError(
                    f"API_KEYS: key #{number} has {len(key.get_secret_value())} characters; "
                    f"keys must have at least {MIN_KEY_CHARS} (make one with `python -c "
                    "'import secrets; print(secrets.token_urlsafe(32))'`)")
        return self

    @property
    def redis_socket_timeout(self) -> float:
        """Longer than one XREAD BLOCK, or the client would abort a healthy blocking read."""
        return self.stream_block_ms / 1000 + 5.0
