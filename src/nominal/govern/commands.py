"""Administrators' commands: partners, purposes, agreements, users, tokens, audit, rights.

nominal partner add NPOL "Northshire Police" --agency police
nominal partner import-contracts DIR/contracts
nominal agreement add ISA-T2-001 --tier 2 --title "..." --purpose safeguarding_children
nominal user add pat --name "Pat" --partner KCC --role practitioner
nominal audit verify
nominal rights erase --record-key ... --request 3
nominal governance-demo --contracts DIR/contracts
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer

from nominal.console import Output

JSON = typer.Option(False, "--json", help="Print a JSON summary as the last line.")

partner_app = typer.Typer(
    help="Partners (organisations that share or receive data).", no_args_is_help=True
)
purpose_app = typer.Typer(help="Purposes data may be used for.", no_args_is_help=True)
agreement_app = typer.Typer(
    help="Information sharing agreements (tier 1 and tier 2).", no_args_is_help=True
)
user_app = typer.Typer(
    help="Users: roles, nomination, training, credentials.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens for machines, scoped to a user and a purpose.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
rights_app = typer.Typer(
    help="Data subject rights: access, rectification, erasure, restriction.", no_args_is_help=True
)
retention_app = typer.Typer(
    help="Retention of data by each contract's rules.", no_args_is_help=True
)
sharing_app = typer.Typer(
    help="Data owners' suspension of sharing a dataset.", no_args_is_help=True
)


@contextmanager
def _session(out: Output) -> Iterator[Any]:
    """A control-plane session; rule violations become clear errors, not tracebacks."""
    from nominal.config import home
    from nominal.db import ControlPlane
    from nominal.govern.admin import GovernError

    control = ControlPlane(home().ensure().database_url)
    try:
        with control.session() as session:
            yield session
    except (GovernError, ValueError) as exc:
        out.fail(str(exc))
    finally:
        control.dispose()


def _audit_log() -> Any:
    from nominal.config import home
    from nominal.db import ControlPlane
    from nominal.govern.audit import audit_log

    h = home().ensure()
    return audit_log(ControlPlane(h.database_url), h)


def _date(value: str | None, out: Output) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        out.fail(f"{value!r} is not a date (use YYYY-MM-DD)")


def _operator() -> str:
    return os.environ.get("USER", "cli")


# -- partners -------------------------------------------------------------------------------
@partner_app.command("add")
def partner_add(
    code: str,
    name: str,
    agency: str = typer.Option(None, help="kind of agency"),
    json_: bool = JSON,
) -> None:
    """Create or rename a partner."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        partner = admin.add_partner(s, code, name, agency)
        out.print(f"partner {partner.code}: {partner.name}")
        out.result({"ok": True, "partner": partner.code})


@partner_app.command("import-contracts")
def partner_import(folder: Path, json_: bool = JSON) -> None:
    """Register the partners and datasets of every feed contract in FOLDER."""
    from nominal.contracts.model import ContractError
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        try:
            datasets = admin.load_contract_folder(s, folder)
        except ContractError as exc:
            out.fail(str(exc))
        out.print(f"registered {len(datasets)} dataset(s) from {folder}")
        out.result({"ok": True, "datasets": [d.code for d in datasets]})


@partner_app.command("list")
def partner_list(json_: bool = JSON) -> None:
    """Partners and their datasets."""
    import sqlalchemy as sa

    from nominal.govern.models import Dataset, Partner

    out = Output(json_)
    with _session(out) as s:
        rows = []
        for p in s.scalars(sa.select(Partner).order_by(Partner.code)):
            datasets = [
                d.code for d in s.scalars(sa.select(Dataset).where(Dataset.partner_id == p.id))
            ]
            rows.append({"code": p.code, "name": p.name, "agency": p.agency, "datasets": datasets})
            out.print(f"{p.code:8} {p.name}  [{', '.join(datasets)}]")
        out.result({"ok": True, "partners": rows})


