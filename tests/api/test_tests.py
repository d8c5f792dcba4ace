"""``/tests``: create, read, update, delete, page — and the input rules."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.helpers import STEPS, a_test

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:runledger:problem:")
    assert body["title"] and body["detail"]
    return body


async def test_create_read_update_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/tests", json=a_test())
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"http://testserver/tests/{body['id']}"
    assert created.headers["etag"] == '"1"'
    assert body["name"] == "login" and body["version"] == 1
    # unset optional fields come back as null
    assert [{k: v for k, v in step.items() if v is not None}
            for step in body["definition"]["steps"]] == STEPS

    read = await client.get(f"/tests/{body['id']}")
    assert read.status_code == 200 and read.json() == body and read.headers["etag"] == '"1"'

    changed = a_test("login v2", STEPS[:2])
    updated = await client.put(f"/tests/{body['id']}", json=changed, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "login v2" and updated.json()["version"] == 2
    assert len(updated.json()["definition"]["steps"]) == 2
    assert updated.json()["created_at"] == body["created_at"]
    assert updated.headers["etag"] == '"2"'

    stale = await client.put(f"/tests/{body['id']}", json=a_test(), headers={"If-Match": '"1"'})
    assert_problem(stale, 412)
    stale_delete = await client.delete(f"/tests/{body['id']}", headers={"If-Match": '"1"'})
    assert_problem(stale_delete, 412)

    deleted = await client.delete(f"/tests/{body['id']}", headers={"If-Match": '"2"'})
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await client.get(f"/tests/{body['id']}"), 404)
    assert_problem(await client.delete(f"/tests/{body['id']}"), 404)
    assert_problem(await client.put(f"/tests/{body['id']}", json=a_test()), 404)


async def test_pages_cover_every_test_once_in_order(client: httpx.AsyncClient) -> None:
    created = []
    for index in range(23):
        response = await client.post("/tests", json=a_test(f"t{index}"))
        created.append(response.json()["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/tests", params=params)).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        if pages == 2:  # a test created mid-way is newer than the cursor: not on later pages
            await client.post("/tests", json=a_test("late"))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert seen == list(reversed(created))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (a_test(steps=[*STEPS[:3], {"action": "fill", "instruction": "x"}]),
         "definition.steps[3].value"),
        (a_test(steps=[{"action": "teleport", "instruction": "x"}]), "definition.steps[0].action"),
        ({**a_test(), "colour": "red"}, "colour"),
        (a_test(steps=[{**STEPS[0], "selector": "#x"}]), "definition.steps[0].selector"),
        ({**a_test(), "url": "ftp://example.com"}, "url"),
        (a_test(steps=[]), "definition.steps"),
        ({"name": "x", "url": "http://x/"}, "definition"),
    ],
)
async def test_invalid_definitions_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(await client.post("/tests", json=body), 422)
    assert field in [error["field"] for error in problem["errors"]], problem
    assert all(error["in"] == "body" for error in problem["errors"])
    assert (await client.get("/tests")).json()["items"] == []


async def test_definition_whose_run_could_not_be_queued_is_refused(
    client: httpx.AsyncClient,
) -> None:
    # 40 steps of 1,000 characters each: valid steps, but the queued event of a run would
    # exceed the ledger's event size limit, so refuse it now rather than at POST /runs.
    steps = [{"action": "fill", "instruction": f"Fill {i}", "value": "v" * 1000}
             for i in range(40)]
    problem = assert_problem(await client.post("/tests", json=a_test(steps=steps)), 422)
    assert problem["errors"][0]["field"] == "definition"


async def test_malformed_input_is_named(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/tests/not-a-uuid"), 422)
    assert problem["errors"][0] == {"in": "path", "field": "test_id",
                                    "message": problem["errors"][0]["message"]}
    problem = assert_problem(await client.get("/tests", params={"limit": 201}), 422)
    assert problem["errors"][0]["field"] == "limit"
    problem = assert_problem(await client.get("/tests", params={"cursor": "garbage!"}), 422)
    assert problem["errors"][0]["field"] == "cursor"
    problem = assert_problem(
        await client.post("/tests", content=b"{not json", headers={"content-type":
                                                                   "application/json"}), 422)
    assert problem["errors"][0]["in"] == "body"


async def test_bodies_over_the_limit_are_refused(client: httpx.AsyncClient) -> None:
    big = a_test(steps=[{"action": "fill", "instruction": "x", "value": "v" * 9_000}] * 150)
    problem = assert_problem(await client.post("/tests", json=big), 413)
    assert "1048576" in problem["detail"]

    async def chunks() -> Any:  # no Content-Length: counted while reading
        for _ in range(20):
            yield b" " * 100_000
            await asyncio.sleep(0)

    assert_problem(await client.post("/tests", content=chunks(),
                                     headers={"content-type": "application/json"}), 413)
    assert (await client.get("/tests")).json()["items"] == []


async def test_upload_files_are_stored_as_assets_the_worker_reads(
    client: httpx.AsyncClient, settings: Any
) -> None:
    import hashlib

    from ledger.artifacts import FileArtifactStore

    cv = b"%PDF-1.4 my cv"
    stored = await client.post("/assets", content=cv,
                               headers={"Content-Type": "application/pdf"})
    assert stored.status_code == 201, stored.text
    asset = stored.json()
    assert asset == {"id": hashlib.sha256(cv).hexdigest(), "size": len(cv),
                     "content_type": "application/pdf"}
    again = await client.post("/assets", content=cv, headers={"Content-Type": "application/pdf"})
    assert again.json()["id"] == asset["id"]  # the same bytes are one file
    # The worker reads upload steps' files from the same store (a shared ARTIFACTS_DIR).
    assert await FileArtifactStore(settings.artifacts_dir).get(asset["id"]) == cv

    step = {"action": "upload", "instruction": "Attach the CV", "target": "Attachment",
            "files": [{"id": asset["id"], "name": "cv.pdf", "content_type": "application/pdf"}]}
    created = await client.post("/tests", json=a_test("apply", steps=[step]))
    assert created.status_code == 201, created.text

    empty = await client.post("/assets", content=b"")
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "file", empty.json()
