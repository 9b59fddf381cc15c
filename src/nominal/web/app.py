"""The hub's web application: JSON API under ``/api`` and GOV.UK Design System pages.

``create_app(home)`` wires the control plane, the audit log, the security middleware
and every area's router. An area adds pages and endpoints by providing
``nominal/<area>/routes.py`` with ``router`` (a FastAPI ``APIRouter``) and optionally
``NAV = [("Label", "/path")]``; nothing here lists the areas.

Static assets (GOV.UK Frontend, HTMX, ...) are served from the package itself; no
page loads anything from another site.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment
from starlette.middleware.sessions import SessionMiddleware

import nominal
from nominal import __version__
from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.audit import AuditLog, audit_log
from nominal.web import memory
from nominal.web.deps import csrf_protect, errors
from nominal.web.security import CookieJar, RateLimiter, SecurityHeadersMiddleware
from nominal.web.templating import WEB, environment, render

log = logging.getLogger(__name__)
SECURE_COOKIES_ENV = "NOMINAL_SECURE_COOKIES"
WARM_ENV = "NOMINAL_WARM"


@dataclass
class Hub:
    """What every request needs, kept on ``app.state.hub``."""

    home: Home
    control: ControlPlane
    audit: AuditLog
    cookies: CookieJar
    limiter: RateLimiter
    templates: Environment
    audit_reads: bool = True
    nav: list[tuple[str, str, tuple[str, ...] | None]] = field(default_factory=list)
    oidc_providers: list[Any] = field(default_factory=list)
    oauth: Any = None
    cache: dict[str, Any] = field(default_factory=dict)


def route_modules() -> tuple[str, ...]:
    """``nominal.<area>.routes`` for every area that has one (sorted, like the CLI)."""
    found = []
    for area in pkgutil.iter_modules(nominal.__path__):
        name = f"nominal.{area.name}.routes"
        if area.ispkg and importlib.util.find_spec(name) is not None:
            found.append(name)
    return tuple(sorted(found))


def create_app(
    home: Home,
    *,
    secure_cookies: bool | None = None,
    audit_reads: bool = True,
    database_url: str | None = None,
    warm: bool | None = None,
    trim_native_memory: bool = False,
) -> FastAPI:
    """The hub's app for ``home``.

    ``secure_cookies`` defaults to ``$NOMINAL_SECURE_COOKIES`` (on unless set to 0);
    switch it off only to serve plain HTTP on a developer's machine. ``warm`` (default
    ``$NOMINAL_WARM``, on unless set to 0) runs each area's ``on_start(hub)`` when the
    app starts (the products compute the commonest dashboards in the background). ``audit_reads``
    exists only so that the cost of auditing can be measured; the hub never runs with
    it off. ``trim_native_memory`` (the server's factory sets it) runs
    :func:`nominal.web.memory.trimmer` while the app is up.
    """
    home.ensure()
    if secure_cookies is None:
        secure_cookies = os.environ.get(SECURE_COOKIES_ENV, "1") not in ("0", "false", "no")
    control = ControlPlane(database_url or home.database_url)
    hub = Hub(
        home=home,
        control=control,
        audit=audit_log(control, home),
        cookies=CookieJar(home.session_secret, secure=secure_cookies),
        limiter=RateLimiter(),
        templates=environment(),
        audit_reads=audit_reads,
    )

    if warm is None:
        warm = os.environ.get(WARM_ENV, "1") not in ("0", "false", "no")
    on_start: list[Callable[[Hub], object]] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        trimmer = memory.trimmer() if trim_native_memory else None
        if warm:
            for hook in on_start:
                hook(hub)
        yield
        if trimmer is not None:
            trimmer.stop()
        control.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="nominal",
        version=__version__,
        description="The multi-agency integrated analytics hub: every read of personal data "
        "names a purpose, is checked against the information sharing agreements and is audited.",
        docs_url=None,  # Swagger UI would load assets from a CDN; /openapi.json stays.
        redoc_url=None,
        dependencies=[Depends(csrf_protect)],
        # Every operation needs a signed-in user or an API token, may be refused, and
        # answers invalid input with the fields that failed (replacing FastAPI's 422).
        responses=errors(401, 403, 422),
    )
    app.state.hub = hub
    from nominal.web import oidc

    hub.oidc_providers = oidc.load_providers(home)
    hub.oauth = oidc.registry(hub.oidc_providers)
    # Authlib keeps the OpenID Connect state and nonce in this signed cookie.
    app.add_middleware(
        SessionMiddleware,
        secret_key=home.secret("oidc-state").hex(),
        session_cookie="nominal_oidc",
        max_age=600,
        same_site="lax",
        https_only=secure_cookies,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=True)
    app.mount("/static", StaticFiles(directory=WEB / "static", check_dir=False), name="static")
    # GOV.UK Frontend's compiled CSS asks for its fonts and crest at /assets/.
    app.mount(
        "/assets",
        StaticFiles(directory=WEB / "static" / "vendor" / "govuk" / "assets", check_dir=False),
        name="govuk-assets",
    )

    from nominal.web import pages

    app.include_router(pages.router)
    app.include_router(oidc.router)
    for module_name in route_modules():
        module = importlib.import_module(module_name)
        router = getattr(module, "router", None)
        if router is None:
            continue
        app.include_router(router)
        if callable(getattr(module, "on_start", None)):
            on_start.append(module.on_start)
        for item in getattr(module, "NAV", []):
            label, path, *roles = item
            hub.nav.append((label, path, tuple(roles[0]) if roles else None))

    _error_handlers(app)
    return app


def _wants_html(request: Request) -> bool:
    """Pages answer errors with a page (or the sign-in redirect); the API with JSON."""
    path = request.url.path
    if path.startswith("/api") or path == "/openapi.json":
        return False
    return "application/json" not in request.headers.get("accept", "")


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401 and _wants_html(request):
            return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
        if _wants_html(request):
            detail = exc.detail if isinstance(exc.detail, str) else exc.detail.get("message", "")
            reasons: list[str] = (
                exc.detail.get("reasons", []) if isinstance(exc.detail, dict) else []
            )
            return render(
                request,
                "error.html",
                {"status": exc.status_code, "message": detail, "reasons": reasons},
                status_code=exc.status_code,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        if _wants_html(request):
            return render(
                request,
                "error.html",
                {
                    "status": 422,
                    "message": "The request was not valid",
                    "reasons": [f"{e['field']}: {e['message']}" for e in errors],
                },
                status_code=422,
            )
        return JSONResponse({"detail": errors}, status_code=422)


def static_root() -> Path:
    return WEB / "static"
