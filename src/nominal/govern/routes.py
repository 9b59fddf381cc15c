"""Governance pages for information governance leads and data owners, and the governed API.

Pages: partners and feeds, agreements (tier 1 and tier 2, with datasets, fields and
recipients), onboarding checklists, users (nomination and training), audit search and
verification, data-subject rights requests, dataset suspensions.

API: ``/api/me``, ``/api/datasets/{dataset}/records?purpose=`` (policy-filtered silver
records, audited), ``/api/reidentify`` (justified, audited), ``/api/audit``.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from nominal.govern import admin, rights
from nominal.govern.admin import GovernError
from nominal.govern.audit import entry_json
from nominal.govern.models import (
    AGREEMENT_STATUSES,
    ROLE_LABELS,
    ROLES,
    Agreement,
    Dataset,
    DatasetSuspension,
    OnboardingChecklist,
    Partner,
    Purpose,
    RightsRequest,
    User,
)
from nominal.govern.policy import active_suspension
from nominal.govern.reads import LakeReader, NoData, read_records
from nominal.govern.reidentify import ReidentificationRefused, reidentify
from nominal.web.deps import (
    Enforcer,
    client_address,
    current_user,
    db,
    errors,
    pdp,
    require_purpose,
    require_roles,
    state,
)
from nominal.web.templating import render

router = APIRouter()

IG = ("ig_lead", "admin")
OWNERS = ("data_owner", "ig_lead", "admin")
NAV = [
    ("Partners and feeds", "/partners", IG),
    ("Agreements", "/agreements", IG),
    ("Onboarding", "/onboarding", IG),
    ("Users", "/users", IG),
    ("Audit", "/audit", IG),
    ("Rights requests", "/rights", IG),
    ("Suspensions", "/suspensions", OWNERS),
]

ig_only = require_roles(*IG)
owners_only = require_roles(*OWNERS)


def _reader(request: Request) -> LakeReader:
    hub = state(request)
    reader = hub.cache.get("lake_reader")
    if reader is None:
        from nominal.engines.lake import Lake

        reader = hub.cache["lake_reader"] = LakeReader(Lake(hub.home.lake))
    return reader


def _partners(session: Session, ids: set[int]) -> list[Partner]:
    return list(
        session.scalars(sa.select(Partner).where(Partner.id.in_(ids)).order_by(Partner.code))
    )


def _admin_audit(
    request: Request, session: Session, user: User, action: str, detail: dict[str, Any]
) -> None:
    """Commit the change, then audit it (the audit log writes in its own transaction)."""
    session.commit()
    state(request).audit.record(
        f"admin.{action}", "ok", user=user, client=client_address(request), detail=detail
    )


def _back(path: str, message: str | None = None) -> RedirectResponse:
    suffix = f"?done={message}" if message else ""
    return RedirectResponse(path + suffix, status_code=303)


def _parse_date(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(422, f"{value!r} is not a date (use YYYY-MM-DD)") from exc


def _fail(exc: GovernError) -> HTTPException:
    return HTTPException(422, str(exc))


# -- partners and feeds -----------------------------------------------------------------
def _last_deliveries(request: Request) -> dict[str, dict[str, Any]]:
    """Per dataset: the last delivery's date, status and rows (from silver.deliveries)."""
    reader = _reader(request)
    try:
        if "received_at" not in reader.columns("silver.deliveries"):
            return {}
        cur, _snapshot = reader.cursor()
    except NoData:
        return {}
    try:
        rows = cur.execute(
            "SELECT dataset, arg_max(received_at, received_at), arg_max(status, received_at), "
            "arg_max(rows_accepted, received_at), arg_max(rows_quarantined, received_at), count(*) "
            "FROM silver.deliveries GROUP BY dataset"
        ).fetchall()
    finally:
        cur.close()
    return {
        r[0]: {
            "at": r[1],
            "status": r[2],
            "accepted": r[3],
            "quarantined": r[4],
            "deliveries": r[5],
        }
        for r in rows
    }


