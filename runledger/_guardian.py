"""Guardian: stops a server when the process that started it dies, however it dies.

``runledger.embedded`` runs it as ``python -I -S _guardian.py PIDFD PID SIGNAL TIMEOUT``:

* stdin is the read end of a pipe whose write end only the starting process holds. The kernel
  closes that end when the starter exits - even on ``kill -9`` - so a blocking read returns EOF.
  (``prctl(PR_SET_PDEATHSIG)`` would be simpler but does not work on our machines.)
* ``PIDFD`` is a pidfd of the server, opened by its parent before the pid could be recycled;
  it becomes readable when the server exits, and signals sent through it cannot hit a stranger
  that later got the same pid.

On EOF (or SIGTERM) the guardian sends ``SIGNAL`` to the server, waits ``TIMEOUT`` seconds, then
sends SIGKILL. When the server exits first (stopped by its parent, or crashed) the guardian exits
quietly. It only uses the standard library so that it starts in ~20 ms without site-packages.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from types import FrameType


class _Terminated(Exception):
    """Raised from the SIGTERM handler to leave the blocking wait."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _parent_gone(pidfd: int) -> bool:
    """Block until the parent's pipe closes (True) or the server exits (False)."""
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    while True:
        ready = dict(poller.poll())
        # Checked first: when both happen together the server is already gone.
        if pidfd in ready:
            return False
        # The parent never writes, so anything read is ignored; only EOF matters.
        if os.read(0, 1024) == b"":
            return True


def _stop(pidfd: int, pid: int, stop_signal: signal.Signals, timeout: float) -> None:
    try:
        signal.pidfd_send_signal(pidfd, stop_signal)
        if select.select([pidfd], [], [], timeout)[0]:
            return
        _say(f"pid {pid} still running {timeout:g} s after {stop_signal.name}; sending SIGKILL")
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        return


def _say(message: str) -> None:
    # stderr is the server's log file, where someone debugging a vanished server will look.
    print(f"runledger guardian: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    pidfd, pid = int(argv[1]), int(argv[2])
    stop_signal, timeout = signal.Signals[argv[3]], float(argv[4])
    # The starter puts us in our own session too; ignoring SIGINT/SIGHUP also covers a signal
    # sent to our pid directly, so a Ctrl-C cannot remove the guardian before it did its job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if not _parent_gone(pidfd):
            return 0
        reason = "parent process exited"
    except _Terminated:
        reason = "guardian received SIGTERM"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _say(f"{reason}; stopping pid {pid} with {stop_signal.name}")
    _stop(pidfd, pid, stop_signal, timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
