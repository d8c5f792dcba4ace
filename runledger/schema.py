"""The project's schema: every component's migrations, in dependency order."""

from __future__ import annotations

from ledger.migrate import Migration, discover

# (component, package holding its NNNN_name.sql files); later components may rely on
# earlier ones' tables, never the reverse.
COMPONENTS: list[tuple[str, str]] = [
    ("ledger", "ledger.migrations"),
    ("projections", "projections.migrations"),
    ("locator_memory", "projections.locator_memory.migrations"),
    ("api", "api.migrations"),
]


def all_migrations() -> list[Migration]:
    return [m for component, package in COMPONENTS for m in discover(component, package)]
