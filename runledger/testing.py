"""Plumbing shared by the tests and the benchmarks, so each is written once.

* **Servers**: ``local_servers`` yields PostgreSQL and Valkey URLs — the given ones, or
  embedded servers started for the block.
* **Throw-away databases**: ``create_template`` migrates a database once;
  ``throwaway_database`` clones it (or migrates from zero) and drops it afterwards.
* **Waits on conditions, never on time**: ``wait_until`` polls an awaitable condition;
  ``wait_for_position`` waits for a follower's checkpoint to reach a log position.
* **A local site**: ``local_site`` serves a folder over HTTP from a thread; ``serve_http``
  serves any request handler the same way.
* **The schema dump** the migration test compares with: ``schema_dump`` and
  ``python -m runledger.testing dump-schema``.

This module ships in the runtime package (the benchmarks use it), so it imports only the
standard library and runtime dependencies — never pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ledger.migrate import migrate
from runledger.schema import all_migrations

T = TypeVar("T")


# --- servers and throw-away databases -------------------------------------------------------


@contextlib.contextmanager
def _embedded(url: str | None, start: Callable[[Path], Any], name: str) -> Iterator[str]:
    """``url``, or an embedded server started by ``start(data_dir)`` for the block (ephemeral:
    no fsync, no snapshots) in a temporary folder, and stopped after it."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix=f"runledger-{name}-") as tmp:
        server = start(Path(tmp) / name)
        try:
            yield server.url
        finally:
            server.stop()


def local_postgres(database_url: str | None = None) -> contextlib.AbstractContextManager[str]:
    """``database_url``, or an embedded PostgreSQL for the block."""
    from runledger.embedded import start_postgres

    return _embedded(database_url, lambda d: start_postgres(d, ephemeral=True), "pg")


def local_valkey(redis_url: str | None = None) -> contextlib.AbstractContextManager[str]:
    """``redis_url``, or an embedded Valkey for the block."""
    from runledger.embedded import start_valkey

    return _embedded(redis_url, lambda d: start_valkey(d, ephemeral=True), "valkey")


@contextlib.contextmanager
def local_servers(database_url: str | None = None,
                  redis_url: str | None = None) -> Iterator[tuple[str, str]]:
    """``(database_url, redis_url)``: the given servers, or embedded ones for the block."""
    with local_postgres(database_url) as pg, local_valkey(redis_url) as valkey:
        yield pg, valkey


