"""The worker's settings: every variable of the worker, read once by the entry point.

The executor (``worker.agent``) reads its timeouts from the same object, so one ``.env``
configures the whole process.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Annotated

from pydantic import Field

from ledger.settings import DatabaseSettings, RedisSettings
from worker.agent.settings import ExecutorSettings

Positive = Annotated[float, Field(gt=0)]


def default_consumer_name() -> str:
    """``worker-{hostname}-{pid}-{uuid}``: unique per process, readable in ``XINFO`` and logs."""
    return f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4()}"


class WorkerSettings(DatabaseSettings, RedisSettings, ExecutorSettings):
    """``DATABASE_URL``, ``REDIS_URL``, the worker's own variables (defaults in brackets) and
    the executor's (``CHROMIUM_PATH``, ``SCREENSHOTS`` …, see ``ExecutorSettings``)."""

    #: name of this process in the consumer group [worker-{hostname}-{pid}-{uuid}]
    redis_consumer_name: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=default_consumer_name
    )
    #: runs executed at the same time by this process [2]
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] = 2
    #: a pending job idle this long belongs to a dead consumer and is reclaimed [60]
    claim_idle_seconds: Positive = 60.0
    #: deliveries after which a job goes to ``runs:dead`` [3]
    max_deliveries: Annotated[int, Field(ge=1)] = 3
    #: how often stuck runs are looked for [60]
    recovery_check_interval_seconds: Positive = 60.0
    #: a run ``running`` for longer than this is timed out (fractions allowed: 0.05) [10]
    stuck_run_timeout_minutes: Positive = 10.0
    #: one step's time budget, enforced by the executor [30]
    step_timeout_seconds: Positive = 30.0
    #: a whole run's time budget; the worker appends ``timed-out`` past it [300]
    run_timeout_seconds: Positive = 300.0
    #: how long one ``XREADGROUP`` blocks; also bounds how fast shutdown stops reading [2]
    worker_block_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: interval of the health / idle heartbeat log line [60]
    worker_heartbeat_seconds: Positive = 60.0

    @property
    def stuck_run_timeout_seconds(self) -> float:
        return self.stuck_run_timeout_minutes * 60

    @property
    def redis_socket_timeout(self) -> float:
        # Must exceed the XREADGROUP block time, or every idle read would time out.
        return self.worker_block_seconds + 10.0
