"""Shared pieces of the command-line tests: a browser to point at, free ports, tests."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from worker.agent.browser import find_chromium

#: the machine's Chromium (the browser tests need one anyway)
CHROMIUM: Path = find_chromium(None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def passing_test(site: str, name: str, **extra: Any) -> dict[str, Any]:
    """A test of the local executor site that passes."""
    return {"name": name, "url": f"{site}/index.html", **extra, "definition": {"steps": [
        {"action": "verify", "instruction": "the heading says Acme", "expected": "Acme"},
    ]}}


def failing_test(site: str, name: str, **extra: Any) -> dict[str, Any]:
    """A test of the local executor site whose second step fails."""
    return {"name": name, "url": f"{site}/index.html", **extra, "definition": {"steps": [
        {"action": "verify", "instruction": "the heading says Acme", "expected": "Acme"},
        {"action": "verify", "instruction": "the page says Welcome back",
         "expected": "Welcome back, Zed"},
    ]}}


def wait_serving(api: str, within: float = 60.0) -> None:
    """Wait until the API at ``api`` answers ``/health`` (its start-up lines are logged
    before uvicorn binds the socket)."""
    import time

    import httpx

    deadline = time.monotonic() + within
    while True:
        try:
            httpx.get(f"{api}/health", timeout=5)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{api} did not answer within {within}s") from None
        time.sleep(0.05)
