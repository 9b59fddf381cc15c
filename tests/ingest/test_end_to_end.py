"""A synthetic town end to end: geography, contracts, every feed and the case notes."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.contracts.registry import add_contracts, registered_contracts
from nominal.engines.lake import Lake
from nominal.ingest import import_synth_geography, ingest_paths
from nominal.ingest.pipeline import IngestSummary
from nominal.synth import generate

from .helpers import query

AS_OF = date(2026, 11, 1)
CONTENT_ONLY = {"event_key", "event_type", "event_date", "event_end_date", "event_status",
                "oa_code", "attributes"}  # fmt: skip
IDENTITY_ONLY = {"source_record_id", "given_name", "middle_names", "family_name",
                 "other_names", "date_of_birth", "sex", "address_line_1", "address_line_2",
                 "town", "postcode", "uprn", "phone", "email", "nhs_number", "ni_number",
                 "police_id", "pupil_number", "household_ref", "relationship",
                 "personal_attributes", "row_number"}  # fmt: skip


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("e2e")
    out = root / "town"
    generate(out, 300, seed=11)
    home = make_home(root / "home").ensure()
    geo = import_synth_geography(home, out / "geography")
    add_contracts(home, out / "contracts")
    summary = ingest_paths(home, [out / "feeds", out / "documents"], as_of=AS_OF)
    truth = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    return {"out": out, "home": home, "summary": summary, "truth": truth, "geo": geo}


def test_every_delivery_taken_in_and_rows_conserved(town: dict[str, Any]) -> None:
    summary: IngestSummary = town["summary"]
    truth = town["truth"]
    assert summary.ok, [d.message for d in summary.deliveries if d.status != "ingested"]
    per_file = truth.groupby("delivery_file").size().to_dict()
    feeds = [d for d in summary.deliveries if d.feed != "kcc-case-notes"]
    assert {Path(d.file).name for d in feeds} == set(per_file)
    for d in feeds:
        assert d.rows_in == per_file[Path(d.file).name], d.file
        assert d.rows_in == d.rows_accepted + d.rows_quarantined, d.file
    assert sum(d.rows_in for d in feeds) == len(truth)  # the truth's record count
    home: Home = town["home"]
    ((rows_in, acc, quar),) = query(
        home,
        "SELECT sum(rows_in), sum(rows_accepted), sum(rows_quarantined) FROM silver.deliveries",
    )
    assert rows_in == acc + quar == summary.rows_in


def test_quarantine_holds_exactly_the_invalid_and_expired_rows(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    truth = town["truth"]
    contracts = {c.feed: c for c in registered_contracts(home)}
    got: dict[tuple[str, str], str] = {}
    for feed, file_name, reason, raw in query(
        home,
        "SELECT feed, file_name, reason, raw FROM silver.quarantine WHERE feed <> 'kcc-case-notes'",
    ):
        if raw is None:
            assert reason.startswith("retention_expired")
            continue
        rid = json.loads(raw)[contracts[feed].fields["record_id"].source]
        got[(file_name, str(rid))] = reason
    invalid = truth[truth.invalid_reason.notna()]
    assert len(invalid) > 0
    for rec in invalid.itertuples():
        reason = got.get((rec.delivery_file, rec.source_record_id))
        assert reason is not None, (rec.delivery_file, rec.source_record_id, rec.invalid_reason)
        assert rec.invalid_reason in reason
    # nothing else was quarantined with its contents
    assert len(got) == len(invalid)
    cutoff = AS_OF - timedelta(days=round(7 * 365.25))
    expired = truth[truth.invalid_reason.isna() & (truth.event_date < cutoff)]
    (n_expired,) = query(
        home, "SELECT count(*) FROM silver.quarantine WHERE reason LIKE 'retention_expired%'"
    )[0]
    assert n_expired == len(expired)


def test_identity_and_content_are_split(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    snap = Lake(home.lake).require_current()
    identity_cols = set(snap.read("silver.identity").column_names)
    event_cols = set(snap.read("silver.events").column_names)
    assert not identity_cols & CONTENT_ONLY
    assert not event_cols & IDENTITY_ONLY
    assert event_cols & identity_cols == {"record_key", "dataset", "feed", "partner", "agency",
                                          "delivery_id", "received_at"}  # fmt: skip
    # special-category and contact data marked personal stays on the identity side
    attrs = [json.loads(a) for (a,) in query(home, "SELECT attributes FROM silver.events")]
    assert not any("ethnicity" in a or "contact_name" in a for a in attrs)
    personal = [
        json.loads(a) for (a,) in query(home, "SELECT personal_attributes FROM silver.identity")
    ]
    assert any("ethnicity" in a for a in personal)


def test_resent_records_supersede_and_keys_are_unique(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    truth = town["truth"]
    ((n, distinct),) = query(
        home, "SELECT count(*), count(DISTINCT record_key) FROM silver.identity"
    )
    assert n == distinct
    ((n_events,),) = query(home, "SELECT count(*) FROM silver.events")
    assert n_events == n
    resent = truth[truth.version == 2]
    assert len(resent) > 0
    # a re-sent (closed) version replaces the open one: the identity row is from the
    # later delivery
    rows = dict(
        query(home, "SELECT source_record_id || '@' || feed, delivery_id FROM silver.identity")
    )
    deliveries = dict(query(home, "SELECT delivery_id, file_name FROM silver.deliveries"))
    checked = 0
    for rec in resent.itertuples():
        delivery = rows.get(f"{rec.source_record_id}@{rec.feed}")
        if delivery is not None and not isinstance(rec.invalid_reason, str):
            assert deliveries[delivery] == rec.delivery_file
            checked += 1
    assert checked > 0
    assert town["summary"].to_dict()["rows_superseded"] > 0


def test_output_areas_filled_from_the_postcode_lookup(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    assert town["geo"].postcodes > 0 and town["geo"].output_areas > 0
    # feeds without an output-area column get it from reference.postcodes
    ((missing,),) = query(
        home,
        "SELECT count(*) FROM silver.events e JOIN silver.identity i USING (record_key) "
        "JOIN reference.postcodes p ON p.postcode = i.postcode WHERE e.oa_code IS NULL",
    )
    assert missing == 0
    ((filled,),) = query(
        home,
        "SELECT count(*) FROM silver.events WHERE dataset = 'ae_attendances' AND oa_code IS NOT NULL",
    )
    assert filled > 0


def test_documents_have_their_text(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    out: Path = town["out"]
    docs = dict(query(home, "SELECT file_name, text FROM silver.documents"))
    assert set(docs) == {p.name for p in (out / "documents").iterdir()}
    mentions = pq.read_table(out / "truth" / "document_mentions.parquet").to_pandas()
    for m in mentions[mentions.mention_kind == "name"].itertuples():
        assert m.mention_text in " ".join(docs[m.document].split()), (m.document, m.mention_text)


def test_dq_report_per_delivery(town: dict[str, Any]) -> None:
    summary: IngestSummary = town["summary"]
    for d in summary.deliveries:
        if d.feed == "kcc-case-notes":
            continue
        assert d.report is not None
        report = json.loads(Path(d.report).read_text())
        assert report["rows_in"] == d.rows_in
        assert report["rows_quarantined"] == d.rows_quarantined
        assert Path(d.report).with_suffix(".html").exists()
        assert 0 <= report["fields"]["record_id"]["completeness"] <= 1
    later = [d for d in summary.deliveries if d.file.endswith("kht_ae_attendances_2025.csv")]
    assert "change" in json.loads(Path(later[0].report or "").read_text())


def test_redelivery_is_a_no_op(town: dict[str, Any]) -> None:
    home: Home = town["home"]
    before = Lake(home.lake).require_current().id
    again = ingest_paths(home, [town["out"] / "feeds"], as_of=AS_OF)
    assert {d.status for d in again.deliveries} == {"duplicate"}
    assert again.rows_in == 0
    assert Lake(home.lake).require_current().id == before
