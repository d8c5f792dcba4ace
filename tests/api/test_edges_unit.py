"""The edge's pure parts: which strings are refused and how they are shown, method labels,
request targets in log lines, and outage bodies without internal addresses."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from starlette.requests import Request

from api.edges import errors_in, refused_character
from api.middleware import loggable_target, method_label
from api.problems import handle_mapped
from ledger.errors import TransientStoreError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value", ["a\x00b", "\x01", "\x1b[0m", "a\x7f", "\ud800", "x\udfff"])
def test_refused_everywhere(value: str) -> None:
    assert refused_character(value, free_text=True) is not None
    assert refused_character(value, free_text=False) is not None


@pytest.mark.parametrize("value", ["a\tb", "line\nline", "a\r\nb"])
def test_line_breaks_and_tabs_only_in_free_text(value: str) -> None:
    assert refused_character(value, free_text=True) is None
    problem = refused_character(value, free_text=False)
    assert problem is not None and "line break or tab" in problem


@pytest.mark.parametrize("value", ["plain", "😀𐍈", "é\u00a0ü", "\u200b", "x" * 10_000])
def test_ordinary_text_passes(value: str) -> None:
    assert refused_character(value, free_text=False) is None


def test_the_offending_value_is_shown_escaped_and_cut() -> None:
    problem = refused_character("y" * 500 + "\x00" + "z" * 500, free_text=True)
    assert problem is not None and "U+0000" in problem and "position 500" in problem
    shown = problem.split(": ", 1)[1]
    assert "\\x00" in shown and "\x00" not in shown and len(shown) < 100


def test_errors_name_each_member_by_its_location() -> None:
    body = {"name": "a\nb", "definition": {"steps": [{"instruction": "ok\n",
                                                      "target": "\ud800"}]},
            "k\x00ey": 1}
    locs = [error["loc"] for error in errors_in("body", body)]
    assert locs == [("body", "name"), ("body", "definition", "steps", 0, "target"),
                    ("body", "k\x00ey")]


def test_method_labels_and_log_targets() -> None:
    assert method_label({"method": "GET"}) == "GET"
    assert method_label({"method": "get"}) == "OTHER"
    assert method_label({"method": "X" * 1000}) == "OTHER"
    scope = {"path": "/a\n127.0.0.1 GET /b 200",
             "query_string": b"access_token=k&password=p&sslpassword=q&limit=5"}
    target = loggable_target(scope)
    assert "\n" not in target and "\\x0a" in target
    assert target.endswith("?access_token=***&password=***&sslpassword=***&limit=5")


def test_outage_detail_names_no_address() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/runs", "headers": [],
                       "state": {"request_id": "r1"}})
    exc = TransientStoreError("connection to server at 10.0.0.5, port 5432 failed")
    response = asyncio.run(handle_mapped(request, exc))
    body = orjson.loads(response.body)
    assert response.status_code == 503 and body["type"].endswith("database-unavailable")
    assert "10.0.0.5" not in response.body.decode() and "5432" not in response.body.decode()
