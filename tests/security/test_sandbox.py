"""CHROMIUM_SANDBOX: the choice for each system, and what a real launch does with it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from worker.agent.browser import ChromiumHost
from worker.agent.sandbox import SandboxFacts, available, decide, observe
from worker.agent.settings import ExecutorConfig
from worker.errors import BrowserUnavailable

from ..executor.conftest import chromium_processes

ROOTLESS = SandboxFacts(euid=1000, userns_clone=None, max_user_namespaces=15000,
                        apparmor_restricts=False, setuid_helper=None)
HELPER = Path("/usr/lib/chromium/chrome-sandbox")


@pytest.mark.unit
@pytest.mark.parametrize(("facts", "usable", "how"), [
    (ROOTLESS, True, "unprivileged user namespaces"),
    (SandboxFacts(0, None, 15000, False, HELPER), False, "runs as root"),
    (SandboxFacts(1000, "0", 15000, False, None), False, "kernel.unprivileged_userns_clone=0"),
    (SandboxFacts(1000, "1", 0, False, None), False, "user.max_user_namespaces=0"),
    (SandboxFacts(1000, None, 15000, True, None), False,
     "kernel.apparmor_restrict_unprivileged_userns=1"),
    (SandboxFacts(1000, "0", 15000, False, HELPER), True, f"the setuid helper {HELPER}"),
])
def test_when_the_sandbox_can_work(facts: SandboxFacts, usable: bool, how: str) -> None:
    result, why = available(facts)
    assert result is usable and how in why


@pytest.mark.unit
def test_auto_uses_it_when_it_can_and_logs_the_choice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="worker.agent.sandbox")
    assert decide("auto", ROOTLESS) is True
    assert decide("auto", SandboxFacts(0, None, 1, False, None)) is False
    assert decide("off", ROOTLESS) is False
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "Chromium runs in its sandbox (CHROMIUM_SANDBOX=auto, using unprivileged user "
        "namespaces)",
        "Chromium runs without its sandbox (CHROMIUM_SANDBOX=auto)",
        "Chromium runs without its sandbox (CHROMIUM_SANDBOX=off)",
    ]


@pytest.mark.unit
def test_on_refuses_saying_why() -> None:
    assert decide("on", ROOTLESS) is True
    with pytest.raises(BrowserUnavailable, match=r"CHROMIUM_SANDBOX=on, but Chromium's sandbox "
                                                 r"cannot be used: the kernel refuses"):
        decide("on", SandboxFacts(1000, "0", 15000, False, None))


@pytest.mark.browser
async def test_a_real_launch_follows_the_choice(tmp_path: Path) -> None:
    host = ChromiumHost(ExecutorConfig(chromium_sandbox="auto"))
    await host.open()
    try:
        assert host.executable is not None
        usable, _ = available(observe(host.executable))
        [browser] = chromium_processes(host.tag)["browser"]
        raw = await asyncio.to_thread(Path(f"/proc/{browser}/cmdline").read_bytes)
        cmdline = raw.split(b"\0")
        assert (b"--no-sandbox" not in cmdline) is usable
        assert b"--disable-quic" in cmdline
    finally:
        await host.close()
    if not usable:  # as root, or on a kernel without user namespaces: `on` refuses to start
        refused = ChromiumHost(ExecutorConfig(chromium_sandbox="on"))
        with pytest.raises(BrowserUnavailable, match="CHROMIUM_SANDBOX=on"):
            await refused.open()