# -- purposes -------------------------------------------------------------------------------
@purpose_app.command("add")
def purpose_add(
    code: str,
    name: str,
    description: str = typer.Option(None),
    pseudonymised_only: bool = typer.Option(False, help="never show identities for this purpose"),
    json_: bool = JSON,
) -> None:
    """Create or update a purpose."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        purpose = admin.add_purpose(s, code, name, description, pseudonymised_only)
        out.print(f"purpose {purpose.code}: {purpose.name}")
        out.result({"ok": True, "purpose": purpose.code})


@purpose_app.command("list")
def purpose_list(json_: bool = JSON) -> None:
    import sqlalchemy as sa

    from nominal.govern.models import Purpose

    out = Output(json_)
    with _session(out) as s:
        rows = [
            {"code": p.code, "name": p.name, "pseudonymised_only": p.pseudonymised_only}
            for p in s.scalars(sa.select(Purpose).order_by(Purpose.code))
        ]
        for r in rows:
            out.print(
                f"{r['code']:24} {r['name']}{' (pseudonymised only)' if r['pseudonymised_only'] else ''}"
            )
        out.result({"ok": True, "purposes": rows})


# -- agreements -----------------------------------------------------------------------------
@agreement_app.command("add")
def agreement_add(
    reference: str,
    tier: int = typer.Option(2, help="1 (intent to share) or 2 (use case)"),
    title: str = typer.Option(..., help="what the agreement is for"),
    parent: str = typer.Option(None, help="the tier-1 agreement a tier-2 one rests on"),
    purpose: list[str] = typer.Option([], help="purpose code (repeat)"),
    party: list[str] = typer.Option([], help="partner code (repeat)"),
    legal_gateway: str = typer.Option(None),
    start: str = typer.Option(None, help="YYYY-MM-DD"),
    end: str = typer.Option(None, help="YYYY-MM-DD"),
    dpia_reference: str = typer.Option(None),
    dpia_document: str = typer.Option(None),
    json_: bool = JSON,
) -> None:
    """Create an agreement (as a draft)."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        agreement = admin.add_agreement(
            s,
            reference,
            tier,
            title,
            parent=parent,
            legal_gateway=legal_gateway,
            purposes=purpose,
            parties=party,
            start=_date(start, out),
            end=_date(end, out),
            dpia_reference=dpia_reference,
            dpia_document=dpia_document,
        )
        out.print(f"agreement {agreement.reference} (tier {tier}) created as draft")
        out.result({"ok": True, "agreement": agreement.reference})


@agreement_app.command("share")
def agreement_share(
    reference: str,
    dataset: str,
    fields: str = typer.Option("*", help="comma-separated field names, or * for all"),
    json_: bool = JSON,
) -> None:
    """Share fields of a dataset under a tier-2 agreement."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        names = [f.strip() for f in fields.split(",") if f.strip()]
        admin.share_dataset(s, admin.get_agreement(s, reference), dataset, names)
        out.print(f"{reference}: shares {dataset} ({', '.join(names)})")
        out.result({"ok": True})


@agreement_app.command("recipient")
def agreement_recipient(reference: str, partner: str, role: str, json_: bool = JSON) -> None:
    """Let a partner's users in a role receive the agreement's data."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        admin.add_recipient(s, admin.get_agreement(s, reference), partner, role)
        out.print(f"{reference}: {partner} {role}s may receive its data")
        out.result({"ok": True})


@agreement_app.command("status")
def agreement_status(reference: str, status: str, json_: bool = JSON) -> None:
    """Set the status: draft, live, suspended or ended."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        admin.set_agreement_status(s, admin.get_agreement(s, reference), status)
        out.print(f"{reference} is {status}")
        out.result({"ok": True, "status": status})


@agreement_app.command("checklist")
def agreement_checklist(
    reference: str,
    partner: str,
    done: list[str] = typer.Option(
        [],
        help="item completed (repeat): tier1_signed, tier2_signed, dpia_recorded, feed_validated, users_trained",
    ),
    json_: bool = JSON,
) -> None:
    """Tick onboarding items of a partner for a tier-2 agreement, and show what is outstanding."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        checklist = admin.set_checklist(
            s, admin.get_agreement(s, reference), partner, **dict.fromkeys(done, True)
        )
        state = (
            "complete" if checklist.complete else "outstanding: " + ", ".join(checklist.outstanding)
        )
        out.print(f"{reference} / {partner}: {state}")
        out.result(
            {"ok": True, "complete": checklist.complete, "outstanding": checklist.outstanding}
        )


@agreement_app.command("list")
def agreement_list(json_: bool = JSON) -> None:
    import sqlalchemy as sa

    from nominal.govern.models import Agreement

    out = Output(json_)
    today = date.today()
    with _session(out) as s:
        rows = []
        for a in s.scalars(sa.select(Agreement).order_by(Agreement.tier, Agreement.reference)):
            rows.append(
                {
                    "reference": a.reference,
                    "tier": a.tier,
                    "state": a.state(today),
                    "purposes": [p.code for p in a.purposes],
                    "datasets": [d.dataset.code for d in a.datasets],
                }
            )
            out.print(f"{a.reference:18} tier {a.tier}  {a.state(today):12} {a.title}")
        out.result({"ok": True, "agreements": rows})


