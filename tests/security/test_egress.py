"""NAVIGATION_POLICY in a real browser: an allowed page on one loopback server tries to
reach a second server — by redirect, image, iframe, fetch, WebSocket, popup, EventSource,
a worker and a service worker — and the second server never sees a request unless
NAVIGATION_ALLOW names it. WebRTC's UDP, which no HTTP proxy carries, never leaves.

The allowed site listens on 127.0.0.1, the target on 127.0.0.2 (both loopback): the
``public`` policy blocks loopback, and ``NAVIGATION_ALLOW`` exempts the site's address and
port only.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ledger.artifacts import FileArtifactStore
from runledger.testing import serve_http
from worker.agent import AgentExecutor
from worker.agent.browser import ChromiumHost
from worker.agent.settings import ExecutorConfig
from worker.ports import StepResult

from ..executor.conftest import RecordingSink, make_job

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MakeExecutor = Callable[..., AgentExecutor]

# Each page does one thing towards {target} and then shows "done", so that a step waiting
# for "done" ends after the browser made its attempt (and the proxy answered it).
PAGES = {
    "/image": '<img src="{target}/pixel.png" onerror="done()" onload="done()">',
    "/iframe": '<iframe src="{target}/frame" onload="done()"></iframe>',
    "/fetch": '<script>fetch("{target}/api").finally(done)</script>',
    "/websocket": '<script>const ws = new WebSocket("{ws}/socket");'
                  "ws.onerror = ws.onclose = ws.onopen = done;</script>",
    # The popup's first document is about:blank, same-origin; once its navigation to the
    # target is answered (by the target or the proxy) it is another origin.
    "/popup": '<script>const w = window.open("{target}/popup");'
              "const t = setInterval(() => {{ try {{ w.document.body; }} catch (e) "
              "{{ clearInterval(t); done(); }} }}, 10);</script>",
    "/eventsource": '<script>const es = new EventSource("{target}/events");'
                    "es.onerror = es.onopen = () => {{ es.close(); done(); }};</script>",
    "/worker": "<script>const w = new Worker(URL.createObjectURL(new Blob("
               "['fetch(\"{target}/worker\").finally(() => postMessage(1))'],"
               " {{type: 'text/javascript'}}))); w.onmessage = done;</script>",
    # A service worker's requests leave from outside the page; its install fetches the target.
    "/service-worker": "<script>navigator.serviceWorker.register('/sw.js').then(r => {{"
                       " const w = r.installing; w.onstatechange = () => {{"
                       " if (w.state !== 'installing') done(); }}; }});</script>",
}
SERVICE_WORKER = ("self.addEventListener('install', e => "
                  "e.waitUntil(fetch('{target}/service-worker').catch(() => null)));")
DONE = "<p id=s>waiting</p><script>function done() {{ document.getElementById('s')" \
       ".textContent = 'done'; }}</script>"


@dataclass
class Target:
    """The server the pages must not reach: it counts what it is asked."""

    url: str = ""
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _target_handler(target: Target) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            with target.lock:
                target.requests.append(self.path)
            body = b"<p>the target answered</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _site_handler(target: Target) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"{target.url}/landing")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/sw.js":
                body = SERVICE_WORKER.format(target=target.url).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            template = PAGES.get(self.path, "<p>home</p>")
            page = (DONE + template).format(
                target=target.url, ws=target.url.replace("http://", "ws://"))
            body = f"<!doctype html><title>site</title>{page}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def servers() -> Iterator[tuple[str, Target]]:
    target = Target()
    with serve_http(_target_handler(target), "target", host="127.0.0.2") as target_url:
        target.url = target_url
        with serve_http(_site_handler(target), "site") as site_url:
            yield site_url, target


def _allow(*urls: str) -> str:
    return ",".join(urlsplit(url).netloc for url in urls)


def _blocked(results: list[StepResult]) -> list[dict[str, Any]]:
    return [entry for r in results for entry in r.details.get("blocked", [])]


WAIT_DONE = {"action": "wait_for", "instruction": "Wait for done", "expected": "done"}


@pytest.mark.parametrize("page", sorted(PAGES))
async def test_a_subresource_to_a_blocked_address_never_reaches_it(
    servers: tuple[str, Target], make_executor: MakeExecutor, page: str,
) -> None:
    site, target = servers
    executor = make_executor(navigation_policy="public", navigation_allow=_allow(site),
                             screenshots="off", traces="off")
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}{page}", [WAIT_DONE]), sink)
    assert outcome.status == "passed", outcome.error
    assert target.requests == []
    target_host = urlsplit(target.url).netloc
    assert {"host": target_host, "reason": "loopback"}.items() <= _blocked(sink.results)[0].items()


@pytest.mark.parametrize("page", sorted(PAGES))
async def test_the_same_pages_reach_the_target_when_it_is_allowed(
    servers: tuple[str, Target], make_executor: MakeExecutor, page: str,
) -> None:
    # The control: the pages do try to reach the target, so its silence above is the proxy's.
    site, target = servers
    executor = make_executor(navigation_policy="public",
                             navigation_allow=_allow(site, target.url),
                             screenshots="off", traces="off")
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}{page}", [WAIT_DONE]), sink)
    assert outcome.status == "passed", outcome.error
    assert target.requests and not _blocked(sink.results)


async def test_a_redirect_to_a_blocked_address_fails_the_step_naming_the_host(
    servers: tuple[str, Target], make_executor: MakeExecutor,
) -> None:
    site, target = servers
    executor = make_executor(navigation_policy="public", navigation_allow=_allow(site),
                             screenshots="off", traces="off")
    sink = RecordingSink()
    steps = [{"action": "navigate", "instruction": "Open the redirect", "target": "/redirect"}]
    outcome = await executor.execute(make_job(f"{site}/", steps), sink)
    host = urlsplit(target.url).netloc
    assert outcome.status == "failed" and outcome.error_step == 0
    assert outcome.error == (f"NAVIGATION_POLICY=public blocked navigation to {host} "
                             "(loopback); NAVIGATION_ALLOW can exempt it")
    assert sink.results[0].details["error_kind"] == "navigation_blocked"
    assert target.requests == []


@pytest.mark.parametrize("spelling", ["127.0.0.2", "2130706434", "0x7f000002", "0177.0.0.2",
                                      "127.2", "[::ffff:127.0.0.2]"])
async def test_a_test_url_in_any_spelling_is_judged_on_its_address(
    servers: tuple[str, Target], make_executor: MakeExecutor, spelling: str,
) -> None:
    _site, target = servers
    port = urlsplit(target.url).port
    executor = make_executor(navigation_policy="public", screenshots="off", traces="off")
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"http://{spelling}:{port}/", [WAIT_DONE]), sink)
    assert outcome.status == "failed"
    assert outcome.error and "NAVIGATION_POLICY=public blocked navigation to" in outcome.error
    assert target.requests == []


async def test_names_that_resolve_to_loopback_are_blocked(
    servers: tuple[str, Target], make_executor: MakeExecutor,
) -> None:
    site, _target = servers
    names = ["localhost"]
    own = socket.gethostname()
    if any(ip.startswith("127.") for ip in _addresses(own)):
        names.append(own)  # Debian maps the machine's name to 127.0.1.1
    executor = make_executor(navigation_policy="public", screenshots="off", traces="off")
    for name in names:
        sink = RecordingSink()
        url = site.replace("127.0.0.1", name)
        outcome = await executor.execute(make_job(url, [WAIT_DONE]), sink)
        assert outcome.status == "failed", name
        assert outcome.error and f"blocked navigation to {name}:" in outcome.error


async def test_the_default_policy_blocks_metadata_and_keeps_loopback(
    servers: tuple[str, Target], make_executor: MakeExecutor,
) -> None:
    site, target = servers
    executor = make_executor(screenshots="off", traces="off")
    sink = RecordingSink()
    outcome = await executor.execute(make_job("http://2852039166/latest/meta-data/",
                                              [WAIT_DONE]), sink)
    assert outcome.error == ("NAVIGATION_POLICY=default blocked navigation to "
                             "169.254.169.254:80 (cloud metadata); NAVIGATION_ALLOW can exempt it")
    sink = RecordingSink()
    outcome = await executor.execute(make_job(f"{site}/iframe", [WAIT_DONE]), sink)
    assert outcome.status == "passed" and target.requests == ["/frame"]


def _addresses(name: str) -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(name, 80)]
    except OSError:
        return []


WEBRTC = ("<script>const pc = new RTCPeerConnection({{iceServers: [{{urls: "
          "'stun:127.0.0.2:{port}'}}]}}); pc.createDataChannel('x');"
          "pc.onicecandidate = e => {{ if (!e.candidate) done(); }};"
          "pc.createOffer().then(o => pc.setLocalDescription(o));</script>")


async def test_webrtc_sends_no_udp_around_the_proxy(make_executor: MakeExecutor) -> None:
    # Without the switches in worker.agent.sandbox.EGRESS_ARGS, Chromium sends this STUN
    # binding request straight to the UDP socket (tried by hand with the same page), even
    # with a proxy configured: the default policy's proxy would never see it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.2", 0))
        udp.setblocking(False)
        page = (DONE + WEBRTC).format(port=udp.getsockname()[1])

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = f"<!doctype html><title>rtc</title>{page}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        executor = make_executor(screenshots="off", traces="off")
        sink = RecordingSink()
        with serve_http(Handler, "rtc-site") as site:
            outcome = await executor.execute(make_job(f"{site}/", [WAIT_DONE]), sink)
        try:
            leaked = udp.recvfrom(2048)[0]
        except BlockingIOError:
            leaked = b""
        assert leaked == b"", "a STUN request went around the proxy"
        assert outcome.status == "passed", outcome.error  # ICE gathering finished


@pytest.mark.parametrize("name", ["localhost.", "LocalHost"])
async def test_a_blocked_navigation_is_named_however_its_host_is_written(
    servers: tuple[str, Target], make_executor: MakeExecutor, name: str,
) -> None:
    site, _target = servers
    executor = make_executor(navigation_policy="public", screenshots="off", traces="off")
    sink = RecordingSink()
    outcome = await executor.execute(
        make_job(site.replace("127.0.0.1", name), [WAIT_DONE]), sink)
    assert outcome.status == "failed"
    assert outcome.error and "NAVIGATION_POLICY=public blocked navigation to localhost:" \
        in outcome.error, outcome.error
    assert sink.results[0].details["error_kind"] == "navigation_blocked"


async def test_loopback_goes_through_the_proxy_whatever_playwright_s_environment(
    servers: tuple[str, Target], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With this variable Playwright stops adding "<-loopback>" to an empty bypass list, and
    # Chromium then sends loopback requests around the proxy; the worker names it itself.
    monkeypatch.setenv("PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK", "1")
    site, target = servers
    config = ExecutorConfig(artifacts_dir=tmp_path / "artifacts", navigation_policy="public",
                            navigation_allow=_allow(site), screenshots="off", traces="off",
                            step_timeout_seconds=10.0)
    chromium = ChromiumHost(config)
    await chromium.open()
    try:
        executor = AgentExecutor(config, artifacts=FileArtifactStore(config.artifacts_dir),
                                 memory=None, advisor=None, host=chromium)
        sink = RecordingSink()
        outcome = await executor.execute(make_job(f"{site}/fetch", [WAIT_DONE]), sink)
    finally:
        await chromium.close()
    assert outcome.status == "passed", outcome.error
    assert target.requests == []
    assert _blocked(sink.results)
