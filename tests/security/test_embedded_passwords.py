"""Embedded PostgreSQL and Valkey require generated passwords, kept beside their data where
only our user can read them, and never shown on a command line or in a log line."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest
import redis

from runledger.embedded import start_postgres, start_valkey

pytestmark = pytest.mark.integration


def _owner_only(path: Path) -> bool:
    info = path.stat()
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


async def _connects(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        return False
    await conn.close()
    return True


def test_postgres_requires_its_generated_password(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="runledger.embedded")
    data = tmp_path / "pg"
    server = start_postgres(data, ephemeral=True)
    try:
        password = unquote(urlsplit(server.url).password or "")
        assert len(password) >= 24
        stored = tmp_path / "pg.password"
        assert stored.read_text().strip() == password and _owner_only(stored)
        assert asyncio.run(_connects(server.url))
        assert not asyncio.run(_connects(server.url.replace(f":{urlsplit(server.url).password}@",
                                                            "@")))
        assert not asyncio.run(_connects(server.url.replace(password[:8], "x" * 8)))
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline
    finally:
        server.stop()
    assert password not in caplog.text and "ready at postgresql://postgres:***@" in caplog.text
    again = start_postgres(data, ephemeral=True)  # a restart keeps its password
    try:
        assert again.url.split("@")[0] == server.url.split("@")[0]
        assert asyncio.run(_connects(again.url))
    finally:
        again.stop()


def test_valkey_requires_its_generated_password(tmp_path: Path) -> None:
    server = start_valkey(tmp_path / "valkey", ephemeral=True)
    try:
        password = unquote(urlsplit(server.url).password or "")
        assert len(password) >= 24 and _owner_only(tmp_path / "valkey.password")
        with redis.Redis.from_url(server.url) as client:
            assert client.ping()
        anonymous = server.url.replace(f":{urlsplit(server.url).password}@", "")
        with redis.Redis.from_url(anonymous) as client, \
                pytest.raises(redis.AuthenticationError):
            client.ping()
        assert password.encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        conf = tmp_path / "valkey" / "auth.conf"
        assert not conf.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    finally:
        server.stop()


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    from runledger.embedded import EmbeddedError, server_password

    (tmp_path / "x.password").write_text("open")
    (tmp_path / "x.password").chmod(0o644)
    with pytest.raises(EmbeddedError, match=r"x.password must belong to uid \d+ and be "
                                            r"readable by it alone"):
        server_password(tmp_path / "x")


def test_a_password_is_generated_once_owner_only_and_an_empty_file_is_refused(
        tmp_path: Path) -> None:
    from runledger.embedded import EmbeddedError, server_password

    first = server_password(tmp_path / "x")
    assert server_password(tmp_path / "x") == first and len(first) >= 24
    assert _owner_only(tmp_path / "x.password")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.password"]  # no staging left
    (tmp_path / "y.password").touch(mode=0o600)  # what a crash mid-write used to leave
    with pytest.raises(EmbeddedError, match=r"y.password is empty; remove it"):
        server_password(tmp_path / "y")
