"""The web pages: ``/ui/runs``, ``/ui/runs/{id}``, ``/ui/tests/{id}`` and ``/docs``.

Static HTML, CSS and JavaScript from ``api/ui`` (no build step, nothing from a CDN); Swagger
UI's files come from the ``fastapi-offline`` package. The pages hold no data and need no
key: their scripts ask for one when the API answers 401, keep it for the tab's session
(``sessionStorage``) and send it in headers — streams are read with ``fetch`` for that
reason; images and downloads use signed links (``api.signing``). Every page and file here
goes out under a strict Content-Security-Policy: scripts and styles from this origin only,
nothing inline.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from uuid import UUID

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI = Path(__file__).resolve().parent.parent / "ui"
#: Swagger UI's dist files, as the package ships them (its data folder)
SWAGGER = Path(str(files("fastapi_offline") / "static"))

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


class _Assets(StaticFiles):
    """Static files under the pages' security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def _page(name: str) -> FileResponse:
    return FileResponse(UI / name, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=307)


@router.get("/ui")
async def ui_home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=307)


@router.get("/ui/runs")
async def runs_page() -> FileResponse:
    return _page("runs.html")


@router.get("/ui/runs/{run_id}")
async def run_page(run_id: UUID) -> FileResponse:
    return _page("run.html")


@router.get("/ui/tests/{test_id}")
async def test_page(test_id: UUID) -> FileResponse:
    return _page("test.html")


@router.get("/docs")
async def docs_page() -> FileResponse:
    return _page("docs.html")


def mount(app: FastAPI) -> None:
    """The pages' routes and their static files."""
    app.include_router(router)
    app.mount("/ui/static", _Assets(directory=UI / "static"), name="ui-static")
    app.mount("/docs/assets", _Assets(directory=SWAGGER), name="swagger-ui")
