"""``CHROMIUM_SANDBOX``: whether Chromium renders strangers' pages inside its sandbox.

Playwright launches Chromium with ``--no-sandbox`` unless asked otherwise, which leaves a
renderer exploit one step from the worker's process — and its ``DATABASE_URL``. The sandbox
needs a non-root user and either unprivileged user namespaces (most kernels) or Chromium's
setuid helper (``chrome-sandbox``, owned by root with the setuid bit).

* ``auto`` uses it when it can, and logs which it chose and why;
* ``on`` refuses to start (``BrowserUnavailable``) when it cannot, saying why;
* ``off`` never uses it.

Also here: the switches every browser gets so that nothing leaves it except through the
run's egress proxy (``worker.agent.egress``).
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from worker.errors import BrowserUnavailable

log = logging.getLogger(__name__)

#: QUIC and WebRTC's UDP would not go through an HTTP proxy: neither may leave directly.
EGRESS_ARGS = (
    "--disable-quic",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)
_HELPERS = ("chrome-sandbox", "chrome_sandbox")


@dataclass(frozen=True)
class SandboxFacts:
    """What decides whether the sandbox can work, read from the system (``observe``)."""

    euid: int
    userns_clone: str | None  # kernel.unprivileged_userns_clone (Debian's switch), if present
    max_user_namespaces: int | None  # user.max_user_namespaces
    apparmor_restricts: bool  # kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu)
    setuid_helper: Path | None  # a root-owned setuid chrome-sandbox next to the browser


def _sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _setuid_helper(executable: Path) -> Path | None:
    for name in _HELPERS:
        helper = executable.resolve().with_name(name)
        try:
            info = helper.stat()
        except OSError:
            continue
        if info.st_uid == 0 and info.st_mode & stat.S_ISUID and info.st_mode & stat.S_IXOTH:
            return helper
    return None


def observe(executable: Path) -> SandboxFacts:
    max_namespaces = _sysctl("/proc/sys/user/max_user_namespaces")
    return SandboxFacts(
        euid=os.geteuid(),
        userns_clone=_sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
        max_user_namespaces=int(max_namespaces) if max_namespaces else None,
        apparmor_restricts=_sysctl(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1",
        setuid_helper=_setuid_helper(executable),
    )


def available(facts: SandboxFacts) -> tuple[bool, str]:
    """Whether the sandbox can work, and how (or why not)."""
    if facts.euid == 0:
        return False, "the worker runs as root, where Chromium's sandbox cannot run"
    blocked = []
    if facts.userns_clone == "0":
        blocked.append("kernel.unprivileged_userns_clone=0")
    if facts.max_user_namespaces == 0:
        blocked.append("user.max_user_namespaces=0")
    if facts.apparmor_restricts:
        blocked.append("kernel.apparmor_restrict_unprivileged_userns=1")
    if not blocked:
        return True, "unprivileged user namespaces"
    if facts.setuid_helper is not None:
        return True, f"the setuid helper {facts.setuid_helper}"
    return False, (f"the kernel refuses unprivileged user namespaces ({', '.join(blocked)}) "
                   "and there is no setuid chrome-sandbox next to the browser")


def decide(mode: str, facts: SandboxFacts) -> bool:
    """Whether to launch with the sandbox under ``CHROMIUM_SANDBOX=mode``; logs the choice.
    Raises ``BrowserUnavailable`` when ``on`` cannot be honoured."""
    if mode == "off":
        log.warning("Chromium runs without its sandbox (CHROMIUM_SANDBOX=off)")
        return False
    usable, why = available(facts)
    if usable:
        log.info("Chromium runs in its sandbox (CHROMIUM_SANDBOX=%s, using %s)", mode, why)
        return True
    if mode == "on":
        raise BrowserUnavailable(
            f"CHROMIUM_SANDBOX=on, but Chromium's sandbox cannot be used: {why}; run the "
            "worker as an unprivileged user (docs/operations.md) or set CHROMIUM_SANDBOX=auto",
            kind="no-sandbox")
    log.warning("Chromium runs without its sandbox (CHROMIUM_SANDBOX=auto): %s; run the "
                "worker as an unprivileged user (docs/operations.md)", why)
    return False


@functools.cache
def use_sandbox(mode: str, executable: Path) -> bool:
    """``decide`` for this system, once per process and browser (browsers are relaunched)."""
    return decide(mode, observe(executable))
