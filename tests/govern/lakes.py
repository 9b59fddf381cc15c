"""A small silver layer written with the lake API, for governance and web tests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa

from nominal.config import Home
from nominal.engines.lake import Lake, Snapshot

PEOPLE = [
    # record_key, dataset, source id, given, family, dob, postcode, events [(date, type, attrs)]
    (
        "a" * 32,
        "crimes",
        "C-1",
        "Alice",
        "Smith",
        date(1990, 1, 2),
        "NS1 1AA",
        [
            (
                date(2025, 3, 1),
                "crime",
                {"offence_group": "theft", "crime_outcome": "charged", "role": "victim"},
            )
        ],
    ),
    (
        "b" * 32,
        "crimes",
        "C-2",
        "Bob",
        "Jones",
        date(1985, 5, 6),
        "NS1 2BB",
        [
            (
                date(2010, 1, 1),
                "crime",
                {"offence_group": "burglary", "crime_outcome": "nfa", "role": "suspect"},
            ),
            (
                date(2025, 6, 1),
                "crime",
                {"offence_group": "assault", "crime_outcome": "charged", "role": "suspect"},
            ),
        ],
    ),
    (
        "c" * 32,
        "fire_incidents",
        "F-1",
        "Carol",
        "White",
        date(1950, 7, 8),
        "NS2 3CC",
        [(date(2024, 11, 5), "fire_incident", {"incident_type": "kitchen fire"})],
    ),
    (
        "d" * 32,
        "crimes",
        "C-3",
        "Dan",
        "Brown",
        date(2001, 9, 10),
        "NS3 4DD",
        [
            (
                date(2008, 2, 2),
                "crime",
                {"offence_group": "criminal damage", "crime_outcome": "nfa", "role": "suspect"},
            )
        ],
    ),
]
PARTNER = {
    "crimes": ("NPOL", "police", "npol-crimes"),
    "fire_incidents": ("NFRS", "fire", "nfrs-incidents"),
}


def build_silver(home: Home) -> Snapshot:
    received = datetime(2026, 1, 1, tzinfo=UTC)
    identity: dict[str, list] = {
        k: []
        for k in (
            "record_key",
            "dataset",
            "feed",
            "partner",
            "agency",
            "delivery_id",
            "row_number",
            "received_at",
            "source_record_id",
            "given_name",
            "family_name",
            "date_of_birth",
            "postcode",
            "sex",
        )
    }
    events: dict[str, list] = {
        k: []
        for k in (
            "record_key",
            "event_key",
            "dataset",
            "feed",
            "partner",
            "agency",
            "delivery_id",
            "received_at",
            "event_type",
            "event_date",
            "event_end_date",
            "event_status",
            "oa_code",
            "attributes",
        )
    }
    for n, (key, dataset, source, given, family, dob, postcode, evs) in enumerate(PEOPLE):
        partner, agency, feed = PARTNER[dataset]
        for col, val in (
            ("record_key", key),
            ("dataset", dataset),
            ("feed", feed),
            ("partner", partner),
            ("agency", agency),
            ("delivery_id", "0" * 64),
            ("row_number", n + 1),
            ("received_at", received),
            ("source_record_id", source),
            ("given_name", given),
            ("family_name", family),
            ("date_of_birth", dob),
            ("postcode", postcode),
            ("sex", "F"),
        ):
            identity[col].append(val)
        for m, (when, kind, attrs) in enumerate(evs):
            for col, val in (
                ("record_key", key),
                ("event_key", f"{key[:30]}{m:02d}"),
                ("dataset", dataset),
                ("feed", feed),
                ("partner", partner),
                ("agency", agency),
                ("delivery_id", "0" * 64),
                ("received_at", received),
                ("event_type", kind),
                ("event_date", when),
                ("event_end_date", None),
                ("event_status", "closed"),
                ("oa_code", "E00000001"),
                ("attributes", json.dumps(attrs)),
            ):
                events[col].append(val)
    lake = Lake(home.lake)
    with lake.transaction("test silver") as tx:
        tx.replace("silver.identity", [tx.write_arrow("silver.identity", pa.table(identity))])
        tx.replace("silver.events", [tx.write_arrow("silver.events", pa.table(events))])
        nominal_records = pa.table(
            {
                "record_key": ["a" * 32, "b" * 32, "c" * 32, "d" * 32],
                "nominal_id": ["N1", "N2", "N1", "N3"],
                "dataset": ["crimes", "crimes", "fire_incidents", "crimes"],
            }
        )
        tx.replace(
            "gold.nominal_records", [tx.write_arrow("gold.nominal_records", nominal_records)]
        )
        nominals = pa.table(
            {"nominal_id": ["N1", "N2", "N3"], "given_name": ["Alice", "Bob", "Dan"]}
        )
        tx.replace("gold.nominals", [tx.write_arrow("gold.nominals", nominals)])
        return tx.commit({"test": True})
