"""The socket `tally mcp --http` listens on: asyncio must turn Nagle off on its connections.

Bug: a socket from ``socket.create_server`` says ``proto`` 0, so asyncio did not set
TCP_NODELAY on accepted connections, and each answer's body (written after its headers)
waited for the client's delayed ACK, about 40 ms a call.
"""

from __future__ import annotations

import asyncio
import socket

from tally.mcp.http import listening_socket
from tests.conftest import in_own_thread


def test_connections_accepted_on_the_mcp_socket_have_nagle_off() -> None:
    async def main() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = listening_socket("127.0.0.1", 0)
        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            nodelay = await accepted
            writer.close()
        return nodelay

    assert in_own_thread(asyncio.run, main()) != 0


def test_the_socket_listens_before_the_server_runs() -> None:
    """A client may connect as soon as the address is printed (it waits in the backlog)."""
    listener = listening_socket("127.0.0.1", 0)
    try:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        client.close()
    finally:
        listener.close()
