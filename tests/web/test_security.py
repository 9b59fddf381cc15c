"""The app's front door: sign-in, sessions, CSRF, headers, throttling, and who may see what."""

from __future__ import annotations

from fastapi.testclient import TestClient

from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccounts
from web.conftest import csrf_of, sign_in


def test_pages_need_sign_in(client: TestClient) -> None:
    response = client.get("/partners", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")
    assert client.get("/api/me").status_code == 401
    assert (
        client.get("/api/datasets/crimes/records?purpose=safeguarding_children").status_code == 401
    )


def test_security_headers(client: TestClient) -> None:
    for path in ("/sign-in", "/api/me", "/openapi.json"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self' 'nonce-" in csp
        assert headers["strict-transport-security"].startswith("max-age=")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    one = client.get("/sign-in")
    two = client.get("/sign-in")
    nonce = one.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert nonce not in two.headers["content-security-policy"]  # fresh per response
    assert f'nonce="{nonce}"' in one.text  # the one inline script carries it
    assert "<script>" not in one.text  # and no inline script lacks it


def test_session_cookie_flags(client: TestClient) -> None:
    cookie = client.get("/sign-in").headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie


def test_sign_in_and_session_fixation(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    page = client.get("/sign-in")
    planted = client.cookies.get("nominal_session")
    assert planted
    sign_in(client, demo.by_role("ig_lead"), database_url)
    issued = client.cookies.get("nominal_session")
    assert issued and issued != planted  # a new id at sign-in
    assert client.get("/api/me").json()["role"] == "ig_lead"
    # The pre-sign-in cookie an attacker might have planted is not signed in.
    other = TestClient(client.app, base_url="https://testserver")
    other.cookies.set("nominal_session", planted)
    assert other.get("/api/me").status_code == 401
    assert page.status_code == 200


def test_generic_error_no_enumeration(client: TestClient, demo: DemoAccounts) -> None:
    account = demo.by_role("analyst")
    answers = []
    for username, password, code in (
        ("nobody-here", "whatever-password", "123456"),
        (account.username, "wrong-password-123", totp_now(account.totp_secret)),
        (account.username, account.password, "000000"),
    ):
        page = client.get("/sign-in")
        r = client.post(
            "/sign-in",
            data={
                "username": username,
                "password": password,
                "code": code,
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        answers.append(
            (r.status_code, "Enter a correct username, password and security code" in r.text)
        )
    assert answers == [(401, True)] * 3


def test_csrf_required(client: TestClient, demo: DemoAccounts, database_url: str) -> None:
    client.get("/sign-in")
    # Sign-in itself needs the token (no login CSRF).
    account = demo.by_role("ig_lead")
    r = client.post(
        "/sign-in",
        data={
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
        },
        follow_redirects=False,
    )
    assert r.status_code == 403
    token = sign_in(client, account, database_url)
    no_token = client.post(
        "/partners", data={"code": "EVIL", "name": "Evil"}, follow_redirects=False
    )
    assert no_token.status_code == 403
    wrong = client.post(
        "/partners",
        data={"code": "EVIL", "name": "Evil", "csrf_token": "0" * 64},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    ok = client.post(
        "/partners",
        data={"code": "GOOD", "name": "Good", "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert "GOOD" in client.get("/partners").text
    assert "EVIL" not in client.get("/partners").text


def test_sign_in_rate_limit_and_lockout(
    client: TestClient, demo: DemoAccounts, database_url: str
) -> None:
    account = demo.by_role("practitioner")
    codes = []
    for _ in range(7):
        page = client.get("/sign-in")
        r = client.post(
            "/sign-in",
            data={
                "username": account.username,
                "password": "not-the-password",
                "code": "111111",
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    # Five failures also locked the account in the control plane: even the right
    # password and code are refused (with the same generic message) for a while.
    client.app.state.hub.limiter._hits.clear()
    page = client.get("/sign-in")
    r = client.post(
        "/sign-in",
        data={
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 401


def test_roles_and_idor(client: TestClient, demo: DemoAccounts, database_url: str) -> None:
    token = sign_in(client, demo.by_role("data_owner"), database_url)  # NPOL data owner
    assert client.get("/users").status_code == 403
    assert client.get("/api/audit?record_key=x").status_code == 403
    assert client.get("/agreements/1").status_code == 403
    # Another partner's dataset (fire_incidents belongs to NFRS) cannot be suspended.
    r = client.post(
        "/suspensions",
        data={"dataset": "fire_incidents", "reason": "x", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 403
    r = client.post(
        "/suspensions",
        data={"dataset": "crimes", "reason": "quality incident", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get("/suspensions").text
    assert "crimes" in page and "fire_incidents" not in page


def test_openapi_without_cdn(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/datasets/{dataset}/records" in spec["paths"]
    assert "/api/reidentify" in spec["paths"]
    assert client.get("/docs").status_code in (303, 404)
    page = client.get("/sign-in").text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.replace('xmlns="https://', "")


def test_rate_limiter_forgets_idle_clients() -> None:
    """Every address or username ever tried must not stay in memory for the process's life."""
    import time

    from nominal.web.security import RateLimiter

    limiter = RateLimiter(per_client=2, per_username=2, window=0.2)
    for n in range(500):
        assert limiter.allow(f"10.0.{n // 256}.{n % 256}", f"user{n}")
    assert len(limiter) == 1000
    assert not limiter.allow("10.0.0.0", "user0") or not limiter.allow("10.0.0.0", "user0")
    time.sleep(0.25)
    assert limiter.allow("192.0.2.1", "someone")  # a window later: the idle keys are swept
    assert len(limiter) == 2
    assert limiter.allow("192.0.2.1", "someone")
    assert not limiter.allow("192.0.2.1", "someone")  # the live client still counts
