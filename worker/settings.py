"""The worker's settings: every variable of the worker, read once by the entry point.

The executor (``worker.agent``) reads its timeouts from the same object, so one ``.env``
configures the whole process.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Annotated

from pydantic import Field, model_validator

from ledger.settings import DatabaseSettings, RedisSettings
from worker.agent.settings import ExecutorSettings

Positive = Annotated[float, Field(gt=0)]


def default_consumer_name() -> str:
    """``worker-{hostname}-{pid}-{uuid}``: unique per process, readable in ``XINFO`` and logs."""
    return f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4()}"


class WorkerSettings(DatabaseSettings, RedisSettings, ExecutorSettings):
    """``DATABASE_URL``, ``REDIS_URL``, the worker's own variables and the executor's
    (``CHROMIUM_PATH``, ``SCREENSHOTS`` …, see ``ExecutorSettings``)."""

    redis_consumer_name: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=default_consumer_name,
        description="Name of this process in the `run-workers` consumer group; unset, "
        "`worker-{hostname}-{pid}-{uuid}`, unique per process.",
    )
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        2, description="Runs this process executes at the same time."
    )
    claim_idle_seconds: Positive = Field(
        60.0,
        description="Seconds a job may go without being kept fresh (its worker's lease on "
        "the run) before it counts as a dead worker's: another worker reclaims it, and a "
        "run it held ends `timed-out` naming the lost worker.",
    )
    max_deliveries: Annotated[int, Field(ge=1)] = Field(
        3,
        description="Deliveries that reached a run's start (the worker appended or "
        "recognised its `started`) after which the job goes to `runs:dead` and the run gets "
        "`errored`; redeliveries after an outage before the start do not count.",
    )
    recovery_check_interval_seconds: Positive = Field(
        60.0, description="Seconds between searches for stuck runs."
    )
    stuck_run_timeout_minutes: Positive = Field(
        10.0,
        description="Outer bound: minutes a run may stay `running` with no worker holding "
        "its job before recovery appends `timed-out` (fractions allowed, e.g. 0.05). A "
        "worker that dies is named sooner, once its lease lapses (`CLAIM_IDLE_SECONDS`). "
        "Must be above `RUN_TIMEOUT_SECONDS` plus `RUN_FINISH_GRACE_SECONDS`.",
    )
    step_timeout_seconds: Positive = Field(
        30.0, description="Seconds one step may take; the executor fails the step past it."
    )
    run_timeout_seconds: Positive = Field(
        300.0,
        description="Seconds a whole run may take; past it the run fails naming the step "
        "and the limit. Shutdown waits this long (plus a short grace) for runs in flight.",
    )
    run_finish_grace_seconds: Positive = Field(
        30.0,
        description="Seconds a run's last writes (terminal event, acknowledgement, with "
        "retries) may take after `RUN_TIMEOUT_SECONDS`; shutdown drains that much longer.",
    )
    worker_block_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        2.0,
        description="Seconds one `XREADGROUP` blocks; also bounds how long shutdown waits "
        "for the read to stop.",
    )
    worker_heartbeat_seconds: Positive = Field(
        60.0, description="Seconds between the worker's health / idle log lines."
    )

    @model_validator(mode="after")
    def _stuck_outlasts_a_run(self) -> WorkerSettings:
        # Recovery must never time out a run its live worker is still allowed to finish.
        bound = self.run_timeout_seconds + self.run_finish_grace_seconds
        if self.stuck_run_timeout_seconds <= bound:
            raise ValueError(
                f"STUCK_RUN_TIMEOUT_MINUTES={self.stuck_run_timeout_minutes:g} "
                f"({self.stuck_run_timeout_seconds:g}s) must be above RUN_TIMEOUT_SECONDS="
                f"{self.run_timeout_seconds:g} plus RUN_FINISH_GRACE_SECONDS="
                f"{self.run_finish_grace_seconds:g} ({bound:g}s)"
            )
        return self

    @property
    def stuck_run_timeout_seconds(self) -> float:
        return self.stuck_run_timeout_minutes * 60

    @property
    def redis_socket_timeout(self) -> float:
        # Must exceed the XREADGROUP block time, or every idle read would time out.
        return self.worker_block_seconds + 10.0
