"""FHIR R4 Patient bundles through the real ingest: flattened, validated, split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import nominal.feeds  # noqa: F401  (registers the fhir format)
from nominal.config import Home
from nominal.contracts.registry import add_contracts
from nominal.engines.duck import connect
from nominal.engines.lake import Lake
from nominal.feeds.fhir import NHS_NUMBER_SYSTEM, bundle_rows
from nominal.ingest.api import ingest_paths
from nominal.ingest.readers import ReadError

CONTRACT = Path(__file__).parents[2] / "docs" / "contracts" / "fhir-patients.yaml"


def nhs_number(stem: str) -> str:
    """A 10-digit NHS number with a valid modulus-11 check digit (stem: 9 digits)."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(stem))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    assert check != 10, "stem gives no valid check digit"
    return stem + str(check)


def patient(pid: str, **over: Any) -> dict[str, Any]:
    """A Patient as an NHS shared-care record exports it (several names, old addresses)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"versionId": "3", "lastUpdated": "2026-06-14T09:12:44.000+00:00"},
        "identifier": [
            {
                "system": NHS_NUMBER_SYSTEM,
                "value": nhs_number("943476591"),
                "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension"}],
            },
            {"system": "https://kettleby-hospitals.nhs.uk/Id/mrn", "value": "KH0043122"},
        ],
        "name": [
            {"use": "official", "family": "Okafor", "given": ["Adaeze", "Grace"], "prefix": ["Ms"]},
            {"use": "old", "family": "Nwosu", "given": ["Adaeze"], "period": {"end": "2015-07-01"}},
        ],
        "gender": "female",
        "birthDate": "1987-03-09",
        "address": [
            {
                "use": "home",
                "line": ["Flat 2", "14 Mill Lane"],
                "city": "Kettleby",
                "district": "Northshire",
                "postalCode": "KT4 7QZ",
                "period": {"start": "2019-02-01"},
            },
            {
                "use": "home",
                "line": ["3 Old Road"],
                "city": "Kettleby",
                "postalCode": "KT1 1AA",
                "period": {"start": "2010-01-01", "end": "2019-01-31"},
            },
        ],
        "telecom": [
            {"system": "phone", "value": "01632 960 123", "use": "home"},
            {"system": "phone", "value": "07700 900 456", "use": "mobile"},
            {"system": "email", "value": "A.Okafor@example.org"},
        ],
        "generalPractitioner": [{"reference": "Organization/K83001"}],
    }
    resource.update(over)
    return resource


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{r.get('id')}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(data, indent=1))
    return path


def test_patient_is_flattened(tmp_path: Path) -> None:
    gp = {"resourceType": "Organization", "id": "K83001", "name": "Mill Lane Surgery"}
    rows = bundle_rows(write(tmp_path, "b.json", bundle(gp, patient("p1"))))
    assert len(rows) == 1  # the Organization is skipped
    row = rows[0]
    assert row["nhs_number"] == nhs_number("943476591")
    assert (row["given"], row["middle_names"], row["family"]) == ("Adaeze", "Grace", "Okafor")
    assert row["other_names"] == "Nwosu"
    assert (row["address_line_1"], row["address_line_2"]) == ("Flat 2", "14 Mill Lane")
    assert row["postal_code"] == "KT4 7QZ"  # the current address, not the old one
    assert row["phone"] == "07700 900 456"  # mobile first
    assert row["email"] == "A.Okafor@example.org"
    assert row["local_id"] == "https://kettleby-hospitals.nhs.uk/Id/mrn|KH0043122"
    assert len(json.loads(row["identifiers"] or "[]")) == 2
    assert (row["birth_date"], row["gender"], row["last_updated"]) == (
        "1987-03-09",
        "female",
        "2026-06-14",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"name": [{"family": "Okafor", "given": "Adaeze"}]},
            r"entry 1 \(Patient/p9\): name\[0\]\.given: expected a list of strings",
        ),
        (
            {"birthDate": 19870309},
            r"entry 1 \(Patient/p9\): birthDate: expected a string, got the number 19870309",
        ),
        ({"gender": "F"}, r"entry 1 \(Patient/p9\): gender: 'F' is not one of male"),
        ({"identifier": [{"system": NHS_NUMBER_SYSTEM}]}, r"identifier\[0\]\.value: missing"),
        ({"address": {"line": ["1 High St"]}}, r"entry 1 \(Patient/p9\): address: expected a list"),
        (
            {"telecom": [{"system": "phone", "value": 7700900456}]},
            r"telecom\[0\]\.value: expected a string",
        ),
    ],
)
def test_malformed_patient_names_entry_and_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, "scr_patients_bad.json", bundle(patient("p9", **change)))
    with pytest.raises(ReadError, match=message) as info:
        bundle_rows(path)
    assert str(info.value).startswith("scr_patients_bad.json: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resourceType": "Patient"}, "expected a FHIR Bundle, got 'Patient'"),
        ({"resourceType": "Bundle", "entry": {"resource": {}}}, "entry: expected a list"),
        (
            {"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]},
            "entry 1: resource: expected an object",
        ),
        ({"resourceType": "Bundle", "entry": []}, "no Patient entries"),
    ],
)
def test_malformed_bundle(tmp_path: Path, data: Any, message: str) -> None:
    with pytest.raises(ReadError, match=message):
        bundle_rows(write(tmp_path, "x.json", data))
    (tmp_path / "y.json").write_text('{"resourceType": "Bundle", "entry": [')
    with pytest.raises(ReadError, match=r"y\.json: line 1: not valid JSON"):
        bundle_rows(tmp_path / "y.json")


def test_bundle_through_ingest(hub_home: Home, tmp_path: Path) -> None:
    add_contracts(hub_home, CONTRACT)
    people = [
        patient("p1"),
        patient(
            "p2",
            name=[{"use": "official", "family": "Hughes", "given": ["Tom"]}],
            gender="male",
            birthDate="2011-11-30",
            identifier=[{"system": NHS_NUMBER_SYSTEM, "value": nhs_number("401023213")}],
            telecom=[],
        ),
        # a well-formed resource with invalid values: quarantined, not refused
        patient(
            "p3",
            birthDate="1990-02-31",
            identifier=[{"system": NHS_NUMBER_SYSTEM, "value": "1234567890"}],
        ),
        patient("p4", meta={}),  # no lastUpdated: no event date
    ]
    good = write(tmp_path, "scr_patients_2026-06.json", bundle(*people))
    broken = write(
        tmp_path,
        "scr_patients_2026-07.json",
        bundle(patient("p5"), patient("p6", name=[{"family": ["Smith"]}])),
    )
    summary = ingest_paths(hub_home, [good, broken])
    by_file = {Path(d.file).name: d for d in summary.deliveries}
    ok = by_file[good.name]
    assert ok.status == "ingested"
    assert (ok.rows_in, ok.rows_accepted, ok.rows_quarantined) == (4, 2, 2)
    bad = by_file[broken.name]
    assert bad.status == "failed"
    assert "entry 2 (Patient/p6): name[0].family: expected a string" in bad.message

    snap = Lake(hub_home.lake).require_current()
    con = connect(snap)
    rows = con.execute(
        "SELECT source_record_id, given_name, middle_names, family_name, date_of_birth, sex, "
        "postcode, phone, email, nhs_number, other_names FROM silver.identity ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == ["p1", "p2"]
    p1 = rows[0]
    assert p1[1:4] == ("Adaeze", "Grace", "Okafor")
    assert (str(p1[4]), p1[5], p1[6], p1[7], p1[8]) == (
        "1987-03-09",
        "F",
        "KT4 7QZ",
        "+447700900456",
        "a.okafor@example.org",
    )
    assert p1[9] == nhs_number("943476591")
    quarantined = dict(
        con.execute("SELECT row_number, field FROM silver.quarantine ORDER BY 1").fetchall()
    )
    assert quarantined[3] in ("date_of_birth", "nhs_number")
    assert quarantined[4] == "event_date"
    events = con.execute("SELECT DISTINCT event_type FROM silver.events").fetchall()
    assert events == [("shared_care_record",)]
