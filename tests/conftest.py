"""Test rings share real services: PostgreSQL and Valkey started from wheels as child
processes (or the servers named by ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL``).

Every test gets a fresh database cloned from a migrated template and an empty Redis
key space.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.db import create_pool
from ledger.migrate import migrate
from runledger.schema import all_migrations


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from runledger.embedded import start_postgres

    server = start_postgres(tmp_path_factory.mktemp("pg"), ephemeral=True)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    from runledger.embedded import start_valkey

    server = start_valkey(tmp_path_factory.mktemp("valkey"), ephemeral=True)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    name = f"runledger_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def create() -> None:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(_with_db(pg_server_url, name))
        try:
            await migrate(conn, all_migrations())
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(_drop(pg_server_url, name))


async def _drop(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test only."""
    name = f"runledger_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    yield _with_db(pg_server_url, name)
    await _drop(pg_server_url, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=20)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_url(redis_server_url: str) -> AsyncIterator[str]:
    """An empty Redis key space for this test."""
    client = aioredis.from_url(redis_server_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    yield redis_server_url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
