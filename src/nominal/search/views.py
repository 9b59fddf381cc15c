"""The joined-up view of one person and of one household, assembled under policy.

Everything shown passes through the caller's :class:`~nominal.search.access.SearchAccess`:
source records and events only from datasets the caller's agreements cover for the
stated purpose, and within those only the visible fields (others shown as withheld).
Datasets the caller may not see are not mentioned at all: that a person is known to,
say, a mental health service is itself sensitive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.config import Home
from nominal.engines import duck
from nominal.engines.lake import Lake, Snapshot
from nominal.search.access import RECORD_FIELDS, WITHHELD, SearchAccess

IDENTITY_COLUMNS: tuple[str, ...] = (
    "given_name", "middle_names", "family_name", "other_names", "date_of_birth", "sex",
    "address_line_1", "address_line_2", "town", "postcode", "uprn", "phone", "email",
    "nhs_number", "ni_number", "police_id", "pupil_number",
)  # fmt: skip
EVENT_COLUMNS: tuple[str, ...] = (
    "event_date", "event_end_date", "event_type", "event_status", "dataset", "agency",
    "partner", "record_key",
)  # fmt: skip


class NotFound(LookupError):
    """No such nominal or household (or none the caller may see)."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _in_list(values: set[str]) -> str:
    if not values:
        return "(NULL)"
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + ")"


@dataclass
class PersonView:
    nominal_id: str
    golden: dict[str, Any]
    provenance: dict[str, dict[str, Any]]
    records: dict[str, list[dict[str, Any]]]  # agency -> records
    timeline: list[dict[str, Any]]
    household: dict[str, Any] | None
    members: list[dict[str, Any]]
    relationships: list[dict[str, Any]]
    agencies: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    record_keys: list[str] = field(default_factory=list)
    # passages of ingested documents that mention this person (gold.document_mentions)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            if hasattr(value, "isoformat"):
                return value.isoformat()
            return value

        data = {k: v for k, v in self.__dict__.items() if k != "record_keys"}
        return clean(data)


def connect(home_lake: Lake) -> tuple[duckdb.DuckDBPyConnection, Snapshot]:
    snapshot = home_lake.require_current()
    return duck.connect(snapshot), snapshot


def person_view(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    nominal_id: str,
    access: SearchAccess,
    session: Session | None = None,
    today: date | None = None,
) -> PersonView:
    """Assemble the view of ``nominal_id`` as ``access`` allows."""
    allowed = access.allowed_datasets
    today = today or date.today()
    golden_rows = _rows(con, "SELECT * FROM gold.nominals WHERE nominal_id = ?", [nominal_id])
    if not golden_rows:
        raise NotFound(f"no nominal {nominal_id}")
    golden = golden_rows[0]
    has_records = snapshot.has("gold.nominal_records")
    if has_records:
        records = _rows(
            con,
            f"""SELECT r.record_key, r.dataset, r.agency, r.source_record_id,
                       r.cluster_probability, i.* EXCLUDE (record_key, dataset, agency,
                       source_record_id)
                FROM gold.nominal_records r LEFT JOIN silver.identity i USING (record_key)
                WHERE r.nominal_id = ? AND r.dataset IN {_in_list(allowed)}
                ORDER BY r.agency, r.dataset, r.source_record_id""",
            [nominal_id],
        )
    else:
        records = []
    datasets = {r["dataset"] for r in records}
    if not datasets:
        datasets = {
            r["dataset"]
            for r in _rows(
                con,
                f"SELECT DISTINCT dataset FROM gold.events WHERE nominal_id = ? "
                f"AND dataset IN {_in_list(allowed)}",
                [nominal_id],
            )
        }
    if not datasets:
        # Known only through datasets the caller may not see: as if not there at all.
        raise NotFound(f"no nominal {nominal_id} you may see for {access.purpose}")
    golden_view = access.filter_record(
        {
            k: golden.get(k)
            for k in ("nominal_id", "nominal_pseudo", *RECORD_FIELDS, "household_id")
        },
        datasets,
    )
    provenance: dict[str, dict[str, Any]] = {}
    if snapshot.has("gold.nominal_provenance"):
        for row in _rows(
            con,
            "SELECT attribute, dataset, rule FROM gold.nominal_provenance WHERE nominal_id = ?",
            [nominal_id],
        ):
            visible = row["dataset"] in allowed
            provenance[row["attribute"]] = {
                "dataset": row["dataset"] if visible else WITHHELD,
                "rule": row["rule"],
            }
    by_agency: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        decision = access.decisions[record["dataset"]]
        columns = decision.visible_columns
        shown = {
            "record_key": record["record_key"],
            "dataset": record["dataset"],
            "source_record_id": record["source_record_id"]
            if "source_record_id" in columns
            else WITHHELD,
            "cluster_probability": record["cluster_probability"],
        }
        for column in IDENTITY_COLUMNS:
            value = record.get(column)
            if value is None:
                continue
            shown[column] = value if column in columns else WITHHELD
        by_agency.setdefault(record["agency"] or "other", []).append(shown)
    timeline = _rows(
        con,
        f"""SELECT {", ".join(EVENT_COLUMNS)} FROM gold.events
            WHERE nominal_id = ? AND dataset IN {_in_list(allowed)}
            ORDER BY event_date DESC, dataset LIMIT 500""",
        [nominal_id],
    )
    household = None
    members: list[dict[str, Any]] = []
    if golden.get("household_id"):
        household, members = _household(con, golden["household_id"], access, exclude=nominal_id)
    relationships = []
    if snapshot.has("gold.relationships"):
        for row in _rows(
            con,
            """SELECT r.related_nominal_id, r.relationship, n.given_name, n.family_name,
                      n.date_of_birth
               FROM gold.relationships r LEFT JOIN gold.nominals n
                 ON n.nominal_id = r.related_nominal_id
               WHERE r.nominal_id = ? ORDER BY r.relationship""",
            [nominal_id],
        ):
            relationships.append(_related(con, row, access))
    agencies = _agencies(timeline, today)
    scores = _scores(con, snapshot, nominal_id, golden.get("household_id"))
    tasks = _tasks(session, nominal_id, golden.get("household_id"))
    return PersonView(
        nominal_id=nominal_id,
        golden=golden_view,
        provenance=provenance,
        records=by_agency,
        timeline=timeline,
        household=household,
        members=members,
        relationships=relationships,
        agencies=agencies,
        scores=scores,
        tasks=tasks,
        record_keys=[r["record_key"] for r in records],
    )


