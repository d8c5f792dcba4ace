"""Settings fail fast, naming the variable; ``.env`` files are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import ConfigurationError
from ledger.settings import DatabaseSettings, RedisSettings, load_settings, redact

pytestmark = pytest.mark.unit


def test_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="DATABASE_URL is required but not set"):
        load_settings(DatabaseSettings)


@pytest.mark.parametrize(
    ("cls", "variable", "value"),
    [
        (DatabaseSettings, "DATABASE_URL", "mysql://root@localhost/db"),
        (DatabaseSettings, "DATABASE_URL", "not a url"),
        (RedisSettings, "REDIS_URL", "http://localhost:6379"),
        (DatabaseSettings, "DATABASE_POOL_SIZE", "ten"),
    ],
)
def test_malformed_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cls: type, variable: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(cls)


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:6390/2\n")
    assert load_settings(RedisSettings).redis_url == "redis://127.0.0.1:6390/2"


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:6390/2\n")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6391/0")
    assert load_settings(RedisSettings).redis_url.endswith(":6391/0")


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_redact_hides_password_query_parameters() -> None:
    # libpq also takes the password from the query of a connection URI
    url = "postgresql://app@db/x?sslmode=require&password=s3cret&SSLPassword=k3y&host=/tmp"
    assert redact(url) == "postgresql://app@db/x?sslmode=require&password=***&SSLPassword=***" \
        "&host=/tmp"
    assert redact("redis://:s3cret@cache:6379/0?password=again") == \
        "redis://:***@cache:6379/0?password=***"
    assert redact("postgresql://db/x?passwordless=1") == "postgresql://db/x?passwordless=1"
