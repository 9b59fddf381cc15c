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
    import logging
    import logging.config
    import os

    import uvicorn

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
    uvicorn.run(
        "nominal.web.serve:app",
        host=host,
        port=port,
        workers=workers,
        factory=True,
        proxy_headers=True,
        server_header=False,
        log_config=log_config,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
