"""Numbered ``.sql`` migrations, applied once each and recorded in ``schema_migrations``.

Each package that owns tables ships a ``migrations`` folder of ``NNNN_name.sql`` files; the
composition root passes the list of components in dependency order. Applying is idempotent
and safe to run from several processes at once (an advisory lock serialises migrators).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from ledger.db import translated
from ledger.errors import MigrationError
from ledger.sql import load_queries

log = logging.getLogger(__name__)

Q = load_queries("ledger", "migrate.sql")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.component}/{self.version:04d}_{self.name}"


def discover(component: str, package: str) -> list[Migration]:
    """The migrations of ``package`` (a ``migrations`` package), in version order."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if not match:
            raise MigrationError(f"{package}: {entry.name!r} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{package}: two migrations numbered {version:04d}")
        found[version] = Migration(component, version, match.group(2), entry.read_text())
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet recorded; returns the labels of those applied now."""
    applied_now: list[str] = []
    with translated():
        await conn.execute(Q["lock"])
        try:
            await conn.execute(Q["create_table"])
            done = {
                (row["component"], row["version"]): row["checksum"]
                for row in await conn.fetch(Q["applied"])
            }
            for migration in migrations:
                key = (migration.component, migration.version)
                if key in done:
                    if done[key] != migration.checksum:
                        log.warning("migration %s changed after it was applied", migration.label)
                    continue
                await _apply(conn, migration)
                applied_now.append(migration.label)
        finally:
            await conn.execute(Q["unlock"])
    return applied_now


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                Q["record"], migration.component, migration.version, migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresSyntaxError as exc:
        raise MigrationError(f"{migration.label} failed: {exc}") from exc
    log.info("applied migration %s", migration.label)
