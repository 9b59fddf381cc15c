"""``nominal demo``: build the hub on a synthetic town and serve it."""

from __future__ import annotations

from typing import Annotated

import typer

from nominal.config import Home
from nominal.console import Output


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        people: Annotated[
            int, typer.Option("--people", help="Synthetic population size.")
        ] = 20_000,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of the town.")] = 42,
        serve: Annotated[
            bool, typer.Option("--serve/--no-serve", help="Serve the web app when built.")
        ] = True,
        host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port")] = 8000,
        json_mode: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Generate a synthetic town, take in its feeds and build every stage of the hub."""
        from nominal.config import home as get_home
        from nominal.demo.build import DemoOptions, build_demo

        output = Output(json_mode)
        if people < 50:
            output.fail("--people must be at least 50")
        hub = get_home()
        try:
            with output.progress() as progress:
                built = build_demo(hub, DemoOptions(people=people, seed=seed), progress)
        except Exception as exc:  # a stage failed: say which and why, not a traceback
            output.fail(f"demo build failed: {exc}")
        output.print(f"Demo hub built in {hub.root}")
        for name, figures in built.stages.items():
            output.print(f"  {name:<12} {figures.get('seconds', 0):>7.1f}s")
        output.result({"ok": True, **built.to_dict()})
        if serve:
            _print_sign_ins(output, built.stages.get("governance", {}), host, port)
            _serve(output, hub, host, port)


def _print_sign_ins(output: Output, governance: dict[str, object], host: str, port: int) -> None:
    from nominal.govern.demo import DEMO_PASSWORD

    output.print(f"\nThe hub: http://{host}:{port}/")
    output.print(f"Demo sign-ins (password [bold]{DEMO_PASSWORD}[/]):")
    accounts = governance.get("accounts", [])
    for account in accounts if isinstance(accounts, list) else []:
        output.print(f"  {account['username']:<22} {account['role']:<14} {account['partner']}")
    output.print("Second factor: `nominal user demo-code USERNAME` prints the current code.")


def _serve(output: Output, hub: Home, host: str, port: int) -> None:
    try:
        from nominal.web.app import create_app
    except ImportError:
        output.print("The web app is not part of this build; nothing to serve.")
        return
    import uvicorn

    output.print(f"Serving the hub at http://{host}:{port}/ (Ctrl+C to stop)")
    # Plain HTTP on the developer's own machine, so the session cookie cannot be
    # marked Secure; a deployment serves HTTPS behind a proxy (docs/operations.md).
    from nominal.ops.logs import uvicorn_log_config

    uvicorn.run(
        create_app(hub, secure_cookies=False), host=host, port=port,
        log_config=uvicorn_log_config(),
    )  # fmt: skip
