"""Build ``silver.identity`` and ``silver.events`` from ``nominal synth`` output.

Linking is tested on the silver tables exactly as docs/data-model.md defines them. This
helper reads every synthetic delivery the way its contract declares it, applies the
light standardisation ingest applies (title-case names, ISO dates, ``AB1 2CD``
postcodes, ``M``/``F`` sex), drops rows ingest would quarantine, keeps the latest
version of a re-sent record and writes both tables through the lake API. It also
copies the contracts into the home (survivorship reads their ``reliability``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from nominal.config import Home
from nominal.contracts.model import (
    CANONICAL_CONTENT_FIELDS,
    CANONICAL_IDENTITY_FIELDS,
    Contract,
    load_contracts,
)
from nominal.engines.lake import Lake

IDENTITY_COLUMNS = [
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
    "middle_names",
    "family_name",
    "other_names",
    "date_of_birth",
    "sex",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "uprn",
    "phone",
    "email",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
    "household_ref",
    "relationship",
    "personal_attributes",
]
EVENT_COLUMNS = [
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
]
NAME_FIELDS = ("given_name", "middle_names", "family_name", "other_names", "town")
SEX_CODES = {"m": "M", "male": "M", "1": "M", "f": "F", "female": "F", "2": "F", "x": "X"}
_PC = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")


def _hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def _read(path: Path, contract: Contract) -> pd.DataFrame:
    fmt = contract.format
    if fmt.type == "csv":
        return pd.read_csv(
            path, sep=fmt.delimiter, encoding=fmt.encoding, dtype=str, keep_default_na=False
        )
    if fmt.type == "ndjson":
        return pd.read_json(path, lines=True, dtype=False, encoding=fmt.encoding)
    if fmt.type == "parquet":
        return pd.read_parquet(path)
    if fmt.type == "xlsx":
        return pd.read_excel(path, sheet_name=fmt.sheet or 0, dtype=object)
    raise ValueError(f"{path}: unsupported format {fmt.type}")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.strftime("%Y-%m-%d")
    out = " ".join(str(value).split())
    return out or None


def _date(value: Any, fmt: str | None) -> date | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    for candidate in filter(None, (fmt, "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S")):
        try:
            return datetime.strptime(text, candidate).date()
        except ValueError:
            continue
    raise ValueError(text)


def _postcode(value: str | None) -> str | None:
    if value is None:
        return None
    compact = value.upper().replace(" ", "")
    if len(compact) > 3 and _PC.match(compact[:-3] + " " + compact[-3:]):
        return compact[:-3] + " " + compact[-3:]
    if re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?", compact):
        return compact  # outward code only, as some partners send
    raise ValueError(value)


def _nhs_ok(value: str) -> bool:
    if not re.fullmatch(r"\d{10}", value):
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(value[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(value[9])


def contract_rows(
    path: Path, contract: Contract, key: bytes
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Identity and event rows of one delivery (rows ingest would quarantine dropped)."""
    frame = _read(path, contract)
    delivery_id = hashlib.sha256(path.read_bytes()).hexdigest()
    year = int(re.findall(r"(\d{4})", path.stem)[-1])
    received_at = datetime(min(year + 1, 2026), 1, 1, tzinfo=UTC).replace(tzinfo=None)
    fmt = contract.format
    identities: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    nulls = set(fmt.null_values)
    for row_number, raw in enumerate(frame.to_dict("records"), start=1):
        values: dict[str, Any] = {}
        try:
            for name, spec in contract.fields.items():
                value = spec.value if spec.source is None else raw.get(spec.source)
                if isinstance(value, str) and value.strip() in nulls:
                    value = None
                if value is not None and spec.mapping:
                    value = spec.mapping.get(str(value), value)
                if contract.field_type(name) == "date":
                    value = _date(value, spec.format or fmt.date_format)
                elif name in CANONICAL_IDENTITY_FIELDS or name in CANONICAL_CONTENT_FIELDS:
                    value = _text(value)
                elif isinstance(value, float) and value != value:
                    value = None
                if spec.required and value is None:
                    raise ValueError(name)
                values[name] = value
            for name in NAME_FIELDS:
                if values.get(name):
                    values[name] = str(values[name]).title()
            if values.get("sex"):
                values["sex"] = SEX_CODES.get(str(values["sex"]).lower())
            values["postcode"] = _postcode(values.get("postcode"))
            if values.get("nhs_number") and not _nhs_ok(str(values["nhs_number"])):
                raise ValueError("nhs_number")
            for ident in ("ni_number", "police_id", "pupil_number"):
                if values.get(ident):
                    values[ident] = str(values[ident]).upper().replace(" ", "")
        except (ValueError, TypeError):
            continue  # ingest quarantines this row
        source_id = str(values["record_id"])
        record_key = _hmac(key, f"{contract.dataset}|{source_id}")
        common = {
            "record_key": record_key,
            "dataset": contract.dataset,
            "feed": contract.feed,
            "partner": contract.partner.code,
            "agency": contract.agency,
            "delivery_id": delivery_id,
            "received_at": received_at,
        }
        identity = {**common, "row_number": row_number, "source_record_id": source_id}
        personal = {}
        for name in IDENTITY_COLUMNS[9:-1]:
            identity[name] = values.get(name)
        for name in contract.fields:
            if name not in CANONICAL_IDENTITY_FIELDS and contract.is_personal(name):
                personal[name] = _text(values.get(name))
        identity["personal_attributes"] = json.dumps(personal) if personal else None
        identities.append(identity)
        attributes = {
            name: (values[name].isoformat() if isinstance(values[name], date) else values[name])
            for name in contract.attribute_fields
            if not contract.is_personal(name)
        }
        event_id = values.get("event_id")
        events.append(
            {
                **common,
                "event_key": _hmac(key, f"{contract.dataset}|{event_id or 'record:' + source_id}"),
                "event_type": values.get("event_type"),
                "event_date": values.get("event_date"),
                "event_end_date": values.get("event_end_date"),
                "event_status": values.get("event_status"),
                "oa_code": values.get("oa_code"),
                "attributes": json.dumps(attributes, default=str),
            }
        )
    return identities, events


