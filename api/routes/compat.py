"""Routes of the system runledger replaces, so its clients keep working unchanged."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from api.deps import ServicesDep
from api.problems import responses
from api.routes.runs import artifact_linker
from api.schemas import LegacyResult, LegacyRunRequest, LegacyRunStarted

router = APIRouter(tags=["compatibility"])


@router.post("/test/run", response_model=LegacyRunStarted,
             responses=responses(401, 404, 413, 422, 503))
async def legacy_run(body: LegacyRunRequest, services: ServicesDep) -> dict[str, Any]:
    """Queue a run of a test (the old route: 200 and `{run_id}`)."""
    queued = await services.commands.queue(body.test_id)
    return {"run_id": queued.run_id}


@router.get("/results/{run_id}", response_model=LegacyResult,
            responses=responses(401, 404, 422))
async def legacy_result(run_id: UUID, request: Request, services: ServicesDep) -> dict[str, Any]:
    """A run in the old result shape; screenshots link to the artifact route."""
    return await services.reads.legacy(run_id, artifact_linker(request, run_id))
