"""Search pages and API: find a person, see the joined-up view of a person and a household.

Pages: ``/search`` (a plain GET form that works without JavaScript; with JavaScript,
HTMX replaces only the results as you type), ``/people/{nominal_id}`` and
``/households/{household_id}``. API: ``/api/search``, ``/api/people/{nominal_id}``,
``/api/households/{household_id}``. Every one states a purpose, is filtered by the
policy decision point and writes an audit entry (a denial too).

The policy decisions are reused only while the control plane's policy version (bumped by
database triggers on any change to what they read) and the day are unchanged: a change
to an agreement, a data owner's suspension or a user's training takes effect on the very
next search, as the policy decision point promises.
"""

from __future__ import annotations

import json
import os
from contextlib import AbstractContextManager
from typing import Any

import duckdb
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nominal.engines.lake import Lake
from nominal.govern.models import Purpose, User
from nominal.govern.policy import DecisionCache
from nominal.search.access import SearchAccess, SearchDenied, decide_search, governed_search
from nominal.search.query import QueryError, parse_query
from nominal.search.service import IndexHolder, SearchUnavailable
from nominal.search.views import NotFound, document_mentions, household_view, person_view
from nominal.web.deps import client_address, current_user, current_user_optional, db, errors, state
from nominal.web.lake import shared_connection
from nominal.web.templating import render
from nominal.web.timing import phase, server_timing

router = APIRouter()
NAV = [("Search", "/search", ("practitioner", "analyst", "data_owner", "ig_lead", "admin"))]
# Searches per user per minute (and per client address, twice that): enough for search
# as you type, too few to trawl the population by enumerating names or dates of birth.
SEARCH_RATE_ENV = "NOMINAL_SEARCH_RATE_PER_MINUTE"
DEFAULT_SEARCH_RATE = 120
QUERY_FIELDS: tuple[str, ...] = (
    "name", "given_name", "family_name", "dob", "age", "sex", "postcode", "address",
    "nhs_number", "ni_number", "police_id", "pupil_number",
)  # fmt: skip


def _holder(request: Request) -> IndexHolder:
    hub = state(request)
    holder: IndexHolder | None = hub.cache.get("search_index")
    if holder is None:
        holder = hub.cache["search_index"] = IndexHolder(hub.home)
    return holder


def _access(request: Request, session: Session, user: User, purpose: str) -> SearchAccess:
    hub = state(request)
    cache: DecisionCache | None = hub.cache.get("policy_decisions")
    if cache is None:
        cache = hub.cache.setdefault("policy_decisions", DecisionCache())
    return decide_search(session, user, purpose, cache=cache)


def _purpose(request: Request, session: Session, code: str | None) -> str:
    if not code:
        raise HTTPException(400, "say why you are searching: choose a purpose")
    if session.scalar(sa.select(Purpose.id).where(Purpose.code == code)) is None:
        raise HTTPException(400, f"unknown purpose {code!r}")
    scoped = getattr(request.state, "token_purpose", None)
    if scoped is not None and scoped != code:
        raise HTTPException(403, f"this API token is for the purpose {scoped!r} only")
    return code


def _params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in QUERY_FIELDS}


def _throttle(request: Request, user: User) -> None:
    """429 once a user (or client address) has searched too often in the last minute."""
    from nominal.web.security import RateLimiter

    hub = state(request)
    limiter = hub.cache.get("search_limiter")
    if limiter is None:
        rate = int(os.environ.get(SEARCH_RATE_ENV) or DEFAULT_SEARCH_RATE)
        limiter = hub.cache["search_limiter"] = RateLimiter(
            per_client=2 * rate, per_username=rate, window=60.0
        )
    if not limiter.allow(client_address(request), user.username):
        raise HTTPException(
            429, "too many searches in the last minute: wait and try again",
            headers={"Retry-After": "60"},
        )  # fmt: skip


