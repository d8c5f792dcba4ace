"""projections: everything derived from the event log.

* ``follower`` — the tracked-follower runner (checkpoint, advisory lock, batches) and
  ``follower_lag`` for metrics;
* ``runs`` / ``steps`` — the ``runs`` and ``run_steps`` read models, ``queries`` — their
  read queries (``RunQueries``);
* ``relay`` — publishes the log to Redis (``run_events:{run_id}``, ``runs:queue``);
* ``rebuild`` — replays the log into fresh tables and swaps them in;
* ``parking`` / ``retry`` — events a follower could not apply, parked, counted and retried;
  ``sanitize`` — what read models write is always something PostgreSQL accepts;
* ``service`` — ``run_projector``: all followers in one process.
"""

from projections.errors import InvalidCursor, ProjectionError
from projections.follower import follower_lag
from projections.queries import RunQueries

__all__ = ["InvalidCursor", "ProjectionError", "RunQueries", "follower_lag"]
