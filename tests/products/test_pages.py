"""The products' pages in the real app (TestClient over create_app), on the demo hub."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.admin import lift_suspension, suspend_dataset
from nominal.govern.demo import DemoAccounts
from nominal.govern.models import AuditEntry
from nominal.products.models import Task

from .web import COHORT, build_demo_hub, csrf_of, sign_in


@pytest.fixture(scope="module")
def demo_hub(town: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, DemoAccounts]:
    return build_demo_hub(tmp_path_factory.mktemp("products-web") / "home", town)


@pytest.fixture
def app_client(demo_hub: tuple[Home, DemoAccounts]) -> Iterator[TestClient]:
    from nominal.web.app import create_app

    home, _ = demo_hub
    with TestClient(create_app(home), base_url="https://testserver") as client:
        yield client


def _as(client: TestClient, demo_hub: tuple[Home, DemoAccounts], role: str) -> str:
    home, accounts = demo_hub
    return sign_in(client, accounts.by_role(role), home.database_url)


def test_pages_need_a_signed_in_user(app_client: TestClient) -> None:
    for path in ("/dashboard", "/map", "/tasking", "/workbench", "/benefits", "/usage"):
        response = app_client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/sign-in" in response.headers["location"], path


def test_dashboard_asks_for_a_purpose_then_shows_figures(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    _as(app_client, demo_hub, "practitioner")
    first = app_client.get("/dashboard")
    assert first.status_code == 200 and 'name="purpose"' in first.text
    page = app_client.get("/dashboard?purpose=safeguarding_children")
    assert page.status_code == 200, page.text
    assert "Duplicate interventions" in page.text and 'id="kpi-events"' in page.text
    assert "/tasking/case/nominal/" in page.text  # practitioners get nominal links
    specs = [
        json.loads(s)
        for s in __import__("re").findall(
            r'<script type="application/json" id="spec-[a-z_]+">(.*?)</script>', page.text, flags=16
        )
    ]
    assert len(specs) == 4 and all("encoding" in s or "layer" in s for s in specs)
    data = app_client.get("/api/products/dashboard?purpose=safeguarding_children").json()
    assert data["events"] > 0 and data["people_with_duplicate_interventions"] >= 1
    got = app_client.get("/dashboard/data/by_agency.csv?purpose=safeguarding_children")
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert sum(int(r["events"]) for r in rows) == data["events"]


def test_analysts_see_pseudonyms_only(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    _as(app_client, demo_hub, "analyst")
    page = app_client.get("/dashboard?purpose=research")
    assert page.status_code == 200, page.text
    assert "/tasking/case/nominal/" not in page.text and "(pseudonym)" in page.text
    dups = app_client.get("/dashboard/data/duplicates.csv?purpose=research").text
    assert not any(line.startswith("p") for line in dups.splitlines()[1:])  # no p<id> nominal ids
    assert app_client.get("/tasking").status_code == 403  # analysts do not do casework


def test_filters_narrow_the_figures(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    _as(app_client, demo_hub, "practitioner")
    everything = app_client.get("/api/products/dashboard?purpose=safeguarding_children").json()
    police = app_client.get(
        "/api/products/dashboard?purpose=safeguarding_children&agency=police"
    ).json()
    assert 0 < police["events"] < everything["events"]
    assert {r["agency"] for r in police["by_agency"]} == {"police"}
    bad = app_client.get("/dashboard?purpose=safeguarding_children&age_band=teen")
    assert bad.status_code == 422


def test_map_and_area_click_through(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    _as(app_client, demo_hub, "practitioner")
    page = app_client.get("/map?purpose=safeguarding_children&measure=people")
    assert page.status_code == 200 and 'id="map"' in page.text
    areas = json.loads(page.text.split('id="areas-geojson">')[1].split("</script>")[0])
    assert areas["features"] and all("value" in f["properties"] for f in areas["features"])
    oa = areas["features"][0]["properties"]["oa_code"]
    detail = app_client.get(f"/map/areas/{oa}?purpose=safeguarding_children")
    assert detail.status_code == 200 and oa in detail.text
    assert app_client.get("/map?purpose=safeguarding_children&measure=vibes").status_code == 422
    assert app_client.get("/map/data.csv?purpose=safeguarding_children").text.startswith("oa_code,")


def test_task_from_a_cohort_then_update_it(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    home, _ = demo_hub
    csrf = _as(app_client, demo_hub, "practitioner")
    page = app_client.get(f"/tasking/cohorts/{COHORT}?purpose=safeguarding_children")
    assert page.status_code == 200, page.text
    team = page.text.split('id="team" name="team"><option value="')[1].split('"')[0]
    made = app_client.post(
        f"/tasking/cohorts/{COHORT}/tasks",
        data={
            "csrf_token": csrf,
            "purpose": "safeguarding_children",
            "team": team,
            "title": "Joint visit",
            "unit_id": [],
            "due_on": "2026-12-31",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    control = ControlPlane(home.database_url)
    with control.session() as s:
        tasks = s.scalars(sa.select(Task).where(Task.title == "Joint visit")).all()
        assert len(tasks) == 5 and {t.source for t in tasks} == {f"cohort:{COHORT}"}
        task_id = tasks[0].id
    queue = app_client.get(f"/tasking?team={team}")
    assert "Joint visit" in queue.text
    form = app_client.get(f"/tasking/tasks/{task_id}")
    refused = app_client.post(
        f"/tasking/tasks/{task_id}",
        data={"csrf_token": csrf_of(form.text), "status": "done"},
        follow_redirects=True,
    )
    assert "record the outcome" in refused.text
    done = app_client.post(
        f"/tasking/tasks/{task_id}",
        data={"csrf_token": csrf, "status": "done", "outcome": "Seen at home"},
        follow_redirects=True,
    )
    assert "Seen at home" in done.text
    meeting = app_client.get("/tasking/meeting?purpose=safeguarding_children")
    assert meeting.status_code == 200 and "Open intervention" in meeting.text
    with control.session() as s:
        actions = set(s.scalars(sa.select(AuditEntry.action)).all())
    control.dispose()
    assert {"task.create", "task.update", "view_cohort", "view_meeting"} <= actions


def test_forms_without_csrf_are_refused(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    _as(app_client, demo_hub, "practitioner")
    response = app_client.post("/tasking/new", data={"unit_id": "p1", "title": "x", "team": "x"})
    assert response.status_code == 403


def test_workbench_runs_selects_and_refuses_the_rest(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    csrf = _as(app_client, demo_hub, "analyst")
    page = app_client.get("/workbench?purpose=research")
    assert page.status_code == 200 and "events" in page.text
    ok = app_client.post(
        "/workbench",
        data={
            "csrf_token": csrf,
            "purpose": "research",
            "sql": "SELECT agency, count(*) AS n FROM events GROUP BY 1",
            "output": "table",
        },
    )
    assert ok.status_code == 200 and 'id="result"' in ok.text
    as_csv = app_client.post(
        "/workbench",
        data={
            "csrf_token": csrf,
            "purpose": "research",
            "sql": "SELECT count(*) AS n FROM nominals",
            "output": "csv",
        },
    )
    assert as_csv.text.splitlines()[0] == "n" and int(as_csv.text.splitlines()[1]) > 0
    refused = app_client.post(
        "/workbench",
        data={
            "csrf_token": csrf,
            "purpose": "research",
            "sql": "DROP TABLE events",
            "output": "table",
        },
    )
    assert refused.status_code == 422 and "only SELECT" in refused.text
    home, _ = demo_hub
    control = ControlPlane(home.database_url)
    with control.session() as s:
        outcomes = s.scalars(
            sa.select(AuditEntry.outcome).where(AuditEntry.action == "workbench_query")
        ).all()
    control.dispose()
    assert "allowed" in outcomes and "denied" in outcomes


def test_benefits_and_usage(app_client: TestClient, demo_hub) -> None:  # type: ignore[no-untyped-def]
    csrf = _as(app_client, demo_hub, "analyst")
    page = app_client.get("/benefits?purpose=research")
    assert page.status_code == 200, page.text
    assert 'id="tracker"' in page.text and 'id="risk-matrix"' in page.text
    added = app_client.post(
        "/benefits/risks",
        data={
            "csrf_token": csrf,
            "title": "Funding ends",
            "owner": "Board",
            "likelihood": "5",
            "impact": "4",
            "purpose": "research",
        },
        follow_redirects=True,
    )
    assert "Funding ends" in added.text and "5 × 4 = 20" in added.text
    assert app_client.get("/benefits/data.csv?purpose=research").text.startswith("measure,")
    assert app_client.get("/usage").status_code == 403  # analysts do not see usage by user group
    _as(app_client, demo_hub, "data_owner")
    usage = app_client.get("/usage")
    assert usage.status_code == 200 and "Sign-ins" in usage.text
    rows = list(csv.DictReader(io.StringIO(app_client.get("/usage/data.csv").text)))
    assert any(r["kind"] == "sign-ins" and int(r["allowed"]) >= 1 for r in rows)


def test_dashboard_figures_are_kept_but_every_view_is_decided_and_audited(
    app_client: TestClient,
    demo_hub,  # type: ignore[no-untyped-def]
) -> None:
    home, _ = demo_hub
    _as(app_client, demo_hub, "practitioner")
    control = ControlPlane(home.database_url)

    def views() -> int:
        with control.session() as s:
            return int(
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditEntry)
                    .where(AuditEntry.action == "view_dashboard")
                )
                or 0
            )

    before = views()
    url = "/dashboard?purpose=safeguarding_children&age_band=0-17"
    first = app_client.get(url)
    second = app_client.get(url)
    assert first.status_code == second.status_code == 200
    kpi = re.compile(r'id="kpi-events"[^>]*>(.*?)<', re.S)
    assert kpi.search(first.text).group(1) == kpi.search(second.text).group(1)  # type: ignore[union-attr]
    assert views() == before + 2  # the kept figures are still shown only after a decision
    # another filter set is computed afresh and differs
    other = app_client.get("/dashboard?purpose=safeguarding_children&age_band=65%2B")
    assert kpi.search(other.text).group(1) != kpi.search(first.text).group(1)  # type: ignore[union-attr]
    control.dispose()


def test_start_up_warming_keeps_each_dataset_sets_figures_and_views_stay_decided_and_audited(
    demo_hub,  # type: ignore[no-untyped-def]
) -> None:
    """The app's start-up hook computes the unfiltered dashboard of the dataset sets the
    policy permits now, without showing or auditing anything; each view is still decided
    and audited, and shows exactly what an app without warming shows."""
    from nominal.products.routes import warm_dashboards
    from nominal.web.app import create_app

    home, _ = demo_hub
    control = ControlPlane(home.database_url)

    def audited(action: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(AuditEntry)
        if action:
            query = query.where(AuditEntry.action == action)
        with control.session() as s:
            return int(s.scalar(query) or 0)

    kpis = re.compile(r'id="kpi-([a-z0-9-]+)"[^>]*>(.*?)<', re.S)
    pages = {}
    for warm in (False, True):
        app = create_app(home, warm=False)
        hub = app.state.hub
        if warm:
            before = audited()
            warmed = warm_dashboards(hub)
            assert warmed and audited() == before  # nothing audited: nothing shown
            assert len(hub.cache["dashboard_keys"]) == len(set(warmed)) == len(warmed)
            # every set is one the datasets of the lake hold, and they differ
            assert all(set(s) <= set(hub.cache["products_lake"][2].datasets) for s in warmed)
        with TestClient(app, base_url="https://testserver") as client:
            for role, purpose in (
                ("practitioner", "safeguarding_children"),
                ("analyst", "research"),
            ):
                _as(client, demo_hub, role)
                kept = len(hub.cache.get("dashboard_keys", []))
                views = audited("view_dashboard")
                page = client.get(f"/dashboard?purpose={purpose}")
                assert page.status_code == 200
                assert audited("view_dashboard") == views + 1  # decided and audited
                if warm:  # served from the warmed figures: nothing new computed
                    assert len(hub.cache["dashboard_keys"]) == kept
                pages[(warm, role)] = kpis.findall(page.text)
                client.cookies.clear()
    for role in ("practitioner", "analyst"):
        assert pages[(True, role)] and pages[(True, role)] == pages[(False, role)]
    # A suspension after the warming narrows the very next view: the warmed figures of
    # the wider dataset set are not shown, the narrower set's are computed.
    dataset = hub.cache["products_lake"][2].datasets[0]
    with control.session() as s:
        suspend_dataset(s, dataset, "test-warming", "warming test")
    try:
        with TestClient(app, base_url="https://testserver") as client:
            _as(client, demo_hub, "practitioner")
            kept = len(hub.cache["dashboard_keys"])
            page = client.get("/dashboard?purpose=safeguarding_children")
            assert page.status_code == 200
            assert len(hub.cache["dashboard_keys"]) == kept + 1
            narrowed = dict(kpis.findall(page.text))
            wide = dict(pages[(True, "practitioner")])
            assert int(narrowed["events"].replace(",", "")) < int(wide["events"].replace(",", ""))
    finally:
        with control.session() as s:
            assert lift_suspension(s, dataset, "test-warming") == 1
    control.dispose()


def test_the_app_warms_at_start_up_and_again_on_a_new_snapshot(demo_hub) -> None:  # type: ignore[no-untyped-def]
    from nominal.engines.lake import Lake
    from nominal.products.aggregates import build as build_aggregates
    from nominal.web.app import create_app

    home, _ = demo_hub
    app = create_app(home, warm=True)  # warming on, as served
    hub = app.state.hub
    with TestClient(app, base_url="https://testserver") as client:
        assert hub.cache["dashboard_warmed"].wait(timeout=300)
        first = Lake(home.lake).current().id  # type: ignore[union-attr]
        assert any(k.startswith(f"dashboard:{first}:") for k in hub.cache["dashboard_keys"])
        build_aggregates(home)  # a pipeline run: a new snapshot, same figures
        second = Lake(home.lake).current().id  # type: ignore[union-attr]
        assert second != first
        _as(client, demo_hub, "practitioner")
        # the map (not the dashboard) is the first page to open the new snapshot
        assert client.get("/map?purpose=safeguarding_children").status_code == 200
        assert hub.cache["dashboard_warmed"].wait(timeout=300)
        assert any(k.startswith(f"dashboard:{second}:") for k in hub.cache["dashboard_keys"])
