"""Fixtures of the entry-point tests: ``runledger api`` is started with the same settings the
API tests build, so the factory is shared rather than copied."""

from __future__ import annotations

# Re-exported as a fixture: pytest finds fixtures by name in this module's namespace.
from tests.api.conftest import make_settings

__all__ = ["make_settings"]
