"""``ApiSettings`` from the environment: lists are comma-separated, errors name the
variable, keys are secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import ApiSettings
from ledger.errors import ConfigurationError
from ledger.settings import load_settings

pytestmark = pytest.mark.unit

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1/0"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_lists_are_comma_separated(env: pytest.MonkeyPatch) -> None:
    env.setenv("API_KEYS", "first-key-0123456789, second-key-0123456789,")
    env.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    settings = load_settings(ApiSettings)
    assert [k.get_secret_value() for k in settings.api_keys] == [
        "first-key-0123456789", "second-key-0123456789"]
    assert "first-key" not in repr(settings)  # secrets stay out of logs and tracebacks
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.redis_socket_timeout > settings.stream_block_ms / 1000


def test_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ApiSettings)
    assert settings.api_keys == () and settings.max_body_bytes == 1024 * 1024
    assert settings.artifacts_dir == Path(".runledger/artifacts")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "eighty"), ("PORT", "70000"), ("MAX_BODY_BYTES", "0"),
    ("STREAM_BLOCK_MS", "10"), ("REDIS_URL", "http://x"),
])
def test_bad_values_are_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        load_settings(ApiSettings)