def _run_search(
    request: Request, session: Session, user: User, purpose: str, params: dict[str, str], limit: int
) -> dict[str, Any]:
    hub = state(request)
    try:
        fields: dict[str, Any] = {k: (v or None) for k, v in params.items()}
        query = parse_query(**fields)
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    if query.is_empty():
        return {"results": [], "query": {}, "count": 0, "audit_seq": None, "seconds": 0.0}
    _throttle(request, user)
    with phase(request, "policy"):
        access = _access(request, session, user, purpose)
        # Give the connection back before waiting for the index (minutes while a first
        # build runs) or the audit log (which writes in its own transaction): held, it
        # would starve the pool that the audit writer and every other request draw from.
        session.commit()
    try:
        with phase(request, "index"):
            index = _holder(request).get()
    except SearchUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    try:
        result = governed_search(
            index, query, access, hub.audit, user, limit=limit, client=client_address(request),
            phase=lambda name: phase(request, name),
        )  # fmt: skip
    except SearchDenied as exc:
        raise HTTPException(403, {"message": "access denied", "reasons": exc.reasons}) from None
    return {
        "results": result.to_json(),
        "query": query.to_json(),
        "count": len(result.hits),
        "audit_seq": result.audit_seq,
        "seconds": round(result.seconds, 4),
        "pseudonymised": access.pseudonymised_only(),
    }


@router.get("/api/search", responses=errors(400))
async def api_search(request: Request, purpose: str, limit: int = 20) -> Response:
    """Ranked golden nominals for what is known (any mix of the query fields).

    The whole request (sign-in check, policy, search, audit, JSON) runs in one worker
    thread: as separate sync dependencies each step was a hop through the thread pool
    and back, which under load cost more than the search. The ``Server-Timing`` header
    says where the request's time went in the server.
    """
    return await run_in_threadpool(_api_search, request, purpose, max(1, min(limit, 100)))


def _api_search(request: Request, purpose: str, limit: int) -> Response:
    with phase(request, "handler"):
        # What the db and current_user dependencies do, in this thread.
        with state(request).control.sessions() as session:
            try:
                user = current_user(current_user_optional(request, session))
                with phase(request, "purpose"):
                    code = _purpose(request, session, purpose)
                found = _run_search(request, session, user, code, _params(request), limit)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        with phase(request, "render"):
            body = json.dumps(
                found, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                default=jsonable_encoder,
            )  # fmt: skip
    return Response(
        body, media_type="application/json", headers={"Server-Timing": server_timing(request)}
    )


