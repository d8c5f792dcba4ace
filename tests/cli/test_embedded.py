"""The embedded servers start, serve, stop, keep data, and never outlive their parent."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from runledger import embedded
from runledger.embedded import embedded_services, start_postgres, start_valkey

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to another user")


def _exited_within(pidfd: int, timeout: float) -> bool:
    """Wait for the process behind ``pidfd`` to exit; a pidfd becomes readable when it does."""
    return bool(select.select([pidfd], [], [], timeout)[0])


def _is_running(pid: int) -> bool:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        return not _exited_within(pidfd, 0)
    finally:
        os.close(pidfd)


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return bool(client.ping())
    finally:
        client.close()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user can traverse (pytest's tmp_path sits under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="runledger-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_servers_serve_and_stop(tmp_path: Path) -> None:
    with embedded_services(tmp_path, ephemeral=True) as services:
        assert asyncio.run(_fetchval(services.postgres.url, "SELECT 1")) == 1
        assert asyncio.run(_fetchval(services.postgres.url, "SHOW max_connections")) == "200"
        assert asyncio.run(_fetchval(services.postgres.url, "SHOW fsync")) == "off"
        assert _ping(services.valkey.url)
        pids = [services.postgres.pid, services.valkey.pid]
        assert all(map(_is_running, pids))
    assert not any(map(_is_running, pids))
    services.postgres.stop()  # idempotent


def test_postgres_keeps_data_in_a_reused_dir(open_dir: Path) -> None:
    data_dir = open_dir / "pg"
    first = start_postgres(data_dir)
    try:
        asyncio.run(_fetchval(first.url, "CREATE TABLE kept AS SELECT 42 AS answer"))
        # A folder the server user can reach is used by its real path.
        assert asyncio.run(_fetchval(first.url, "SHOW data_directory")) == str(data_dir)
    finally:
        first.stop()
    second = start_postgres(data_dir)
    try:
        assert asyncio.run(_fetchval(second.url, "SELECT answer FROM kept")) == 42
    finally:
        second.stop()


def test_guardian_exits_when_its_server_dies(tmp_path: Path) -> None:
    server = start_valkey(tmp_path / "valkey", ephemeral=True)
    guardian = server._supervision.guardian
    os.kill(server.pid, signal.SIGKILL)
    assert guardian.wait(timeout=5) == 0
    server.stop()
    assert not _is_running(server.pid)


_ORPHANING_PARENT = textwrap.dedent("""
    import signal, sys, threading
    from pathlib import Path
    from runledger.embedded import start_postgres, start_valkey

    # As in a terminal: Ctrl-C interrupts. (A shell without job control starts background
    # commands with SIGINT ignored, and Python then keeps it ignored.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    base = Path(sys.argv[1])
    postgres = start_postgres(base / "postgres", ephemeral=True)
    valkey = start_valkey(base / "valkey", ephemeral=True)
    print(postgres.pid, valkey.pid, flush=True)
    threading.Event().wait()
""")


@pytest.mark.parametrize("death", ["kill -9", "Ctrl-C"])
def test_servers_die_with_their_parent(tmp_path: Path, death: str) -> None:
    # Its own session stands in for a terminal: Ctrl-C signals the whole foreground group.
    # `with`: closes the pipes once the parent is gone (an open one is a ResourceWarning).
    with subprocess.Popen([sys.executable, "-c", _ORPHANING_PARENT, str(tmp_path)],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as parent:
        try:
            line = parent.stdout.readline() if parent.stdout else ""
            assert line, parent.stderr.read() if parent.stderr else "parent printed nothing"
            # Opened before the parent dies, so a recycled pid cannot fool the check.
            pidfds = [os.pidfd_open(int(pid)) for pid in line.split()]
            if death == "Ctrl-C":
                os.killpg(parent.pid, signal.SIGINT)
                parent.wait(10)
        finally:
            parent.kill()
    try:
        assert all(_exited_within(pidfd, 10) for pidfd in pidfds)
    finally:
        for pidfd in pidfds:
            os.close(pidfd)
    assert "parent process exited" in (tmp_path / "postgres.log").read_text()


@as_root
def test_unreachable_binaries_are_copied_once(tmp_path: Path) -> None:
    account = embedded._server_account()
    private = tmp_path / "private"  # 0700 and root's: the server user cannot enter
    package = private / "fakepkg"
    (package / "bin").mkdir(parents=True)
    (private / "fakepkg.libs").mkdir()
    tool = package / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho ran\n")
    tool.chmod(0o755)
    private.chmod(0o700)
    key = f"fakepkg-test-{uuid.uuid4().hex[:8]}"
    try:
        site = embedded._runnable_site(package, private / "fakepkg.libs", ["bin/tool"], key,
                                       account)
        assert site == Path(tempfile.gettempdir()) / f"runledger-{key}"
        assert (site / "fakepkg.libs").is_dir()
        ran = subprocess.run([str(site / "fakepkg" / "bin" / "tool")], capture_output=True,
                             text=True, check=True, **account.popen_kwargs())
        assert ran.stdout == "ran\n"
        assert embedded._runnable_site(package, None, ["bin/tool"], key, account) == site
        assert oct(private.stat().st_mode & 0o777) == "0o700"
    finally:
        shutil.rmtree(Path(tempfile.gettempdir()) / f"runledger-{key}", ignore_errors=True)


@as_root
def test_a_foreign_non_empty_data_dir_is_refused(open_dir: Path) -> None:
    data_dir = open_dir / "taken"
    data_dir.mkdir()
    (data_dir / "something").write_text("root's, not the server user's")
    with pytest.raises(embedded.EmbeddedError, match="does not belong"):
        start_valkey(data_dir, ephemeral=True)
