"""``runledger dev``: the whole system in one process, for a laptop or a demo.

Without ``DATABASE_URL`` / ``REDIS_URL`` (environment or ``.env``, as every command reads
them) it starts PostgreSQL and Valkey from wheels as child processes (data under
``.runledger/``), migrates, then runs the followers (read models and relay), one worker
(with the Playwright executor) and the HTTP API side by side until SIGINT/SIGTERM. The
first signal stops everything gracefully (in-flight runs finish), a second one at once; the
servers it started are stopped last, in reverse order. If any of the three dies, the others
are stopped and the error is raised: nothing runs half-alive.

Without a browser the worker waits for one (``worker.waiting``) while the API and the
followers serve; runs wait in the queue.

**The data directory is one instance's.** ``dev`` holds an exclusive lock on
``DATA_DIR/dev.lock`` for its lifetime, taken before anything in the directory is touched:
a second ``dev`` on it refuses (``DevError``) instead of starting a second PostgreSQL on the
same files. While it serves, ``DATA_DIR/dev.json`` (``DevState``) says where: the API URL,
the database and Redis URLs and the pid; the other commands use it when nothing else is
configured (``runledger.client`` and ``state_urls``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from ledger.aio import Signals, supervise
from ledger.errors import StoreError
from ledger.settings import load_settings, redact

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(".runledger")
STATE_FILE = "dev.json"
LOCK_FILE = "dev.lock"


class DevError(Exception):
    """An expected condition that stops ``dev`` with one line: the data directory is in
    use, the port is taken, an embedded server cannot start."""


@dataclass(frozen=True)
class DevState:
    """What a running ``dev`` writes to ``DATA_DIR/dev.json``."""

    api_url: str
    database_url: str
    redis_url: str
    pid: int

    @classmethod
    def read(cls, data_dir: Path = DEFAULT_DATA_DIR) -> DevState | None:
        """The state of a ``dev`` that is running on ``data_dir``, or None (no file, a
        malformed one, or its process is gone)."""
        try:
            raw = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
            state = cls(**{k: raw[k] for k in ("api_url", "database_url", "redis_url", "pid")})
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return state if _alive(state.pid) else None

    def write(self, data_dir: Path) -> None:
        path = data_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        # The URLs carry the embedded servers' passwords: only our user may read them.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(temporary, path)  # readers never see half a file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[IO[str]]:
    """Hold ``DATA_DIR/dev.lock`` for the block; ``DevError`` naming the holder if another
    process holds it. The kernel drops the lock when the holder dies, however it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            state = DevState.read(data_dir)
            where = f" (pid {state.pid}, API {state.api_url})" if state else ""
            raise DevError(f"data directory {data_dir} is in use by another runledger dev"
                           f"{where}; stop it or pass --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


def check_port(host: str, port: int) -> None:
    """``DevError`` when ``host:port`` cannot be bound (checked before anything starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DevError(f"port {port} on {host} is in use (another runledger dev or "
                               "API?); choose another with --port") from None
            raise DevError(f"cannot bind {host}:{port}: {exc.strerror}") from None


def state_urls(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, str]:
    """``DATABASE_URL`` / ``REDIS_URL`` of a ``dev`` running on ``data_dir`` (empty if none)."""
    state = DevState.read(data_dir)
    if state is None:
        return {}
    return {"DATABASE_URL": state.database_url, "REDIS_URL": state.redis_url}


async def run_dev(
    data_dir: Path, host: str, port: int, *, database_url: str | None = None,
    redis_url: str | None = None, public_url: str | None = None,
) -> int:
    """Serve until signalled; the exit status (0 after a graceful stop, 128 + N after one
    forced by signal N, as ``worker`` and ``api`` answer). ``database_url`` / ``redis_url``
    unset: embedded servers; ``public_url`` unset: links (webhooks) point at this API."""
    from runledger.embedded import EmbeddedError

    with exclusive(data_dir), contextlib.ExitStack() as stack:
        check_port(host, port)
        given = {"database_url": database_url, "redis_url": redis_url}
        try:
            urls = _start_servers(given, data_dir, stack)
        except EmbeddedError as exc:
            first = str(exc).splitlines()[0]
            raise DevError(f"an embedded server cannot start: {first}") from None
        return await _serve(urls, data_dir, host, port, public_url)


def _start_servers(
    urls: dict[str, str | None], data_dir: Path, stack: contextlib.ExitStack
) -> dict[str, str]:
    from runledger.embedded import start_postgres, start_valkey

    database_url, redis_url = urls["database_url"], urls["redis_url"]
    if not database_url:
        pg = start_postgres(data_dir / "postgres")
        stack.callback(pg.stop)
        database_url = pg.url
    if not redis_url:
        valkey = start_valkey(data_dir / "valkey")
        stack.callback(valkey.stop)
        redis_url = valkey.url
    return {"database_url": database_url, "redis_url": redis_url}


async def _serve(urls: dict[str, str], data_dir: Path, host: str, port: int,
                 public_url: str | None) -> int:
    from api.server import serve as serve_api
    from api.settings import ApiSettings
    from projections.service import ProjectorSettings, run_projector
    from runledger.database import migrate_database
    from worker.main import playwright_executor
    from worker.settings import WorkerSettings
    from worker.waiting import run_worker_when_browser

    api_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    projector_settings = load_settings(ProjectorSettings, **urls,
                                       public_url=public_url or api_url)
    worker_settings = load_settings(WorkerSettings, **urls)
    api_settings = load_settings(ApiSettings, **urls, host=host, port=port)
    try:
        applied = await migrate_database(projector_settings.database_url)
    except StoreError as exc:
        raise DevError(f"PostgreSQL at DATABASE_URL={redact(urls['database_url'])}: {exc}"
                       ) from None
    log.info("DATABASE_URL=%s (%d migration(s) applied), REDIS_URL=%s",
             redact(projector_settings.database_url), len(applied),
             redact(projector_settings.redis_url))
    DevState(api_url, urls["database_url"], urls["redis_url"], os.getpid()).write(data_dir)
    log.info("API on %s (docs at /docs) — Ctrl-C to stop", api_url)
    try:
        with Signals(what="finishing in-flight runs, then stopping") as signals:

            async def api() -> None:
                if await serve_api(api_settings, signals.stop):
                    raise RuntimeError("the API stopped with an error (see the log above)")

            async def worker() -> None:
                await run_worker_when_browser(
                    worker_settings, playwright_executor, signals.stop,
                    force_stop=signals.force_stop)
                # Stopped while waiting for a browser: stay until everything stops.
                await signals.stop.wait()

            # The services drain on their own after the first signal (the worker lets its
            # runs finish); a second signal cuts that short. One that fails stops the others.
            await supervise(
                [("projector", run_projector(projector_settings, signals.stop)),
                 ("worker", worker()),
                 ("api", api())],
                stop=signals.stop, grace_seconds=None, force=signals.force_stop,
            )
        if signals.forced_by is not None:
            log.warning("stopped at once")
        log.info("stopped")
        return signals.exit_code
    finally:
        with contextlib.suppress(OSError):
            (data_dir / STATE_FILE).unlink()
