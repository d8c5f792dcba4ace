"""The ledger's exception tree.

    LedgerError                      base of everything this package raises
    ├── InvalidTransition            the Run aggregate refused a command (names run, state, event)
    ├── InvalidDefinition            a test definition failed validation (names step and field)
    ├── EventTooLarge                a serialized event exceeds the 16 KiB limit
    ├── ConfigurationError           a setting is missing or malformed (names the variable)
    ├── MigrationError               a schema migration could not be applied
    └── StoreError                   the event store failed (driver errors are translated here)
        ├── ConcurrencyConflict      an append lost the race for its expected version
        ├── RunNotFound              no events exist for the requested run
        ├── UndecodableEvent         a stored event cannot be decoded or replayed
        └── TransientStoreError      a connection-level failure: retrying may succeed
"""

from __future__ import annotations

from typing import Any
from uuid import UUID


class LedgerError(Exception):
    """Base class for every error raised by the ``ledger`` package."""


class InvalidTransition(LedgerError):
    """Raised by a ``Run`` command that its current state does not allow."""

    def __init__(self, run_id: UUID, state: str, event: str, reason: str = "") -> None:
        self.run_id = run_id
        self.state = state
        self.event = event
        detail = f": {reason}" if reason else ""
        super().__init__(f"run {run_id} is {state}; refused event '{event}'{detail}")


class InvalidDefinition(LedgerError):
    """Raised when a test definition is invalid; ``errors`` lists (location, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))


class EventTooLarge(LedgerError):
    """Raised before an append when one serialized event is larger than the limit."""

    def __init__(self, run_id: UUID, version: int, event: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"event '{event}' v{version} of run {run_id} serializes to {size} bytes, "
            f"over the {limit}-byte limit; store large data as artifacts and reference them"
        )


class ConfigurationError(LedgerError):
    """Raised at start-up when a setting is missing or malformed."""


class MigrationError(LedgerError):
    """Raised when a migration file is malformed or fails to apply."""


class StoreError(LedgerError):
    """Raised when the event store fails; the driver error is chained as ``__cause__``."""


class ConcurrencyConflict(StoreError):
    """Raised when another writer already appended an event at one of the versions."""

    def __init__(self, run_id: Any, versions: list[int]) -> None:
        self.run_id = run_id
        self.versions = versions
        super().__init__(f"run {run_id} already has an event at version(s) {versions}")


class RunNotFound(StoreError):
    """Raised when a run has no events at all."""

    def __init__(self, run_id: Any) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} not found")


class UndecodableEvent(StoreError):
    """Raised when a stored event cannot be decoded or replayed (unknown topic, bad payload)."""


class TransientStoreError(StoreError):
    """Raised for connection-level failures (lost connection, lock timeout, server starting
    or shutting down, too many clients): the operation did not happen and may be retried."""
