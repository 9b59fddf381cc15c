"""Search as you type in a real browser (Debian's chromium driven by Playwright).

The server is the real app under uvicorn on a local port; the practitioner signs in
with password and one-time code, chooses a purpose and types a name. The results
appear without pressing Search (HTMX), and the address bar keeps the query so the
page can be shared or reloaded without JavaScript.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import uvicorn
from search_governance import PASSWORD, PURPOSE, TOTP
from search_town import Town

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.govern.auth import totp_now

pytestmark = pytest.mark.browser
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(town: Town) -> Iterator[str]:
    from nominal.web.app import create_app

    app = create_app(town.home, database_url=town.control.url, secure_cookies=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    for _ in range(200):
        if instance.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def test_search_as_you_type(server: str, town: Town) -> None:
    from playwright.sync_api import expect, sync_playwright

    con = duck.connect(Lake(town.home.lake).require_current())
    nominal_id, given, family = con.execute(
        """SELECT nominal_id, given_name, family_name FROM gold.nominals
           WHERE length(family_name) >= 5 AND given_name IS NOT NULL ORDER BY nominal_id LIMIT 1"""
    ).fetchall()[0]
    username = town.users["practitioner"]
    with town.control.session() as s:
        s.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"), {"u": username}
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{server}/sign-in")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.fill("#code", totp_now(TOTP[username]))
        page.click("#sign-in")
        page.wait_for_url(f"{server}/")
        page.goto(f"{server}/search")
        page.select_option("#purpose", PURPOSE)
        page.click("#name")
        page.keyboard.type(f"{given} {family}", delay=40)
        link = page.locator(f'#search-results a[href^="/people/{nominal_id}"]')
        expect(link).to_be_visible(timeout=20000)
        assert "name=" in page.url  # the query is in the address bar (hx-push-url)
        link.click()
        expect(page.locator("#timeline")).to_be_visible()
        browser.close()
