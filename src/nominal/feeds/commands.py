"""``nominal feeds`` (feed API tokens) and ``nominal alerts`` (subscriptions, detection, webhooks)."""

from __future__ import annotations

from typing import Annotated

import typer

from nominal.config import home
from nominal.console import Output

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary.")]


def register(app: typer.Typer) -> None:
    feeds_app = typer.Typer(help="The feed API: tokens for partner systems.", no_args_is_help=True)
    alerts_app = typer.Typer(
        help="Alerts to partners: subscriptions and webhooks.", no_args_is_help=True
    )
    app.add_typer(feeds_app, name="feeds")
    app.add_typer(alerts_app, name="alerts")

    @feeds_app.command("token")
    def token(
        partner: Annotated[str, typer.Option("--partner", help="Partner code, e.g. NPOL.")],
        feed: Annotated[
            list[str] | None, typer.Option("--feed", help="Feed it may push to (repeat).")
        ] = None,
        pull: Annotated[bool, typer.Option("--pull", help="May also pull (ids, alerts).")] = False,
        days: Annotated[int, typer.Option(help="Days until it expires.")] = 365,
        label: Annotated[str | None, typer.Option(help="What it is for.")] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Issue a feed API token (shown once) for a partner's system."""
        from nominal.contracts.registry import registered_contracts
        from nominal.db import ControlPlane
        from nominal.feeds.tokens import issue_feed_token

        out = Output(json_mode)
        h = home().ensure()
        feeds = feed or []
        known = {c.feed: c.partner.code for c in registered_contracts(h)}
        for f in feeds:
            if f not in known:
                out.fail(f"--feed: no registered feed {f!r}")
            if known[f] != partner:
                out.fail(f"--feed: {f} belongs to partner {known[f]}, not {partner}")
        if not feeds and not pull:
            out.fail("give --feed (to push) and/or --pull")
        control = ControlPlane(h.database_url)
        with control.session() as session:
            issued = issue_feed_token(
                session, partner, feeds, can_pull=pull, label=label, days=days
            )
        control.dispose()
        out.print(f"Token for {partner} (shown once): {issued.token}")
        out.result({"ok": True, "token": issued.token, "token_id": issued.token_id})

    @feeds_app.command("revoke")
    def revoke(token_id: str, json_mode: JsonOpt = False) -> None:
        """Revoke a feed API token by its id."""
        from nominal.db import ControlPlane
        from nominal.feeds.tokens import revoke_feed_token

        out = Output(json_mode)
        control = ControlPlane(home().ensure().database_url)
        with control.session() as session:
            done = revoke_feed_token(session, token_id)
        control.dispose()
        if not done:
            out.fail(f"no token {token_id}")
        out.print(f"Revoked {token_id}.")
        out.result({"ok": True})

    @alerts_app.command("subscribe")
    def alerts_subscribe(
        partner: Annotated[str, typer.Option("--partner")],
        kinds: Annotated[
            str, typer.Option("--kinds", help="new_incident,new_agency,risk_threshold")
        ],
        webhook: Annotated[
            str | None, typer.Option("--webhook", help="HTTPS address to POST alerts to.")
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", help="Risk model (risk_threshold).")
        ] = None,
        threshold: Annotated[
            float | None, typer.Option("--threshold", help="Risk score threshold.")
        ] = None,
        json_mode: JsonOpt = False,
    ) -> None:
        """Subscribe a partner to alerts; prints the webhook signing secret once."""
        from nominal.db import ControlPlane
        from nominal.feeds.alerts import AlertError, subscribe

        out = Output(json_mode)
        h = home().ensure()
        control = ControlPlane(h.database_url)
        try:
            sub_id, secret = subscribe(
                control,
                h,
                partner,
                [k.strip() for k in kinds.split(",") if k.strip()],
                webhook_url=webhook,
                risk_model=model,
                risk_threshold=threshold,
            )
        except AlertError as exc:
            out.fail(str(exc))
        finally:
            control.dispose()
        out.print(f"Subscription {sub_id}; webhook signing secret (shown once): {secret}")
        out.result({"ok": True, "subscription": sub_id, "secret": secret})

    @alerts_app.command("detect")
    def alerts_detect(json_mode: JsonOpt = False) -> None:
        """Create the alerts that are new since each subscription last looked."""
        from nominal.db import ControlPlane
        from nominal.feeds.alerts import detect_alerts

        out = Output(json_mode)
        h = home().ensure()
        control = ControlPlane(h.database_url)
        counts = detect_alerts(h, control)
        control.dispose()
        out.print(", ".join(f"{k} {v}" for k, v in counts.items()))
        out.result({"ok": True, "alerts": counts})

    @alerts_app.command("deliver")
    def alerts_deliver(json_mode: JsonOpt = False) -> None:
        """Send the webhook deliveries that are due (the scheduler does this every tick)."""
        from nominal.db import ControlPlane
        from nominal.feeds.alerts import deliver_due

        out = Output(json_mode)
        h = home().ensure()
        control = ControlPlane(h.database_url)
        result = deliver_due(h, control)
        control.dispose()
        out.print(", ".join(f"{k} {v}" for k, v in result.items()))
        out.result({"ok": True, **result})
