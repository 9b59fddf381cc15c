"""``nominal serve``: run the web app with uvicorn."""

from __future__ import annotations

import socket
from typing import Any

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    insecure_cookies: bool = typer.Option(
        False, help="send the session cookie over plain HTTP (a developer's machine only)"
    ),
    workers: int = typer.Option(1, help="server processes"),
) -> None:
    """Serve the hub's pages and API."""
    import logging
    import logging.config
    import os

    from nominal.config import home
    from nominal.ops.logs import uvicorn_log_config

    if insecure_cookies:
        os.environ["NOMINAL_SECURE_COOKIES"] = "0"
    home().ensure()
    # JSON lines like the rest of the hub (NOMINAL_LOG_FORMAT, NOMINAL_LOG_LEVEL), for
    # uvicorn's own loggers too; access lines without query strings (search terms).
    log_config = uvicorn_log_config()
    logging.config.dictConfig(log_config)
    logging.getLogger("nominal.web").info(
        "serving", extra={"url": f"http://{host}:{port}", "home": str(home().root),
                          "workers": workers},
    )  # fmt: skip
    run_server(host, port, workers, log_config=log_config)


def run_server(host: str, port: int, workers: int, **options: Any) -> None:
    """``nominal.web.serve:app`` under uvicorn, with ``workers`` processes.

    With several workers uvicorn binds the listening socket itself, as a socket of
    protocol 0; asyncio then does not set ``TCP_NODELAY`` on the connections it accepts
    (it checks for ``IPPROTO_TCP``), and a response written as headers then body waits
    for the client's delayed ACK: about 40 ms on every keep-alive request (measured by
    ``benchmarks/search_load.py``, where ``/api/me`` took 44 ms with two workers and 1 ms
    with one). So the socket is re-made here with its protocol said, as one worker gets.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "nominal.web.serve:app", host=host, port=port, workers=workers, factory=True,
        proxy_headers=True, server_header=False, **options,
    )  # fmt: skip
    if workers <= 1:
        uvicorn.Server(config).run()
        return
    Multiprocess(config, sockets=[as_tcp(config.bind_socket())]).run()


def as_tcp(sock: socket.socket) -> socket.socket:
    """``sock`` (a bound internet stream socket) as a socket object that says it is TCP."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock  # a Unix socket: no Nagle to switch off
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
