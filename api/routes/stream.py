"""The live tails over SSE: ``/runs/{run_id}/stream`` and the old ``/results/{run_id}/stream``.

Each event goes out as ``id: <version>``, ``event: <type>``, ``data: <JSON>``. A client that
reconnects with ``Last-Event-ID`` (browsers do it by themselves) or ``?after=`` receives every
later event exactly once. The stream closes after the run's terminal event. A disconnecting
client only ends its own stream: the run is not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any
from uuid import UUID

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse

from api.auth import authenticate_stream
from api.compat import legacy_events
from api.deps import ServicesDep
from api.errors import InvalidInput
from api.metrics import Metrics
from api.problems import responses
from api.routes.runs import artifact_linker

router = APIRouter(dependencies=[Depends(authenticate_stream)])

SEND_TIMEOUT_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 2.0
MAX_VERSION = 2**31 - 1
SSE_DOC = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-sent events until the run's terminal event",
    },
    **responses(401, 404, 422),
}

After = Annotated[int | None, Query(ge=0, le=MAX_VERSION,
                                    description="Resume after this version (or Last-Event-ID)")]
LastEventId = Annotated[str | None, Header(description="The `id` of the last event received")]


def resume_position(after: int | None, last_event_id: str | None) -> int:
    """Where to resume. ``Last-Event-ID`` wins: a browser reconnecting sends it, while the
    URL still carries the ``after`` the stream was first opened with."""
    if last_event_id is not None and last_event_id.strip():
        value = last_event_id.strip()
        if not value.isdigit() or int(value) > MAX_VERSION:
            raise InvalidInput([("header", "Last-Event-ID",
                                 "must be the id of an event of this stream (a version)")])
        return int(value)
    return after or 0


Encode = Callable[[dict[str, Any]], list[bytes]]
_END = object()


def frame(data: dict[str, Any], event: str, event_id: int | None) -> bytes:
    """One SSE message. orjson never emits a newline, so ``data`` is a single line."""
    head = f"id: {event_id}\r\nevent: {event}\r\n" if event_id is not None else \
        f"event: {event}\r\n"
    return head.encode() + b"data: " + orjson.dumps(data) + b"\r\n\r\n"


def native(event: dict[str, Any]) -> list[bytes]:
    return [frame(event, event["type"], event["version"])]


def legacy(artifact_url: Callable[[str], str]) -> Encode:
    def encode(event: dict[str, Any]) -> list[bytes]:
        pairs = legacy_events(event, artifact_url)
        # Only the last message of a version carries its id: a client cut off in between
        # resumes from the previous version and misses nothing.
        return [
            frame({"type": kind, "timestamp": event["timestamp"], "data": data}, kind,
                  event["version"] if position == len(pairs) - 1 else None)
            for position, (kind, data) in enumerate(pairs)
        ]
    return encode


async def _until_shutdown(
    metrics: Metrics, events: AsyncGenerator[dict[str, Any], None], encode: Encode,
    shutdown: anyio.Event, closing: asyncio.Event,
) -> AsyncIterator[bytes]:
    """The encoded events, until the run's terminal event or the server's shutdown
    (``closing``, set by ``api.server``; ``shutdown``, sse-starlette's own detection).

    A pump task reads the tail into a queue, so that shutdown can stop the pump while this
    generator returns normally: the response then ends properly and clients reconnect
    with ``Last-Event-ID`` (to another replica) instead of seeing a broken stream. The
    queue needs no bound: a run has at most a few hundred events.
    """
    metrics.streams.inc()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    for message in encode(event):
                        queue.put_nowait(message)
        finally:
            queue.put_nowait(_END)

    pumping = asyncio.create_task(pump(), name="sse-pump")
    stopping = asyncio.create_task(shutdown.wait(), name="sse-shutdown")
    stopping.add_done_callback(lambda _: pumping.cancel())
    closed = asyncio.create_task(closing.wait(), name="sse-closing")
    closed.add_done_callback(lambda _: pumping.cancel())
    try:
        while (message := await queue.get()) is not _END:
            yield message
        if not pumping.cancelled():
            pumping.result()  # a failed tail fails the response, loudly
    finally:
        stopping.cancel()
        closed.cancel()
        if not pumping.done():  # the client went away, or the server is stopping
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
        metrics.streams.dec()


def sse_response(
    services: ServicesDep, events: AsyncGenerator[dict[str, Any], None], encode: Encode
) -> EventSourceResponse:
    shutdown = anyio.Event()
    return EventSourceResponse(
        _until_shutdown(services.metrics, events, encode, shutdown, services.closing),
        ping=services.settings.sse_ping_seconds, send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
        shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


@router.get("/runs/{run_id}/stream", tags=["runs"], response_class=EventSourceResponse,
            responses=SSE_DOC)
async def stream_run(run_id: UUID, services: ServicesDep, after: After = None,
                     last_event_id: LastEventId = None) -> EventSourceResponse:
    """Live tail: the history after `after` / `Last-Event-ID`, then live events, until the
    terminal event. Keep-alive comments every 15 s."""
    events = await services.tail.open(run_id, resume_position(after, last_event_id))
    return sse_response(services, events, native)


@router.get("/results/{run_id}/stream", tags=["compatibility"],
            response_class=EventSourceResponse, responses=SSE_DOC)
async def stream_result(run_id: UUID, request: Request, services: ServicesDep,
                        after: After = None, last_event_id: LastEventId = None
                        ) -> EventSourceResponse:
    """The old stream: `log`, `screenshot`, `complete`, `error` events; `id` is the version."""
    events = await services.tail.open(run_id, resume_position(after, last_event_id))
    return sse_response(services, events, legacy(artifact_linker(request, run_id)))
