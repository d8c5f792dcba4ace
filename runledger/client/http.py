"""``RunledgerClient``: the HTTP API as the command line uses it (httpx, async).

Where the API is: ``--api`` / ``RUNLEDGER_API``, else the ``runledger dev`` running on
``.runledger`` (its ``dev.json``). Every failure that is not the test's own — unreachable
server, refused key, an answer that is not what the API promises — is a ``ClientError``
with one line saying what happened; the command line turns it into exit code 2.

The live tail is parsed here from the ``text/event-stream`` lines (``id`` / ``event`` /
``data`` fields, blank line ends an event, ``:`` lines are keep-alive comments). A stream
cut before the run's terminal event is resumed with ``Last-Event-ID``, a few times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from ledger.domain import TERMINAL_TYPES

#: how often a cut live tail is resumed before the client gives up on it
STREAM_RESUMES = 5
#: how long a client waits for a run it expects (the next attempt of a failed run)
APPEAR_SECONDS = 60.0


class ClientError(Exception):
    """The API could not be used: not configured, unreachable, refused the key, or
    answered something unexpected. The message is one line for the user."""


class NotFound(ClientError):
    """The API answered 404 for a run or test."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    api_key: str | None = None


def resolve_endpoint(api: str | None, api_key: str | None,
                     data_dir: Path = Path(".runledger")) -> Endpoint:
    """``--api`` (or ``RUNLEDGER_API``, which typer already folded in), else a running
    ``runledger dev``; ``ClientError`` saying how to name one otherwise."""
    if not api:
        from runledger.dev import DevState

        state = DevState.read(data_dir)
        if state is None:
            raise ClientError("no API to talk to: pass --api URL, set RUNLEDGER_API, or "
                              "start `runledger dev` in this folder")
        api = state.api_url
    if not api.startswith(("http://", "https://")):
        raise ClientError(f"--api must be an http:// or https:// URL, got {api!r}")
    return Endpoint(api.rstrip("/"), api_key or None)


class RunledgerClient:
    """One HTTP connection pool for a command; ``async with`` opens and closes it."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self.endpoint = endpoint
        self._http = httpx.AsyncClient(base_url=endpoint.url, headers=headers,
                                       timeout=httpx.Timeout(timeout, read=None))

    async def __aenter__(self) -> RunledgerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    def run_page(self, run_id: str) -> str:
        """The run's page in the web UI."""
        return f"{self.endpoint.url}/ui/runs/{run_id}"

    # -- requests -------------------------------------------------------------------------

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the API at {self.endpoint.url}: "
                              f"{_describe(exc)}") from None
        if response.status_code == 404:
            raise NotFound(_problem(response))
        if response.status_code >= 400:
            raise ClientError(f"{method} {path}: {response.status_code} {_problem(response)}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def tests_by_name(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = await self.request("GET", "/tests", params=params)
            for test in page["items"]:
                found.setdefault(test["name"], test)  # newest first: the newest wins
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    async def runs(self, **params: Any) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v is not None}
        page: dict[str, Any] = await self.request("GET", "/runs", params=query)
        return page

    async def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = await self.request("GET", f"/runs/{run_id}")
        return run

    async def history(self, run_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.request("GET", f"/runs/{run_id}/events",
                                      params={"after": after, "limit": 1000})
            events += page["items"]
            if page.get("next_after") is None:
                return events
            after = page["next_after"]

    async def wait_for_run(self, run_id: str, *, within: float = APPEAR_SECONDS) -> bool:
        """Wait until the run exists (a retry being queued); False after ``within``."""
        deadline = asyncio.get_running_loop().time() + within
        delay = 0.05
        while True:
            try:
                await self.request("GET", f"/runs/{run_id}/events", params={"limit": 1})
                return True
            except NotFound:
                if asyncio.get_running_loop().time() > deadline:
                    return False
            # Nothing to wake on over HTTP: back off from 50 ms to 1 s.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- the live tail --------------------------------------------------------------------

    async def follow(self, run_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every event of the run, in order, until (and with) its terminal event."""
        last = 0
        resumes = 0
        while True:
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                async with self._http.stream("GET", f"/runs/{run_id}/stream",
                                             headers=headers) as response:
                    if response.status_code == 404:
                        raise NotFound(f"run {run_id} not found")
                    if response.status_code >= 400:
                        await response.aread()
                        raise ClientError(f"the live tail of run {run_id}: "
                                          f"{response.status_code} {_problem(response)}")
                    async for event in _events(response.aiter_lines()):
                        last = event["version"]
                        yield event
                        if event["type"] in TERMINAL_TYPES:
                            return
            except httpx.HTTPError as exc:
                if resumes >= STREAM_RESUMES:
                    raise ClientError(f"the live tail of run {run_id} broke off: "
                                      f"{_describe(exc)}") from None
            resumes += 1
            if resumes > STREAM_RESUMES:
                raise ClientError(f"the live tail of run {run_id} ended before the run did")
            await asyncio.sleep(min(0.2 * 2 ** resumes, 5.0))


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events → the API's event documents (``{run_id, version, type, ...}``)."""
    kind, data = "message", list[str]()
    async for line in lines:
        if not line:
            if data:
                document = orjson.loads("\n".join(data))
                document.setdefault("type", kind)
                yield document
            kind, data = "message", list[str]()
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        errors = body.get("errors")
        if isinstance(errors, list) and errors and not detail:
            detail = f"{detail}: " + "; ".join(
                f"{e.get('field') or e.get('loc')}: {e.get('message') or e.get('msg')}"
                if isinstance(e, dict) else str(e) for e in errors[:5])
        return str(detail or body)
    return str(body)


def _describe(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
