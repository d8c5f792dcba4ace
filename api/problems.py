"""Errors become ``application/problem+json`` (RFC 9457) here, from ONE table.

Routes never catch domain errors: they propagate to the handlers registered by
``install``, which look the exception's class (or its nearest base) up in ``PROBLEMS``.
Anything not in the table is a bug: the request-context middleware logs it with its
request id and answers 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.edges import SHOWN_CHARS
from api.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    TooManyFailedKeys,
    Unauthorized,
)
from ledger.artifacts import ArtifactNotFound
from ledger.definition import location
from ledger.errors import (
    ConcurrencyConflict,
    EventTooLarge,
    InvalidDefinition,
    InvalidTransition,
    RunNotFound,
    TransientStoreError,
    UndecodableEvent,
)
from ledger.text import escape
from projections.errors import InvalidCursor

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:runledger:problem:"


@dataclass(frozen=True)
class Kind:
    status: int
    slug: str
    title: str
    headers: tuple[tuple[str, str], ...] = ()
    #: the body's ``detail`` instead of the exception's text. For outages: a driver's message
    #: names internal hosts and ports, which is for the log, not for clients.
    detail: str | None = None


#: exception class → problem. Looked up along the exception's MRO, nearest class first.
PROBLEMS: dict[type[Exception], Kind] = {
    RunNotFound: Kind(404, "run-not-found", "Run not found"),
    ArtifactNotFound: Kind(404, "artifact-not-found", "Artifact not found"),
    NotFound: Kind(404, "not-found", "Not found"),
    InvalidTransition: Kind(409, "run-finished", "The run does not allow this command"),
    ConcurrencyConflict: Kind(409, "conflict", "Another writer changed the run; retry"),
    PreconditionFailed: Kind(412, "precondition-failed", "The resource has changed"),
    InvalidDefinition: Kind(422, "invalid-definition", "Invalid test definition"),
    EventTooLarge: Kind(422, "definition-too-large", "Test definition too large"),
    InvalidCursor: Kind(422, "invalid-input", "Invalid input"),
    InvalidInput: Kind(422, "invalid-input", "Invalid input"),
    Unauthorized: Kind(
        401, "unauthorized", "Missing or invalid API key",
        (("WWW-Authenticate", 'Bearer realm="runledger"'),),
    ),
    TooManyFailedKeys: Kind(429, "too-many-failed-keys", "Too many wrong API keys"),
    PayloadTooLarge: Kind(413, "payload-too-large", "Request body too large"),
    TransientStoreError: Kind(
        503, "database-unavailable", "The database is temporarily unavailable",
        (("Retry-After", "1"),), detail="the database is unavailable; retry shortly",
    ),
    # A parked event in the run's history (see `runledger followers`): the answer names the
    # run and the event; retrying cannot help, and the event stays in the immutable log.
    UndecodableEvent: Kind(500, "event-undecodable", "An event of this run cannot be read"),
    RedisError: Kind(
        503, "redis-unavailable", "Redis is temporarily unavailable",
        (("Retry-After", "1"),), detail="Redis is unavailable; retry shortly",
    ),
}


class FieldError(BaseModel):
    """One offending value of a 422 problem."""

    model_config = ConfigDict(populate_by_name=True)

    in_: str = Field(alias="in", description="where it was sent: body, query, path or header")
    field: str = Field(description="e.g. `definition.steps[3].value`, `limit`, `run_id`")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if request_id:
        body["request_id"] = request_id
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def kind_of(exc: BaseException) -> Kind | None:
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return None


def field_errors(exc: BaseException) -> list[dict[str, str]] | None:
    """The ``errors`` member: which field, where, and what is wrong with it."""
    if isinstance(exc, InvalidInput):
        return [{"in": w, "field": f, "message": m} for w, f, m in exc.errors]
    if isinstance(exc, InvalidDefinition):
        return [{"in": "body", "field": f, "message": m} for f, m in exc.errors]
    if isinstance(exc, EventTooLarge):
        return [{"in": "body", "field": "definition", "message": str(exc)}]
    if isinstance(exc, InvalidCursor):
        return [{"in": "query", "field": "cursor", "message": str(exc)}]
    return None


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def handle_mapped(request: Request, exc: Exception) -> Response:
    kind = kind_of(exc)
    assert kind is not None  # registered only for classes in PROBLEMS
    if kind.status >= 500:
        log.warning("request_id=%s answered %d: %s", _request_id(request), kind.status,
                    escape(str(exc)))
    return problem_response(
        kind.status, kind.slug, kind.title, kind.detail or str(exc), errors=field_errors(exc),
        # An error may add its own (``Retry-After`` of a throttled client).
        headers={**dict(kind.headers), **getattr(exc, "headers", {})},
        request_id=_request_id(request),
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        where = str(loc[0]) if loc else "body"
        field = location(loc[1:]) if len(loc) > 1 else where
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        sent = error.get("input")
        if error.get("type") != "refused_character" and isinstance(sent, str | int | float):
            # Name the value as well as the field: "unknown action" alone does not say
            # which one the client sent. Escaped and cut, it may be anything.
            message += f" (sent: '{escape(str(sent), SHOWN_CHARS)}')"
        errors.append({"in": where, "field": field, "message": message})
    return errors


async def handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e['in']}.{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        422, "invalid-input", "Invalid input", detail, errors=errors,
        request_id=_request_id(request),
    )


async def handle_http(request: Request, exc: Exception) -> Response:
    # Routing errors (unknown path, wrong method) and anything raised as HTTPException.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot even decode (e.g. not UTF-8): like any other
        # malformed input, a 422 that names the body.
        return problem_response(
            422, "invalid-input", "Invalid input", f"body: {exc.detail}",
            errors=[{"in": "body", "field": "body", "message": str(exc.detail)}],
            request_id=_request_id(request),
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # The router names only the first route matching the path; list every method.
        documented = allowed_methods(request.app, request.url.path)
        if documented:
            headers["Allow"] = ", ".join(documented)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return problem_response(
        exc.status_code, slug, title, str(exc.detail), headers=headers,
        request_id=_request_id(request),
    )


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the operations matching ``path``."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "method_table", None)
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$"),
             [method.upper() for method in operations])
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.method_table = table
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


def install(app: FastAPI) -> None:
    """Register the handlers: one per mapped class, validation and routing errors."""
    for exc_class in PROBLEMS:
        app.add_exception_handler(exc_class, handle_mapped)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the problem documents a route can return
    (``openapi.problem_media_types`` then files them under ``application/problem+json``)."""
    return {
        status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


_DESCRIPTIONS = {
    401: "Missing or invalid API key",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    422: "Invalid input; `errors` names each offending field",
    503: "Temporarily unavailable",
}
