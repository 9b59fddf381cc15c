"""FastAPI dependencies every router uses: the database session, the signed-in user,
the purpose of a request, and the policy decision point with its audit trail.

A route that returns personal data depends on :func:`pdp` and calls
``enforcer.allow(dataset, fields, action)`` (which decides, audits a denial and raises
403) and then ``enforcer.audit(...)`` with the records it returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from nominal.govern import auth
from nominal.govern.audit import AuditLog
from nominal.govern.models import Purpose, User
from nominal.govern.policy import Decision, decide
from nominal.web.security import CSRF_FIELD, CSRF_HEADER, UNSAFE_METHODS, CookieJar
from nominal.web.timing import phase


class Refusal(BaseModel):
    message: str
    reasons: list[str] = []


class Invalid(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    """What an error answers: a sentence, a refusal with the policy's reasons, or (422)
    the fields that failed validation."""

    detail: str | Refusal | list[Invalid]


_ERRORS = {
    400: "Bad request: an unknown purpose or an invalid argument",
    401: "Not signed in, or the API token is invalid or expired (pages redirect to /sign-in)",
    403: "Refused: the role, the token's purpose, the agreements or the form check",
    404: "No such record, person, household, cohort or model",
    422: "The request is not valid: the fields that failed, or why",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error statuses a route answers.

    The API answers JSON; pages answer an HTML page unless the client accepts JSON.
    """
    return {
        code: {
            "model": Error,
            "description": _ERRORS[code],
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
        for code in codes
    }


def state(request: Request) -> Any:
    return request.app.state.hub


def db(request: Request) -> Iterator[Session]:
    """A control-plane session committed when the request succeeds, rolled back if it fails.

    Handlers commit before writing an audit entry: the audit log writes in its own
    transaction, and on SQLite a second writer would wait for this one.
    """
    with state(request).control.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def csrf_protect(request: Request) -> None:
    """Refuse unsafe requests authenticated by the cookie that lack the CSRF token."""
    if request.method not in UNSAFE_METHODS or _bearer(request) is not None:
        return
    jar: CookieJar = state(request).cookies
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not jar.csrf_ok(jar.read(request), presented):
        raise HTTPException(403, "The form has expired or did not come from this site: try again")


def current_user_optional(request: Request, session: Session = Depends(db)) -> User | None:
    """The user of a bearer token or of the session cookie, or None."""
    if hasattr(request.state, "user"):
        return request.state.user
    with phase(request, "auth"):
        return _authenticate(request, session)


def _authenticate(request: Request, session: Session) -> User | None:
    user: User | None = None
    request.state.token_purpose = None
    presented = _bearer(request)
    if presented is not None:
        token = auth.check_token(session, presented)
        if token is None:
            raise HTTPException(401, "invalid or expired API token")
        user = token.user
        request.state.token_purpose = token.purpose.code
    else:
        secret = state(request).cookies.read(request)
        found = auth.load_session(session, secret) if secret else None
        if found is not None and found.user.active:
            user = found.user
    request.state.user = user
    request.state.viewer = Viewer.of(user) if user else None
    return user


@dataclass(frozen=True)
class ViewerPartner:
    code: str
    name: str


@dataclass(frozen=True)
class Viewer:
    """What pages show about the signed-in user, detached from the database session (an
    error page is rendered after the request's session has been rolled back)."""

    id: int
    username: str
    full_name: str
    role: str
    partner: ViewerPartner

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(
            user.id,
            user.username,
            user.full_name,
            user.role,
            ViewerPartner(user.partner.code, user.partner.name),
        )


def current_user(user: User | None = Depends(current_user_optional)) -> User:
    if user is None:
        raise HTTPException(401, "sign in first")
    return user


def require_roles(*roles: str) -> Any:
    """A dependency that admits only users holding one of ``roles``."""

    def check(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            raise HTTPException(403, "your role does not allow this")
        return user

    return check


def require_purpose(
    request: Request,
    purpose: str = Query(..., description="why the data is needed (a purpose code)"),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Purpose:
    """The request's purpose; an API token may be used only for the purpose it was issued for."""
    found = session.scalar(sa.select(Purpose).where(Purpose.code == purpose))
    if found is None:
        raise HTTPException(400, f"unknown purpose {purpose!r}")
    scoped = getattr(request.state, "token_purpose", None)
    if scoped is not None and scoped != found.code:
        raise HTTPException(403, f"this API token is for the purpose {scoped!r} only")
    return found


@dataclass
class Enforcer:
    """The policy decision point bound to one request: decide, then audit."""

    session: Session
    user: User
    purpose: Purpose
    audit_log: AuditLog
    client: str
    audit_reads: bool = True
    asked: str = ""  # the request as made (method, path and query): "what was asked"

    def decide(
        self, dataset: str, fields: Iterable[str] | None = None, *, reidentify: bool = False
    ) -> Decision:
        return decide(self.session, self.user, self.purpose, dataset, fields, reidentify=reidentify)

    def allow(
        self,
        dataset: str,
        fields: Iterable[str] | None = None,
        *,
        action: str = "read",
        reidentify: bool = False,
        justification: str | None = None,
    ) -> Decision:
        """Decide; a denial is audited and becomes HTTP 403 with the reasons."""
        decision = self.decide(dataset, fields, reidentify=reidentify)
        if not decision.allowed:
            self.audit(action, decision, outcome="denied", justification=justification)
            raise HTTPException(
                403, {"message": "access denied", "reasons": list(decision.reasons)}
            )
        return decision

    def audit(
        self,
        action: str,
        decision: Decision | None,
        *,
        outcome: str = "allowed",
        record_keys: Iterable[str] = (),
        nominal_ids: Iterable[str] = (),
        justification: str | None = None,
        detail: dict[str, Any] | None = None,
        dataset: str | None = None,
    ) -> None:
        if not self.audit_reads and outcome == "allowed" and action == "read":
            return
        self.session.commit()
        info = dict(detail or {})
        if self.asked:
            info.setdefault("asked", self.asked)
        if decision is not None:
            info.setdefault("withheld", list(decision.withheld_fields))
            info.setdefault("agreements", list(decision.agreement_refs))
            info.setdefault("reasons", list(decision.reasons))
        self.audit_log.record(
            action,
            outcome,
            user=self.user,
            purpose=self.purpose.code,
            dataset=dataset or (decision.dataset if decision else None),
            record_keys=record_keys,
            nominal_ids=nominal_ids,
            justification=justification,
            client=self.client,
            detail=info,
        )


def pdp(
    request: Request,
    user: User = Depends(current_user),
    purpose: Purpose = Depends(require_purpose),
    session: Session = Depends(db),
) -> Enforcer:
    hub = state(request)
    asked = f"{request.method} {request.url.path}"
    if request.url.query:
        asked += f"?{request.url.query}"
    return Enforcer(
        session, user, purpose, hub.audit, client_address(request), hub.audit_reads, asked[:500]
    )
