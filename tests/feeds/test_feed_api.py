"""The feed API over HTTP (a real uvicorn server, httpx): push, resume, retry, pull."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import date

import httpx
import pyarrow as pa
import pytest

from nominal.config import Home
from nominal.engines.lake import Lake
from nominal.ingest.api import ingest_paths
from nominal.ops.web import control_for


def declare(
    client: httpx.Client, token: str, delivery_id: str, name: str, data: bytes, **extra: str
) -> httpx.Response:
    return client.post(
        "/api/feeds/npol-incidents/deliveries",
        headers={
            "Authorization": f"Bearer {token}",
            "Delivery-Id": delivery_id,
            "Delivery-Filename": name,
            "Upload-Length": str(len(data)),
            **extra,
        },
    )


def patch(
    client: httpx.Client, token: str, location: str, offset: int, body: bytes | Iterator[bytes]
) -> httpx.Response:
    return client.patch(
        location,
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def push(
    client: httpx.Client, token: str, delivery_id: str, name: str, data: bytes, chunk: int = 1 << 16
) -> httpx.Response:
    made = declare(
        client,
        token,
        delivery_id,
        name,
        data,
        **{"Delivery-Checksum": "sha256=" + hashlib.sha256(data).hexdigest()},
    )
    assert made.status_code in (200, 201), made.text
    location, offset = made.headers["Location"], int(made.headers["Upload-Offset"])
    response = made
    while offset < len(data):
        response = patch(client, token, location, offset, data[offset : offset + chunk])
        assert response.status_code == 204, response.text
        offset = int(response.headers["Upload-Offset"])
    return response


def silver_rows(home: Home) -> int:
    return Lake(home.lake).require_current().rows("silver.identity")


def test_push_retry_and_duplicate(
    feed_hub: Home, server: str, token_for: Callable[..., str], incidents: Callable[..., bytes]
) -> None:
    token = token_for()
    data = incidents(500)
    with httpx.Client(base_url=server, timeout=30) as client:
        push(client, token, "npol-2025-03-01", "npol_incidents_2025_03.csv", data, chunk=7000)
        assert (feed_hub.inbox / "npol_incidents_2025_03.csv").read_bytes() == data
        # the partner's system did not see the answer and retries the whole delivery
        again = declare(client, token, "npol-2025-03-01", "npol_incidents_2025_03.csv", data)
        assert again.status_code == 200 and again.json()["status"] == "received"
        ingest_paths(feed_hub)
        rows = silver_rows(feed_hub)
        assert rows == 500
        state = client.get(
            "/api/feeds/deliveries/npol-2025-03-01", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert state["ingest"]["status"] == "ingested" and state["ingest"]["rows_accepted"] == 500
        # the same bytes re-sent under a new delivery id: ingest knows the file by its SHA-256
        push(client, token, "npol-2025-03-01-resend", "npol_incidents_2025_03.csv", data)
        summary = ingest_paths(feed_hub)
        assert [d.status for d in summary.deliveries] == ["duplicate"]
        assert silver_rows(feed_hub) == rows
        # the same delivery id for a different file is refused
        clash = declare(client, token, "npol-2025-03-01", "npol_incidents_2025_04.csv", data)
        assert clash.status_code == 409 and "use a new Delivery-Id" in clash.json()["detail"]


def test_interrupted_upload_resumes(
    feed_hub: Home, server: str, token_for: Callable[..., str], incidents: Callable[..., bytes]
) -> None:
    token = token_for()
    data = incidents(40_000)  # about 2 MB
    made = None
    with httpx.Client(base_url=server, timeout=30) as client:
        made = declare(client, token, "big-1", "npol_incidents_big.csv", data)
        assert made.status_code == 201
        location = made.headers["Location"]

        class Dropped(Exception):
            pass

        def body() -> Iterator[bytes]:
            for i in range(0, 1_200_000, 100_000):
                yield data[i : i + 100_000]
            raise Dropped  # the connection drops part-way through

        with pytest.raises((Dropped, httpx.HTTPError)):
            patch(client, token, location, 0, body())
    with httpx.Client(base_url=server, timeout=30) as client:
        import time

        for _ in range(100):  # the server notices the disconnect and records what it has
            head = client.head(location, headers={"Authorization": f"Bearer {token}"})
            if int(head.headers["Upload-Offset"]) > 0:
                break
            time.sleep(0.05)
        offset = int(head.headers["Upload-Offset"])
        assert 0 < offset <= 1_200_000
        wrong = patch(client, token, location, 0, data)
        assert wrong.status_code == 409
        done = patch(client, token, location, offset, data[offset:])
        assert done.status_code == 204 and int(done.headers["Upload-Offset"]) == len(data)
    received = feed_hub.inbox / "npol_incidents_big.csv"
    assert hashlib.sha256(received.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_refusals(
    feed_hub: Home, server: str, token_for: Callable[..., str], incidents: Callable[..., bytes]
) -> None:
    data = incidents(10)
    with httpx.Client(base_url=server, timeout=30) as client:
        assert declare(client, "nope", "d1", "npol_incidents_x.csv", data).status_code == 401
        other_feed = token_for(feeds=("npol-crimes",))
        assert declare(client, other_feed, "d1", "npol_incidents_x.csv", data).status_code == 403
        wrong_partner = token_for(partner="KCC")
        refused = declare(client, wrong_partner, "d1", "npol_incidents_x.csv", data)
        assert refused.status_code == 403 and "belongs to partner NPOL" in refused.json()["detail"]
        token = token_for()
        bad_name = declare(client, token, "d1", "incidents.csv", data)
        assert bad_name.status_code == 400 and "pattern" in bad_name.json()["detail"]
        sneaky = declare(client, token, "d1", "../npol_incidents_x.csv", data)
        assert sneaky.status_code == 400
        made = declare(
            client,
            token,
            "d2",
            "npol_incidents_x.csv",
            data,
            **{"Delivery-Checksum": "sha256=" + "0" * 64},
        )
        location = made.headers["Location"]
        mismatch = patch(client, token, location, 0, data)
        assert mismatch.status_code == 460 and "checksum mismatch" in mismatch.json()["detail"]
        head = client.head(location, headers={"Authorization": f"Bearer {token}"})
        assert head.headers["Upload-Offset"] == "0"  # start again under the same id
        too_long = patch(client, token, location, 0, data + b"extra")
        assert too_long.status_code == 413
        other = token_for(partner="KCC", feeds=("npol-incidents",))
        assert (
            client.head(location, headers={"Authorization": f"Bearer {other}"}).status_code == 404
        )
    assert not (feed_hub.inbox / "npol_incidents_x.csv").exists()


def test_pull_own_nominal_ids_under_live_agreement(
    feed_hub: Home, server: str, token_for: Callable[..., str]
) -> None:
    from nominal.govern import admin
    from nominal.govern.models import AuditEntry, Dataset

    lake = Lake(feed_hub.lake)
    with lake.transaction("test gold") as tx:
        table = pa.table(
            {
                "record_key": ["k1", "k2", "k3"],
                "nominal_id": ["N1", "N1", "N2"],
                "dataset": ["police_incidents", "police_incidents", "ae_attendances"],
                "agency": ["police", "police", "health"],
                "source_record_id": ["P1", "P2", "A1"],
            }
        )
        tx.replace("gold.nominal_records", [tx.write_arrow("gold.nominal_records", table)])
        tx.commit()
    control = control_for(feed_hub.database_url)
    token = token_for(pull=True)
    with httpx.Client(base_url=server, timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert (
            client.get(
                "/api/feeds/pull/nominals", headers={"Authorization": f"Bearer {token_for()}"}
            ).status_code
            == 403
        )
        denied = client.get("/api/feeds/pull/nominals", headers=auth)
        assert denied.status_code == 403 and "ISA-T2-001 is not recorded" in denied.json()["detail"]
        with control.session() as session:
            admin.add_partner(session, "NPOL", "Northshire Police", "police")
            admin.add_agreement(
                session,
                "ISA-T2-001",
                2,
                "Safeguarding",
                status="live",
                start=date(2020, 1, 1),
                parties=["NPOL"],
            )
        # a live agreement alone is not enough: it must share the dataset and the
        # partner's onboarding must be complete
        refused = client.get("/api/feeds/pull/nominals", headers=auth)
        assert refused.status_code == 403, refused.text
        with control.session() as session:
            agreement = admin.get_agreement(session, "ISA-T2-001")
            police = admin.get_partner(session, "NPOL")
            dataset = Dataset(code="police_incidents", title="Incidents", partner_id=police.id)
            dataset.fields = ["event_date"]
            session.add(dataset)
            session.flush()
            admin.share_dataset(session, agreement, "police_incidents")
            checklist = admin.checklist(session, agreement, police)
            for item in checklist.required_items():
                setattr(checklist, item, True)
        pulled = client.get("/api/feeds/pull/nominals", headers=auth)
        assert pulled.status_code == 200
        # only its own dataset's records, never the health record
        assert pulled.json()["records"] == [
            {"dataset": "police_incidents", "source_record_id": "P1", "nominal_id": "N1"},
            {"dataset": "police_incidents", "source_record_id": "P2", "nominal_id": "N1"},
        ]
    import sqlalchemy as sa

    with control.session() as session:
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.action, e.outcome, e.username) for e in entries] == [
            ("feeds.pull.nominals", "denied", "partner:NPOL"),
            ("feeds.pull.nominals", "denied", "partner:NPOL"),
            ("feeds.pull.nominals", "allowed", "partner:NPOL"),
        ]
