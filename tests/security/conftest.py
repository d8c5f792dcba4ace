"""The security tests reuse the executor's browser fixtures (one Chromium per module, an
executor configured per test)."""

from __future__ import annotations

from tests.executor.conftest import host, make_executor, pool, site  # noqa: F401
