"""The API's edge refuses what the ledger cannot store — NUL, C0 controls, lone surrogates —
in every string field of every route, naming the field; 4-byte characters and megabyte
strings never give a 5xx; and afterwards the pipeline still runs a test end to end.

The list of fields is generated from the app's OpenAPI document: a new route or field is
covered without being listed here (a new request body needs a valid example below, or the
test says so)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from api.edges import FREE_TEXT
from ledger.definition import location
from ledger.streams import QUEUE
from projections.queries import RunQueries
from tests.api.helpers import FakeWorker, a_test, wait_until
from tests.api.test_tests import assert_problem

pytestmark = pytest.mark.e2e

Path = tuple[str | int, ...]

#: a valid body per request schema; each target field is then overwritten in a copy
EXAMPLES: dict[str, Any] = {
    "TestSpec": lambda ids: a_test(),
    "QueueRun": lambda ids: {"test_id": ids["test_id"]},
    "LegacyRunRequest": lambda ids: {"test_id": ids["test_id"]},
    "CancelRun": lambda ids: {"reason": "stopped by the test"},
}


@dataclass(frozen=True)
class Target:
    method: str
    template: str
    where: str  # body | query | path
    path: Path  # the parameter's name, or the member's path in the body
    schema: str | None = None  # the request body's schema name

    @property
    def field(self) -> str:
        """How the 422 names it (``api.problems``)."""
        return location(self.path)

    @property
    def free_text(self) -> bool:
        return self.path[-1] in FREE_TEXT

    def __str__(self) -> str:
        return f"{self.method} {self.template} {self.where}.{self.field}"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _variants(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema and its ``anyOf`` alternatives, resolved (``null`` left out)."""
    schema = _resolve(document, schema)
    if "anyOf" in schema:
        return [v for s in schema["anyOf"] for v in _variants(document, s)]
    return [] if schema.get("type") == "null" else [schema]


def _string_paths(document: dict[str, Any], schema: dict[str, Any], path: Path = ()
                  ) -> Iterator[Path]:
    for variant in _variants(document, schema):
        if variant.get("type") == "string":
            yield path
        elif variant.get("type") == "array":
            yield from _string_paths(document, variant["items"], (*path, 0))
        for name, member in variant.get("properties", {}).items():
            yield from _string_paths(document, member, (*path, name))


def _schema_name(document: dict[str, Any], schema: dict[str, Any]) -> str:
    refs = [s["$ref"] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s]
    assert len(refs) == 1, schema
    return str(refs[0].rsplit("/", 1)[1])


def string_fields(document: dict[str, Any]) -> list[Target]:
    """Every string a client can send: query and path parameters, body members."""
    found: list[Target] = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] in ("query", "path") and list(
                    _string_paths(document, param["schema"])
                ):
                    found.append(Target(method.upper(), template, param["in"],
                                        (param["name"],)))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                name = _schema_name(document, body["schema"])
                found += [Target(method.upper(), template, "body", path, name)
                          for path in _string_paths(document, body["schema"])]
    return found


