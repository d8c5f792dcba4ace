"""The projections package's exception tree.

    ProjectionError                  base of everything this package raises
    ├── InvalidCursor                a ``list_runs`` cursor is malformed or was tampered with
    ├── FollowerError                a follower failed for good outside its events (its parking,
    │                                upkeep or activation; names follower and position): the
    │                                projector restarts that follower alone, with back-off. An
    │                                event it cannot apply is parked, not raised
    ├── RelayUnavailable             Redis failed at the connection level; followers retry it
    │                                with backoff, like ``ledger.errors.TransientStoreError``
    └── RebuildError                 a rebuild could not start, build or swap its tables (the
                                     live tables are then untouched)

Driver errors are translated at the seam: asyncpg errors by ``ledger.store.translated`` into
the ledger's ``StoreError`` tree, redis-py errors by ``projections.relay`` into
``RelayUnavailable`` or ``FollowerError``.
"""

from __future__ import annotations


class ProjectionError(Exception):
    """Base class for every error raised by the ``projections`` package."""


class InvalidCursor(ProjectionError):
    """Raised by ``RunQueries.list_runs`` when ``cursor`` is not one it handed out."""


class FollowerError(ProjectionError):
    """Raised when a follower fails for a reason retrying will not fix; inside ``apply`` it
    makes the runner park the event, anywhere else it ends the runner."""

    def __init__(self, follower: str, position: int, reason: str) -> None:
        self.follower = follower
        self.position = position
        self.reason = reason
        super().__init__(f"follower {follower!r} at position {position}: {reason}")


class RelayUnavailable(ProjectionError):
    """Raised when Redis cannot be reached or drops the connection; retrying may succeed."""


class RebuildError(ProjectionError):
    """Raised when a rebuild cannot proceed; the live tables and checkpoints are unchanged."""