def with_database(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _admin(server_url: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run in a transaction, hence a plain connection each time.
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def drop_database(server_url: str, name: str) -> None:
    # FORCE: a test that failed may leave connections (a follower's listener) behind.
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create_migrated(server_url: str, name: str) -> str:
    """Create database ``name`` on ``server_url`` and apply every migration; its URL."""
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn, all_migrations())
    finally:
        await conn.close()
    return url


async def create_template(server_url: str, prefix: str = "runledger_tpl") -> str:
    """A new migrated database to clone others from; its name (drop it with
    ``drop_database``)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await create_migrated(server_url, name)
    return name


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str, *, template: str | None = None,
                             prefix: str = "runledger_tmp") -> AsyncIterator[str]:
    """A fresh migrated database for the block, dropped after it; yields its URL.

    With ``template`` the database is a copy of it (a file copy: milliseconds, where
    migrating takes a tenth of a second); without, it is migrated from zero.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if template is None:
        url = await create_migrated(server_url, name)
    else:
        await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = with_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


# --- waits ----------------------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[T | None]], *, within: float = 20.0, interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail after
    ``within`` seconds, naming ``what`` was awaited.

    Polling, because most conditions (a row, a checkpoint, a stream entry) have no
    notification a test could subscribe to; the short interval keeps the wait close to the
    moment the condition becomes true.
    """
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


async def log_head(pool: asyncpg.Pool) -> int:
    """The position of the last event in the log (0 when it is empty)."""
    head = await pool.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events")
    return int(head)


async def follower_position(pool: asyncpg.Pool, name: str) -> int:
    """Follower ``name``'s checkpoint (0 before its first batch)."""
    position = await pool.fetchval(
        "SELECT position FROM follower_checkpoints WHERE name = $1", name)
    return int(position or 0)


async def wait_for_position(pool: asyncpg.Pool, name: str, position: int | None = None, *,
                            within: float = 20.0) -> int:
    """Wait until follower ``name`` has applied the log up to ``position`` (default: the
    head now); returns its checkpoint."""
    target = await log_head(pool) if position is None else position

    async def reached() -> bool:
        return await follower_position(pool, name) >= target

    await wait_until(reached, within=within,
                     what=f"follower {name!r} to reach position {target}")
    return await follower_position(pool, name)


# --- local HTTP servers ---------------------------------------------------------------------


@contextlib.contextmanager
def serve_http(handler: Callable[..., BaseHTTPRequestHandler],
               name: str = "local-http", host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``handler`` on ``host`` (a loopback address; a free port) from a thread; yields
    the base URL."""
    server = ThreadingHTTPServer((host, 0), handler)
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=name, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietFiles(SimpleHTTPRequestHandler):
    """Static files without a log line per request (it would drown test and bench output)."""

    render: Callable[[str], str] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        render = type(self).render
        path = Path(self.directory) / self.path.split("?", 1)[0].lstrip("/")
        if render is None or not path.is_file() or path.suffix not in (".html", ""):
            super().do_GET()
            return
        data = render(path.read_text()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def local_site(directory: Path, *, render: Callable[[str], str] | None = None,
               name: str = "local-site") -> Iterator[str]:
    """Serve ``directory`` over HTTP; yields the base URL.

    ``render``, when given, rewrites each HTML page (``.html`` or no suffix) as it is
    served, e.g. to put a new value in a page on every load.
    """
    handler_class = type("SiteHandler", (_QuietFiles,), {"render": staticmethod(render)}
                         if render is not None else {})

    def handler(*args: Any, **kwargs: Any) -> BaseHTTPRequestHandler:
        return handler_class(*args, directory=str(directory), **kwargs)

    with serve_http(handler, name=name) as url:
        yield url


# --- schema dump ----------------------------------------------------------------------------

# Every object migrations create, in an order that depends neither on creation order, OIDs
# nor the server's locale (byte order, "C"), so two databases with the same schema give the
# same text. One query per kind keeps each line readable in a diff.
_USER_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
                 "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'")
_SCHEMA_QUERIES: list[tuple[str, str]] = [
    ("schema", f"SELECT n.nspname FROM pg_namespace n WHERE {_USER_SCHEMAS} ORDER BY 1"),
    ("extension", "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"),
    ("relation", f"""
        SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        ORDER BY 1"""),
    ("column", f"""
        SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' '
               || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
               || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                                     WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY'
                                     ELSE '' END
               || CASE WHEN a.attgenerated = 's' THEN ' STORED' ELSE '' END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C", a.attnum"""),
    ("constraint", f"""
        SELECT n.nspname || '.' || c.relname || ' ' || k.conname || ' '
               || pg_get_constraintdef(k.oid, true)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        -- NOT NULL constraints: PostgreSQL 18 lists them here, earlier versions do not; the
        -- column lines already say NOT NULL, so leaving them out keeps the dump portable.
        WHERE {_USER_SCHEMAS} AND k.contype <> 'n'
        ORDER BY 1"""),
    ("index", f"""
        SELECT pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS}
        ORDER BY 1"""),
    ("view", f"""
        SELECT n.nspname || '.' || c.relname || ' AS ' || pg_get_viewdef(c.oid, true)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND c.relkind IN ('v', 'm')
        ORDER BY 1"""),
    ("sequence", f"""
        SELECT n.nspname || '.' || c.relname || ' ' || format_type(s.seqtypid, NULL)
               || ' START ' || s.seqstart || ' INCREMENT ' || s.seqincrement
               || ' MIN ' || s.seqmin || ' MAX ' || s.seqmax
               || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END
        FROM pg_sequence s
        JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS}
        ORDER BY 1"""),
    ("trigger", f"""
        SELECT pg_get_triggerdef(t.oid, true)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_SCHEMAS} AND NOT t.tgisinternal
        ORDER BY 1"""),
    ("function", f"""
        SELECT pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        LEFT JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
        WHERE {_USER_SCHEMAS} AND d.objid IS NULL AND p.prokind IN ('f', 'p')
        ORDER BY n.nspname COLLATE "C", p.proname COLLATE "C",
                 pg_get_function_identity_arguments(p.oid) COLLATE "C"
        """),
]


# Columns keep their table order (attnum), which sorting the text would lose.
_ORDERED_IN_SQL = {"column", "function"}


async def schema_dump(conn: asyncpg.Connection) -> str:
    """The schema of ``conn``'s database as deterministic text: one ``kind: definition`` block
    per object (multi-line definitions indented), kinds in a fixed order."""
    lines: list[str] = []
    for kind, query in _SCHEMA_QUERIES:
        definitions = [str(row[0]).strip() for row in await conn.fetch(query)]
        if kind not in _ORDERED_IN_SQL:
            definitions.sort()  # code-point order: the server's collation may differ
        lines.extend(f"{kind}: " + text.replace("\n", "\n    ") for text in definitions)
    return "\n".join(lines) + "\n"


async def migrated_schema_dump(server_url: str) -> str:
    """The dump of a database migrated from zero on ``server_url``."""
    async with throwaway_database(server_url, prefix="runledger_schema") as url:
        conn = await asyncpg.connect(url)
        try:
            return await schema_dump(conn)
        finally:
            await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runledger.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser(
        "dump-schema", help="print the schema a from-zero migration produces")
    dump.add_argument("--database-url", default=None,
                      help="a PostgreSQL server to use (default: an embedded one)")
    args = parser.parse_args(argv)
    if args.command == "dump-schema":
        with local_postgres(args.database_url) as database_url:
            sys.stdout.write(asyncio.run(migrated_schema_dump(database_url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