IDENTITY_SCHEMA = pa.schema(
    [
        (c, pa.int64())
        if c == "row_number"
        else (c, pa.timestamp("us"))
        if c == "received_at"
        else (c, pa.date32())
        if c == "date_of_birth"
        else (c, pa.string())
        for c in IDENTITY_COLUMNS
    ]
)
EVENT_SCHEMA = pa.schema(
    [
        (c, pa.timestamp("us"))
        if c == "received_at"
        else (c, pa.date32())
        if c in ("event_date", "event_end_date")
        else (c, pa.string())
        for c in EVENT_COLUMNS
    ]
)


def silver_tables(synth_dir: Path, key: bytes) -> tuple[pa.Table, pa.Table]:
    """Silver identity and events (latest version of each record) from a synth folder."""
    contracts = load_contracts(synth_dir / "contracts")
    identities: dict[str, dict[str, Any]] = {}
    events: dict[str, dict[str, Any]] = {}
    for path in sorted((synth_dir / "feeds").iterdir()):
        contract = next((c for c in contracts if c.matches(path.name)), None)
        if contract is None:
            continue
        ids, evs = contract_rows(path, contract, key)
        for identity, event in zip(ids, evs, strict=True):
            old = identities.get(identity["record_key"])
            if old is None or old["received_at"] <= identity["received_at"]:
                identities[identity["record_key"]] = identity
                events[identity["record_key"]] = event
    return (
        pa.Table.from_pylist(list(identities.values()), schema=IDENTITY_SCHEMA),
        pa.Table.from_pylist(list(events.values()), schema=EVENT_SCHEMA),
    )


def write_silver(home: Home, identity: pa.Table, events: pa.Table, *, append: bool = False) -> None:
    """Write (or append) the silver tables through the lake API."""
    lake = Lake(home.lake)
    with lake.transaction("silver_from_synth") as tx:
        for table, data in (("silver.identity", identity), ("silver.events", events)):
            path = tx.write_arrow(table, data)
            if append:
                tx.append(table, [path])
            else:
                tx.replace(table, [path])
        tx.commit({"rows": identity.num_rows})


def load_synth_into_home(synth_dir: Path, home: Home) -> tuple[pa.Table, pa.Table]:
    """Synthetic silver tables written into ``home``'s lake; contracts copied alongside."""
    home.ensure()
    identity, events = silver_tables(synth_dir, home.pseudonym_key)
    write_silver(home, identity, events)
    target = home.root / "contracts"
    target.mkdir(exist_ok=True)
    for contract in (synth_dir / "contracts").glob("*.yaml"):
        shutil.copy(contract, target / contract.name)
    return identity, events
