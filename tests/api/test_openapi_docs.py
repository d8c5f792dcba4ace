"""The OpenAPI document /docs shows: a description on every field and parameter, and
request examples that the API accepts."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.schemas import QueueRun
from api.settings import ApiSettings
from ledger.definition import TestSpec

pytestmark = pytest.mark.unit


@pytest.fixture
def document() -> dict[str, Any]:
    settings = ApiSettings(_env_file=None, database_url="postgresql://u@127.0.0.1/x",
                           redis_url="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    return create_app(settings).openapi()


def test_every_field_and_parameter_is_described(document: dict[str, Any]) -> None:
    bare = [f"{name}.{field}"
            for name, schema in document["components"]["schemas"].items()
            for field, prop in (schema.get("properties") or {}).items()
            if not prop.get("description")]
    assert bare == []
    params = [f"{method} {path} {p['name']}" for path, ops in document["paths"].items()
              for method, op in ops.items() for p in op.get("parameters", [])
              if not p.get("description")]
    assert params == []


def test_request_examples_validate(document: dict[str, Any]) -> None:
    def example(path: str, method: str) -> Any:
        body = document["paths"][path][method]["requestBody"]
        return body["content"]["application/json"]["example"]

    for path, method in (("/tests", "post"), ("/tests/{test_id}", "put")):
        spec = TestSpec.model_validate(example(path, method))
        assert len(spec.definition.steps) >= 3
    QueueRun.model_validate(example("/runs", "post"))
