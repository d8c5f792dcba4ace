"""A run's artifacts: ``GET /runs/{run_id}/artifacts/{artifact_id}`` with the API key or a
signed link, and ``…/link`` to get such a link (``api.signing``) for a browser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse

from api.auth import Bearer, HeaderKey, authenticate
from api.deps import ServicesDep
from api.problems import responses
from api.schemas import ArtifactLink

router = APIRouter(tags=["runs"])

ArtifactId = Annotated[str, Path(min_length=1, max_length=128,
                                 description="The artifact's id (its sha256)")]
Expires = Annotated[int | None, Query(ge=0, le=2**62,
                                      description="Signed links: when it expires (Unix seconds)")]
Signature = Annotated[str | None, Query(max_length=128,
                                        description="Signed links: the link's signature")]


async def authorize_artifact(
    request: Request, run_id: UUID, artifact_id: ArtifactId, services: ServicesDep,
    bearer: Bearer, header: HeaderKey, expires: Expires = None, signature: Signature = None,
) -> str:
    """The API key as everywhere, or a signed link for exactly this run and artifact: an
    ``<img>`` cannot send a header, and a key must never sit in a URL."""
    if bearer is None and header is None and (expires is not None or signature is not None):
        services.signer.verify(run_id, artifact_id, expires, signature)
        return "signed-link"
    return await authenticate(request, bearer, header)


@router.get(
    "/runs/{run_id}/artifacts/{artifact_id}", response_class=Response,
    dependencies=[Depends(authorize_artifact)],
    responses={
        200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
              "description": "The artifact's bytes, with the content type it was stored "
                             "with (image/png for screenshots, application/zip for traces)"},
        206: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
              "description": "The byte range a `Range` header asked for (`Content-Range`)"},
        416: {"description": "The `Range` lies beyond the end (`Content-Range: bytes */size`)"},
        **responses(401, 404, 422),
    },
)
async def get_artifact(run_id: UUID, artifact_id: ArtifactId, services: ServicesDep) -> Response:
    """A screenshot or trace of the run, streamed from disk; `Range` requests get 206 (416
    beyond the end). Artifacts are content-addressed: immutable. Send the API key, or use a
    signed link from `…/link` (`expires` and `signature`)."""
    ref, stored = await services.reads.artifact(run_id, artifact_id)
    return FileResponse(
        stored.path, stat_result=stored.stat,
        media_type=ref.get("content_type") or "application/octet-stream",
        headers={
            "ETag": f'"{artifact_id}"',
            "Cache-Control": "private, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )


@router.get("/runs/{run_id}/artifacts/{artifact_id}/link", response_model=ArtifactLink,
            dependencies=[Depends(authenticate)], responses=responses(401, 404, 422))
async def link_artifact(run_id: UUID, artifact_id: ArtifactId, request: Request,
                        services: ServicesDep) -> dict[str, Any]:
    """A short-lived signed link to the artifact (`SIGNED_URL_SECONDS`), bound to this run
    and artifact: for an `<img>` or a download link, which cannot send the key."""
    await services.reads.artifact(run_id, artifact_id)  # 404 unless the run has it
    expires, signature = services.signer.sign(run_id, artifact_id)
    url = request.url_for("get_artifact", run_id=run_id, artifact_id=artifact_id)
    return {"url": str(url.include_query_params(expires=expires, signature=signature)),
            "expires_at": datetime.fromtimestamp(expires, UTC)}