# -- users ----------------------------------------------------------------------------------
@user_app.command("add")
def user_add(
    username: str,
    name: str = typer.Option(..., help="full name"),
    partner: str = typer.Option(...),
    role: str = typer.Option(..., help="practitioner, analyst, data_owner, ig_lead or admin"),
    email: str = typer.Option(None),
    password_env: str = typer.Option(
        "NOMINAL_NEW_PASSWORD",
        help="environment variable holding the initial password (else prompted)",
    ),
    json_: bool = JSON,
) -> None:
    """Create a user with a password and a TOTP secret (shown once as an otpauth:// URI)."""
    from nominal.govern import admin
    from nominal.govern.auth import totp_uri

    out = Output(json_)
    password = os.environ.get(password_env) or (
        typer.prompt("Initial password", hide_input=True, confirmation_prompt=True)
        if sys.stdin.isatty()
        else None
    )
    if not password:
        out.fail(f"give the initial password in ${password_env}")
    with _session(out) as s:
        user = admin.add_user(s, username, name, partner, role, password=password, email=email)
        uri = totp_uri(user)
        out.print(f"user {user.username} ({role}, {partner}) created; not yet nominated or trained")
        out.print(f"authenticator set-up: {uri}")
        out.result({"ok": True, "username": user.username, "totp_uri": uri})


@user_app.command("nominate")
def user_nominate(
    username: str,
    withdraw: bool = typer.Option(False, help="withdraw the nomination"),
    json_: bool = JSON,
) -> None:
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        user = admin.nominate(
            s, admin.get_user(s, username), by=_operator(), nominated=not withdraw
        )
        out.print(f"{username}: {'nominated' if user.nominated else 'not nominated'}")
        out.result({"ok": True, "nominated": user.nominated})


@user_app.command("train")
def user_train(
    username: str,
    completed: str = typer.Option(..., help="YYYY-MM-DD"),
    expires: str = typer.Option(None, help="YYYY-MM-DD (default a year later)"),
    json_: bool = JSON,
) -> None:
    """Record a user's data sharing training."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        done = _date(completed, out)
        assert done is not None
        user = admin.record_training(s, admin.get_user(s, username), done, _date(expires, out))
        out.print(
            f"{username}: trained {user.training_completed_on}, expires {user.training_expires_on}"
        )
        out.result({"ok": True, "expires": user.training_expires_on})


@user_app.command("unlock")
def user_unlock(username: str, json_: bool = JSON) -> None:
    """Clear a lock-out after too many failed sign-ins."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        user = admin.get_user(s, username)
        user.failed_attempts, user.locked_until = 0, None
        out.print(f"{username} unlocked")
        out.result({"ok": True})


@user_app.command("link-oidc")
def user_link_oidc(
    username: str,
    subject: str = typer.Argument(..., help="ISSUER|SUBJECT as the identity provider asserts it"),
    json_: bool = JSON,
) -> None:
    """Let USERNAME sign in through their organisation's OpenID Connect provider."""
    from nominal.govern import admin

    out = Output(json_)
    if "|" not in subject:
        out.fail("give the subject as ISSUER|SUBJECT")
    with _session(out) as s:
        user = admin.get_user(s, username)
        user.oidc_subject = subject
        out.print(f"{username} may sign in as {subject}")
        out.result({"ok": True})


@user_app.command("list")
def user_list(json_: bool = JSON) -> None:
    import sqlalchemy as sa

    from nominal.govern.models import User

    out = Output(json_)
    today = date.today()
    with _session(out) as s:
        rows = []
        for u in s.scalars(sa.select(User).order_by(User.username)):
            rows.append(
                {
                    "username": u.username,
                    "partner": u.partner.code,
                    "role": u.role,
                    "nominated": u.nominated,
                    "trained": u.trained_on(today),
                }
            )
            out.print(
                f"{u.username:20} {u.partner.code:6} {u.role:13} "
                f"{'nominated' if u.nominated else '-':10} {'trained' if u.trained_on(today) else 'untrained'}"
            )
        out.result({"ok": True, "users": rows})


