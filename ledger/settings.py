"""Typed settings, read once per process from the environment and ``.env``.

Each package declares the settings it needs as a subclass of ``Settings``; the entry point
builds them with ``load_settings`` and passes them down. Nothing below an entry point reads
``os.environ``. A missing or malformed value fails at start-up naming the variable.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import ConfigurationError

S = TypeVar("S", bound="Settings")


class Settings(BaseSettings):
    """Base: environment variables (upper case of the field name) and a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )


def _check_url(value: str, schemes: tuple[str, ...], name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or (not parts.hostname and "host=" not in parts.query):
        raise ValueError(
            f"{name} must look like {schemes[0]}://user:password@host:port/name, got a "
            f"value with scheme {parts.scheme!r}"
        )
    return value


class DatabaseSettings(Settings):
    """PostgreSQL, which holds the event log and the read models."""

    database_url: str = Field(
        description="PostgreSQL holding the event log and read models, "
        "`postgresql://user:password@host:port/name`; required by every command except "
        "`runledger dev`, which starts its own when it is unset.",
        examples=["postgresql://postgres@127.0.0.1:5432/runledger"],
    )
    database_pool_size: int = Field(
        10,
        description="Most connections in a process's pool (the worker takes at least "
        "WORKER_CONCURRENCY + 4, the projector at most 2).",
    )
    lock_timeout_seconds: float = Field(
        5.0,
        description="Seconds an append waits for the event log's write lock before it fails.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_url(value, ("postgresql", "postgres"), "DATABASE_URL")


class RedisSettings(Settings):
    """Redis or Valkey, which carries the derived streams (``runs:queue``, ``run_events:{id}``)."""

    redis_url: str = Field(
        description="Redis or Valkey carrying `runs:queue` and the `run_events:{id}` streams, "
        "`redis://host:port/db`; required by every command except `runledger dev`, which "
        "starts its own when it is unset.",
        examples=["redis://127.0.0.1:6379/0"],
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return _check_url(value, ("redis", "rediss", "unix"), "REDIS_URL")


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment; raise ``ConfigurationError`` naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = "_".join(str(part) for part in error["loc"]).upper()
            message = "is required but not set" if error["type"] == "missing" else error["msg"]
            if error["type"] == "value_error" and not variable:
                # A check across variables (a model validator): its message names them.
                message = str(error["ctx"]["error"])
            problems.append(f"{variable} {message}" if variable else message)
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


#: query parameters that carry a secret: libpq takes ``password`` and ``sslpassword`` from
#: a connection URI's query as well as from its user-info
SECRET_QUERY_PARAMS = ("password", "sslpassword")
_SECRET_QUERY = re.compile(
    r"(^|&)((?:%s)=)[^&]*" % "|".join(SECRET_QUERY_PARAMS), re.IGNORECASE  # noqa: UP031
)


def redact_query(query: str, names: tuple[str, ...] = SECRET_QUERY_PARAMS) -> str:
    """A query string with the values of ``names`` replaced by ``***`` (the rest untouched,
    so a log still shows e.g. ``host=/run/postgresql`` as it was configured)."""
    pattern = _SECRET_QUERY if names == SECRET_QUERY_PARAMS else re.compile(
        r"(^|&)((?:%s)=)[^&]*" % "|".join(map(re.escape, names)), re.IGNORECASE)  # noqa: UP031
    return pattern.sub(r"\1\2***", query)


def redact(url: str) -> str:
    """A URL with its password replaced, for logs: in the user-info and in the
    ``password`` / ``sslpassword`` query parameters."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    if parts.query:
        parts = parts._replace(query=redact_query(parts.query))
    return parts.geturl()