@router.get("/partners", include_in_schema=False)
def partners_page(
    request: Request, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    partners = list(session.scalars(sa.select(Partner).order_by(Partner.code)))
    datasets = list(session.scalars(sa.select(Dataset).order_by(Dataset.code)))
    suspended = {d.id for d in datasets if active_suspension(session, d.id, _now()) is not None}
    return render(
        request,
        "govern/partners.html",
        {
            "deliveries": _last_deliveries(request),
            "partners": partners,
            "datasets": datasets,
            "suspended": suspended,
            "title": "Partners and feeds",
        },
    )


@router.post("/partners", include_in_schema=False)
def partners_add(
    request: Request,
    code: str = Form(...),
    name: str = Form(...),
    agency: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    admin.add_partner(session, code.strip(), name.strip(), agency.strip() or None)
    _admin_audit(request, session, user, "partner", {"code": code})
    return _back("/partners", "partner saved")


# -- agreements -------------------------------------------------------------------------
@router.get("/agreements", include_in_schema=False)
def agreements_page(
    request: Request, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    agreements = list(
        session.scalars(sa.select(Agreement).order_by(Agreement.tier, Agreement.reference))
    )
    return render(
        request,
        "govern/agreements.html",
        {
            "agreements": agreements,
            "purposes": list(session.scalars(sa.select(Purpose).order_by(Purpose.code))),
            "partners": list(session.scalars(sa.select(Partner).order_by(Partner.code))),
            "tier1": [a for a in agreements if a.tier == 1],
            "today": _now().date(),
            "title": "Agreements",
        },
    )


@router.post("/agreements", include_in_schema=False)
async def agreements_add(
    request: Request,
    reference: str = Form(...),
    tier: int = Form(2),
    title: str = Form(...),
    parent: str = Form(""),
    legal_gateway: str = Form(""),
    start: str = Form(""),
    end: str = Form(""),
    dpia_reference: str = Form(""),
    dpia_document: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    form = await request.form()
    purposes = [str(p) for p in form.getlist("purposes")]
    parties = [str(p) for p in form.getlist("parties")]
    try:
        agreement = admin.add_agreement(
            session,
            reference.strip(),
            tier,
            title.strip(),
            parent=parent or None,
            legal_gateway=legal_gateway or None,
            purposes=purposes,
            parties=parties,
            start=_parse_date(start),
            end=_parse_date(end),
            dpia_reference=dpia_reference or None,
            dpia_document=dpia_document or None,
        )
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(request, session, user, "agreement.create", {"reference": agreement.reference})
    return _back(f"/agreements/{agreement.id}")


def _agreement(session: Session, agreement_id: int) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise HTTPException(404, "no such agreement")
    return agreement


@router.get("/agreements/{agreement_id}", include_in_schema=False)
def agreement_page(
    request: Request, agreement_id: int, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    agreement = _agreement(session, agreement_id)
    involved = {s.dataset.partner_id for s in agreement.datasets} | {
        r.partner_id for r in agreement.recipients
    }
    checklists = [admin.checklist(session, agreement, p) for p in _partners(session, involved)]
    return render(
        request,
        "govern/agreement.html",
        {
            "a": agreement,
            "checklists": checklists,
            "items": OnboardingChecklist.ITEMS,
            "datasets": list(session.scalars(sa.select(Dataset).order_by(Dataset.code))),
            "partners": list(session.scalars(sa.select(Partner).order_by(Partner.code))),
            "purposes": list(session.scalars(sa.select(Purpose).order_by(Purpose.code))),
            "roles": ROLES,
            "role_labels": ROLE_LABELS,
            "statuses": AGREEMENT_STATUSES,
            "state": agreement.state(_now().date()),
            "title": agreement.reference,
        },
    )


@router.post("/agreements/{agreement_id}/edit", include_in_schema=False)
async def agreement_edit(
    request: Request,
    agreement_id: int,
    title: str = Form(...),
    legal_gateway: str = Form(""),
    start: str = Form(""),
    end: str = Form(""),
    dpia_reference: str = Form(""),
    dpia_document: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    agreement = _agreement(session, agreement_id)
    form = await request.form()
    agreement.title = title.strip()
    agreement.legal_gateway = legal_gateway or None
    agreement.start_date, agreement.end_date = _parse_date(start), _parse_date(end)
    if agreement.start_date and agreement.end_date and agreement.end_date < agreement.start_date:
        raise HTTPException(422, "the end date is before the start date")
    agreement.dpia_reference = dpia_reference or None
    agreement.dpia_document = dpia_document or None
    agreement.purposes = [admin.get_purpose(session, str(p)) for p in form.getlist("purposes")]
    _admin_audit(request, session, user, "agreement.edit", {"reference": agreement.reference})
    return _back(f"/agreements/{agreement.id}", "saved")


@router.post("/agreements/{agreement_id}/datasets", include_in_schema=False)
def agreement_dataset(
    request: Request,
    agreement_id: int,
    dataset: str = Form(...),
    fields: str = Form("*"),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    agreement = _agreement(session, agreement_id)
    names = [f.strip() for f in fields.replace("\n", ",").split(",") if f.strip()] or ["*"]
    try:
        admin.share_dataset(session, agreement, dataset, names)
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(
        request,
        session,
        user,
        "agreement.dataset",
        {"reference": agreement.reference, "dataset": dataset, "fields": names},
    )
    return _back(f"/agreements/{agreement.id}", "dataset shared")


@router.post("/agreements/{agreement_id}/recipients", include_in_schema=False)
def agreement_recipient(
    request: Request,
    agreement_id: int,
    partner: str = Form(...),
    role: str = Form(...),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    agreement = _agreement(session, agreement_id)
    try:
        admin.add_recipient(session, agreement, partner, role)
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(
        request,
        session,
        user,
        "agreement.recipient",
        {"reference": agreement.reference, "partner": partner, "role": role},
    )
    return _back(f"/agreements/{agreement.id}", "recipient added")


@router.post("/agreements/{agreement_id}/status", include_in_schema=False)
def agreement_status(
    request: Request,
    agreement_id: int,
    status: str = Form(...),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    agreement = _agreement(session, agreement_id)
    try:
        admin.set_agreement_status(session, agreement, status)
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(
        request,
        session,
        user,
        "agreement.status",
        {"reference": agreement.reference, "status": status},
    )
    return _back(f"/agreements/{agreement.id}", f"status {status}")


# -- onboarding -------------------------------------------------------------------------
@router.get("/onboarding", include_in_schema=False)
def onboarding_page(
    request: Request, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    checklists = []
    for agreement in session.scalars(
        sa.select(Agreement).where(Agreement.tier == 2).order_by(Agreement.reference)
    ):
        involved = {s.dataset.partner_id for s in agreement.datasets} | {
            r.partner_id for r in agreement.recipients
        }
        for pid in sorted(involved):
            partner = session.get(Partner, pid)
            assert partner is not None
            checklists.append(admin.checklist(session, agreement, partner))
    return render(
        request,
        "govern/onboarding.html",
        {"checklists": checklists, "items": OnboardingChecklist.ITEMS, "title": "Onboarding"},
    )


@router.post("/onboarding/{checklist_id}", include_in_schema=False)
async def onboarding_update(
    request: Request,
    checklist_id: int,
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    found = session.get(OnboardingChecklist, checklist_id)
    if found is None:
        raise HTTPException(404, "no such checklist")
    form = await request.form()
    ticked = {str(v) for v in form.getlist("items")}
    for name, _label in OnboardingChecklist.ITEMS:
        setattr(found, name, name in ticked)
    _admin_audit(
        request,
        session,
        user,
        "onboarding",
        {
            "agreement": found.agreement.reference,
            "partner": found.partner.code,
            "items": sorted(ticked),
        },
    )
    back = str(form.get("back") or "/onboarding")
    return _back(
        back if back.startswith("/") and not back.startswith("//") else "/onboarding",
        "checklist saved",
    )


# -- users ------------------------------------------------------------------------------
@router.get("/users", include_in_schema=False)
def users_page(
    request: Request, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    users = list(session.scalars(sa.select(User).order_by(User.username)))
    return render(
        request,
        "govern/users.html",
        {
            "users": users,
            "partners": list(session.scalars(sa.select(Partner).order_by(Partner.code))),
            "roles": ROLES,
            "role_labels": ROLE_LABELS,
            "today": _now().date(),
            "created": request.query_params.get("created"),
            "title": "Users",
        },
    )


@router.post("/users", include_in_schema=False)
def users_add(
    request: Request,
    username: str = Form(...),
    full_name: str = Form(...),
    partner: str = Form(...),
    role: str = Form(...),
    password: str = Form(...),
    email: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    try:
        created = admin.add_user(
            session,
            username.strip(),
            full_name.strip(),
            partner,
            role,
            password=password,
            email=email or None,
        )
    except (GovernError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from exc
    _admin_audit(
        request,
        session,
        user,
        "user.create",
        {"username": created.username, "role": role, "partner": partner},
    )
    return _back("/users", f"user {created.username} created")


def _user(session: Session, user_id: int) -> User:
    found = session.get(User, user_id)
    if found is None:
        raise HTTPException(404, "no such user")
    return found


@router.post("/users/{user_id}/nominate", include_in_schema=False)
def users_nominate(
    request: Request,
    user_id: int,
    nominated: str = Form("yes"),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    target = _user(session, user_id)
    admin.nominate(session, target, by=user.username, nominated=nominated == "yes")
    _admin_audit(
        request,
        session,
        user,
        "user.nominate",
        {"username": target.username, "nominated": target.nominated},
    )
    return _back("/users", "nomination saved")


@router.post("/users/{user_id}/training", include_in_schema=False)
def users_training(
    request: Request,
    user_id: int,
    completed: str = Form(...),
    expires: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    target = _user(session, user_id)
    done = _parse_date(completed)
    if done is None:
        raise HTTPException(422, "give the date the training was completed")
    try:
        admin.record_training(session, target, done, _parse_date(expires))
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(
        request,
        session,
        user,
        "user.training",
        {"username": target.username, "completed": str(done)},
    )
    return _back("/users", "training recorded")


# -- audit ------------------------------------------------------------------------------
@router.get("/audit", include_in_schema=False)
def audit_page(
    request: Request,
    username: str = "",
    dataset: str = "",
    record_key: str = "",
    nominal_id: str = "",
    verify: str = "",
    _u: User = Depends(ig_only),
) -> Response:
    hub = state(request)
    entries = hub.audit.search(
        username=username or None,
        dataset=dataset or None,
        record_key=record_key or None,
        nominal_id=nominal_id or None,
        limit=200,
    )
    verification = hub.audit.verify() if verify else None
    return render(
        request,
        "govern/audit.html",
        {
            "entries": [entry_json(e) for e in entries],
            "q": {
                "username": username,
                "dataset": dataset,
                "record_key": record_key,
                "nominal_id": nominal_id,
            },
            "verification": verification,
            "title": "Audit",
        },
    )


# -- rights -----------------------------------------------------------------------------
@router.get("/rights", include_in_schema=False)
def rights_page(
    request: Request, _u: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    requests = list(session.scalars(sa.select(RightsRequest).order_by(RightsRequest.id.desc())))
    return render(request, "govern/rights.html", {"requests": requests, "title": "Rights requests"})


@router.post("/rights", include_in_schema=False)
def rights_add(
    request: Request,
    kind: str = Form(...),
    subject: str = Form(...),
    record_keys: str = Form(""),
    detail: str = Form(""),
    user: User = Depends(ig_only),
    session: Session = Depends(db),
) -> Response:
    keys = [k.strip() for k in record_keys.replace("\n", ",").split(",") if k.strip()]
    try:
        created = rights.open_request(
            session,
            kind,
            subject,
            keys,
            by=user.username,
            detail={"note": detail} if detail else None,
        )
    except GovernError as exc:
        raise _fail(exc) from exc
    _admin_audit(
        request, session, user, f"rights.{kind}", {"request": created.id, "subject": subject}
    )
    return _back("/rights", f"request {created.id} recorded")


@router.get("/rights/{request_id}/export", include_in_schema=False)
def rights_export(
    request: Request, request_id: int, user: User = Depends(ig_only), session: Session = Depends(db)
) -> Response:
    found = session.get(RightsRequest, request_id)
    if found is None or found.kind != "access":
        raise HTTPException(404, "no such subject access request")
    hub = state(request)
    report = rights.subject_access(
        hub.home,
        session,
        hub.audit,
        nominal_id=found.subject,
        record_keys=json.loads(found.record_keys),
    )
    _admin_audit(
        request,
        session,
        user,
        "rights.access.export",
        {"request": found.id, "records": len(report["records"])},
    )
    hub.audit.record(
        "subject_access",
        "allowed",
        user=user,
        record_keys=[r["record_key"] for r in report["records"]],
        nominal_ids=[found.subject],
        client=client_address(request),
    )
    return Response(
        json.dumps(report, indent=1, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="subject-access-{found.id}.json"'},
    )


# -- suspensions ------------------------------------------------------------------------
@router.get("/suspensions", include_in_schema=False)
def suspensions_page(
    request: Request, user: User = Depends(owners_only), session: Session = Depends(db)
) -> Response:
    query = sa.select(Dataset).order_by(Dataset.code)
    if user.role == "data_owner":
        query = query.where(Dataset.partner_id == user.partner_id)
    datasets = list(session.scalars(query))
    now = _now()
    current = {d.id: active_suspension(session, d.id, now) for d in datasets}
    history = list(
        session.scalars(
            sa.select(DatasetSuspension).order_by(DatasetSuspension.id.desc()).limit(50)
        )
    )
    if user.role == "data_owner":
        history = [h for h in history if h.dataset.partner_id == user.partner_id]
    return render(
        request,
        "govern/suspensions.html",
        {"datasets": datasets, "current": current, "history": history, "title": "Suspensions"},
    )


@router.post("/suspensions", include_in_schema=False)
def suspensions_add(
    request: Request,
    dataset: str = Form(...),
    reason: str = Form(...),
    user: User = Depends(owners_only),
    session: Session = Depends(db),
) -> Response:
    try:
        admin.suspend_dataset(session, dataset, user, reason)
    except GovernError as exc:
        raise HTTPException(403 if "not a data owner" in str(exc) else 422, str(exc)) from exc
    _admin_audit(request, session, user, "dataset.suspend", {"dataset": dataset, "reason": reason})
    return _back("/suspensions", f"{dataset} suspended")


@router.post("/suspensions/{dataset}/lift", include_in_schema=False)
def suspensions_lift(
    request: Request,
    dataset: str,
    user: User = Depends(owners_only),
    session: Session = Depends(db),
) -> Response:
    try:
        admin.lift_suspension(session, dataset, user)
    except GovernError as exc:
        raise HTTPException(403 if "not a data owner" in str(exc) else 422, str(exc)) from exc
    _admin_audit(request, session, user, "dataset.lift", {"dataset": dataset})
    return _back("/suspensions", f"{dataset} sharing resumed")


# -- API --------------------------------------------------------------------------------
class Me(BaseModel):
    username: str
    full_name: str
    partner: str
    role: str
    nominated: bool
    training_expires_on: date | None


@router.get("/api/me", response_model=Me, tags=["session"])
def api_me(user: User = Depends(current_user)) -> Me:
    """Who the caller is (session cookie or bearer token)."""
    return Me(
        username=user.username,
        full_name=user.full_name,
        partner=user.partner.code,
        role=user.role,
        nominated=user.nominated,
        training_expires_on=user.training_expires_on,
    )


class RecordsPage(BaseModel):
    dataset: str
    purpose: str
    decision: dict[str, Any]
    count: int
    records: list[dict[str, Any]]


@router.get(
    "/api/datasets/{dataset}/records",
    response_model=RecordsPage,
    tags=["records"],
    responses=errors(400, 404),
)
def api_records(
    request: Request,
    dataset: str,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    fields: str | None = Query(None, description="comma-separated fields; default every field"),
    enforcer: Enforcer = Depends(pdp),
) -> RecordsPage:
    """A page of the dataset's records, showing only the fields the agreements allow.

    Withheld fields are listed in ``decision.withheld_fields``; every call is audited
    with the record pseudonyms it returned.
    """
    wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    decision = enforcer.allow(dataset, wanted)
    restricted = rights.restricted_record_keys(enforcer.session)
    try:
        rows = read_records(
            _reader(request), decision, limit=limit, offset=offset, restricted=restricted
        )
    except NoData as exc:
        raise HTTPException(404, str(exc)) from exc
    enforcer.audit(
        "read",
        decision,
        record_keys=[r["record_key"] for r in rows],
        detail={"rows": len(rows), "offset": offset},
    )
    return RecordsPage(
        dataset=dataset,
        purpose=enforcer.purpose.code,
        decision=decision.to_json(),
        count=len(rows),
        records=rows,
    )


class ReidentifyRequest(BaseModel):
    purpose: str
    record_key: str = Field(min_length=8, max_length=64)
    justification: str = Field("", max_length=4000)


class ReidentifyAnswer(BaseModel):
    record_key: str
    dataset: str
    identity: dict[str, Any]
    agreements: list[str]


@router.post(
    "/api/reidentify", response_model=ReidentifyAnswer, tags=["records"], responses=errors(400, 404)
)
def api_reidentify(
    request: Request,
    body: ReidentifyRequest,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> ReidentifyAnswer:
    """Who is behind a record pseudonym: needs a purpose and a written justification; audited."""
    purpose = require_purpose(request, body.purpose, user, session)
    try:
        found = reidentify(
            session,
            user,
            purpose,
            body.record_key,
            body.justification,
            _reader(request),
            state(request).audit,
            client_address(request),
        )
    except ReidentificationRefused as exc:
        raise HTTPException(403, {"message": str(exc), "reasons": exc.reasons}) from exc
    except NoData as exc:
        raise HTTPException(404, str(exc)) from exc
    return ReidentifyAnswer(
        record_key=found.record_key,
        dataset=found.dataset,
        identity=found.identity,
        agreements=list(found.decision.agreement_refs),
    )


@router.get("/api/audit", tags=["audit"])
def api_audit(
    request: Request,
    record_key: str | None = None,
    nominal_id: str | None = None,
    username: str | None = None,
    limit: int = Query(200, ge=1, le=5000),
    user: User = Depends(ig_only),
) -> dict[str, Any]:
    """Who has looked at this person (record or nominal), when and why."""
    hub = state(request)
    entries = hub.audit.search(
        record_key=record_key, nominal_id=nominal_id, username=username, limit=limit
    )
    hub.audit.record(
        "audit.search",
        "ok",
        user=user,
        client=client_address(request),
        record_keys=[record_key] if record_key else [],
        nominal_ids=[nominal_id] if nominal_id else [],
    )
    return {"entries": [entry_json(e) for e in entries]}


@router.get("/api/audit/verify", tags=["audit"])
def api_audit_verify(request: Request, _u: User = Depends(ig_only)) -> dict[str, Any]:
    """Check the whole audit chain and its seals."""
    return state(request).audit.verify().to_json()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
