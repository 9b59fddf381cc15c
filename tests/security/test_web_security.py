"""OWASP ASVS level-2 checks on the real app over a linked town with hostile feed data.

Complements tests/web/test_security.py (sign-in, CSRF, session fixation, enumeration,
sign-in throttling): here every route's authentication and headers, stored XSS through
partner data, SQL injection through every search field, search throttling and
cross-partner access by id (IDOR).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from web_town import PURPOSE, XSS_ADDRESS, XSS_FAMILY, XSS_GIVEN, Town, sign_in, token

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.search.routes import QUERY_FIELDS

pytestmark = pytest.mark.timeout(900)

PUBLIC = {"/sign-in", "/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc", "/metrics"}  # fmt: skip


@pytest.fixture(scope="module")
def app(town: Town):  # type: ignore[no-untyped-def]
    import os

    from nominal.web.app import create_app

    # Enough searches per minute for the injection sweep (throttling has its own test).
    saved = os.environ.get("NOMINAL_SEARCH_RATE_PER_MINUTE")
    os.environ["NOMINAL_SEARCH_RATE_PER_MINUTE"] = "100000"
    try:
        app = create_app(town.home, database_url=town.control.url, secure_cookies=False)
        with TestClient(app, base_url="http://testserver") as warm:  # limiter made now
            warm.get("/api/search", params={"purpose": PURPOSE, "family_name": "Warm"},
                     headers=token(town, "practitioner"))  # fmt: skip
    finally:
        if saved is None:
            os.environ.pop("NOMINAL_SEARCH_RATE_PER_MINUTE", None)
        else:
            os.environ["NOMINAL_SEARCH_RATE_PER_MINUTE"] = saved
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def _xss_nominal(town: Town) -> str:
    con = duck.connect(Lake(town.home.lake).require_current())
    row = con.execute(
        "SELECT nominal_id FROM gold.nominal_records WHERE source_record_id = 'XSS-PERSON-1'"
    ).fetchone()
    assert row, "the hostile record was not linked"
    return str(row[0])


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every (method, path) the app serves, through included routers of any depth."""
    out: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for route in routes:
            if hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif getattr(route, "methods", None) and getattr(route, "path", None):
                for method in sorted(set(route.methods) - {"HEAD", "OPTIONS"}):
                    out.append((method, prefix + route.path))

    walk(app.routes, "")
    return sorted(set(out))


