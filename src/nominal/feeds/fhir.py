"""HL7 FHIR R4 ``Patient`` bundles as a feed format (``format: {type: fhir}``).

An NHS shared-care record exports people as a JSON ``Bundle`` whose entries hold
``Patient`` resources. This reader flattens each Patient into one row of plain
columns, which a contract then maps to canonical fields like any other feed (see
``docs/contracts/fhir-patients.yaml``):

================  ===============================================================
column            from the Patient
================  ===============================================================
id                ``id``
nhs_number        ``identifier`` with system ``https://fhir.nhs.uk/Id/nhs-number``
local_id          the first other ``identifier`` (``system|value``)
identifiers       every identifier as JSON ``[{"system", "value"}]``
family, given     the ``official`` name (else the first): family, first given name
middle_names      the other given names, space separated
other_names       family names of the other (old, maiden) names, ``;`` separated
birth_date        ``birthDate``
gender            ``gender`` (male, female, other, unknown)
address_line_1/2  the current ``home`` address (else the first current one): lines
city, district    ``city``, ``district``
postal_code       ``postalCode``
phone, email      the first ``telecom`` of that system (a current one, mobile/home first)
last_updated      ``meta.lastUpdated`` (the date the record last changed)
deceased          ``deceasedBoolean`` / ``deceasedDateTime`` as text
================  ===============================================================

Entries that are not Patients (Organizations, Practitioners bundled alongside) are
skipped. The reader refuses a bundle whose *structure* is wrong, naming the entry and
the field (``entry 3 (Patient/9f2c): name[0].given: expected a list of strings``);
values that are well-formed JSON but invalid (a birth date of ``1990-02-31``, a bad
NHS number check digit) are left to ingest's validation, which quarantines that row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from nominal.contracts.model import Contract
from nominal.ingest.readers import ReadError

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
GENDERS = ("male", "female", "other", "unknown")
COLUMNS = (
    "id",
    "nhs_number",
    "local_id",
    "identifiers",
    "family",
    "given",
    "middle_names",
    "other_names",
    "birth_date",
    "gender",
    "address_line_1",
    "address_line_2",
    "city",
    "district",
    "postal_code",
    "phone",
    "email",
    "last_updated",
    "deceased",
)


class _Entry:
    """Checks for one entry, so every error names the entry and the field."""

    def __init__(self, file: str, index: int, resource: dict[str, Any]) -> None:
        self.file = file
        rid = resource.get("id")
        self.label = (
            f"entry {index} ({resource.get('resourceType')}/{rid})" if rid else f"entry {index}"
        )

    def fail(self, field: str, problem: str) -> ReadError:
        return ReadError(f"{self.file}: {self.label}: {field}: {problem}")

    def obj(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected an object, got {_kind(value)}")
        return value

    def objects(self, parent: dict[str, Any], key: str, where: str = "") -> list[dict[str, Any]]:
        value = parent.get(key)
        if value is None:
            return []
        field = f"{where}{key}"
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {_kind(value)}")
        return [self.obj(v, f"{field}[{i}]") for i, v in enumerate(value)]

    def text(self, parent: dict[str, Any], key: str, where: str = "") -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}{key}", f"expected a string, got {_kind(value)}")
        return value

    def texts(self, parent: dict[str, Any], key: str, where: str = "") -> list[str]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}{key}", f"expected a list of strings, got {_short(value)}")
        return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), "null" if value is None else f"the number {value}"
    )


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _current(e: _Entry, item: dict[str, Any], where: str) -> bool:
    period = item.get("period")
    if period is None:
        return True
    return e.text(e.obj(period, f"{where}period"), "end", f"{where}period.") is None


def _name(e: _Entry, patient: dict[str, Any]) -> dict[str, str | None]:
    names = e.objects(patient, "name")
    checked = []
    for i, n in enumerate(names):
        where = f"name[{i}]."
        checked.append(
            (e.text(n, "use", where), e.text(n, "family", where), e.texts(n, "given", where))
        )
    official = next((c for c in checked if c[0] in ("official", "usual")), None)
    main = official or (checked[0] if checked else (None, None, []))
    others = [c[1] for c in checked if c is not main and c[1] and c[1] != main[1]]
    given = main[2]
    return {
        "family": main[1],
        "given": given[0] if given else None,
        "middle_names": " ".join(given[1:]) or None,
        "other_names": "; ".join(dict.fromkeys(o for o in others if o)) or None,
    }


def _address(e: _Entry, patient: dict[str, Any]) -> dict[str, str | None]:
    found = []
    for i, a in enumerate(e.objects(patient, "address")):
        where = f"address[{i}]."
        if not _current(e, a, where):
            continue
        found.append(
            (
                e.text(a, "use", where),
                e.texts(a, "line", where),
                e.text(a, "city", where),
                e.text(a, "district", where),
                e.text(a, "postalCode", where),
            )
        )
    chosen = next((a for a in found if a[0] == "home"), found[0] if found else None)
    if chosen is None:
        return dict.fromkeys(
            ("address_line_1", "address_line_2", "city", "district", "postal_code")
        )
    lines = chosen[1]
    return {
        "address_line_1": lines[0] if lines else None,
        "address_line_2": ", ".join(lines[1:]) or None,
        "city": chosen[2],
        "district": chosen[3],
        "postal_code": chosen[4],
    }


def _telecom(e: _Entry, patient: dict[str, Any]) -> dict[str, str | None]:
    best: dict[str, tuple[int, str]] = {}
    rank = {"mobile": 0, "home": 1}
    for i, t in enumerate(e.objects(patient, "telecom")):
        where = f"telecom[{i}]."
        system, value = e.text(t, "system", where), e.text(t, "value", where)
        if system not in ("phone", "email") or not value or not _current(e, t, where):
            continue
        score = rank.get(e.text(t, "use", where) or "", 2)
        if system not in best or score < best[system][0]:
            best[system] = (score, value)
    return {"phone": best.get("phone", (0, None))[1], "email": best.get("email", (0, None))[1]}


def _identifiers(e: _Entry, patient: dict[str, Any]) -> dict[str, str | None]:
    pairs = []
    for i, ident in enumerate(e.objects(patient, "identifier")):
        where = f"identifier[{i}]."
        system, value = e.text(ident, "system", where), e.text(ident, "value", where)
        if value is None:
            raise e.fail(f"identifier[{i}].value", "missing (an identifier needs a value)")
        pairs.append({"system": system, "value": value})
    nhs = [p["value"] for p in pairs if p["system"] == NHS_NUMBER_SYSTEM]
    other = [p for p in pairs if p["system"] != NHS_NUMBER_SYSTEM]
    return {
        "nhs_number": nhs[0] if nhs else None,
        "local_id": f"{other[0]['system'] or ''}|{other[0]['value']}" if other else None,
        "identifiers": json.dumps(pairs) if pairs else None,
    }


def patient_row(e: _Entry, patient: dict[str, Any]) -> dict[str, str | None]:
    """One Patient resource as a flat row of text columns."""
    gender = e.text(patient, "gender")
    if gender is not None and gender not in GENDERS:
        raise e.fail("gender", f"{gender!r} is not one of {', '.join(GENDERS)}")
    meta = e.obj(patient["meta"], "meta") if patient.get("meta") is not None else {}
    deceased: str | None = None
    if isinstance(patient.get("deceasedBoolean"), bool):
        deceased = "true" if patient["deceasedBoolean"] else None
    elif patient.get("deceasedDateTime") is not None:
        deceased = e.text(patient, "deceasedDateTime")
    updated = e.text(meta, "lastUpdated", "meta.")
    return {
        "id": e.text(patient, "id"),
        **_identifiers(e, patient),
        **_name(e, patient),
        "birth_date": e.text(patient, "birthDate"),
        "gender": gender,
        **_address(e, patient),
        **_telecom(e, patient),
        "last_updated": updated[:10] if updated else None,
        "deceased": deceased,
    }


def bundle_rows(path: Path) -> list[dict[str, str | None]]:
    """The Patient rows of one bundle file, in entry order; ReadError if malformed."""
    name = path.name
    try:
        with open(path, encoding="utf-8") as handle:
            bundle = json.load(handle)
    except UnicodeDecodeError as exc:
        raise ReadError(f"{name}: not UTF-8 JSON ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ReadError(f"{name}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else _kind(bundle)
        raise ReadError(f"{name}: resourceType: expected a FHIR Bundle, got {got!r}")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ReadError(f"{name}: entry: expected a list, got {_kind(entries)}")
    rows = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ReadError(f"{name}: entry {index}: expected an object, got {_kind(entry)}")
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise ReadError(
                f"{name}: entry {index}: resource: expected an object, got {_kind(resource)}"
            )
        if "resourceType" not in resource:
            raise ReadError(f"{name}: entry {index}: resource.resourceType: missing")
        if resource["resourceType"] != "Patient":
            continue
        rows.append(patient_row(_Entry(name, index, resource), resource))
    if not rows:
        raise ReadError(f"{name}: the bundle has no Patient entries")
    return rows


def fhir_columns(path: Path, contract: Contract) -> dict[str, list[str | None]]:
    """The bundle's Patients as text columns (what ingest parses in a child process)."""
    if path.stat().st_size == 0:
        raise ReadError(f"{path.name}: the file is empty")
    rows = bundle_rows(path)
    return {c: [r[c] for r in rows] for c in COLUMNS}


def read_fhir(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, work_dir: Path
) -> str:
    """Reader for ingest: the bundle's Patients as a registered Arrow table of text columns."""
    from nominal.ingest.readers import register_columns

    return register_columns(con, "fhir", fhir_columns(path, contract))
