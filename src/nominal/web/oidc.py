"""OpenID Connect sign-in through partners' own identity providers (Authlib).

Providers are listed in ``$NOMINAL_HOME/oidc.yaml``::

    providers:
      - name: npol
        label: Northshire Police
        metadata_url: https://login.npol.example/.well-known/openid-configuration
        client_id: nominal-hub
        client_secret_env: NOMINAL_OIDC_NPOL_SECRET   # the secret itself stays out of files
        partner: NPOL

A provider signs in only users of its own partner, and only accounts an administrator
has linked to the provider's subject (``nominal user link-oidc USER ISSUER|SUBJECT``):
nobody is created on the fly, so nomination and training still gate every account.
The provider is responsible for the second factor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import yaml
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nominal.config import Home
from nominal.govern import auth
from nominal.govern.models import User
from nominal.web.deps import client_address, state

PROVIDERS_FILE = "oidc.yaml"

router = APIRouter(tags=["session"])


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    metadata_url: str
    client_id: str
    client_secret: str
    partner: str


def load_providers(home: Home) -> list[Provider]:
    """The configured identity providers (none if there is no ``oidc.yaml``)."""
    path = home.root / PROVIDERS_FILE
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or {}
    providers = []
    for i, item in enumerate(data.get("providers", [])):
        missing = [k for k in ("name", "metadata_url", "client_id", "partner") if not item.get(k)]
        if missing:
            raise ValueError(f"{path}: provider {i + 1} lacks {', '.join(missing)}")
        secret = os.environ.get(item.get("client_secret_env", ""), item.get("client_secret", ""))
        providers.append(
            Provider(
                name=str(item["name"]),
                label=str(item.get("label", item["name"])),
                metadata_url=str(item["metadata_url"]),
                client_id=str(item["client_id"]),
                client_secret=str(secret),
                partner=str(item["partner"]),
            )
        )
    return providers


def registry(providers: list[Provider]) -> OAuth:
    oauth = OAuth()
    for p in providers:
        oauth.register(
            name=p.name,
            client_id=p.client_id,
            client_secret=p.client_secret,
            server_metadata_url=p.metadata_url,
            client_kwargs={"scope": "openid email profile"},
        )
    return oauth


def _provider(request: Request, name: str) -> tuple[Provider, Any]:
    hub = state(request)
    for p in hub.oidc_providers:
        if p.name == name:
            return p, hub.oauth.create_client(name)
    raise HTTPException(404, "no such identity provider")


@router.get("/sign-in/oidc/{name}", include_in_schema=False)
async def oidc_start(request: Request, name: str) -> Response:
    _, client = _provider(request, name)
    redirect_uri = str(request.url_for("oidc_callback", name=name))
    return await client.authorize_redirect(request, redirect_uri)


@router.get("/sign-in/oidc/{name}/callback", name="oidc_callback", include_in_schema=False)
async def oidc_callback(request: Request, name: str) -> Response:
    from nominal.web.pages import _sign_in_page

    provider, client = _provider(request, name)
    hub = state(request)
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        hub.audit.record(
            "sign_in",
            "denied",
            client=client_address(request),
            detail={"oidc": name, "why": str(exc)},
        )
        return _sign_in_page(request, auth.AuthError.GENERIC, status_code=401)
    info = token.get("userinfo") or {}
    subject = f"{info.get('iss')}|{info.get('sub')}"

    def finish() -> str | None:
        with hub.control.session() as session:
            user = session.scalar(sa.select(User).where(User.oidc_subject == subject))
            if user is None or not user.active or user.partner.code != provider.partner:
                user, secret = None, None
            else:
                old = hub.cookies.read(request)
                if old:
                    auth.end_session(session, old)
                secret = auth.start_session(session, user, client_address(request))
        # Audit after the commit: the audit log writes in its own transaction.
        hub.audit.record(
            "sign_in",
            "allowed" if user else "denied",
            user=user,
            client=client_address(request),
            detail={"oidc": name, "subject": subject},
        )
        return secret

    secret = await run_in_threadpool(finish)
    if secret is None:
        return _sign_in_page(request, auth.AuthError.GENERIC, status_code=401)
    response = RedirectResponse("/", status_code=303)
    hub.cookies.write(response, secret)
    return response