def _with(body: Any, path: Path, value: str) -> Any:
    """A copy of ``body`` with ``value`` at ``path`` (the member is added when absent)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body)
        items += [{}] * (head + 1 - len(items))  # an absent list's item is added too
        items[head] = _with(items[head], rest, value)
        return items
    copy = dict(body)
    copy[head] = _with(copy.get(head, {}), rest, value)
    return copy


# (label, value, must be refused with 422 naming the field)
MEGABYTE = "x" * 1_000_000
BAD = [("NUL", "stop\x00now", True), ("ESC", "a\x1b[31mred", True),
       ("BEL", "\x07", True), ("DEL", "a\x7fb", True), ("lone surrogate", "a\ud800b", True)]
ODD = [("4-byte", "\U0001f600\U00010348" * 8, False),
       ("megabyte", MEGABYTE, True),
       ("megabyte of 4-byte", "\U0001f600" * 250_000, True)]


async def _send(client: httpx.AsyncClient, target: Target, value: str,
                ids: dict[str, str]) -> httpx.Response:
    params: dict[str, str] = {}
    values = {"run_id": ids["run_id"], "test_id": ids["test_id"], "artifact_id": "a" * 64}
    if target.where == "path":
        values[str(target.path[0])] = value
    if target.where == "query":
        params[str(target.path[0])] = value
    url = target.template.format(**{k: quote(v, safe="") for k, v in values.items()})
    content = None
    if target.schema is not None:
        example = EXAMPLES.get(target.schema)
        assert example is not None, f"add a valid example body for {target.schema}"
        body = example(ids)
        if target.where == "body":
            body = _with(body, target.path, value)
        # ASCII-escaped only when it must be: a lone surrogate has no UTF-8 form, while
        # escaping a megabyte of 4-byte characters would exceed the body limit.
        ascii_only = any("\ud800" <= c <= "\udfff" for c in value[:64])
        content = json.dumps(body, ensure_ascii=ascii_only).encode()
    return await client.request(target.method, url, params=params, content=content,
                                headers={"Content-Type": "application/json"})


def _names(response: httpx.Response, target: Target) -> bool:
    return any(e["in"] == target.where and e["field"] == target.field
               for e in response.json().get("errors") or ())


async def _ids(client: httpx.AsyncClient) -> dict[str, str]:
    test_id = (await client.post("/tests", json=a_test())).json()["id"]
    run = await client.post("/runs", json={"test_id": test_id})
    return {"test_id": test_id, "run_id": run.json()["run_id"]}


async def test_the_field_list_covers_every_route_with_input(app: FastAPI) -> None:
    targets = {str(t) for t in string_fields(app.openapi())}
    for expected in ("POST /tests body.definition.steps[0].instruction",
                     "PUT /tests/{test_id} body.url", "POST /runs/{run_id}/cancel body.reason",
                     "GET /runs query.cursor", "GET /tests query.cursor",
                     "POST /test/run body.test_id",
                     "GET /runs/{run_id}/artifacts/{artifact_id} path.artifact_id"):
        assert expected in targets


async def test_every_string_field_refuses_what_the_ledger_cannot_store(
    app: FastAPI, client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool,
    redis: aioredis.Redis,
) -> None:
    ids = await _ids(client)
    targets = string_fields(app.openapi())
    for target in targets:
        strict = not target.free_text
        cases = [*BAD, *ODD, ("newline", "a\nb", strict), ("tab", "a\tb", strict)]
        for label, value, refused in cases:
            if target.where != "body" and label.startswith("lone"):
                continue  # a URL cannot carry one: its UTF-8 form does not exist
            if target.where != "body" and label.startswith("megabyte"):
                # A URL that long never reaches an app: HTTP servers bound the request
                # line (h11: 16 KiB) and httpx refuses one over 64 KiB.
                value = value[:5_000]  # ≤ 60 KB percent-encoded
            response = await _send(client, target, value, ids)
            what = f"{target} with {label}: {response.status_code} {response.text[:300]}"
            assert response.status_code < 500, what
            if refused:
                assert response.status_code == 422, what
                assert _names(response, target), what
            elif response.status_code == 422:
                assert response.json()["errors"], what
            if refused and label in ("NUL", "ESC") and target.where == "body":
                # the offending value is shown, escaped
                shown = [e["message"] for e in response.json()["errors"]]
                assert any("\\x00" in m or "\\x1b" in m for m in shown), what
    await ordinary_run_passes(client, worker, pool, redis)


async def test_cancel_with_nul_is_refused_and_the_pipeline_goes_on(
    client: httpx.AsyncClient, worker: FakeWorker, pool: asyncpg.Pool, redis: aioredis.Redis
) -> None:
    """The replayed report: this request once bricked the installation."""
    ids = await _ids(client)
    response = await client.post(f"/runs/{ids['run_id']}/cancel",
                                 json={"reason": "stop\u0000now"})
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "reason"
    assert problem["errors"][0]["in"] == "body"
    assert "stop\\x00now" in problem["errors"][0]["message"]
    events = (await client.get(f"/runs/{ids['run_id']}/events")).json()["items"]
    assert [e["type"] for e in events] == ["queued"]
    await ordinary_run_passes(client, worker, pool, redis)


async def test_unknown_action_names_the_value_sent(client: httpx.AsyncClient) -> None:
    steps = [{"action": "teleport", "instruction": "Go"}]
    problem = assert_problem(await client.post("/tests", json=a_test(steps=steps)), 422)
    [error] = problem["errors"]
    assert error["field"] == "definition.steps[0].action"
    assert "'teleport'" in error["message"]


async def test_line_breaks_are_free_text_only(client: httpx.AsyncClient) -> None:
    steps = [{"action": "fill", "instruction": "Type\tthe\r\naddress", "value": "1 Road\nTown"}]
    assert (await client.post("/tests", json=a_test(steps=steps))).status_code == 201
    problem = assert_problem(await client.post("/tests", json=a_test(name="a\nb")), 422)
    assert problem["errors"][0]["field"] == "name"
    assert "line break" in problem["errors"][0]["message"]


async def ordinary_run_passes(client: httpx.AsyncClient, worker: FakeWorker,
                              pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
    """A new run is queued, relayed to ``runs:queue``, runs and is projected ``passed``:
    every follower is still alive."""
    test_id = (await client.post("/tests", json=a_test("after the junk"))).json()["id"]
    run_id = (await client.post("/runs", json={"test_id": test_id})).json()["run_id"]

    async def relayed() -> bool:
        jobs = await redis.xrange(QUEUE)
        return any(fields.get("run_id") == run_id for _id, fields in jobs)
    await wait_until(relayed, what=f"run {run_id} relayed to {QUEUE}")
    await worker.finish(uuid.UUID(run_id), steps=2)
    queries = RunQueries(pool)

    async def projected() -> bool:
        row = await queries.get_run(uuid.UUID(run_id))
        return row is not None and row["status"] == "passed"
    await wait_until(projected, what=f"run {run_id} projected as passed")
    assert (await client.get(f"/runs/{run_id}")).json()["status"] == "passed"