@user_app.command("demo-code")
def user_demo_code(username: str, json_: bool = JSON) -> None:
    """Print the user's current TOTP code (for the demo accounts only)."""
    from nominal.govern import admin
    from nominal.govern.auth import totp_now
    from nominal.govern.demo import USERS

    out = Output(json_)
    if username not in {u[0] for u in USERS}:
        out.fail(f"{username} is not a demo account: use an authenticator app")
    with _session(out) as s:
        user = admin.get_user(s, username)
        if not user.totp_secret:
            out.fail(f"{username} has no TOTP secret")
        code = totp_now(user.totp_secret)
        if not json_:
            typer.echo(code)
        out.result({"ok": True, "code": code})


# -- tokens ---------------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    username: str,
    purpose: str,
    label: str = typer.Option(None),
    days: int = typer.Option(90, help="lifetime in days"),
    json_: bool = JSON,
) -> None:
    """Issue an API token for USERNAME, usable only for PURPOSE (printed once)."""
    from nominal.govern import admin
    from nominal.govern.auth import issue_token

    out = Output(json_)
    with _session(out) as s:
        issued = issue_token(
            s, admin.get_user(s, username), admin.get_purpose(s, purpose), label, days
        )
        if not json_:
            typer.echo(issued.token)
        out.result({"ok": True, "token": issued.token, "token_id": issued.token_id})


@token_app.command("revoke")
def token_revoke(token_id: str, json_: bool = JSON) -> None:
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from nominal.govern.models import ApiToken

    out = Output(json_)
    with _session(out) as s:
        token = s.scalar(sa.select(ApiToken).where(ApiToken.token_id == token_id))
        if token is None:
            out.fail(f"no token {token_id}")
        token.revoked_at = datetime.now(UTC)
        out.print(f"token {token_id} revoked")
        out.result({"ok": True})


@token_app.command("list")
def token_list(json_: bool = JSON) -> None:
    import sqlalchemy as sa

    from nominal.govern.models import ApiToken

    out = Output(json_)
    with _session(out) as s:
        rows = [
            {
                "token_id": t.token_id,
                "user": t.user.username,
                "purpose": t.purpose.code,
                "label": t.label,
                "expires_at": t.expires_at,
                "revoked": t.revoked_at is not None,
            }
            for t in s.scalars(sa.select(ApiToken).order_by(ApiToken.id))
        ]
        for r in rows:
            out.print(
                f"{r['token_id']} {r['user']:20} {r['purpose']:24} {'revoked' if r['revoked'] else 'live'}"
            )
        out.result({"ok": True, "tokens": rows})


# -- audit ----------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(json_: bool = JSON) -> None:
    """Check the whole chain and its seals; exit 1 and name the first bad entry if broken."""
    out = Output(json_)
    result = _audit_log().verify()
    if result.ok:
        out.print(
            f"audit chain intact: {result.entries} entries, {result.anchors} seal(s) checked, "
            f"{result.unsealed_tail} entries after the last seal"
        )
        out.result(result.to_json())
        return
    out.fail(
        f"audit chain broken at entry {result.first_bad_seq}: {result.problem}", **result.to_json()
    )


@audit_app.command("anchor")
def audit_anchor(json_: bool = JSON) -> None:
    """Seal the current head of the chain now."""
    out = Output(json_)
    anchor = _audit_log().anchor()
    out.print(f"sealed entry {anchor.seq}" if anchor else "the audit log is empty")
    out.result({"ok": True, "seq": anchor.seq if anchor else None})


@audit_app.command("export")
def audit_export(
    out_file: Path = typer.Argument(..., help="JSON lines file to write"), json_: bool = JSON
) -> None:
    """Export every entry (with its hashes) as JSON lines."""
    from nominal.govern.audit import export_to

    out = Output(json_)
    count = export_to(_audit_log(), out_file)
    out.print(f"exported {count} entries to {out_file}")
    out.result({"ok": True, "entries": count, "path": out_file})


@audit_app.command("search")
def audit_search(
    record_key: str = typer.Option(None),
    nominal_id: str = typer.Option(None),
    user: str = typer.Option(None),
    dataset: str = typer.Option(None),
    limit: int = typer.Option(50),
    json_: bool = JSON,
) -> None:
    """Who has looked at this person (record or nominal), and why."""
    from nominal.govern.audit import entry_json

    out = Output(json_)
    entries = _audit_log().search(
        record_key=record_key, nominal_id=nominal_id, username=user, dataset=dataset, limit=limit
    )
    rows = [entry_json(e) for e in entries]
    for r in rows:
        out.print(
            f"{r['seq']:>6} {r['at'][:19]} {r['username'] or '-':18} {r['purpose'] or '-':22} "
            f"{r['action']:12} {r['outcome']:8} {r['justification'] or ''}"
        )
    out.result({"ok": True, "entries": rows})


