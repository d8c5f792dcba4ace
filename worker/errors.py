"""The worker's exception tree.

    WorkerError                 base of everything this package raises
    ├── RunCancelled            the run got a ``cancelled`` event while it was executing
    ├── ExecutorError           infrastructure failure while executing (becomes ``errored``)
    │   └── BrowserUnavailable  no Chromium could be found or launched (says how to install one)
    └── StartupError            the worker cannot start (Redis unreachable, group not created)
"""

from __future__ import annotations


class WorkerError(Exception):
    """Base class for every error raised by the ``worker`` package."""


class RunCancelled(WorkerError):
    """Raised by ``StepSink.record`` when the run was cancelled: stop executing."""


class ExecutorError(WorkerError):
    """Raised by an executor for an infrastructure failure; ``kind`` goes into ``errored``."""

    def __init__(self, message: str, *, kind: str = "infrastructure", step: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.step = step


class BrowserUnavailable(ExecutorError):
    """Raised when no Chromium can be found or launched."""


class StartupError(WorkerError):
    """Raised when the worker cannot start; the message names the setting to fix."""
