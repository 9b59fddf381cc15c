"""Jinja2 pages in the GOV.UK Design System.

Templates are found in ``nominal/web/templates`` and in each area's own
``nominal/<area>/templates`` folder; the GOV.UK Frontend macros come from the
``govuk-frontend-jinja`` package (``{% from "govuk_frontend_jinja/components/..." %}``).
Every page gets the request's CSP nonce, its CSRF token, the signed-in user and the
navigation that the areas declared.
"""

from __future__ import annotations

import importlib.util
import pkgutil
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    select_autoescape,
)

import nominal

WEB = Path(__file__).parent


def _area_template_dirs() -> list[str]:
    found = [str(WEB / "templates")]
    for area in pkgutil.iter_modules(nominal.__path__):
        spec = importlib.util.find_spec(f"nominal.{area.name}")
        if area.ispkg and area.name != "web" and spec and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations))) / "templates"
            if folder.is_dir():
                found.append(str(folder))
    return found


def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(_area_template_dirs()),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render ``template`` with the page context every layout needs."""
    hub = request.app.state.hub
    cookie_secret = getattr(request.state, "cookie_secret", None) or hub.cookies.read(request)
    page = {
        "request": request,
        "cspNonce": getattr(request.state, "csp_nonce", ""),
        "csrf_token": hub.cookies.csrf_token(cookie_secret) if cookie_secret else "",
        "user": getattr(request.state, "viewer", None),
        "nav": hub.nav,
        "assetPath": "/static/vendor/govuk/assets",
        **(context or {}),
    }
    html = hub.templates.get_template(template).render(page)
    return HTMLResponse(html, status_code=status_code)