# -- rights ---------------------------------------------------------------------------------
@rights_app.command("request")
def rights_request(
    kind: str,
    subject: str,
    record_key: list[str] = typer.Option([], help="record pseudonym (repeat)"),
    partner: str = typer.Option(None),
    json_: bool = JSON,
) -> None:
    """Record a request: access, rectification, erasure or restriction."""
    from nominal.govern import rights

    out = Output(json_)
    with _session(out) as s:
        req = rights.open_request(s, kind, subject, record_key, by=_operator(), partner=partner)
        out.print(f"{kind} request {req.id} recorded for {subject}")
        out.result({"ok": True, "request": req.id})


@rights_app.command("access")
def rights_access(
    nominal_id: str = typer.Option(None),
    record_key: list[str] = typer.Option([]),
    out_file: Path = typer.Option(..., "--out", help="JSON file to write"),
    json_: bool = JSON,
) -> None:
    """Subject access export: everything held about a person, and who has looked at them."""
    from nominal.config import home
    from nominal.govern import rights

    out = Output(json_)
    if not nominal_id and not record_key:
        out.fail("give --nominal-id or --record-key")
    log = _audit_log()
    with _session(out) as s:
        report = rights.subject_access(
            home(), s, log, nominal_id=nominal_id, record_keys=record_key
        )
    out_file.write_text(json.dumps(report, indent=1, default=str))
    log.record(
        "subject_access",
        "allowed",
        username=_operator(),
        record_keys=report["record_keys"],
        nominal_ids=[nominal_id] if nominal_id else [],
        detail={"out": str(out_file)},
    )
    out.print(
        f"{len(report['records'])} record(s), {len(report['events'])} event(s), "
        f"{len(report['accesses'])} audited access(es) written to {out_file}"
    )
    out.result(
        {
            "ok": True,
            "records": len(report["records"]),
            "events": len(report["events"]),
            "accesses": len(report["accesses"]),
        }
    )


@rights_app.command("erase")
def rights_erase(
    record_key: list[str] = typer.Option([], help="record pseudonym (repeat)"),
    nominal_id: str = typer.Option(None, help="erase every record of this nominal"),
    request: int = typer.Option(None, help="the erasure request this fulfils"),
    json_: bool = JSON,
) -> None:
    """Erase records from silver and gold (new snapshot, old ones vacuumed)."""
    from nominal.config import home
    from nominal.govern import rights
    from nominal.govern.models import RightsRequest

    out = Output(json_)
    if not record_key and not nominal_id:
        out.fail("give --record-key or --nominal-id")
    with _session(out) as s:
        req = s.get(RightsRequest, request) if request else None
        result = rights.erase(home(), s, record_key, req, nominal_id=nominal_id)
    _audit_log().record(
        "rights.erase",
        "ok",
        username=_operator(),
        record_keys=result.record_keys,
        nominal_ids=[nominal_id] if nominal_id else [],
        detail={"rows_removed": result.rows_removed, "snapshot": result.snapshot_id},
    )
    out.print(f"erased {len(result.record_keys)} record(s): {result.rows_removed}")
    out.result(
        {
            "ok": True,
            "records": result.record_keys,
            "rows_removed": result.rows_removed,
            "snapshot": result.snapshot_id,
        }
    )


@rights_app.command("restrict")
def rights_restrict(
    record_key: list[str] = typer.Option(..., help="record pseudonym (repeat)"),
    lift: bool = typer.Option(False, help="lift the restriction instead"),
    request: int = typer.Option(None),
    json_: bool = JSON,
) -> None:
    """Restrict processing of records (kept, but withheld from every read)."""
    from nominal.govern import rights
    from nominal.govern.models import RightsRequest

    out = Output(json_)
    with _session(out) as s:
        if lift:
            count = rights.lift_restriction(s, record_key)
        else:
            count = rights.restrict(
                s, record_key, s.get(RightsRequest, request) if request else None
            )
    _audit_log().record(
        "rights.restrict", "ok", username=_operator(), record_keys=record_key, detail={"lift": lift}
    )
    out.print(f"{count} record(s) {'no longer ' if lift else ''}restricted")
    out.result({"ok": True, "count": count})


