"""Where the worker's secrets come from, and what the LLM plug-in sees of them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from ledger.errors import ConfigurationError
from ledger.settings import load_settings
from worker.agent.llm import Advice, AdviceRequest
from worker.agent.secrets import RedactingAdvisor, RunSecrets, load_secrets
from worker.agent.settings import ExecutorSettings

pytestmark = pytest.mark.unit


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_file_and_the_environment_both_supply_secrets(tmp_path: Path) -> None:
    path = _file(tmp_path, "api_token=from-file\nPASSWORD=from-file\n")
    found = load_secrets({"RUNLEDGER_SECRET_PASSWORD": "from-env", "OTHER": "x"}, path)
    assert {k: v.get_secret_value() for k, v in found.items()} == {
        "API_TOKEN": "from-file", "PASSWORD": "from-env"}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_secrets_file_others_can_read_stops_start_up(tmp_path: Path, mode: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_FILE", str(_file(tmp_path, "A=b\n", mode)))
    with pytest.raises(ConfigurationError, match=r"SECRETS_FILE=.* is readable by others"):
        load_settings(ExecutorSettings, _env_file=None)


def test_settings_collect_the_environment_s_secrets(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLEDGER_SECRET_PIN", "1234")
    monkeypatch.setenv("SECRETS_FILE", str(_file(tmp_path, "TOKEN=abc\n")))
    settings = load_settings(ExecutorSettings, _env_file=None)
    assert set(settings.secret_values) == {"PIN", "TOKEN"}
    assert "1234" not in repr(settings) and "abc" not in repr(settings)


def test_redaction_covers_encodings_and_nesting() -> None:
    secrets = RunSecrets({"PW": SecretStr("a b&c")})
    assert secrets.reveal("x={{ secrets.pw }}") == "x=a b&c"
    assert secrets.redact({"url": "http://h/?p=a%20b%26c", "list": ["say a b&c", ("a+b%26c",)]}) \
        == {"url": "http://h/?p={{secrets.PW}}",
            "list": ["say {{secrets.PW}}", ("{{secrets.PW}}",)]}



def test_a_secret_in_a_url_reaches_the_server_as_written() -> None:
    token = "p@ss w!rd&x=1+2#3"
    url = RunSecrets({"TOKEN": SecretStr(token)}).reveal(
        "http://h/?t={{secrets.TOKEN}}&u=1", url=True)
    assert parse_qs(urlsplit(url).query) == {"t": [token], "u": ["1"]}

async def test_the_llm_plug_in_sees_references_not_values() -> None:
    seen: list[AdviceRequest] = []

    class Advisor:
        async def open(self) -> None: ...

        async def close(self) -> None: ...

        async def advise(self, request: AdviceRequest) -> Advice | None:
            seen.append(request)
            return None

    secrets = RunSecrets({"PW": SecretStr("hunter22")})
    secrets.reveal("{{secrets.PW}}")
    await RedactingAdvisor(Advisor(), secrets).advise(AdviceRequest(
        action="click", instruction="after hunter22", target=None,
        snapshot='- textbox "Password": hunter22', candidates=["hunter22"]))
    [request] = seen
    assert "hunter22" not in repr(request) and "{{secrets.PW}}" in request.snapshot


def test_a_value_cut_short_is_redacted_where_the_cut_text_ends() -> None:
    secrets = RunSecrets({"KEY": SecretStr("key-0123456789")})
    secrets.reveal("{{secrets.KEY}}")
    assert secrets.redact("closest visible text: 'your key-01234'") == \
        "closest visible text: 'your {{secrets.KEY}}'"
    assert secrets.redact(["label key-0123", 'said "key-012…"']) == \
        ["label {{secrets.KEY}}", 'said "{{secrets.KEY}}…"']
    # Not at a cut, or too short to say: left alone.
    assert secrets.redact("a key-0123 in a sentence, a key") == "a key-0123 in a sentence, a key"