def _concrete(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_route_needs_authentication(app, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for method, path in _routes(app):
        if path in PUBLIC or path.startswith("/static"):
            continue
        response = client.request(method, _concrete(path), follow_redirects=False)
        checked += 1
        if method == "GET" and not path.startswith("/api"):
            assert response.status_code in (303, 401, 403, 404), (
                method,
                path,
                response.status_code,
            )
            if response.status_code == 303:
                assert response.headers["location"].startswith("/sign-in")
        else:
            # POST forms refuse on CSRF (403) or authentication (401/303) before any effect
            assert response.status_code in (303, 401, 403, 404, 405, 422), (
                method, path, response.status_code,
            )  # fmt: skip
            assert response.status_code != 200
    assert checked > 30


def test_security_headers_on_every_page(app, client: TestClient, town: Town) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, town, "practitioner")
    seen = 0
    for method, path in _routes(app):
        if method != "GET" or "{" in path:
            continue
        response = client.get(path, params={"purpose": PURPOSE}, follow_redirects=False)
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert headers.get("strict-transport-security", "").startswith("max-age="), path
        assert headers.get("x-content-type-options") == "nosniff", path
        seen += 1
    assert seen > 10


def test_stored_xss_from_feed_data_is_escaped(client: TestClient, town: Town) -> None:
    nominal_id = _xss_nominal(town)
    sign_in(client, town, "practitioner")
    pages = [
        client.get("/search", params={"purpose": PURPOSE, "dob": "1911-02-01"}),
        client.get(f"/people/{nominal_id}", params={"purpose": PURPOSE}),
    ]
    shown = 0
    for page in pages:
        assert page.status_code == 200, page.text[:300]
        html = page.text
        for payload in ("<script>alert(", "<img src=x", "<svg onload"):
            assert payload.lower() not in html.lower(), payload
        shown += sum(m in html for m in ("&lt;script&gt;", "&lt;img", "&lt;svg", "Zed&lt;"))
    assert shown > 0, "the hostile values were not shown at all (nothing was tested)"
    # The API returns the value as data, as JSON (never HTML)
    api = client.get(
        f"/api/people/{nominal_id}",
        params={"purpose": PURPOSE},
        headers=token(town, "practitioner"),
    )
    assert api.headers["content-type"].startswith("application/json")
    assert XSS_GIVEN in api.text or XSS_FAMILY.split("<")[0] in api.text or XSS_ADDRESS in api.text


SQLI = [
    "' OR '1'='1", "' OR 1=1 --", "'; DROP TABLE gold.nominals; --", '" OR ""="',
    "%' UNION SELECT nominal_id FROM gold.nominals --", "\\'; SELECT 1; --", "1' AND SLEEP(5)--",
    "' || (SELECT string_agg(given_name, ',') FROM gold.nominals) || '", "*", "%", "_%",
]  # fmt: skip


def test_sql_injection_through_every_search_field(client: TestClient, town: Town) -> None:
    lake = Lake(town.home.lake)
    before = lake.require_current()
    headers = token(town, "practitioner")
    baseline = client.get(
        "/api/search", params={"purpose": PURPOSE, "family_name": "Qqqxqq"}, headers=headers
    )
    assert baseline.status_code == 200
    tried = 0
    for field in QUERY_FIELDS:
        for payload in SQLI:
            r = client.get(
                "/api/search", params={"purpose": PURPOSE, field: payload}, headers=headers
            )
            tried += 1
            assert r.status_code in (200, 422), (field, payload, r.status_code, r.text[:300])
            if r.status_code == 200:
                body = r.json()
                # an injection that matched everything would return the limit of results
                assert body["count"] < 20 or field in ("sex", "age"), (
                    field,
                    payload,
                    body["count"],
                )
    assert tried == len(QUERY_FIELDS) * len(SQLI)
    after = lake.require_current()
    assert after.id == before.id and after.rows("gold.nominals") == before.rows("gold.nominals")


def test_search_is_rate_limited(town: Town, monkeypatch: pytest.MonkeyPatch) -> None:
    from nominal.web.app import create_app

    monkeypatch.setenv("NOMINAL_SEARCH_RATE_PER_MINUTE", "15")
    app = create_app(town.home, database_url=town.control.url, secure_cookies=False)
    with TestClient(app, base_url="http://testserver") as c:
        headers = token(town, "practitioner")
        codes = [
            c.get("/api/search", params={"purpose": PURPOSE, "family_name": f"Smith{i}"},
                  headers=headers).status_code
            for i in range(20)
        ]  # fmt: skip
    assert codes[:15] == [200] * 15
    assert set(codes[15:]) == {429}


def test_idor_other_partner_cannot_fetch_records_by_id(client: TestClient, town: Town) -> None:
    nominal_id = _xss_nominal(town)
    con = duck.connect(Lake(town.home.lake).require_current())
    household = con.execute(
        "SELECT household_id FROM gold.nominals WHERE household_id IS NOT NULL LIMIT 1"
    ).fetchone()[0]
    # The council practitioner's partner has no agreement covering this purpose.
    council = token(town, "council")
    for url in (f"/api/people/{nominal_id}", f"/api/households/{household}"):
        r = client.get(url, params={"purpose": PURPOSE}, headers=council)
        assert r.status_code in (403, 404), (url, r.status_code)
        assert XSS_ADDRESS not in r.text and "Zed" not in r.text
    # The analyst (same partner as the practitioner) sees pseudonyms, never the identity.
    r = client.get(f"/api/people/{nominal_id}", params={"purpose": PURPOSE},
                   headers=token(town, "analyst"))  # fmt: skip
    assert r.status_code in (200, 403, 404)
    assert "Zed" not in r.text and XSS_ADDRESS not in r.text
    # Guessing ids: an unknown id and a traversal-looking id are refused alike.
    practitioner = token(town, "practitioner")
    for guess in ("N000000000000000", "../../etc/passwd", "' OR '1'='1"):
        r = client.get(f"/api/people/{guess}", params={"purpose": PURPOSE}, headers=practitioner)
        assert r.status_code in (400, 403, 404, 422), (guess, r.status_code)


def test_records_api_by_dataset_is_deny_by_default(client: TestClient, town: Town) -> None:
    council = token(town, "council")
    r = client.get("/api/datasets/police_incidents/records", params={"purpose": PURPOSE},
                   headers=council)  # fmt: skip
    assert r.status_code == 403
    assert "Zed" not in r.text