@router.get("/search", response_class=HTMLResponse, responses=errors(400))
def search_page(
    request: Request,
    purpose: str | None = None,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> HTMLResponse:
    params = _params(request)
    purposes = [
        (p.code, p.name) for p in session.scalars(sa.select(Purpose).order_by(Purpose.name))
    ]
    context: dict[str, Any] = {"params": params, "purpose": purpose or "", "purposes": purposes}
    error = None
    outcome = None
    if any(params.values()):
        if not purpose:
            error = "Choose why you are searching"
        else:
            try:
                outcome = _run_search(
                    request, session, user, _purpose(request, session, purpose), params, 20
                )
            except HTTPException as exc:
                if exc.status_code not in (403, 422):
                    raise
                detail = exc.detail
                error = detail if isinstance(detail, str) else detail.get("message", "")
                context["reasons"] = [] if isinstance(detail, str) else detail.get("reasons", [])
    context.update({"outcome": outcome, "error": error, "title": "Search"})
    partial = request.headers.get("hx-request") == "true"
    return render(request, "search/_results.html" if partial else "search/search.html", context)


def _view_access(
    request: Request, session: Session, user: User, purpose: str | None
) -> SearchAccess:
    code = _purpose(request, session, purpose)
    access = _access(request, session, user, code)
    if not access.allowed:
        session.commit()
        state(request).audit.record(
            "view", "denied", user=user, purpose=code, client=client_address(request),
            detail={"path": request.url.path, "reasons": access.denial_reasons()},
        )  # fmt: skip
        raise HTTPException(403, {"message": "access denied", "reasons": access.denial_reasons()})
    return access


def _linked_snapshot(lake_root: Any) -> Any:
    """The current snapshot if it has gold tables, else 503 (nothing to view yet, not a 500)."""
    from nominal.engines.lake import LakeError

    try:
        snapshot = Lake(lake_root).require_current()
    except LakeError as exc:
        raise HTTPException(503, str(exc)) from None
    if not snapshot.has("gold.nominals"):
        raise HTTPException(503, "no linked data yet: run `nominal link`")
    return snapshot


def _lake_cursor(
    request: Request, snapshot: Any
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A cursor on one connection per snapshot, shared by the person and household views.

    Opening a connection makes a view for every table of the snapshot; per request that
    was most of a person view's time under load (benchmarks/soak.py). The connection is
    replaced when a run switches the snapshot, and after a bounded number of cursors:
    a DuckDB database keeps native memory from each query over a many-file table until
    it is closed (:mod:`nominal.web.lake`).
    """
    from nominal.engines import duck

    hub = state(request)
    return shared_connection(hub.cache, "search_lake", duck.connect).cursor(snapshot)


def _person(
    request: Request, nominal_id: str, purpose: str | None, user: User, session: Session
) -> Any:
    access = _view_access(request, session, user, purpose)
    hub = state(request)
    snapshot = _linked_snapshot(hub.home.lake)
    try:
        with _lake_cursor(request, snapshot) as con:
            view = person_view(con, snapshot, nominal_id, access, session)
            # documents that mention the person: only datasets the decisions above allow
            view.documents = document_mentions(hub.home, nominal_id, access, con=con)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    session.commit()
    hub.audit.record(
        "view_person", "allowed", user=user, purpose=access.purpose,
        nominal_ids=[nominal_id], record_keys=view.record_keys, client=client_address(request),
        detail={"records": len(view.record_keys), "events": len(view.timeline),
                "documents": sorted({d["document_id"] for d in view.documents})},
    )  # fmt: skip
    return view, access


@router.get("/api/people/{nominal_id}", responses=errors(400, 404))
def api_person(
    request: Request,
    nominal_id: str,
    purpose: str,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> dict[str, Any]:
    view, _ = _person(request, nominal_id, purpose, user, session)
    return view.to_json()


@router.get("/people/{nominal_id}", response_class=HTMLResponse, responses=errors(400, 404))
def person_page(
    request: Request,
    nominal_id: str,
    purpose: str | None = None,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> HTMLResponse:
    view, access = _person(request, nominal_id, purpose, user, session)
    return render(
        request, "search/person.html",
        {"view": view, "purpose": access.purpose, "title": "Person", "withheld": "withheld"},
    )  # fmt: skip


def _household(
    request: Request, household_id: str, purpose: str | None, user: User, session: Session
) -> Any:
    access = _view_access(request, session, user, purpose)
    hub = state(request)
    snapshot = _linked_snapshot(hub.home.lake)
    try:
        with _lake_cursor(request, snapshot) as con:
            view = household_view(con, snapshot, household_id, access)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    session.commit()
    hub.audit.record(
        "view_household", "allowed", user=user, purpose=access.purpose,
        nominal_ids=[m["nominal_id"] for m in view.members], client=client_address(request),
        detail={"household_id": household_id, "events": len(view.events)},
    )  # fmt: skip
    return view, access


@router.get("/api/households/{household_id}", responses=errors(400, 404))
def api_household(
    request: Request,
    household_id: str,
    purpose: str,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> dict[str, Any]:
    view, _ = _household(request, household_id, purpose, user, session)
    return view.to_json()


@router.get("/households/{household_id}", response_class=HTMLResponse, responses=errors(400, 404))
def household_page(
    request: Request,
    household_id: str,
    purpose: str | None = None,
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> HTMLResponse:
    view, access = _household(request, household_id, purpose, user, session)
    return render(
        request, "search/household.html",
        {"view": view, "purpose": access.purpose, "title": "Household"},
    )  # fmt: skip
