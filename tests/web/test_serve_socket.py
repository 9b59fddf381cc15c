"""The listening socket ``nominal serve`` gives its workers: accepted connections get
TCP_NODELAY (without it every keep-alive response waited ~40 ms for a delayed ACK)."""

from __future__ import annotations

import asyncio
import socket

from nominal.web.commands import as_tcp


def _nodelay_of_accepted(listening: socket.socket) -> int:
    """TCP_NODELAY on the server side of a connection asyncio accepts on ``listening``."""

    async def main() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    return asyncio.run(main())


def _bound() -> socket.socket:
    # as uvicorn's Config.bind_socket makes it for several workers: protocol not said
    sock = socket.socket(family=socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_accepted_connections_get_nodelay() -> None:
    assert _nodelay_of_accepted(_bound()) == 0  # the failure as_tcp exists for
    assert _nodelay_of_accepted(as_tcp(_bound())) != 0
