"""Locators as data: what the executor records, remembers and replays.

A locator is a chain of Playwright calls, written the way Playwright's codegen writes them —
``get_by_role("button", name="Save", exact=True).nth(1)`` — so a step event reads like the
line a person would write. ``LocatorSpec.parse`` reads such a line back without ``eval``:
only the whitelisted methods below, only literal arguments (and ``re.compile("…", re.I)``).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Locator, Page

_METHODS = {
    "locator", "get_by_role", "get_by_text", "get_by_label", "get_by_placeholder",
    "get_by_alt_text", "get_by_title", "get_by_test_id", "nth", "filter",
}
_PROPERTIES = {"first", "last", "content_frame"}
_KWARGS = {"name", "exact", "has_text", "level", "checked", "include_hidden", "visible"}


class InvalidLocator(ValueError):
    """The text is not a locator this module writes (bad syntax, method or argument)."""


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def render(self) -> str:
        if self.method in _PROPERTIES:
            return self.method
        parts = [_literal(a) for a in self.args]
        parts += [f"{k}={_literal(v)}" for k, v in self.kwargs]
        return f"{self.method}({', '.join(parts)})"


@dataclass(frozen=True)
class LocatorSpec:
    calls: tuple[Call, ...]

    @classmethod
    def of(cls, method: str, *args: Any, **kwargs: Any) -> LocatorSpec:
        return cls((Call(method, args, tuple(kwargs.items())),))

    @classmethod
    def css(cls, selector: str) -> LocatorSpec:
        """A user's ``advanced_selector`` (any Playwright selector: CSS, XPath, text=…)."""
        return cls.of("locator", selector)

    def then(self, method: str, *args: Any, **kwargs: Any) -> LocatorSpec:
        return LocatorSpec((*self.calls, Call(method, args, tuple(kwargs.items()))))

    def within(self, scope: LocatorSpec | None) -> LocatorSpec:
        return self if scope is None else LocatorSpec((*scope.calls, *self.calls))

    def __str__(self) -> str:
        return ".".join(call.render() for call in self.calls)

    def build(self, page: Page) -> Locator:
        target: Any = page
        for call in self.calls:
            if call.method in _PROPERTIES:
                target = getattr(target, call.method)
            else:
                target = getattr(target, call.method)(*call.args, **dict(call.kwargs))
        return target

    @classmethod
    def parse(cls, text: str) -> LocatorSpec:
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise InvalidLocator(f"not a locator: {text!r}") from exc
        calls: list[Call] = []
        node: ast.expr | None = tree
        while node is not None:
            call, node = _unwind(node, text)
            calls.append(call)
        return cls(tuple(reversed(calls)))


def _argument(node: ast.expr, text: str) -> Any:
    """A literal, or ``re.compile("…"[, re.I])`` (case-insensitive whole-text matches)."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "re.compile":
        flags = [ast.unparse(a) for a in node.args[1:]]
        if len(node.args) in (1, 2) and all(f in ("re.I", "re.IGNORECASE") for f in flags):
            pattern = ast.literal_eval(node.args[0])
            if isinstance(pattern, str):
                return re.compile(pattern, re.I if flags else 0)
        raise InvalidLocator(f"unsupported pattern in {text!r}")
    return ast.literal_eval(node)


def _unwind(node: ast.expr, text: str) -> tuple[Call, ast.expr | None]:
    """The outermost call of ``node`` and what it was called on (None at the start)."""
    if isinstance(node, ast.Attribute) and node.attr in _PROPERTIES:
        return Call(node.attr), node.value
    if not isinstance(node, ast.Call):
        raise InvalidLocator(f"not a locator: {text!r}")
    func = node.func
    if isinstance(func, ast.Name):
        method, inner = func.id, None
    elif isinstance(func, ast.Attribute):
        method, inner = func.attr, func.value
    else:
        raise InvalidLocator(f"not a locator: {text!r}")
    if method not in _METHODS:
        raise InvalidLocator(f"method {method!r} is not allowed in a locator: {text!r}")
    try:
        args = tuple(_argument(a, text) for a in node.args)
        kwargs = tuple((k.arg or "", _argument(k.value, text)) for k in node.keywords)
    except ValueError as exc:
        raise InvalidLocator(f"only literal arguments are allowed: {text!r}") from exc
    if any(k not in _KWARGS for k, _ in kwargs):
        raise InvalidLocator(f"unknown keyword argument in {text!r}")
    return Call(method, args, kwargs), inner


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, re.Pattern):
        flags = ", re.I" if value.flags & re.I else ""
        return f"re.compile({json.dumps(value.pattern, ensure_ascii=False)}{flags})"
    return repr(value)


def whole_text(text: str) -> re.Pattern[str]:
    """Matches ``text`` as a whole, ignoring case (Playwright's exact match is case-sensitive,
    and prose like "fill the postal code" rarely matches the page's capitals)."""
    escaped = re.escape(text).replace("\\ ", " ")
    return re.compile(f"^\\s*{escaped}\\s*$", re.I)
