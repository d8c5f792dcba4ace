"""``runledger dev`` on a first run: an empty data directory and no browser reachable.

It serves (API and followers), says in one line how to install a browser, reports "no
browser" in ``/health``, keeps queued runs waiting, refuses a second ``dev`` on the same
directory in one line (leaving the first one's PostgreSQL log alone), and starts its worker
once a browser appears. Its state file tells other commands where it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from runledger.testing import local_site
from tests.cli.helpers import CHROMIUM, free_port, passing_test, wait_serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No browser reachable: an empty PATH folder, CHROMIUM_PATH naming a missing file,
    no auto-install (tests never install anything), no servers configured."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CHROMIUM_PATH", "API_KEYS")}
    env |= {"PATH": str(empty_bin), "CHROMIUM_PATH": str(tmp_path / "browser" / "chromium"),
            "BROWSER_AUTO_INSTALL": "false", "BROWSER_RECHECK_SECONDS": "0.2",
            "ARTIFACTS_DIR": str(tmp_path / "artifacts"), "LOG_LEVEL": "INFO"}
    return env | extra


def _read_until(stream: IO[str], marker: str, seen: list[str]) -> str:
    """Lines of ``stream`` until one contains ``marker`` (returned); all kept in ``seen``.
    Bounded by the test's timeout: the process either says it or the test fails."""
    for line in stream:
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"the process ended before saying {marker!r}:\n{''.join(seen)}")


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runledger.cli", "dev", "--port", str(port)],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        yield process, port, seen
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_a_first_run_without_a_browser_serves_and_waits_for_one(
    tmp_path: Path, dev: tuple[subprocess.Popen[str], int, list[str]]
) -> None:
    process, port, seen = dev
    assert process.stdout is not None
    line = _read_until(process.stdout, "no browser", seen)
    assert "CHROMIUM_PATH" in line and "runs wait in the queue" in line
    assert not any("Traceback" in s for s in seen)
    api = f"http://127.0.0.1:{port}"
    wait_serving(api)

    # The state file says where this instance is.
    state_file = tmp_path / ".runledger" / "dev.json"
    assert state_file.stat().st_mode & 0o777 == 0o600  # the URLs carry passwords
    state = json.loads(state_file.read_text())
    assert state["api_url"] == api and state["pid"] == process.pid
    assert state["database_url"].startswith("postgresql://")
    assert state["redis_url"].startswith("redis://")

    with httpx.Client(base_url=api, timeout=10) as http:
        health = http.get("/health").json()
        assert health["status"] == "healthy" and health["browser"] == "no browser"
        assert "chromium-headless-shell" in health["browser_hint"]

        # A second dev on the same directory refuses in one line; the log stays.
        log_before = (tmp_path / ".runledger" / "postgres.log").read_bytes()
        second = subprocess.run(
            [sys.executable, "-m", "runledger.cli", "dev", "--port", str(free_port())],
            cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert "in use by another runledger dev" in second.stderr
        assert f"pid {process.pid}" in second.stderr
        assert (tmp_path / ".runledger" / "postgres.log").read_bytes().startswith(log_before)

        with local_site(ROOT / "tests" / "executor" / "site") as site:
            test = http.post("/tests", json=passing_test(site, "first run")).json()
            run_id = http.post("/runs", json={"test_id": test["id"]}).json()["run_id"]
            assert http.get(f"/runs/{run_id}").json()["status"] in ("queued", "running")

            # A browser appears where CHROMIUM_PATH says: the worker starts and runs it.
            browser = tmp_path / "browser" / "chromium"
            browser.parent.mkdir()
            browser.symlink_to(CHROMIUM)
            _read_until(process.stdout, "the worker starts", seen)
            _read_until(process.stdout, "Stuck-run recovery", seen)
            final = _wait_finished(http, run_id)
            assert final["status"] == "passed", final
        assert http.get("/health").json()["browser"] == "ok"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert not (tmp_path / ".runledger" / "dev.json").exists()


def _wait_finished(http: httpx.Client, run_id: str) -> dict[str, object]:
    """Follow the run's live stream to its end, then read the run."""
    with http.stream("GET", f"/runs/{run_id}/stream", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:") and line.split(":", 1)[1].strip() in (
                    "completed", "errored", "timed-out", "cancelled"):
                break
    run: dict[str, object] = http.get(f"/runs/{run_id}").json()
    return run


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "runledger.cli", "dev", "--port", str(port)],
            cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: port {port} on 127.0.0.1 is in use (another "
                                     "runledger dev or API?); choose another with --port")
    assert not (tmp_path / ".runledger" / "postgres").exists()  # checked before starting


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:1/runledger",
               REDIS_URL="redis://127.0.0.1:1/0")
    result = subprocess.run(
        [sys.executable, "-m", "runledger.cli", "dev", "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "error: PostgreSQL at DATABASE_URL=postgresql://postgres@127.0.0.1:1/runledger: ")
    assert "Traceback" not in result.stderr + result.stdout


def test_a_worker_without_a_browser_waits_and_says_so(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    import redis

    env = _env(tmp_path, DATABASE_URL=database_url, REDIS_URL=redis_url,
               REDIS_CONSUMER_NAME="worker-no-browser")
    process = subprocess.Popen([sys.executable, "-m", "runledger.cli", "worker"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen: list[str] = []
    try:
        line = _read_until(process.stdout, "no browser", seen)
        assert "runs wait in the queue" in line
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            hint = client.get("runledger:no-browser:worker-no-browser")
        finally:
            client.close()
        assert hint is not None and "install" in hint
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        seen += process.stdout.readlines()
        process.stdout.close()
    assert code == 0
    assert not any("Traceback" in s for s in seen), "".join(seen)
