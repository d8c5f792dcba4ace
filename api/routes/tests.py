"""``/tests``: the test definitions runs are queued from."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.deps import ServicesDep
from api.errors import InvalidInput, PreconditionFailed
from api.navigation import ensure_navigable
from api.problems import responses
from api.schemas import AssetOut, TestOut, TestPage, TestStats
from ledger.definition import TestSpec

# Full paths, no prefix: a route's path is then its whole template (metrics label it).
router = APIRouter(tags=["tests"])

IfMatch = Annotated[
    str | None,
    Header(description="Only if the test is still at this `ETag` (from GET), else 412"),
]


def etag(row: dict[str, Any]) -> str:
    return f'"{row["version"]}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names; None for no header or ``*`` (any version)."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 9:
        raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag of this test")
    return int(tag)


@router.post(
    "/tests", status_code=status.HTTP_201_CREATED, response_model=TestOut,
    responses=responses(401, 413, 422),
)
async def create_test(spec: TestSpec, request: Request, response: Response,
                      services: ServicesDep) -> dict[str, Any]:
    services.commands.ensure_queueable(spec)
    ensure_navigable(spec, services.settings.navigation)
    row = await services.tests.create(spec)
    response.headers["Location"] = str(request.url_for("get_test", test_id=row["id"]))
    response.headers["ETag"] = etag(row)
    return row


@router.get("/tests", response_model=TestPage, responses=responses(401, 422))
async def list_tests(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Tests, oldest first, each with its statistics (`stats`)."""
    items, next_cursor = await services.tests.page(limit=limit, cursor=cursor)
    stats = await services.stats.of_tests([str(item["id"]) for item in items])
    return {"items": [{**item, "stats": stats[str(item["id"])]} for item in items],
            "next_cursor": next_cursor}


@router.get("/tests/{test_id}/stats", response_model=TestStats,
            responses=responses(401, 404, 422))
async def get_test_stats(test_id: UUID, services: ServicesDep) -> dict[str, Any]:
    """The test's last 30 results, pass rate and flakiness (flip rate between consecutive
    results; `flaky` after two flips), from the `test_stats` read model. A deleted test
    keeps its statistics."""
    stats = (await services.stats.of_tests([str(test_id)]))[str(test_id)]
    if stats["runs"] == 0:
        await services.tests.get(test_id)  # 404 for a test that never existed
    return stats


@router.get("/tests/{test_id}", response_model=TestOut, responses=responses(401, 404, 422))
async def get_test(test_id: UUID, response: Response, services: ServicesDep) -> dict[str, Any]:
    row = await services.tests.get(test_id)
    response.headers["ETag"] = etag(row)
    return row


@router.put("/tests/{test_id}", response_model=TestOut,
            responses=responses(401, 404, 412, 413, 422))
async def update_test(test_id: UUID, spec: TestSpec, response: Response,
                      services: ServicesDep, if_match: IfMatch = None) -> dict[str, Any]:
    """Replace the test. Runs already queued keep the steps they were queued with."""
    services.commands.ensure_queueable(spec)
    ensure_navigable(spec, services.settings.navigation)
    row = await services.tests.update(test_id, spec, if_version=expected_version(if_match))
    response.headers["ETag"] = etag(row)
    return row


@router.delete("/tests/{test_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=responses(401, 404, 412, 422))
async def delete_test(test_id: UUID, services: ServicesDep, if_match: IfMatch = None) -> Response:
    """Delete the test. Its runs and their history stay."""
    await services.tests.delete(test_id, if_version=expected_version(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/assets", status_code=status.HTTP_201_CREATED, response_model=AssetOut,
             responses=responses(401, 413, 422),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
async def store_asset(
    request: Request, services: ServicesDep,
    content_type: Annotated[str, Header(max_length=255, description=(
        "The file's media type, as the page's file input will see it"))] = (
        "application/octet-stream"),
) -> dict[str, Any]:
    """Store a file that `upload` steps send (the raw body; `MAX_BODY_BYTES` bounds it).
    Content-addressed: the same bytes twice are one file with one id."""
    data = await request.body()
    if not data:
        raise InvalidInput([("body", "file", "is empty: send the file's bytes as the body")])
    ref = await services.artifacts.put(data, kind="asset", content_type=content_type)
    return {"id": ref.id, "size": len(data), "content_type": content_type}
