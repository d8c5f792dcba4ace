"""The secret sweep: a passing run that typed a random secret (and opened a URL carrying
another) through the whole system — API, projector, relay, worker, real Chromium — and
afterwards neither value is anywhere: not in a dump of every table, any Redis key, any log
line, any artifact (traces unzipped), nor any API response.

The site only lets the run through with the right token in its URL and the right password
in its form, so the values were really revealed to the browser.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from api.app import create_app
from api.settings import ApiSettings
from ledger.settings import load_settings
from runledger.testing import serve_http, wait_until
from tests.api.conftest import asgi_client, running_followers
from tests.api.helpers import API_KEY, AUTH
from worker.main import playwright_executor
from worker.service import run_worker
from worker.settings import WorkerSettings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAGE = """<!doctype html><title>Sign in</title>
<form id=f><label for=u>User</label><input id=u name=u>
<label for=p>Password</label><input id=p name=p type=password>
<button>Log in</button></form><p id=out></p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = new URLSearchParams(new FormData(e.target));
  const r = await fetch('/login', {method: 'POST', body});
  document.getElementById('out').textContent = await r.text();
});
</script>"""


def _site(token: str, password: str, seen: list[str]) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            ok = parse_qs(urlsplit(self.path).query).get("token") == [token]
            seen.append("token" if ok else "no-token")
            self._send(200 if ok else 403, PAGE if ok else "wrong token")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            ok = form.get("p") == [password]
            seen.append("password" if ok else "no-password")
            self._send(200, "Welcome back" if ok else "Wrong password")

    return Handler


@pytest.fixture
def values() -> dict[str, str]:
    return {"PASSWORD": "pw-" + secrets.token_hex(12), "TOKEN": "tk-" + secrets.token_hex(12)}


@pytest.fixture
def site(values: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with serve_http(_site(values["TOKEN"], values["PASSWORD"], seen), "secret-site") as url:
        yield url, seen


async def test_a_secret_is_typed_and_found_nowhere(
    database_url: str, redis_url: str, tmp_path: Path, values: dict[str, str],
    site: tuple[str, list[str]], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, seen = site
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"TOKEN={values['TOKEN']}\n")
    secrets_file.chmod(0o600)
    monkeypatch.setenv("RUNLEDGER_SECRET_PASSWORD", values["PASSWORD"])
    artifacts = tmp_path / "artifacts"
    worker = load_settings(
        WorkerSettings, database_url=database_url, redis_url=redis_url,
        artifacts_dir=artifacts, secrets_file=secrets_file, worker_block_seconds=0.2,
        traces="all", screenshots="all", step_timeout_seconds=15.0,
        redis_consumer_name="sweep-worker")
    assert set(worker.secret_values) == {"PASSWORD", "TOKEN"}
    api = ApiSettings(_env_file=None, database_url=database_url,  # type: ignore[call-arg]
                      redis_url=redis_url, api_keys=[API_KEY], artifacts_dir=artifacts)
    monkeypatch.delenv("RUNLEDGER_SECRET_PASSWORD")  # only the worker's settings hold it

    responses: list[bytes] = []
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(worker, playwright_executor, stop), name="sweep")
    try:
        async with running_followers(database_url, redis_url), \
                asgi_client(create_app(api), headers=AUTH) as client:
            run_id = await _run(client, url, responses)
            await _read_everything(client, run_id, responses)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)

    assert seen == ["token", "password"], "the site did not get both secrets"
    found = {
        "database": await _database_dump(database_url),
        "redis": await _redis_dump(redis_url),
        "logs": "\n".join(_log_lines(caplog)).encode(),
        "artifacts": _artifact_bytes(artifacts),
        "api": b"\n".join(responses),
    }
    assert b"{{secrets.PASSWORD}}" in found["database"]  # the references are recorded
    assert b"{{secrets.TOKEN}}" in found["api"]
    for sink, data in found.items():
        assert data, f"nothing collected from {sink}"
        for name, value in values.items():
            assert value.encode() not in data, f"secret {name} found in {sink}"


async def _run(client: httpx.AsyncClient, url: str, responses: list[bytes]) -> str:
    definition = {
        "name": "sign in with secrets", "url": f"{url}/?token={{{{secrets.TOKEN}}}}",
        "definition": {"steps": [
            {"action": "fill", "instruction": "Type the user", "target": "User",
             "value": "ada"},
            {"action": "fill", "instruction": "Type the password", "target": "Password",
             "value": "{{secrets.PASSWORD}}"},
            {"action": "click", "instruction": "Click 'Log in'"},
            {"action": "verify", "instruction": "The page welcomes", "expected": "Welcome back"},
        ]},
    }
    created = await client.post("/tests", json=definition)
    assert created.status_code == 201, created.text
    responses.append(created.content)
    queued = await client.post("/runs", json={"test_id": created.json()["id"]})
    assert queued.status_code == 202, queued.text
    run_id = str(queued.json()["run_id"])

    async def finished() -> dict[str, Any] | None:
        body = (await client.get(f"/runs/{run_id}")).json()
        return body if body["status"] not in ("queued", "running") else None

    run = await wait_until(finished, within=90, what="the run to finish")
    assert run["status"] == "passed", run
    return run_id


async def _read_everything(client: httpx.AsyncClient, run_id: str,
                           responses: list[bytes]) -> None:
    paths = [f"/runs/{run_id}", f"/runs/{run_id}/events", f"/results/{run_id}", "/runs",
             "/tests", f"/runs/{run_id}/stream", f"/results/{run_id}/stream"]
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        responses.append(response.content)
    events = (await client.get(f"/runs/{run_id}/events")).json()
    steps = [e["data"] for e in events["items"] if e["type"] == "step"]
    assert steps[-1]["details"]["trace"].startswith("not recorded: the run types secrets")
    for ref in (a for step in steps for a in step["artifacts"]):
        artifact = await client.get(f"/runs/{run_id}/artifacts/{ref['id']}")
        assert artifact.status_code == 200
        responses.append(artifact.content)


async def _database_dump(database_url: str) -> bytes:
    """``pg_dump`` of the database when a matching one is at hand; the rows of every table
    as text otherwise (same content, no version constraint)."""
    from runledger.embedded import postgres_bin

    pg_dump = postgres_bin("pg_dump")
    if pg_dump is not None:
        done = await asyncio.to_thread(subprocess.run, [str(pg_dump), "--data-only",
                                       database_url], capture_output=True, check=False)
        if done.returncode == 0:
            return done.stdout
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        rows = [str(row[0]) for t in tables
                for row in await conn.fetch(f"SELECT t::text FROM {t['name']} t")]
    finally:
        await conn.close()
    return "\n".join(rows).encode()


async def _redis_dump(redis_url: str) -> bytes:
    client = aioredis.from_url(redis_url)
    chunks: list[bytes] = []
    try:
        async for key in client.scan_iter(count=500):
            kind = (await client.type(key)).decode()
            chunks.append(key)
            if kind == "string":
                chunks.append(await client.get(key) or b"")
            elif kind == "stream":
                for _id, fields in await client.xrange(key):
                    chunks.extend(k + b"=" + v for k, v in fields.items())
            elif kind == "hash":
                chunks.extend(k + b"=" + v for k, v in (await client.hgetall(key)).items())
            elif kind == "list":
                chunks.extend(await client.lrange(key, 0, -1))
            elif kind == "set":
                chunks.extend(await client.smembers(key))
            elif kind == "zset":
                chunks.extend(await client.zrange(key, 0, -1))
    finally:
        await client.aclose()
    return b"\n".join(chunks)


def _log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    for record in caplog.records:
        yield record.getMessage()
        if record.exc_text:
            yield record.exc_text


def _artifact_bytes(root: Path) -> bytes:
    chunks: list[bytes] = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        chunks.append(data)
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                chunks.extend(archive.read(name) for name in archive.namelist())
    return b"\n".join(chunks)
