"""The OpenAPI document as ``/docs`` shows it: FastAPI's, with errors filed as problem+json,
a description on every field and parameter, and request examples that validate.

Most models describe their own fields (``api.schemas``); the shapes defined outside the API
— a test's steps (``ledger.definition``), a step's result (``ledger.domain``), problems,
health — are described here, by schema and field, wherever their own definition is silent:
the owner's description always wins.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import problems

#: a real test: what ``POST /tests`` and ``PUT /tests/{id}`` show as their example
TEST_EXAMPLE: dict[str, Any] = {
    "name": "Sign in and see the dashboard",
    "url": "https://example.com/login",
    "definition": {"steps": [
        {"action": "fill", "instruction": "Type the e-mail address into 'Email'",
         "value": "ada@example.com"},
        {"action": "fill", "instruction": "Type the password into 'Password'",
         "value": "correct horse battery staple"},
        {"action": "click", "instruction": "Click 'Sign in'"},
        {"action": "verify", "instruction": "The dashboard greets the user",
         "expected": "Welcome, Ada"},
    ]},
    "auto_handle_popups": True,
}
QUEUE_EXAMPLE = {"test_id": "3f1c2b6e-8a4d-4c1e-9b7a-2d5e6f708192"}

_STEP_RESULT = {
    "index": "Position of the step in the test, from 0",
    "action": "The step's action (`click`, `fill`, `verify` …)",
    "instruction": "The step's instruction, as written in the test",
    "status": "`passed` or `failed`",
    "strategy": "How the element was found: `selector`, `memory`, `dom`, `llm` … (null for "
                "steps without an element)",
    "healed": "True when the remembered or given locator failed and another one was used "
              "(`details.heal` has the old and new locators)",
    "duration_ms": "How long the step took, in milliseconds",
    "attempts": "How many times the step was tried",
    "url": "The page's URL after the step",
    "error": "Why the step failed (null when it passed)",
    "artifacts": "Screenshots and traces recorded with the step, by reference",
    "details": "What the executor knows about the step: `error_kind`, the closest "
               "`candidates` ([locator, score, matches]), `heal` {from, old, new}, timings …",
    "recorded_at": "When the step's event was recorded",
}

#: descriptions of fields whose models are defined outside ``api.schemas``
FIELD_DOCS: dict[str, dict[str, str]] = {
    "TestSpec": {
        "name": "A name people recognise the test by",
        "url": "The absolute http(s) URL the test starts at",
        "definition": "What the test does: its steps",
        "auto_handle_popups": "Dismiss cookie banners and pop-ups that cover the page",
        "retries": "More attempts a failed run gets, 0 to 3 (not after a cancel or a "
                   "navigation-policy block); each attempt is its own run",
    },
    "Definition": {"steps": "The steps, run in order; a failing step ends the run"},
    "Step": {
        "action": "What to do: navigate, click, fill, verify, press, select, check, uncheck, "
                  "hover, wait_for, assert_url or screenshot",
        "instruction": "The step in plain words; the element is found from it "
                       "(\"Click 'Sign in'\")",
        "advanced_selector": "A Playwright selector to use before the instruction's element",
        "target": "For navigate: an absolute URL or a path on the test's site",
        "value": "Text to type (fill), the option (select) or the key (press)",
        "expected": "Text the page must show (verify) or the URL it must have (assert_url)",
    },
    "StepOut": _STEP_RESULT,
    "Problem": {
        "type": "A URI naming the kind of problem",
        "title": "A short summary of the kind of problem",
        "status": "The HTTP status code",
        "detail": "What went wrong with this request",
        "errors": "For invalid input: each field at fault and why",
        "request_id": "The request's id (`X-Request-ID`), to find it in the logs",
    },
    "FieldError": {
        "in": "Where the field is: body, query, path or header",
        "field": "The field's name or path",
        "message": "What is wrong with it",
    },
    "HealthWithParked": {
        "status": "`healthy`, or `degraded` when a dependency is unavailable",
        "database": "PostgreSQL's state",
        "redis": "Redis's state",
    },
}

#: descriptions of parameters that have none of their own, by name
PARAMETER_DOCS = {
    "run_id": "The run's id",
    "test_id": "The test's id",
    "artifact_id": "The artifact's id (its sha256)",
    "limit": "Most items in one page",
    "cursor": "`next_cursor` of the previous page; omit for the first page",
    "status": "Only runs in this status",
    "after": "Only what comes after this position",
}


def build(app: FastAPI) -> dict[str, Any]:
    """The document, built once and kept on the app (FastAPI's ``openapi`` hook)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    for path in schema["paths"].values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                _file_problem(response)
            for parameter in operation.get("parameters", []):
                if not parameter.get("description") and parameter["name"] in PARAMETER_DOCS:
                    parameter["description"] = PARAMETER_DOCS[parameter["name"]]
    components = schema["components"]["schemas"]
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for name, fields in FIELD_DOCS.items():
        for field, text in fields.items():
            prop = components.get(name, {}).get("properties", {}).get(field)
            if prop is not None and not prop.get("description"):
                prop["description"] = text
    _example(schema, "/tests", "post", TEST_EXAMPLE)
    _example(schema, "/tests/{test_id}", "put", TEST_EXAMPLE)
    _example(schema, "/runs", "post", QUEUE_EXAMPLE)
    app.openapi_schema = schema
    return schema


def _example(schema: dict[str, Any], path: str, method: str, example: dict[str, Any]) -> None:
    body = schema["paths"].get(path, {}).get(method, {}).get("requestBody")
    if body is not None:
        body["content"]["application/json"]["example"] = example


_PROBLEM_REFS = {"#/components/schemas/Problem", "#/components/schemas/HTTPValidationError"}


def _file_problem(response: dict[str, Any]) -> None:
    json = response.get("content", {}).get("application/json", {})
    if json.get("schema", {}).get("$ref") in _PROBLEM_REFS:
        response["content"] = {
            problems.MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
