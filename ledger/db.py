"""The seam to PostgreSQL's driver: opening connections and pools the same way in every
process, and translating driver errors into the ledger's tree.

Every connection — pooled or dedicated (a follower's lock connection, the LISTEN
connection, a rebuild's writer) — is opened here with the same jsonb codec (orjson) and
TCP keep-alives, so no reader has to defend against a connection configured differently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson

from ledger.errors import StoreError, TransientStoreError

# SQLSTATE classes/codes after which retrying the same operation can succeed.
_TRANSIENT_SQLSTATES = {
    "55P03",  # lock_not_available (lock_timeout)
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "53300",  # too_many_connections
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
}


def translate(exc: BaseException) -> StoreError:
    """Map a driver or socket error to the ledger's tree (the seam's single translation)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        # asyncpg raises this when a connection is killed in the middle of a query
        # ("cannot switch to state …"): the connection is gone, not the data wrong.
        | asyncpg.InternalClientError
        | asyncpg.InterfaceError
        | asyncpg.ConnectionFailureError
        | ConnectionError
        | OSError
        | TimeoutError,
    ):
        return TransientStoreError(f"database connection failed: {exc}")
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in _TRANSIENT_SQLSTATES or (sqlstate or "").startswith("08"):
        return TransientStoreError(f"database temporarily unavailable ({sqlstate}): {exc}")
    return StoreError(f"database error ({sqlstate}): {exc}")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Translate driver errors raised inside the block (domain errors pass through)."""
    try:
        yield
    except StoreError:
        raise
    except (
        asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
        TimeoutError,
    ) as exc:
        raise translate(exc) from exc


# The server drops a silent client (frozen host, network partition) within ~25 s: a dead
# follower's advisory lock is then released for a standby; a killed process is noticed at once.
_KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
               "tcp_keepalives_count": "3"}


async def _init_connection(conn: Any) -> None:
    # Read models keep JSON in jsonb columns; orjson is several times faster than json.
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )


def _server_settings(dsn: str, application_name: str) -> dict[str, str]:
    """Our defaults, except what the DSN itself sets (``?application_name=…``): asyncpg lets
    explicit server settings override the DSN's, and the operator's DSN must win."""
    defaults = {**_KEEPALIVES, "application_name": application_name}
    try:
        given = parse_qs(urlsplit(dsn).query)
    except ValueError:
        return defaults
    return {key: value for key, value in defaults.items() if key not in given}


async def connect(
    dsn: str, *, application_name: str = "runledger", connect_seconds: float = 5.0
) -> asyncpg.Connection:
    """A dedicated connection with the codecs every connection has. The caller closes it;
    connection failures raise ``TransientStoreError``."""
    with translated():
        conn = await asyncpg.connect(
            dsn, timeout=connect_seconds, server_settings=_server_settings(dsn, application_name))
        try:
            await _init_connection(conn)
        except BaseException:
            await close_quietly(conn)
            raise
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, application_name: str = "runledger"
) -> asyncpg.Pool:
    """Open a pool; connection failures raise ``TransientStoreError``. The caller closes it."""
    with translated():
        return await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection,
            command_timeout=60, server_settings=_server_settings(dsn, application_name),
        )


async def close_quietly(conn: asyncpg.Connection | None, seconds: float = 2.0) -> None:
    """Close a dedicated connection on the way out; shielded, so a cancelled caller still
    releases it, and silent, since the connection may already be broken."""
    if conn is not None and not conn.is_closed():
        with contextlib.suppress(Exception):
            await asyncio.shield(conn.close(timeout=seconds))
