"""Test rings share real services: PostgreSQL and Valkey started from wheels as child
processes (or the servers named by ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL``).

Every test gets a fresh database cloned from a migrated template and an empty Redis
key space. Modules marked ``redis_servers`` (the Redis-facing ones: queue, consumer, relay,
tail) run once against the embedded Valkey and once against Redis 7 (``redis-server`` on
PATH, Debian's package; or ``TEST_REDIS7_URL``): the two answer some stream errors
differently, and users run either.

Every test also says which ring it belongs to (``pytestmark`` per module, see ``RINGS``);
collection fails for a test that does not, so ``-m unit`` stays trustworthy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from ledger.db import create_pool
from runledger.testing import (
    create_template,
    drop_database,
    local_postgres,
    local_valkey,
    throwaway_database,
    wait_until,
)

# The rings (registered in pyproject.toml). ``unit`` is pure code without I/O; the others may
# combine (a browser test is also integration or e2e).
RINGS = ("unit", "integration", "e2e", "browser")
# Fixtures that reach a server: a unit test asking for one is in the wrong ring.
SERVER_FIXTURES = {"pg_server_url", "redis_server_url", "template_db", "database_url", "pool",
                   "redis_url", "redis"}
#: what ``redis_servers`` modules run against
REDIS_SERVERS = ("valkey", "redis7")


def _ring_problem(item: pytest.Item) -> str | None:
    rings = {mark.name for mark in item.iter_markers() if mark.name in RINGS}
    if not rings:
        return "no ring marker (add e.g. `pytestmark = pytest.mark.unit` to the module)"
    if "unit" in rings and len(rings) > 1:
        return f"unit excludes the other rings, got {sorted(rings)}"
    servers = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if "unit" in rings and servers:
        return f"marked unit but uses server fixtures {sorted(servers)}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = [f"{item.nodeid}: {problem}" for item in items
                if (problem := _ring_problem(item)) is not None]
    if problems:
        raise pytest.UsageError("tests in no ring or the wrong one:\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    with local_postgres(os.environ.get("TEST_DATABASE_URL")) as url:
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (metafunc.definition.get_closest_marker("redis_servers")
            and "redis_server_url" in metafunc.fixturenames):
        metafunc.parametrize("redis_server_url", REDIS_SERVERS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def valkey_server_url() -> Iterator[str]:
    with local_valkey(os.environ.get("TEST_REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def redis7_server_url() -> Iterator[str]:
    """Debian's Redis 7 (``redis-server``), started for the session; ``TEST_REDIS7_URL``
    names one instead."""
    if url := os.environ.get("TEST_REDIS7_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server): the Redis 7 "
                    "variant is skipped, the embedded Valkey variant still runs")
    with tempfile.TemporaryDirectory(prefix="runledger-redis7-") as data:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # Its own session: a Ctrl-C meant for pytest must not stop it under the tests.
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            asyncio.run(wait_until(lambda: _answers(url, server), within=10,
                                   what=f"redis-server on port {port}"))
            yield url
        finally:
            server.terminate()
            server.wait(10)


async def _answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    if (code := server.poll()) is not None:
        raise AssertionError(f"redis-server exited with {code}")
    client = aioredis.from_url(url)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.ConnectionError):
        return False
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_server_url(request: pytest.FixtureRequest) -> str:
    """The embedded Valkey (or ``TEST_REDIS_URL``); in ``redis_servers`` modules, each of
    ``REDIS_SERVERS`` in turn."""
    server = getattr(request, "param", "valkey")
    return str(request.getfixturevalue(f"{server}_server_url"))


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    name = asyncio.run(create_template(pg_server_url, prefix=f"runledger_tpl_{os.getpid()}"))
    yield name
    asyncio.run(drop_database(pg_server_url, name))


@pytest.fixture
async def database_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test only."""
    async with throwaway_database(pg_server_url, template=template_db,
                                  prefix="runledger_test") as url:
        yield url


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
