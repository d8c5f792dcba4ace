"""A stopping API server ends its open streams cleanly: a complete response (clients then
reconnect with ``Last-Event-ID``, to another replica), at once rather than cut when the
grace period runs out — whether the server is the whole process (``runledger api``) or one
service of several (``runledger dev``, stopped by its owner's event)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from tests.api.helpers import AUTH, SseReader, a_test, wait_until

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_stopping_ends_open_streams_with_a_complete_response(make_settings: Any) -> None:
    from api.server import SHUTDOWN_GRACE_SECONDS, serve

    port = free_port()
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(make_settings(port=port), stop))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH,
                                 timeout=SHUTDOWN_GRACE_SECONDS * 3) as http:
        async def healthy() -> bool:
            try:
                return (await http.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(healthy, within=30, what="the server to answer")
        test_id = (await http.post("/tests", json=a_test())).json()["id"]
        run_id = (await http.post("/runs", json={"test_id": test_id})).json()["run_id"]
        async with http.stream("GET", f"/runs/{run_id}/stream") as response:
            reader = SseReader(response).events()
            first = await anext(reader)
            assert (first.event, first.id) == ("queued", "1")  # live, the run never ends
            stop.set()
            # A stream cut by the server raises httpx.RemoteProtocolError here (an
            # incomplete chunked body); a stream ended cleanly just ends.
            assert [event async for event in reader] == []
            # Ended by the shutdown itself, not by the grace period running out.
            assert not serving.done()
    assert await asyncio.wait_for(serving, 30) == 0
