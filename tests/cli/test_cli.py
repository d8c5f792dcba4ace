"""``runledger api`` as a real process: serves, streams, and on SIGTERM ends open streams
and exits 0; a bad setting fails at start naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import API_KEY, AUTH, SseReader, a_test, wait_until

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_serves_and_stops_on_sigterm(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "API_KEYS": API_KEY, "PORT": str(port), "ARTIFACTS_DIR": str(tmp_path),
           "LOG_LEVEL": "INFO"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "api", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10) as http:
            async def healthy() -> bool:
                try:
                    return (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False
            await wait_until(healthy, within=30, what="runledger api to answer")
            test_id = (await http.post("/tests", json=a_test())).json()["id"]
            run_id = (await http.post("/runs", json={"test_id": test_id})).json()["run_id"]
            async with http.stream("GET", f"/runs/{run_id}/stream") as response:
                events = SseReader(response).events()
                assert (await anext(events)).event == "queued"
                process.send_signal(signal.SIGTERM)
                # the open stream is ended by the shutdown instead of holding it up
                rest = [event async for event in events]
            assert rest == []
        assert await asyncio.wait_for(process.wait(), 20) == 0
        output = (await process.stdout.read()).decode()  # type: ignore[union-attr]
        assert "API_KEYS is not set" not in output and API_KEY not in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_bad_setting_fails_at_start(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "mysql://nope", "REDIS_URL": "redis://127.0.0.1:1/0"}
    env.pop("API_KEYS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "api", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"DATABASE_URL" in output


async def test_serve_stops_when_its_owner_says_so(make_settings: Any) -> None:
    """Composed into another process (``runledger dev``), the server leaves the signals to
    its owner and stops on the owner's event, exiting 0."""
    from api.server import serve

    port = free_port()
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(make_settings(port=port), stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        async def healthy() -> bool:
            try:
                return (await http.get("/health")).status_code == 200
            except httpx.TransportError:
                return False
        await wait_until(healthy, within=30, what="the server to answer")
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)
    stop.set()
    assert await asyncio.wait_for(serving, 20) == 0


async def test_unreachable_database_fails_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "REDIS_URL": "redis://127.0.0.1:1/0", "PORT": str(free_port())}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runledger.cli", "api", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, output
    assert b"error: database connection failed" in output and b"Traceback" not in output