def document_mentions(
    home: Home,
    nominal_id: str,
    access: SearchAccess,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[dict[str, Any]]:
    """Passages of documents mentioning ``nominal_id``, as ``access`` allows.

    Only documents of datasets the policy decision point allows for this user and
    purpose; under a pseudonymised-only decision the passage, the name as written and
    the file name (all of which can identify) are withheld.
    """
    from nominal.mentions import mentions_for

    shown = []
    for m in mentions_for(home, nominal_id, datasets=access.allowed_datasets, con=con):
        if access.decisions[m["dataset"]].pseudonymised_only:
            m = {**m, "passage": WITHHELD, "mention": WITHHELD, "file_name": WITHHELD}
        m["score"] = round(float(m["score"]), 4)
        shown.append(m)
    return shown


def _datasets_of(con: duckdb.DuckDBPyConnection, nominal_ids: list[str]) -> dict[str, set[str]]:
    if not nominal_ids:
        return {}
    rows = _rows(
        con,
        f"SELECT nominal_id, dataset FROM gold.events WHERE nominal_id IN {_in_list(set(nominal_ids))} "
        "GROUP BY ALL",
        [],
    )
    out: dict[str, set[str]] = {n: set() for n in nominal_ids}
    for row in rows:
        out[row["nominal_id"]].add(row["dataset"])
    return out


def _related(
    con: duckdb.DuckDBPyConnection, row: dict[str, Any], access: SearchAccess
) -> dict[str, Any]:
    datasets = _datasets_of(con, [row["related_nominal_id"]])[row["related_nominal_id"]]
    shown = access.filter_record(
        {
            "given_name": row["given_name"],
            "family_name": row["family_name"],
            "date_of_birth": row["date_of_birth"],
        },
        datasets,
    )
    return {"nominal_id": row["related_nominal_id"], "relationship": row["relationship"], **shown}


def _household(
    con: duckdb.DuckDBPyConnection,
    household_id: str,
    access: SearchAccess,
    exclude: str | None = None,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    rows = _rows(con, "SELECT * FROM gold.households WHERE household_id = ?", [household_id])
    if not rows:
        return None, []
    members_raw = _rows(
        con,
        """SELECT m.nominal_id, m.from_date, m.to_date, m.role, n.given_name, n.family_name,
                  n.date_of_birth
           FROM gold.household_members m LEFT JOIN gold.nominals n USING (nominal_id)
           WHERE m.household_id = ? ORDER BY m.to_date NULLS FIRST, m.from_date""",
        [household_id],
    )
    datasets = _datasets_of(con, [m["nominal_id"] for m in members_raw])
    members = []
    for m in members_raw:
        if m["nominal_id"] == exclude:
            continue
        seen = datasets.get(m["nominal_id"], set())
        if not access.allowed_datasets.intersection(seen):
            continue
        shown = access.filter_record(
            {k: m[k] for k in ("given_name", "family_name", "date_of_birth")}, seen
        )
        members.append(
            {"nominal_id": m["nominal_id"], "from_date": m["from_date"], "to_date": m["to_date"],
             "role": m["role"], **shown}
        )  # fmt: skip
    household = rows[0]
    address_datasets = set().union(*datasets.values()) if datasets else set()
    address = access.filter_record(
        {k: household.get(k) for k in ("address_line_1", "town", "postcode")}, address_datasets
    )
    # The address key and UPRN identify the address as surely as its first line does.
    if "address_line_1" not in access.visible_fields(address_datasets):
        for key in ("address_key", "uprn"):
            if household.get(key) is not None:
                address[key] = WITHHELD
    return {**household, **address}, members


def _agencies(timeline: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """Agencies involved: an open involvement, or any event in the last twelve months."""
    found: dict[str, dict[str, Any]] = {}
    for event in timeline:
        agency = event["agency"] or "other"
        entry = found.setdefault(
            agency, {"agency": agency, "open": 0, "last_event": None, "events": 0}
        )
        entry["events"] += 1
        is_open = (event.get("event_status") or "").lower() == "open"
        entry["open"] += int(is_open)
        day = event["event_date"]
        if day is not None and (entry["last_event"] is None or day > entry["last_event"]):
            entry["last_event"] = day
    out = []
    for entry in found.values():
        recent = entry["last_event"] is not None and (today - entry["last_event"]).days <= 365
        entry["current"] = bool(entry["open"]) or recent
        out.append(entry)
    return sorted(out, key=lambda e: (not e["current"], e["agency"]))


def _scores(
    con: duckdb.DuckDBPyConnection, snapshot: Snapshot, nominal_id: str, household_id: str | None
) -> list[dict[str, Any]]:
    if not snapshot.has("gold.scores"):
        return []
    rows = _rows(
        con,
        """SELECT model, unit_type, as_of, score, band, rank, reasons, model_version
           FROM gold.scores WHERE (unit_type = 'person' AND unit_id = ?)
              OR (unit_type = 'household' AND unit_id = ?)
           QUALIFY row_number() OVER (PARTITION BY model ORDER BY as_of DESC) = 1
           ORDER BY score DESC""",
        [nominal_id, household_id or ""],
    )
    for row in rows:
        try:
            reasons = json.loads(row["reasons"]) if row["reasons"] else []
        except (TypeError, ValueError):
            reasons = [row["reasons"]]
        row["reasons"] = [
            r if isinstance(r, str) else (r.get("text") or json.dumps(r)) for r in reasons
        ]
    return rows


def _tasks(
    session: Session | None, nominal_id: str, household_id: str | None
) -> list[dict[str, Any]]:
    """Open tasks about the person or their household, where the hub keeps tasks."""
    if session is None:
        return []
    try:
        from nominal.products.models import Task
    except ImportError:
        return []
    try:
        found = session.scalars(
            sa.select(Task).where(
                sa.or_(
                    sa.and_(Task.unit_type == "person", Task.unit_id == nominal_id),
                    sa.and_(Task.unit_type == "household", Task.unit_id == (household_id or "")),
                ),
                Task.closed_at.is_(None),
            )
        ).all()
    except sa.exc.SQLAlchemyError:
        return []
    return [
        {"id": t.id, "title": t.title, "status": t.status, "priority": t.priority,
         "team": t.team.name if t.team else None, "due_on": t.due_on}
        for t in found
    ]  # fmt: skip


@dataclass
class HouseholdView:
    household: dict[str, Any]
    members: list[dict[str, Any]]
    events: list[dict[str, Any]]
    agencies: list[dict[str, Any]]
    scores: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return PersonView.to_json(self)  # type: ignore[arg-type]


def household_view(
    con: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    household_id: str,
    access: SearchAccess,
    today: date | None = None,
) -> HouseholdView:
    """Who lives or lived at the household's address and when; events there; agencies."""
    today = today or date.today()
    household, members = _household(con, household_id, access)
    if household is None or not members:
        raise NotFound(f"no household {household_id} you may see for {access.purpose}")
    events = _rows(
        con,
        f"""SELECT {", ".join(EVENT_COLUMNS)}, nominal_id FROM gold.events
            WHERE household_id = ? AND dataset IN {_in_list(access.allowed_datasets)}
            ORDER BY event_date DESC LIMIT 500""",
        [household_id],
    )
    if access.pseudonymised_only():  # pseudonyms only: no nominal ids
        for event in events:
            event["nominal_id"] = WITHHELD
    return HouseholdView(
        household=household,
        members=members,
        events=events,
        agencies=_agencies(events, today),
        scores=_scores(con, snapshot, "", household_id),
    )
