"""The worker's exception tree.

    WorkerError                 base of everything this package raises
    ├── RunCancelled            the run got a ``cancelled`` (or ``timed-out``) event while it
    │                           was executing: stop the executor
    ├── ExecutorError           infrastructure failure while executing (becomes ``errored``)
    │   └── BrowserUnavailable  no Chromium could be found or launched (says how to install one)
    ├── StepFailed              (``worker.agent.errors``) a step failed; never leaves the executor
    ├── StepNotRecorded         ``StepSink.record`` could not write the step (after retries)
    ├── MalformedJob            a ``runs:queue`` entry lacks a usable field (→ ``runs:dead``)
    ├── QueueError              a Redis command failed (redis-py errors are translated here)
    │   └── QueueUnavailable    connection-level Redis failure: retrying may succeed
    │       └── GroupMissing    the consumer group is gone (Redis lost its data): re-create it
    └── StartupError            the worker cannot start (Redis unreachable, group not created)

Ledger errors (``ledger.errors``) pass through unchanged. ``TRANSIENT`` names the errors that
say "the operation did not happen, trying again may work" — the ledger's
``TransientStoreError`` and ``QueueUnavailable`` — which the worker retries with
``ledger.aio.Backoff`` (3 retries, 0.25 s doubling, at most 5 s each); everything else
propagates at once. When the retries are used up the last error propagates, so the caller
decides what "persisting" means (mark the run failed, or leave the job pending).
"""

from __future__ import annotations

from ledger.errors import TransientStoreError


class WorkerError(Exception):
    """Base class for every error raised by the ``worker`` package."""


class RunCancelled(WorkerError):
    """Raised by ``StepSink.record`` when the run was finished by someone else meanwhile
    (the API's ``cancelled``, recovery's ``timed-out``): the executor must stop, close what it
    opened for the run, and re-raise. ``terminal_event`` names what finished the run."""

    def __init__(self, message: str, *, terminal_event: str = "cancelled") -> None:
        super().__init__(message)
        self.terminal_event = terminal_event


class ExecutorError(WorkerError):
    """Raised by an executor for an infrastructure failure; ``kind`` goes into ``errored``."""

    def __init__(self, message: str, *, kind: str = "infrastructure", step: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.step = step


class BrowserUnavailable(ExecutorError):
    """Raised when no Chromium can be found or launched."""


class StepNotRecorded(WorkerError):
    """Raised by ``StepSink.record`` when the step event could not be written, after retries
    for transient errors. The executor must stop and re-raise; the consumer then records
    ``errored`` with this message (or leaves the job pending when even that fails)."""

    def __init__(self, message: str, *, step: int) -> None:
        super().__init__(message)
        self.step = step


class MalformedJob(WorkerError):
    """Raised when a ``runs:queue`` entry has no valid ``run_id`` or ``attempt``; the
    contract's ``ledger.streams.MalformedEntry`` is chained."""


class QueueError(WorkerError):
    """Raised when a Redis command of the job queue fails; the redis-py error is chained."""


class QueueUnavailable(QueueError):
    """Raised for connection-level Redis failures (refused, reset, timed out, loading)."""


class GroupMissing(QueueUnavailable):
    """Raised when Redis answers NOGROUP: the stream or group vanished (a restart without
    persistence, a flush). The worker re-creates the group; until then, nothing is certain
    about which consumers are alive, so recovery skips its pass."""


class StartupError(WorkerError):
    """Raised when the worker cannot start; the message names the setting to fix."""


#: what the worker retries with back-off (``Backoff.run(..., transient=TRANSIENT)``)
TRANSIENT = (TransientStoreError, QueueUnavailable)
