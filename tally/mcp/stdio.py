"""The MCP server over stdio, reading and writing the pipes on the event loop.

The SDK's ``stdio_server`` reads stdin and writes stdout through ``anyio.wrap_file``: a hop
to a worker thread and back for every line read and every line written (issue #19: about
half of the stdio call's overhead), and a task of its own on each side, handing every
message on through a memory stream. Here ``Server.run`` is given the two streams directly,
over asyncio's pipe transports: a line is parsed as ``stdio_server`` parses it (a line that
is not a JSON-RPC message becomes the exception the server answers) where the server reads
it, and a message is serialised as ``stdio_server`` does and written where the server sends
it, so a message never leaves the loop's thread or waits for another task.

As the SDK does while it serves, fd 0 is pointed at the null device and fd 1 at stderr, so
a stray ``print`` (or a child process) cannot write into the protocol; both come back at
exit. Stdin or stdout that is not a pipe or a socket (a file, a terminal) is served by the
SDK's own transport, as before.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any, cast

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage

CHUNK = 1 << 16
# Seconds an answer still in the pipe may wait at exit for a reader that is not reading.
CLOSE_TIMEOUT = 5


def serve_stdio(server: MCPServer) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin ends."""
    if not (_is_pipe(0) and _is_pipe(1)):
        server.run("stdio")
        return
    anyio.run(_serve, server, backend="asyncio")


async def _serve(server: MCPServer) -> None:
    # MCPServer.run_stdio_async with our streams (it takes none of its own).
    lowlevel = server._lowlevel_server
    async with pipe_stdio(0, 1) as (lines_in, lines_out):
        await lowlevel.run(
            MessagesIn(lines_in), MessagesOut(lines_out), lowlevel.create_initialization_options()
        )


class MessagesIn:
    """The server's read stream: stdin's lines, each parsed as the SDK's ``stdio_server``
    parses one; a line that is not a JSON-RPC message is handed on as the exception."""

    def __init__(self, lines: PipeLines) -> None:
        self._lines = lines.__aiter__()

    async def receive(self) -> SessionMessage | Exception:
        try:
            line = await anext(self._lines)
        except StopAsyncIteration:
            raise anyio.EndOfStream from None
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception as exc:  # the SDK's transport hands on whatever the parser raised
            return exc
        return SessionMessage(message)

    def __aiter__(self) -> MessagesIn:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await cast(Any, self._lines).aclose()

    async def __aenter__(self) -> MessagesIn:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class MessagesOut:
    """The server's write stream: each message serialised as the SDK's ``stdio_server``
    writes it, one line, written at once (a concurrent sender's line cannot interleave: the
    transport takes the whole line in one call); ``send`` returns once the pipe has room."""

    def __init__(self, writer: PipeWriter) -> None:
        self._writer = writer
        self._closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        line = item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
        await self._writer.write(line)
        await self._writer.flush()

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> MessagesOut:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PipeLines:
    """stdin as the SDK's stdio_server iterates it: text lines, newline kept, invalid
    UTF-8 replaced (as its TextIOWrapper(errors="replace") does), the last line also
    without a newline; no limit on a line's length."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        pending = b""
        while chunk := await self._reader.read(CHUNK):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                yield _text(line)
        if pending:
            yield _text(pending)


def _text(line: bytes) -> str:
    # TextIOWrapper's universal newlines: a line ending \r\n reads as ending \n.
    return line.removesuffix(b"\r").decode("utf-8", errors="replace") + "\n"


class PipeWriter(asyncio.Protocol):
    """stdout as the SDK's stdio_server writes it: ``write(text)`` then ``flush()``; the
    flush waits while the pipe is full (the reader is behind)."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.WriteTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        self._closed.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def write(self, text: str) -> None:
        if self._transport is None or self._transport.is_closing():
            raise anyio.ClosedResourceError
        self._transport.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writable.wait()

    async def aclose(self) -> None:
        """Close once what is written has reached the pipe (or its reader has gone)."""
        if self._transport is None:
            return
        self._transport.close()
        with anyio.move_on_after(CLOSE_TIMEOUT):
            await self._closed.wait()
        if not self._closed.is_set():
            self._transport.abort()


@asynccontextmanager
async def pipe_stdio(stdin_fd: int, stdout_fd: int) -> AsyncIterator[tuple[PipeLines, PipeWriter]]:
    """Line streams over the pipes at ``stdin_fd`` and ``stdout_fd``, served from private
    duplicates while the two descriptors are diverted (see the module's docstring)."""
    loop = asyncio.get_running_loop()
    with ExitStack() as stack:
        wire_in = stack.enter_context(_claimed(stdin_fd, os.O_RDONLY))
        wire_out = stack.enter_context(_claimed(stdout_fd, os.O_WRONLY))
        reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(wire_in, "rb", buffering=0, closefd=False),
        )
        _, writer = await loop.connect_write_pipe(
            PipeWriter, os.fdopen(wire_out, "wb", buffering=0, closefd=False)
        )
        try:
            yield PipeLines(reader), writer
        finally:
            read_transport.close()
            await writer.aclose()


@contextmanager
def _claimed(fd: int, diversion_flags: int) -> Iterator[int]:
    """A private duplicate of ``fd`` (the wire), with ``fd`` itself pointed at the null
    device (stdin) or stderr (stdout) until exit, when it gets the wire back, in the
    blocking mode it had."""
    wire = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    blocking = os.get_blocking(wire)
    diversion = os.dup(2) if diversion_flags == os.O_WRONLY else os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(diversion, fd)
        os.close(diversion)
        yield wire
    finally:
        os.dup2(wire, fd)
        os.set_blocking(fd, blocking)
        os.close(wire)
