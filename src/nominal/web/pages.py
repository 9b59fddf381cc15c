"""Signing in and out, and the home page.

Sign-in takes username, password and the current code of the user's authenticator
app (TOTP) in one form, answers every failure with the same message (so the form
cannot be used to find out which accounts exist), is throttled per client and per
username, and issues a brand-new session id on success.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from nominal.govern import auth
from nominal.govern.models import ROLE_LABELS, User
from nominal.web.deps import client_address, current_user, current_user_optional, db, state
from nominal.web.templating import render

router = APIRouter(tags=["session"])


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after sign-in."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _sign_in_page(
    request: Request, error: str | None = None, status_code: int = 200, **extra: Any
) -> Response:
    hub = state(request)
    secret = hub.cookies.read(request)
    fresh = secret is None
    if fresh:
        secret = hub.cookies.new_secret()
    request.state.cookie_secret = secret
    response = render(
        request,
        "sign_in.html",
        {"error": error, "next": _safe_next(request.query_params.get("next")), **extra},
        status_code=status_code,
    )
    if fresh:
        hub.cookies.write(response, secret)
    return response


@router.get("/sign-in", include_in_schema=False)
def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in", include_in_schema=False)
def sign_in(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    code: str = Form(""),
    next: str = Form("/"),
    session: Session = Depends(db),
) -> Response:
    hub = state(request)
    client = client_address(request)
    if not hub.limiter.allow(client, username):
        session.commit()
        hub.audit.record("sign_in", "throttled", username=username[:120], client=client)
        return _sign_in_page(
            request, "Too many attempts. Wait a minute and try again", status_code=429
        )
    try:
        user = auth.authenticate(session, username, password, code)
    except auth.AuthError as exc:
        session.commit()  # keep the failure count even though we answer with an error
        hub.audit.record(
            "sign_in", "denied", username=username[:120], client=client, detail={"why": exc.detail}
        )
        return _sign_in_page(request, str(exc), status_code=401, username=username)
    old = hub.cookies.read(request)
    if old:
        auth.end_session(session, old)  # the pre-sign-in id is never reused
    secret = auth.start_session(session, user, client)
    session.commit()
    hub.audit.record("sign_in", "allowed", user=user, client=client)
    response = RedirectResponse(_safe_next(next), status_code=303)
    hub.cookies.write(response, secret)
    return response


@router.post("/sign-out", include_in_schema=False)
def sign_out(request: Request, session: Session = Depends(db)) -> Response:
    hub = state(request)
    old = hub.cookies.read(request)
    if old:
        auth.end_session(session, old)
    response = RedirectResponse("/sign-in", status_code=303)
    hub.cookies.write(response, hub.cookies.new_secret())
    return response


@router.get("/", include_in_schema=False)
def home_page(request: Request, user: User = Depends(current_user)) -> Response:
    return render(request, "home.html", {"role_label": ROLE_LABELS.get(user.role, user.role)})


@router.get("/healthz", include_in_schema=False)
def healthz(_user: User | None = Depends(current_user_optional)) -> dict[str, str]:
    return {"status": "ok"}
