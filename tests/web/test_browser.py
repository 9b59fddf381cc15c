"""The real app in Debian's Chromium: sign-in with password and TOTP, the information
governance pages, and an analyst refused re-identification without a justification."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from govern.lakes import build_silver
from nominal.config import Home
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccount, DemoAccounts, seed_demo

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(hub_home: Home, contracts_dir: Path) -> Iterator[tuple[str, DemoAccounts]]:
    from nominal.web.app import create_app

    build_silver(hub_home)
    accounts = seed_demo(hub_home, contracts_dir)
    # The production default: Secure cookies. Chromium treats http://localhost as a
    # secure context, so it stores them even without TLS.
    app = create_app(hub_home)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://localhost:{port}", accounts
    srv.should_exit = True
    thread.join(timeout=10)


def _sign_in(page, base: str, account: DemoAccount) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/sign-in")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.fill("#code", totp_now(account.totp_secret))
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")


def test_ig_lead_and_analyst_in_chromium(server: tuple[str, DemoAccounts]) -> None:
    from playwright.sync_api import sync_playwright

    base, accounts = server
    csp_violations: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on(
            "console",
            lambda m: (
                csp_violations.append(m.text) if "Content Security Policy" in m.text else None
            ),
        )
        page.goto(f"{base}/agreements")
        assert "/sign-in" in page.url  # pages need sign-in

        # A wrong code gets the generic error.
        ig = accounts.by_role("ig_lead")
        page.fill("#username", ig.username)
        page.fill("#password", ig.password)
        page.fill("#code", "000000")
        page.click("#sign-in")
        assert "Enter a correct username, password and security code" in page.content()

        _sign_in(page, base, ig)
        # The nonce'd inline script of the GOV.UK template ran under the CSP.
        assert "govuk-frontend-supported" in (page.get_attribute("body", "class") or "")
        for label in ("Agreements", "Onboarding", "Users", "Audit"):
            assert page.locator(".govuk-service-navigation").get_by_text(label).count() >= 1

        page.click("text=Agreements")
        assert page.locator("#agreements").get_by_text("ISA-T2-POL-01").count() == 1
        page.click("text=ISA-T2-POL-01")
        assert "crimes" in page.locator("#shared-datasets").inner_text()
        page.goto(f"{base}/onboarding")
        assert page.get_by_text("Complete").count() > 0
        page.goto(f"{base}/users")
        assert page.locator("#user-ann\\.analyst").count() == 1
        page.goto(f"{base}/audit")
        page.click("#verify")
        assert "Audit chain intact" in page.locator("#verify-result").inner_text()
        page.click("text=Sign out")
        page.wait_for_url(f"{base}/sign-in")

        analyst = accounts.by_role("analyst")
        _sign_in(page, base, analyst)
        assert page.locator(".govuk-service-navigation").get_by_text("Agreements").count() == 0
        result = page.evaluate(
            """async () => {
                const csrf = document.querySelector('input[name=csrf_token]').value;
                const r = await fetch('/api/reidentify', {method: 'POST',
                    headers: {'content-type': 'application/json', 'x-csrf-token': csrf},
                    body: JSON.stringify({purpose: 'safeguarding_children', record_key: 'a'.repeat(32)})});
                return {status: r.status, body: await r.json()};
            }"""
        )
        assert result["status"] == 403
        assert "justification" in result["body"]["detail"]["message"]
        records = page.evaluate(
            """async () => {
                const r = await fetch('/api/datasets/crimes/records?purpose=safeguarding_children');
                return await r.json();
            }"""
        )
        assert records["count"] == 4 and "given_name" not in records["records"][0]
        page.goto(f"{base}/users")
        assert "You cannot see this" in page.content()
        browser.close()
    assert csp_violations == [], csp_violations
