"""Health, readiness, Prometheus metrics and the operations page, in the real app."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.pipeline.runner import run_pipeline


@pytest.fixture(params=["sqlite", "postgres"])
def app_home(
    request: pytest.FixtureRequest, hub_home: Home, monkeypatch: pytest.MonkeyPatch
) -> Home:
    if request.param == "postgres":
        monkeypatch.setenv("NOMINAL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return hub_home


@pytest.fixture
def client(app_home: Home) -> Iterator[TestClient]:
    from nominal.web.app import create_app

    with TestClient(create_app(app_home), base_url="https://testserver") as c:
        yield c


def tokens(home: Home) -> dict[str, str]:
    from nominal.govern import admin
    from nominal.govern.auth import issue_token

    control = ControlPlane(home.database_url)
    out = {}
    with control.session() as s:
        admin.add_partner(s, "HUB", "The hub team")
        purpose = admin.add_purpose(s, "operations", "Running the hub")
        for role in ("admin", "practitioner"):
            user = admin.add_user(s, f"{role}1", f"An {role}", "HUB", role)
            out[role] = issue_token(s, user, purpose).token
    control.dispose()
    return out


def test_health_and_readiness(app_home: Home, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["lake"] == "empty"
    lake = Lake(app_home.lake)
    with lake.transaction("t") as tx:
        path = tx.write_arrow("silver.events", pa.table({"x": [1, 2, 3]}))
        tx.replace("silver.events", [path])
        tx.commit()
    assert client.get("/readyz").json()["checks"]["lake"] == "ok"
    path.unlink()  # a data file lost from the lake: not ready
    broken = client.get("/readyz")
    assert broken.status_code == 503 and "1 data files missing" in broken.json()["checks"]["lake"]


def test_metrics(app_home: Home, client: TestClient) -> None:
    lake = Lake(app_home.lake)
    with lake.transaction("t") as tx:
        tx.replace("silver.events", [tx.write_arrow("silver.events", pa.table({"x": [1, 2, 3]}))])
        tx.commit()
    run_pipeline(app_home, ["features"])  # fails: no gold tables
    text = client.get("/metrics").text
    assert 'nominal_lake_table_rows{table="silver.events"} 3.0' in text
    assert "nominal_pipeline_last_run_ok 0.0" in text
    assert "nominal_feed_upload_bytes_total" in text


def test_operations_page_for_administrators(app_home: Home, client: TestClient) -> None:
    report = run_pipeline(app_home, ["features"])
    issued = tokens(app_home)
    assert client.get("/api/ops/runs").status_code == 401
    denied = client.get(
        "/api/ops/runs", headers={"Authorization": f"Bearer {issued['practitioner']}"}
    )
    assert denied.status_code == 403
    auth = {"Authorization": f"Bearer {issued['admin']}"}
    runs = client.get("/api/ops/runs", headers=auth).json()["runs"]
    assert runs[0]["run_id"] == report.run_id and runs[0]["status"] == "failed"
    page = client.get("/operations", headers=auth)
    assert page.status_code == 200
    assert report.run_id in page.text and "features needs gold.events" in page.text
