"""The products in real Chromium (Playwright with Debian's chromium) against the real
app served by uvicorn: sign in with a second factor, search for a person and open
their view (and raise a task from it), the dashboard and the map drawn, a task created
from a cohort, a CSV downloaded, keyboard use, and axe-core (the hub's own copy) on
every page. Screenshots of each page are kept under ``test-artifacts/``
(or the pytest tmp dir) for people to look at.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.govern.auth import totp_now
from nominal.govern.demo import DemoAccounts
from nominal.products.models import Task
from nominal.web.assets import VENDOR

from .web import COHORT, build_demo_hub, clear_totp

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PURPOSE = "safeguarding_children"
BROWSER_TOWN = 800  # people: enough for every page to have data, small enough to link fast
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="run `make browser-deps` for chromium"
)


def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(os.environ.get("NOMINAL_TEST_ARTIFACTS", "test-artifacts"))
    try:
        out = root / "products"
        out.mkdir(parents=True, exist_ok=True)
        return out
    except OSError:
        return tmp_path_factory.mktemp("products-artifacts")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Home, DemoAccounts]]:
    """The real app on a small town linked as ``make demo`` links it (ingest, then the
    hub's own Splink model, which person search scores with)."""
    import uvicorn

    from nominal.synth import generate
    from nominal.web.app import create_app

    root = tmp_path_factory.mktemp("products-browser")
    generate(root / "town", BROWSER_TOWN, seed=7)
    home, accounts = build_demo_hub(root / "home", root / "town", linked=True)
    app = create_app(home, secure_cookies=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", home, accounts
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


AXE_JS = VENDOR / "axe" / "axe.min.js"


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the page, with the hub's own copy of
    axe-core (static/vendor), evaluated through the DevTools protocol: the page's CSP
    rightly refuses injected inline scripts, and loosening it for the test would hide
    the CSP errors this test also looks for."""
    assert AXE_JS.exists(), "axe-core is not installed: run `make setup`"
    page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;true")
    found: list[dict[str, Any]] = []
    # The whole page, then the same without the shared header (the hub's layout, not a
    # product page), so a finding in the layout is reported without hiding ours.
    for scope, context in (
        ("page", "document"),
        ("content", "{exclude: [['.govuk-template__header']]}"),
    ):
        result = page.evaluate(
            f"""async () => await axe.run({context}, {{runOnly: {{type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}}})"""
        )
        found += [
            {
                "scope": scope,
                "id": v["id"],
                "impact": v["impact"],
                "nodes": len(v["nodes"]),
                "help": v["help"],
                "target": v["nodes"][0]["target"] if v["nodes"] else None,
            }
            for v in result["violations"]
        ]
    return found


@pytest.mark.timeout(1200)  # a long flow; the shared test machine can be slow
def test_products_in_chromium(
    served: tuple[str, Home, DemoAccounts], browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base, home, accounts = served
    out = artefacts(tmp_path_factory)
    report: dict[str, list[dict[str, Any]]] = {}
    errors: list[str] = []
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(str(e)))

    def visit(name: str, url: str | None = None, wait: str | None = None) -> None:
        if url:
            page.goto(base + url)
        if wait:
            page.wait_for_selector(wait, timeout=20_000)
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        report[name] = run_axe(page)

    # Sign in with password and the authenticator code.
    practitioner = accounts.by_role("practitioner")
    clear_totp(home.database_url, practitioner.username)
    page.goto(base + "/sign-in")
    report["sign-in"] = run_axe(page)
    page.fill("input[name=username]", practitioner.username)
    page.fill("input[name=password]", practitioner.password)
    page.fill("input[name=code]", totp_now(practitioner.totp_secret))
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")

    # Search for a person (as you type) and open their view, then raise a task for them.
    con = duck.connect(Lake(home.lake).require_current())
    nominal_id, given, family = con.execute(
        """SELECT nominal_id, given_name, family_name FROM gold.nominals
           WHERE length(family_name) >= 5 AND given_name IS NOT NULL AND agency_count >= 2
           ORDER BY nominal_id LIMIT 1"""
    ).fetchall()[0]
    con.close()
    visit("search", "/search")
    page.select_option("#purpose", PURPOSE)
    page.click("#name")
    page.keyboard.type(f"{given} {family}", delay=20)
    person_link = page.locator(f'#search-results a[href^="/people/{nominal_id}?"]')
    person_link.wait_for(timeout=20_000)
    visit("search-results")
    person_link.click()
    page.wait_for_selector("#timeline")
    assert page.url.startswith(f"{base}/people/{nominal_id}?")
    assert given in page.inner_text("#person-name")
    visit("person")
    page.click("#create-task")
    page.wait_for_selector("#new-task")
    visit("person-new-task")
    page.fill("#title", "Browser check-in from search")
    page.click("#new-task button[type=submit]")
    page.wait_for_url("**/tasking/tasks/**")
    visit("person-task")
    assert nominal_id in page.inner_text("main")

    # Purpose, then the dashboard with every chart drawn by vega-embed.
    visit("dashboard-purpose", "/dashboard")
    page.check(f"#purpose-{PURPOSE}")
    page.click("button:has-text('Continue')")
    page.wait_for_selector("#kpi-events")
    # A locator, not wait_for_function: a string predicate is eval'd, which the CSP forbids.
    page.locator(".nominal-chart[data-rendered=true]").nth(3).wait_for(timeout=30_000)
    assert page.locator(".nominal-chart[data-error]").count() == 0
    assert page.locator(".nominal-chart svg").count() == 4
    visit("dashboard")

    # Keyboard: the skip link comes first, then the filters can be used without a mouse.
    page.goto(base + f"/dashboard?purpose={PURPOSE}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('govuk-skip-link')")
    page.focus("#agency")
    page.select_option("#agency", "police")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**agency=police**")
    assert "police" in page.inner_text("#kpi-events").lower() or page.inner_text("#kpi-events")

    # A CSV download.
    page.goto(base + f"/dashboard?purpose={PURPOSE}")
    page.click("#chart-by_agency summary")
    with page.expect_download() as info:
        page.click("#chart-by_agency a[download]")
    path = info.value.path()
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "agency,events" and len(lines) > 2

    # The map: Leaflet draws every output area and ward; an area opens its details.
    visit("map", f"/map?purpose={PURPOSE}", wait="#map[data-rendered=true]")
    n_areas = len(json.loads(page.inner_text("#areas-geojson"))["features"])
    assert page.locator("#map path.leaflet-interactive").count() == n_areas
    assert page.locator("#map img").count() == 0  # no tiles from anywhere
    page.locator("#map path.leaflet-interactive").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/map/areas/**")
    visit("area", wait="#chart-area_agency .nominal-chart[data-rendered=true]")

    # A cohort: create a task for each member, then see them in the queue.
    visit("cohorts", "/tasking/cohorts")
    page.click(f"a[href='/tasking/cohorts/{COHORT}']")
    page.check(f"#purpose-{PURPOSE}")
    page.click("button:has-text('Continue')")
    page.wait_for_selector("#cohort-tasks")
    visit("cohort")
    page.fill("#task-title", "Browser joint visit")
    page.click("button:has-text('Create tasks')")
    page.wait_for_selector(".govuk-notification-banner--success")
    visit("tasks")
    control = ControlPlane(home.database_url)
    with control.session() as s:
        made = s.scalars(sa.select(Task).where(Task.title == "Browser joint visit")).all()
        task_id = made[0].id
    control.dispose()
    assert len(made) >= 1
    visit("task", f"/tasking/tasks/{task_id}")
    visit("case", f"/tasking/case/nominal/{made[0].unit_id}?purpose={PURPOSE}")
    visit("meeting", f"/tasking/meeting?purpose={PURPOSE}")
    visit("pathways", "/tasking/pathways")
    visit("new-task", "/tasking/new")

    # An analyst: the workbench (table and chart) and benefits.
    context.clear_cookies()
    analyst = accounts.by_role("analyst")
    clear_totp(home.database_url, analyst.username)
    page.goto(base + "/sign-in")
    page.fill("input[name=username]", analyst.username)
    page.fill("input[name=password]", analyst.password)
    page.fill("input[name=code]", totp_now(analyst.totp_secret))
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    visit("workbench", "/workbench?purpose=research")
    page.check("#out-chart")
    page.click("button:has-text('Run query')")
    page.wait_for_selector("#result")
    page.wait_for_selector(".nominal-chart[data-rendered=true]", timeout=20_000)
    visit("workbench-result")
    visit("benefits", "/benefits?purpose=research", wait=".nominal-chart[data-rendered=true]")

    context.clear_cookies()
    owner = accounts.by_role("data_owner")
    clear_totp(home.database_url, owner.username)
    page.goto(base + "/sign-in")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", owner.password)
    page.fill("input[name=code]", totp_now(owner.totp_secret))
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    visit("usage", "/usage", wait=".nominal-chart[data-rendered=true]")
    context.close()

    (out / "axe-report.json").write_text(json.dumps(report, indent=2))
    serious = {
        name: [
            v for v in found if v["scope"] == "content" and v["impact"] in ("serious", "critical")
        ]
        for name, found in report.items()
    }
    serious = {k: v for k, v in serious.items() if v}
    assert not serious, json.dumps(serious, indent=2)
    (out / "console-errors.json").write_text(json.dumps(errors, indent=2))
    # Scripts must never need a CSP exception. Vega's SVG renderer also writes style
    # attributes, which the CSP blocks (the charts still draw; see console-errors.json).
    blocked_scripts = [
        e for e in errors if "script" in e.lower() and "Content Security Policy" in e
    ]
    assert not blocked_scripts, blocked_scripts
