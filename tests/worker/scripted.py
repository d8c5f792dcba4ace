"""``ScriptedExecutor``: a real ``worker.ports.Executor`` whose steps are cues, for tests.

Each step's instruction is a cue (``"<cue> [argument]"``), so a test's run carries its own
script — the same in-process and in a worker subprocess:

* ``pass`` / ``fail [message]`` — record a passed / failed step (a failed one ends the run);
* ``work SECONDS`` — the step takes that long (simulated browser work), then passes;
* ``gate NAME`` — announce ``reached:NAME`` (RPUSH) and block until someone RPUSHes
  ``gate:NAME``; tests release a run mid-flight with it, across processes, without polling;
* ``hang`` — never finish (until cancelled);
* ``error [message]`` — raise ``ExecutorError`` (kind ``browser``): infrastructure failure;
* ``crash [message]`` — raise ``RuntimeError``: a bug in the executor;
* ``exit [code]`` — ``os._exit``: the process dies on the spot (like kill -9);
* ``big`` — record a step whose event is over the 16 KiB limit.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from worker.errors import ExecutorError, RunCancelled
from worker.ports import Outcome, RunJob, StepResult, StepSink


def steps(*cues: str) -> list[dict[str, Any]]:
    """A ``queued`` event's step snapshot made of cues."""
    return [{"action": "click", "instruction": cue} for cue in cues]


class ScriptedExecutor:
    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._redis: aioredis.Redis | None = None
        self.executions: list[UUID] = []
        self.stopped: list[tuple[UUID, str]] = []  # (run, why): cancelled, interrupted, ...
        self.opened = 0
        self.closed = 0

    @property
    def browser(self) -> dict[str, Any]:
        return {"name": "scripted", "version": "1"}

    async def open(self) -> None:
        self._redis = aioredis.from_url(self._redis_url, decode_responses=True)
        self.opened += 1

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        self.closed += 1

    async def execute(self, job: RunJob, sink: StepSink) -> Outcome:
        self.executions.append(job.run_id)
        began = time.monotonic()
        try:
            for index, step in enumerate(job.steps):
                result = await self._step(job, index, step.action.value, step.instruction)
                await sink.record(result)
                if result.status == "failed":
                    return Outcome("failed", _ms(began), result.error, index)
            return Outcome("passed", _ms(began))
        except RunCancelled as exc:
            self.stopped.append((job.run_id, exc.terminal_event))
            raise
        except asyncio.CancelledError:
            self.stopped.append((job.run_id, "interrupted"))
            raise

    async def _step(self, job: RunJob, index: int, action: str, instruction: str) -> StepResult:
        cue, _, arg = instruction.partition(" ")
        began = time.monotonic()
        status, error, details = "passed", None, {}
        if cue == "fail":
            status, error = "failed", arg or "scripted failure"
        elif cue == "work":
            await asyncio.sleep(float(arg))  # the step's own (simulated) duration
        elif cue == "gate":
            await self._gate(arg)
        elif cue == "hang":
            await asyncio.Event().wait()
        elif cue == "error":
            raise ExecutorError(arg or "scripted infrastructure failure", kind="browser",
                                step=index)
        elif cue == "crash":
            raise RuntimeError(arg or "scripted crash")
        elif cue == "exit":
            os._exit(int(arg or 17))
        elif cue == "big":
            details = {"blob": "x" * 20_000}
        return StepResult(
            index=index, action=action, instruction=instruction, status=status,
            duration_ms=_ms(began), strategy="selector", url=job.url, error=error,
            details=details,
        )

    async def _gate(self, name: str) -> None:
        assert self._redis is not None
        await self._redis.rpush(f"reached:{name}", os.getpid())
        await self._redis.blpop([f"gate:{name}"], timeout=0)


def _ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)
