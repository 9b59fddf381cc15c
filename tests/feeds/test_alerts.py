"""Alerts: detection under agreements, signed webhooks with back-off, exactly once at a
real receiver that fails before it recovers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from nominal.config import Home
from nominal.contracts.model import load_contract
from nominal.contracts.registry import add_contracts
from nominal.db import ControlPlane
from nominal.engines.lake import Lake
from nominal.feeds.alerts import backoff, deliver_due, detect_alerts, subscribe, verify
from nominal.feeds.models import Alert, WebhookDelivery

CONTRACT = """\
contract_version: 1
feed: {feed}
title: {dataset}
partner: {{code: {partner}, name: {partner}}}
agency: {agency}
dataset: {dataset}
agreement: {agreement}
deliveries: {{pattern: "{dataset}_*.csv"}}
format: {{type: csv}}
fields:
  record_id:  {{source: Ref, required: true}}
  event_date: {{source: When, type: date, required: true}}
  event_type: {{value: {dataset}}}
retention: {{years: 7, from: event_date}}
"""
FEEDS = [
    ("npol-incidents", "police_incidents", "NPOL", "police", "ISA-T2-POL"),
    ("kht-ae", "ae_attendances", "KHT", "health", "ISA-T2-NHS"),
    ("nmh-episodes", "mental_health", "NMH", "mental_health", "ISA-T2-MH"),
]


class Receiver:
    """A partner's webhook endpoint: fails the first ``fail_first`` requests, stores by key.

    Request number ``store_then_fail`` is stored but answered 503, as when the receiver
    commits and the response is lost: the hub retries, the receiver must not store twice.
    """

    def __init__(self, secret: str, fail_first: int, store_then_fail: int | None) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.store_then_fail = store_then_fail
        self.requests = 0
        self.store: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()

    def handle(self, headers: Any, body: bytes) -> int:
        with self.lock:
            self.requests += 1
            n = self.requests
            if not verify(self.secret, headers.get("Nominal-Signature", ""), body):
                self.bad_signatures += 1
                return 401
            if n <= self.fail_first:
                return 500
            key = headers["Idempotency-Key"]
            self.store.setdefault(key, json.loads(body))
            return 503 if n == self.store_then_fail else 200


@pytest.fixture
def receiver_server() -> Iterator[Any]:
    servers = []

    def start(receiver: Receiver) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(receiver.handle(self.headers, body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/hooks/nominal"

    yield start
    for s in servers:
        s.shutdown()


@pytest.fixture(params=["sqlite", "postgres"])
def alert_hub(
    request: pytest.FixtureRequest, hub_home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Home, ControlPlane]:
    from nominal.govern import admin

    if request.param == "postgres":
        monkeypatch.setenv("NOMINAL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    control = ControlPlane(hub_home.database_url)
    with control.session() as s:
        for feed, dataset, partner, agency, agreement in FEEDS:
            path = tmp_path / f"{feed}.yaml"
            path.write_text(
                CONTRACT.format(
                    feed=feed, dataset=dataset, partner=partner, agency=agency, agreement=agreement
                )
            )
            add_contracts(hub_home, path)
            admin.register_contract(s, load_contract(path))
        # health shares A&E attendances with the police; mental health shares nothing
        shared = admin.add_agreement(
            s,
            "ISA-T2-NHS",
            2,
            "Safeguarding",
            status="live",
            start=date(2020, 1, 1),
            parties=["KHT", "NPOL"],
        )
        admin.share_dataset(s, shared, "ae_attendances")
        admin.add_recipient(s, shared, "NPOL", "practitioner")
    yield hub_home, control
    control.dispose()


def write_gold(home: Home, events: list[tuple[str, str, str, str, datetime]]) -> None:
    """gold.nominal_records (police records of N1..N4) and gold.events as given."""
    lake = Lake(home.lake)
    records = pa.table(
        {
            "record_key": [f"r{i}" for i in range(1, 6)],
            "nominal_id": ["N1", "N2", "N3", "N4", "N9"],
            "dataset": ["police_incidents"] * 4 + ["ae_attendances"],
            "agency": ["police"] * 4 + ["health"],
            "source_record_id": ["P1", "P2", "P3", "P4", "A9"],
        }
    )
    ev = pa.table(
        {
            "record_key": [f"e{i}" for i in range(len(events))],
            "event_key": [e[0] for e in events],
            "nominal_id": [e[1] for e in events],
            "dataset": [e[2] for e in events],
            "agency": [e[3] for e in events],
            "event_type": [e[2] for e in events],
            "event_date": [date(2026, 11, 1)] * len(events),
            "received_at": pa.array(
                [e[4].replace(tzinfo=None) for e in events], pa.timestamp("us")
            ),
        }
    )
    with lake.transaction("test gold") as tx:
        tx.replace("gold.nominal_records", [tx.write_arrow("gold.nominal_records", records)])
        tx.replace("gold.events", [tx.write_arrow("gold.events", ev)])
        tx.commit()


def test_alerts_respect_agreements_and_reach_a_recovering_receiver_once(
    alert_hub: tuple[Home, ControlPlane], receiver_server: Any
) -> None:
    home, control = alert_hub
    t0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    old = t0 - timedelta(days=30)
    new = t0 + timedelta(hours=2)
    # the receiver URL is needed before the secret; subscribe, then start the receiver
    sub_id, secret = subscribe(
        control,
        home,
        "NPOL",
        ["new_incident", "new_agency"],
        webhook_url="http://127.0.0.1:9/placeholder",
        now=t0,
    )
    receiver = Receiver(secret, fail_first=3, store_then_fail=5)
    url = receiver_server(receiver)
    from nominal.feeds.models import AlertSubscription

    with control.session() as s:
        sub = s.get(AlertSubscription, sub_id)
        assert sub is not None
        sub.webhook_url = url

    write_gold(
        home,
        [
            ("pe1", "N1", "police_incidents", "police", old),
            ("ae-old", "N2", "ae_attendances", "health", old),  # before the subscription
            ("ae1", "N1", "ae_attendances", "health", new),
            ("ae2", "N1", "ae_attendances", "health", new + timedelta(minutes=5)),
            ("ae3", "N2", "ae_attendances", "health", new),
            ("mh1", "N3", "mental_health", "mental_health", new),  # not shared with police
            ("pe2", "N4", "police_incidents", "police", new),  # their own: not an alert
            ("ae9", "N9", "ae_attendances", "health", new),  # not a nominal police work with
        ],
    )
    counts = detect_alerts(home, control)
    assert counts == {"new_incident": 3, "new_agency": 1, "risk_threshold": 0}
    with control.session() as s:
        alerts = s.scalars(sa.select(Alert).order_by(Alert.id)).all()
        assert {(a.kind, a.nominal_id) for a in alerts} == {
            ("new_incident", "N1"),
            ("new_incident", "N2"),
            ("new_agency", "N1"),
        }
        assert all(a.payload.get("dataset", "ae_attendances") == "ae_attendances" for a in alerts)
        keys = {a.idempotency_key for a in alerts}
    assert detect_alerts(home, control) == {"new_incident": 0, "new_agency": 0, "risk_threshold": 0}

    now = datetime.now(UTC)
    rounds = 0
    while True:
        result = deliver_due(home, control, now=now, max_attempts=8)
        rounds += 1
        with control.session() as s:
            pending = s.scalars(
                sa.select(WebhookDelivery).where(WebhookDelivery.status == "pending")
            ).all()
            if not pending:
                break
            now = max(r.next_attempt_at for r in pending).replace(tzinfo=UTC)
        assert rounds < 10
    assert result["dead"] == 0
    assert receiver.bad_signatures == 0
    assert set(receiver.store) == keys  # every alert, exactly once in the receiver's store
    assert receiver.requests == len(keys) + 3 + 1  # three failures and one lost response
    with control.session() as s:
        rows = s.scalars(sa.select(WebhookDelivery)).all()
        assert all(r.status == "delivered" for r in rows)
        assert max(r.attempts for r in rows) >= 2


def test_dead_letter_and_backoff(
    alert_hub: tuple[Home, ControlPlane], receiver_server: Any
) -> None:
    home, control = alert_hub
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(30).total_seconds() == 3600
    t0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    _sub, _secret = subscribe(
        control, home, "NPOL", ["new_incident"], webhook_url="http://127.0.0.1:9/refused", now=t0
    )
    write_gold(home, [("ae1", "N1", "ae_attendances", "health", t0 + timedelta(hours=1))])
    assert detect_alerts(home, control)["new_incident"] == 1
    now = datetime.now(UTC)
    first = deliver_due(home, control, now=now, max_attempts=2)
    assert first == {"delivered": 0, "retry": 1, "dead": 0}
    assert deliver_due(home, control, now=now + timedelta(seconds=10), max_attempts=2)["retry"] == 0
    final = deliver_due(home, control, now=now + timedelta(seconds=31), max_attempts=2)
    assert final["dead"] == 1
    with control.session() as s:
        (row,) = s.scalars(sa.select(WebhookDelivery)).all()
        assert (
            row.status == "dead" and row.attempts == 2 and "ConnectError" in (row.last_error or "")
        )


def test_risk_crossing_alerts_once_per_crossing(alert_hub: tuple[Home, ControlPlane]) -> None:
    home, control = alert_hub
    t0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    subscribe(
        control, home, "NPOL", ["risk_threshold"], risk_model="cse_risk", risk_threshold=0.5, now=t0
    )
    write_gold(home, [("pe1", "N1", "police_incidents", "police", t0 - timedelta(days=1))])

    def scores(values: dict[str, float], as_of: date) -> None:
        table = pa.table(
            {
                "model": ["cse_risk"] * len(values) + ["other"],
                "unit_type": ["person"] * (len(values) + 1),
                "unit_id": [*values, "N1"],
                "unit_pseudo": ["x"] * (len(values) + 1),
                "as_of": [as_of] * (len(values) + 1),
                "score": [*values.values(), 0.99],
                "band": ["high" if v >= 0.5 else "low" for v in values.values()] + ["high"],
                "rank": list(range(1, len(values) + 2)),
                "reasons": ["[]"] * (len(values) + 1),
                "model_version": ["v1"] * (len(values) + 1),
            }
        )
        lake = Lake(home.lake)
        with lake.transaction("scores") as tx:
            tx.replace("gold.scores", [tx.write_arrow("gold.scores", table)])
            tx.commit()

    scores({"N1": 0.7, "N2": 0.2, "N9": 0.9}, date(2026, 11, 1))  # N9: not a police nominal
    assert detect_alerts(home, control)["risk_threshold"] == 1
    scores({"N1": 0.8, "N2": 0.3}, date(2026, 11, 8))  # still above: no second alert
    assert detect_alerts(home, control)["risk_threshold"] == 0
    scores({"N1": 0.4, "N2": 0.6}, date(2026, 11, 15))  # N2 crosses; N1 falls back
    assert detect_alerts(home, control)["risk_threshold"] == 1
    scores({"N1": 0.9, "N2": 0.6}, date(2026, 11, 22))  # N1 crosses again
    assert detect_alerts(home, control)["risk_threshold"] == 1
    with control.session() as s:
        alerts = s.scalars(sa.select(Alert).order_by(Alert.id)).all()
        assert [(a.nominal_id, a.payload["as_of"]) for a in alerts] == [
            ("N1", "2026-11-01"),
            ("N2", "2026-11-15"),
            ("N1", "2026-11-22"),
        ]
        assert "reasons" not in alerts[0].payload


def test_notifications_page(alert_hub: tuple[Home, ControlPlane]) -> None:
    from fastapi.testclient import TestClient

    from nominal.govern import admin
    from nominal.govern.auth import issue_token
    from nominal.govern.models import AuditEntry
    from nominal.web.app import create_app

    home, control = alert_hub
    t0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    subscribe(control, home, "NPOL", ["new_incident"], now=t0)
    write_gold(home, [("ae1", "N1", "ae_attendances", "health", t0 + timedelta(hours=1))])
    detect_alerts(home, control)
    with control.session() as s:
        purpose = admin.add_purpose(s, "safeguarding", "Safeguarding")
        police = issue_token(
            s, admin.add_user(s, "pc1", "A constable", "NPOL", "practitioner"), purpose
        ).token
        nurse = issue_token(
            s, admin.add_user(s, "rn1", "A nurse", "KHT", "practitioner"), purpose
        ).token
    from nominal.feeds.tokens import issue_feed_token

    with control.session() as s:
        system = issue_feed_token(s, "NPOL", [], can_pull=True).token
        push_only = issue_feed_token(s, "NPOL", ["npol-incidents"]).token
    with TestClient(create_app(home), base_url="https://testserver") as client:
        pulled = client.get("/api/feeds/pull/alerts", headers={"Authorization": f"Bearer {system}"})
        assert pulled.status_code == 200
        (alert,) = pulled.json()["alerts"]
        assert (alert["kind"], alert["nominal_id"], alert["dataset"]) == (
            "new_incident",
            "N1",
            "ae_attendances",
        )
        after = client.get(
            f"/api/feeds/pull/alerts?after={alert['id']}",
            headers={"Authorization": f"Bearer {system}"},
        )
        assert after.json()["alerts"] == []
        refused = client.get(
            "/api/feeds/pull/alerts", headers={"Authorization": f"Bearer {push_only}"}
        )
        assert refused.status_code == 403
        page = client.get("/notifications", headers={"Authorization": f"Bearer {police}"})
        assert page.status_code == 200
        assert "New incident" in page.text and "N1" in page.text and ">new<" in page.text
        other = client.get("/notifications", headers={"Authorization": f"Bearer {nurse}"})
        assert "No alerts." in other.text  # alerts are the subscribing partner's only
        assert (
            client.post(
                "/notifications/read",
                headers={"Authorization": f"Bearer {police}"},
                follow_redirects=False,
            ).status_code
            == 303
        )
        again = client.get("/notifications", headers={"Authorization": f"Bearer {police}"})
        assert ">new<" not in again.text
    with control.session() as s:
        reads = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "alerts.read")).all()
        assert [r.username for r in reads] == ["pc1", "rn1", "pc1"]
        pulls = s.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "feeds.pull.alerts")
        ).all()
        assert [p.username for p in pulls] == ["partner:NPOL", "partner:NPOL"]
        assert json.loads(reads[0].nominal_ids) == ["N1"]
