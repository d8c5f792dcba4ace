"""A TCP proxy in front of PostgreSQL (or Redis) that a test can cut — every connection
through it is reset and new ones are refused until it is restored: a dropped connection, for
real — or arm to lose one reply after the server committed (``lose_reply``, PostgreSQL
only), or point at another server (``retarget``: a restart on a new port)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit


class CuttableProxy:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target_url = target_url
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self._marker: bytes | None = None
        self._fail_next = False
        self.reply_lost = asyncio.Event()
        self.read_failed = asyncio.Event()

    @property
    def url(self) -> str:
        """``target_url`` with the proxy's port."""
        parts = urlsplit(self._target_url)
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Known from the moment it is accepted: a handler task cancelled before its first
        # step (the test's loop closing) never runs its clean-up, and its socket would be
        # found unclosed by a later test.
        self._writers.add(writer)
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cut(self) -> None:
        """Stop listening (new connections are refused) and reset every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._writers.clear()

    def lose_reply(self, marker: bytes) -> None:
        """Arm a fault: the next request containing ``marker`` (e.g. an event's topic in an
        append's parameters) reaches the server, which executes and commits it; its reply
        is dropped and the connection reset once the server says it is done (ReadyForQuery,
        so the commit happened). Then the next request any client sends — the writer's
        read to find out what happened, or the set-up query of the connection it opens for
        it — is reset the same way. ``reply_lost`` and
        ``read_failed`` are set as each happens."""
        self._marker = marker
        self.reply_lost.clear()
        self.read_failed.clear()

    def retarget(self, target_url: str) -> None:
        """Connect new connections to ``target_url`` from now on (open ones stay)."""
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cut()  # what was accepted meanwhile

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._server is None:  # accepted just before a cut
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        if writer.transport.is_closing():
            up_writer.transport.abort()
            return
        self._writers.add(up_writer)
        link = _Link(writer, up_writer)
        pipes = [asyncio.create_task(self._upstream(reader, link)),
                 asyncio.create_task(self._downstream(up_reader, link))]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._tasks.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()


    async def _upstream(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                # A request (Parse, Bind or a simple Query), not a connection's start-up.
                if self._fail_next and data[:1] in (b"P", b"B", b"Q"):
                    self._fail_next = False
                    link.reset()
                    self.read_failed.set()
                    return
                if self._marker is not None and self._marker in link.sent[-256:] + data:
                    self._marker = None
                    link.dropping = True
                link.sent = link.sent[-256:] + data
                link.server.write(data)
                await link.server.drain()

    async def _downstream(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if link.dropping:
                    link.held += data
                    if READY_FOR_QUERY in link.held:
                        self._fail_next = True
                        link.reset()
                        self.reply_lost.set()
                        return
                    continue
                link.client.write(data)
                await link.client.drain()


#: PostgreSQL's ReadyForQuery message (type Z, length 5): the request, commit included, is done
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


class _Link:
    """One proxied connection: the client's and the server's ends, and the fault state."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.sent = b""  # the tail of what the client sent, for markers split across reads
        self.dropping = False
        self.held = b""

    def reset(self) -> None:
        for end in (self.client, self.server):
            end.transport.abort()
