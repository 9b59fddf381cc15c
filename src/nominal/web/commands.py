"""``nominal serve``: run the web app with uvicorn."""

from __future__ import annotations

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
    import os

    import uvicorn

    from nominal.config import home

    if insecure_cookies:
        os.environ["NOMINAL_SECURE_COOKIES"] = "0"
    home().ensure()
    typer.echo(f"nominal: serving on http://{host}:{port} (home {home().root})")
    uvicorn.run(
        "nominal.web.serve:app",
        host=host,
        port=port,
        workers=workers,
        factory=True,
        proxy_headers=True,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
