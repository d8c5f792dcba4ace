"""``GET /runs/feed``: the runs feed over SSE (``api.feed``), for the runs page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sse_starlette import EventSourceResponse

from api.auth import authenticate_stream
from api.deps import ServicesDep
from api.routes.stream import SSE_DOC, LastEventId, frame, sse_response

# Mounted before ``/runs/{run_id}``, which would otherwise take ``feed`` for a run id.
router = APIRouter(tags=["runs"], dependencies=[Depends(authenticate_stream)])

MAX_POSITION = 2**62


def _encode(change: dict[str, Any]) -> list[bytes]:
    return [frame(change, change["type"], change["position"])]


@router.get("/runs/feed", response_class=EventSourceResponse, responses=SSE_DOC)
async def runs_feed(
    services: ServicesDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_POSITION,
                                       description="Resume after this log position")] = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """Runs queued, started or ended, live, as `{position, run_id, type, version,
    timestamp}`; `id` is the log position (resume with `Last-Event-ID` or `after`).
    Without either it starts where `GET /runs` is: what the list cannot show yet comes
    first (runs committed but not yet in the runs model), then what happens from now on.
    Read `GET /runs/{run_id}` for the run's new row."""
    position = after
    if last_event_id is not None and last_event_id.strip().isdigit():
        position = min(int(last_event_id.strip()), MAX_POSITION)
    changes = await services.feed.open(position)
    return sse_response(services, changes, _encode)
