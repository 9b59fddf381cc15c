"""OpenID Connect sign-in against a real (local) identity provider served over HTTP."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Form
from fastapi.responses import RedirectResponse
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern import admin
from nominal.govern.demo import DemoAccounts


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def idp() -> Iterator[tuple[str, dict[str, str]]]:
    """A minimal OpenID provider: authorises the subject named in ``login_as``."""
    port = _port()
    issuer = f"http://127.0.0.1:{port}"
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    codes: dict[str, dict[str, str]] = {}
    settings = {"login_as": "alice"}
    idp_app = FastAPI()

    @idp_app.get("/.well-known/openid-configuration")
    def metadata() -> dict[str, object]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @idp_app.get("/jwks")
    def jwks() -> dict[str, object]:
        return {"keys": [key.as_dict(private=False)]}

    @idp_app.get("/authorize")
    def authorize(
        redirect_uri: str, state: str, client_id: str, nonce: str = ""
    ) -> RedirectResponse:
        code = uuid.uuid4().hex
        codes[code] = {"nonce": nonce, "aud": client_id, "sub": settings["login_as"]}
        return RedirectResponse(f"{redirect_uri}?code={code}&state={state}", status_code=302)

    @idp_app.post("/token")
    def token(code: str = Form(...)) -> dict[str, object]:
        grant = codes.pop(code)
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": grant["sub"],
            "aud": grant["aud"],
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return {
            "access_token": uuid.uuid4().hex,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    server = uvicorn.Server(
        uvicorn.Config(idp_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield issuer, settings
    server.should_exit = True
    thread.join(timeout=10)


def test_oidc_sign_in(
    idp: tuple[str, dict[str, str]], hub_home: Home, demo: DemoAccounts, database_url: str
) -> None:
    from nominal.web.app import create_app

    issuer, settings = idp
    (hub_home.root / "oidc.yaml").write_text(
        yaml.safe_dump(
            {
                "providers": [
                    {
                        "name": "kcc",
                        "label": "Kingsford County Council",
                        "metadata_url": f"{issuer}/.well-known/openid-configuration",
                        "client_id": "nominal-hub",
                        "client_secret": "s3cret",
                        "partner": "KCC",
                    }
                ]
            }
        )
    )
    control = ControlPlane(database_url)
    with control.session() as s:
        admin.get_user(s, "ann.analyst").oidc_subject = f"{issuer}|alice"
        admin.get_user(s, "dan.owner").oidc_subject = f"{issuer}|dan"  # an NPOL user
    control.dispose()
    app = create_app(hub_home, database_url=database_url)

    def attempt(subject: str) -> TestClient:
        settings["login_as"] = subject
        client = TestClient(app, base_url="https://testserver")
        assert "Sign in with Kingsford County Council" in client.get("/sign-in").text
        start = client.get("/sign-in/oidc/kcc", follow_redirects=False)
        assert start.status_code == 302 and start.headers["location"].startswith(issuer)
        back = httpx.get(start.headers["location"], follow_redirects=False)
        callback = urlparse(back.headers["location"])
        assert parse_qs(callback.query)["state"]
        done = client.get(f"{callback.path}?{callback.query}", follow_redirects=False)
        client.last_status = done.status_code  # type: ignore[attr-defined]
        return client

    ok = attempt("alice")
    assert ok.last_status == 303  # type: ignore[attr-defined]
    assert ok.get("/api/me").json()["username"] == "ann.analyst"
    # Unknown subjects and users of another partner are refused with the generic message.
    for subject in ("mallory", "dan"):
        refused = attempt(subject)
        assert refused.last_status == 401  # type: ignore[attr-defined]
        assert refused.get("/api/me").status_code == 401
