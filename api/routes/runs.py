"""``/runs``: queue, list, read, history, cancel (artifacts: ``api.routes.artifacts``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request, Response, status

from api.commands import IdempotencyKey
from api.deps import Principal, ServicesDep
from api.problems import responses
from api.schemas import (
    CancelRun,
    EventPage,
    QueueRun,
    RunAttempts,
    RunCancelled,
    RunOut,
    RunPage,
    RunQueued,
    RunStatus,
)
from api.views import with_links

# Full paths, no prefix: a route's path is then its whole template (metrics label it).
router = APIRouter(tags=["runs"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key returns the run the first request queued "
                    "(for 24 hours); the same key with a different body is refused (422)",
    ),
]


def artifact_linker(request: Request, run_id: UUID) -> Callable[[str], str]:
    """Absolute URLs of the run's artifacts (behind a proxy too: ``url_for`` honours the
    forwarded host and root path)."""

    def link(artifact_id: str) -> str:
        return str(request.url_for("get_artifact", run_id=run_id, artifact_id=artifact_id))
    return link


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunQueued,
             responses=responses(401, 404, 413, 422, 503))
async def queue_run(body: QueueRun, request: Request, response: Response,
                    services: ServicesDep, principal: Principal,
                    idempotency_key: IdempotencyKeyHeader = None) -> dict[str, Any]:
    """Queue a run of a test. Its steps are snapshotted now: later edits of the test do not
    change it. The run is picked up by a worker; follow it with `/runs/{run_id}/stream`."""
    key = None
    if idempotency_key is not None:
        key = IdempotencyKey.of(idempotency_key, principal=principal, route="POST /runs",
                                request=body.model_dump(mode="json"))
    queued = await services.commands.queue(body.test_id, idempotency=key)
    response.headers["Location"] = str(request.url_for("get_run", run_id=queued.run_id))
    if queued.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"run_id": queued.run_id, "status": "queued", "version": queued.version}


@router.get("/runs", response_model=RunPage, responses=responses(401, 422))
async def list_runs(
    services: ServicesDep,
    status: RunStatus | None = None,
    test_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Runs, newest first, optionally of one test or in one status; keyset-paginated."""
    items, next_cursor = await services.reads.page(
        status=status, test_id=test_id, limit=limit, cursor=cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/runs/{run_id}", response_model=RunOut, responses=responses(401, 404, 422))
async def get_run(run_id: UUID, request: Request, services: ServicesDep) -> dict[str, Any]:
    row, steps = await services.reads.run(run_id)
    link = artifact_linker(request, run_id)
    return {**row, "steps": [with_links(step, link) for step in steps]}


@router.get("/runs/{run_id}/attempts", response_model=RunAttempts,
            responses=responses(401, 404, 422))
async def list_attempts(run_id: UUID, services: ServicesDep) -> dict[str, Any]:
    """The attempts of the run's test run: a failed run of a test with `retries` is queued
    again as its next attempt, each attempt its own run."""
    items = await services.reads.attempts(run_id)
    flaky = len(items) > 1 and items[-1]["status"] == "passed"
    return {"items": items, "flaky": flaky}


@router.get("/runs/{run_id}/events", response_model=EventPage, responses=responses(401, 404, 422))
async def list_events(
    run_id: UUID,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Events after this version")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """The run's history from the ledger, in version order."""
    items, next_after = await services.reads.history(run_id, after=after, limit=limit)
    return {"items": items, "next_after": next_after}


@router.post("/runs/{run_id}/cancel", response_model=RunCancelled,
             responses=responses(401, 404, 409, 413, 422, 503))
async def cancel_run(run_id: UUID, services: ServicesDep,
                     body: Annotated[CancelRun | None, Body()] = None) -> dict[str, Any]:
    """Cancel a queued or running run; 409 when it already finished."""
    reason = (body or CancelRun()).reason
    run = await services.commands.cancel(run_id, reason=reason)
    return {"run_id": run.id, "status": "cancelled", "version": run.version}
