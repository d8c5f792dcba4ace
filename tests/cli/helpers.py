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