@rights_app.command("rectify")
def rights_rectify(
    request: int, record_key: str, field: str, value: str, json_: bool = JSON
) -> None:
    """Record a correction to send to the partner (it flows through on the next delivery)."""
    from nominal.govern import rights
    from nominal.govern.models import RightsRequest

    out = Output(json_)
    with _session(out) as s:
        req = s.get(RightsRequest, request)
        if req is None or req.kind != "rectification":
            out.fail(f"no rectification request {request}")
        rights.rectify(s, req, record_key, field, value)
        out.print(f"request {request}: correction of {field} recorded and sent to the partner")
        out.result({"ok": True})


@rights_app.command("list")
def rights_list(json_: bool = JSON) -> None:
    import sqlalchemy as sa

    from nominal.govern.models import RightsRequest

    out = Output(json_)
    with _session(out) as s:
        rows = [
            {
                "id": r.id,
                "kind": r.kind,
                "subject": r.subject,
                "status": r.status,
                "outcome": r.outcome,
            }
            for r in s.scalars(sa.select(RightsRequest).order_by(RightsRequest.id))
        ]
        for r in rows:
            out.print(
                f"{r['id']:>4} {r['kind']:14} {r['subject']:20} {r['status']:16} {r['outcome'] or ''}"
            )
        out.result({"ok": True, "requests": rows})


@retention_app.command("sweep")
def retention_sweep(
    today: str = typer.Option(None, help="YYYY-MM-DD to sweep as of (default today)"),
    json_: bool = JSON,
) -> None:
    """Remove data older than each dataset's contract retention, and report it."""
    from nominal.config import home
    from nominal.govern import rights

    out = Output(json_)
    with _session(out) as s:
        report = rights.retention_sweep(home(), s, _date(today, out))
    total = sum(r["events_removed"] for r in report)
    _audit_log().record(
        "retention.sweep", "ok", username=_operator(), detail={"events_removed": total}
    )
    for r in report:
        if r["events_removed"] or r["records_removed"]:
            out.print(
                f"{r['dataset']:28} before {r['cutoff']}: {r['events_removed']} event(s), {r['records_removed']} record(s)"
            )
    out.print(f"retention sweep removed {total} event(s)")
    out.result({"ok": True, "datasets": report, "events_removed": total})


# -- sharing suspensions ---------------------------------------------------------------------
@sharing_app.command("suspend")
def sharing_suspend(
    dataset: str, reason: str = typer.Option(...), by: str = typer.Option(None), json_: bool = JSON
) -> None:
    """Suspend sharing of a dataset (effective on the next request)."""
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        admin.suspend_dataset(s, dataset, by or _operator(), reason)
        out.print(f"sharing of {dataset} suspended")
        out.result({"ok": True})


@sharing_app.command("resume")
def sharing_resume(dataset: str, by: str = typer.Option(None), json_: bool = JSON) -> None:
    from nominal.govern import admin

    out = Output(json_)
    with _session(out) as s:
        count = admin.lift_suspension(s, dataset, by or _operator())
        out.print(f"sharing of {dataset} resumed ({count} suspension(s) lifted)")
        out.result({"ok": True, "lifted": count})


def governance_demo(
    contracts: Path = typer.Option(..., help="the contracts folder written by `nominal synth`"),
    json_: bool = JSON,
) -> None:
    """Create demo partners, purposes, agreements and a user for every role."""
    from nominal.config import home
    from nominal.contracts.model import ContractError
    from nominal.govern.demo import seed_demo

    out = Output(json_)
    try:
        accounts = seed_demo(home().ensure(), contracts)
    except ContractError as exc:
        out.fail(str(exc))
    out.print(
        f"{accounts.partners} partners, {accounts.datasets} datasets, {accounts.purposes} purposes, "
        f"{accounts.agreements} agreements (live, onboarding complete)"
    )
    for a in accounts.accounts:
        out.print(f"  {a.username:18} {a.role:13} {a.partner}")
    out.print(
        f"Sign in with password {accounts.accounts[0].password!r} and the code from "
        "`nominal user demo-code USERNAME`; start the app with `nominal serve`."
    )
    out.result({"ok": True, **accounts.to_json()})


def register(app: typer.Typer) -> None:
    app.add_typer(partner_app, name="partner")
    app.add_typer(purpose_app, name="purpose")
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(audit_app, name="audit")
    app.add_typer(rights_app, name="rights")
    app.add_typer(retention_app, name="retention")
    app.add_typer(sharing_app, name="sharing")
    app.command("governance-demo")(governance_demo)
