"""Gold tables from a synthetic town's ground truth ("oracle linkage").

The risk models read only the gold tables that linking produces. To develop, test
and benchmark them independently of linkage quality, this module builds the same
gold tables from what ``nominal synth`` knows to be true: every record is linked to
its real person (``truth/records.parquet``) and every person to their real household
(``truth/residence.parquet``). Comparing a model trained on these tables with one
trained on the hub's own linkage shows how much risk accuracy linkage errors cost.

Event content (type, dates, status, attributes) is read from the feed files exactly
as each feed contract declares them, so gold.events has the columns and values
ingest would give it. ``received_at`` simulates a daily feed: each record arrives
one to fourteen days after its event date (fixed per record; a record summarising a
period, such as a year's school attendance, after the period's end), which lets
point-in-time features respect what the hub could have known on a given day.

Ids are strings: a person ``p<person_id>`` and a household ``h<household_id>``, so
the truth's outcome probabilities can be joined back for oracle metrics
(:func:`truth_unit_id`).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nominal.config import Home
from nominal.contracts.model import (
    Contract,
    contract_for,
    load_contracts,
)
from nominal.engines.lake import Lake
from nominal.insight.features import PERIOD_DATASETS

GOLD_COLUMNS: dict[str, list[str]] = {
    "gold.nominals": [
        "nominal_id", "nominal_pseudo", "given_name", "middle_names", "family_name",
        "date_of_birth", "sex", "ethnicity", "address_line_1", "town", "postcode", "uprn",
        "oa_code", "nhs_number", "ni_number", "police_id", "pupil_number", "household_id",
        "record_count", "agency_count", "agencies", "first_seen", "last_seen",
    ],
    "gold.households": [
        "household_id", "household_pseudo", "address_key", "uprn", "address_line_1", "town",
        "postcode", "oa_code", "first_seen", "last_seen", "member_count",
    ],
    "gold.household_members": ["household_id", "nominal_id", "from_date", "to_date", "role"],
    "gold.relationships": ["nominal_id", "related_nominal_id", "relationship", "dataset"],
    "gold.events": [
        "record_key", "event_key", "dataset", "feed", "partner", "agency", "delivery_id",
        "received_at", "event_type", "event_date", "event_end_date", "event_status", "oa_code",
        "attributes", "nominal_id", "nominal_pseudo", "household_id", "household_pseudo",
    ],
    "reference.output_areas": ["oa_code", "ward_code", "name", "imd_score", "imd_decile", "geometry"],
}  # fmt: skip

TOWN = "Kettleby"


def truth_unit_id(unit_type: str, truth_id: int) -> str:
    """The gold id the oracle gives a truth person or household."""
    return f"{'h' if unit_type == 'household' else 'p'}{truth_id}"


def _pseudo(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _read_delivery(path: Path, contract: Contract) -> pd.DataFrame:
    """A delivery's rows as text, read the way its contract declares the format."""
    fmt = contract.format
    if fmt.type == "csv":
        text = path.read_bytes().decode(fmt.encoding)
        rows = list(csv.DictReader(io.StringIO(text), delimiter=fmt.delimiter))
        return pd.DataFrame(rows, dtype=object)
    if fmt.type == "ndjson":
        lines = path.read_text(fmt.encoding).splitlines()
        return pd.DataFrame([json.loads(line) for line in lines if line.strip()], dtype=object)
    if fmt.type == "parquet":
        return pq.read_table(path).to_pandas().astype(object)
    if fmt.type == "xlsx":
        return pd.read_excel(path, sheet_name=fmt.sheet or 0, dtype=object)
    raise ValueError(f"{path}: the oracle cannot read format {fmt.type!r}")


def _dates(values: pd.Series, fmt: str | None) -> pd.Series:
    """Dates as the contract declares them; typed dates (Parquet, XLSX) pass through."""

    def one(value: Any) -> date | None:
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return datetime.strptime(str(value).strip(), fmt or "%Y-%m-%d").date()
        except ValueError:
            return None

    return values.map(one)


def _typed(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    try:
        if kind == "integer":
            return int(float(value))
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return str(value).strip().lower() in {"true", "1", "yes", "y"}
        if kind in {"date", "datetime"}:
            return value.isoformat()[:10] if isinstance(value, (date, datetime)) else str(value)
    except (TypeError, ValueError):
        return None
    return str(value)


def _content(contract: Contract, frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical content columns of one delivery (no personal data)."""
    out = pd.DataFrame(index=frame.index)
    fields = contract.fields
    out["source_record_id"] = frame[fields["record_id"].source].astype(str)
    for name in ("event_id", "event_type", "event_date", "event_end_date", "event_status"):
        spec = fields.get(name)
        if spec is None:
            out[name] = None
        elif spec.value is not None:
            out[name] = str(spec.value)
        elif name in ("event_date", "event_end_date"):
            out[name] = _dates(frame[spec.source], spec.format or contract.format.date_format)
        else:
            col = frame[spec.source].map(lambda v: None if pd.isna(v) or v == "" else str(v))
            mapping = spec.mapping or {}
            out[name] = col.map(lambda v, m=mapping: m.get(v, v) if v else v)
    attrs = [n for n in contract.attribute_fields if not contract.is_personal(n)]
    columns: dict[str, list[Any]] = {}
    for name in attrs:
        spec = fields[name]
        kind = contract.field_type(name)
        raw = (
            pd.Series([spec.value] * len(frame), index=frame.index)
            if spec.value is not None
            else frame[spec.source]
        )

        def convert(value: Any, spec: Any = spec, kind: str = kind) -> Any:
            if spec.mapping and value is not None and str(value) in spec.mapping:
                value = spec.mapping[str(value)]
            typed = _typed(value, kind)
            return typed.lower() if isinstance(typed, str) and kind == "category" else typed

        columns[name] = [convert(v) for v in raw.tolist()]
    records = [
        json.dumps(dict(zip(attrs, values, strict=True)), sort_keys=True)
        for values in zip(*(columns[n] for n in attrs), strict=True)
    ] if attrs else ["{}"] * len(frame)  # fmt: skip
    out["attributes"] = records
    return out


FEED_SCHEMA = pa.schema(
    [
        ("source_record_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_date", pa.date32()),
        ("event_end_date", pa.date32()),
        ("event_status", pa.string()),
        ("attributes", pa.string()),
        ("feed", pa.string()),
        ("dataset", pa.string()),
        ("partner", pa.string()),
        ("agency", pa.string()),
        ("delivery_file", pa.string()),
        ("delivery_id", pa.string()),
        ("file_no", pa.int32()),
        ("row_no", pa.int64()),
    ]
)


def _feed_events(synth_dir: Path) -> pa.Table:
    """Every delivery's content rows, one compact Arrow table (files in delivery order)."""
    contracts = load_contracts(synth_dir / "contracts")
    parts = []
    for file_no, path in enumerate(sorted((synth_dir / "feeds").iterdir())):
        contract = contract_for(path.name, contracts)
        if contract is None:
            continue
        frame = _read_delivery(path, contract)
        if frame.empty:
            continue
        content = _content(contract, frame)
        del frame
        content["feed"] = contract.feed
        content["dataset"] = contract.dataset
        content["partner"] = contract.partner.code
        content["agency"] = contract.agency
        content["delivery_file"] = path.name
        content["delivery_id"] = hashlib.sha256(path.read_bytes()).hexdigest()
        content["file_no"] = file_no
        content["row_no"] = range(len(content))
        for name in ("source_record_id", "event_id", "event_type", "event_status"):
            content[name] = content[name].astype(object).where(content[name].notna(), None)
        parts.append(
            pa.Table.from_pandas(content, schema=FEED_SCHEMA, preserve_index=False)
        )  # converted per file: Arrow strings and dates are far smaller than Python objects
    return pa.concat_tables(parts)


def gold_from_truth(
    synth_dir: str | Path, home: Home, *, events_from: str = "feeds", memory_limit: str = "3GB"
) -> dict[str, int]:
    """Write gold.* and reference.output_areas for a synthetic town, linked perfectly.

    ``events_from="feeds"`` reads the event content from the delivery files as their
    contracts declare it; ``events_from="silver"`` takes it from the hub's own
    ``silver.events`` (after ``nominal ingest`` of the same town), so that only the
    linkage -- record to person, person to household -- comes from the truth. Returns the
    number of rows written per table.
    """
    from nominal.engines.duck import attach_snapshot, connect

    synth_dir = Path(synth_dir)
    truth = synth_dir / "truth"
    key = home.pseudonym_key
    con = connect(memory_limit=memory_limit)
    for name in ("people", "households", "addresses", "residence", "relationships", "records"):
        con.execute(f"CREATE VIEW t_{name} AS SELECT * FROM '{truth / name}.parquet'")
    con.execute(
        f"CREATE VIEW t_dep AS SELECT * FROM read_csv('{synth_dir}/geography/deprivation.csv')"
    )
    con.create_function("pseudo", lambda v: _pseudo(key, v), ["VARCHAR"], "VARCHAR")
    rec = """WITH rec AS (
          SELECT feed, source_record_id, any_value(person_id) AS person_id,
                 any_value(household_id) AS household_id,
                 any_value(recorded_address_id) AS address_id
          FROM t_records GROUP BY ALL)"""
    if events_from == "silver":
        snapshot = Lake(home.lake).require_current()
        if not snapshot.has("silver.events"):
            raise ValueError("the lake has no silver.events: run `nominal ingest` first")
        attach_snapshot(con, snapshot, ["silver.events", "silver.identity"])
        events = con.sql(
            f"""{rec}
            SELECT e.* EXCLUDE (oa_code), coalesce(e.oa_code, a.oa_code) AS oa_code,
                   'p' || r.person_id AS nominal_id, pseudo('p' || r.person_id) AS nominal_pseudo,
                   'h' || r.household_id AS household_id,
                   pseudo('h' || r.household_id) AS household_pseudo
            FROM silver.events e
            JOIN silver.identity i USING (record_key)
            JOIN rec r ON r.feed = i.feed AND r.source_record_id = i.source_record_id
            LEFT JOIN t_addresses a ON a.address_id = r.address_id
            WHERE e.event_date IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY e.record_key ORDER BY e.received_at DESC) = 1
            """
        ).to_arrow_table()
        con.register("ev", events)
        return _gold_tables(con, synth_dir, home, events)
    if events_from != "feeds":
        raise ValueError(f"events_from must be 'feeds' or 'silver', not {events_from!r}")
    con.register("feed_all", _feed_events(synth_dir))
    # a re-sent record (a case closed later) supersedes the earlier sending; rows ingest
    # would quarantine (no valid event date) never reach gold
    con.execute(
        """CREATE TEMP TABLE feed_events AS SELECT * FROM feed_all
           QUALIFY row_number() OVER (PARTITION BY feed, source_record_id
                                      ORDER BY file_no DESC, row_no DESC) = 1
                  AND event_date IS NOT NULL"""
    )
    con.unregister("feed_all")
    # a record summarising a period (a year's school attendance) is sent once it is over
    periods = ", ".join(f"'{d}'" for d in PERIOD_DATASETS)
    events = con.sql(
        f"""{rec}
        SELECT pseudo(f.dataset || '|' || f.source_record_id) AS record_key,
               pseudo(f.dataset || '|' || coalesce(f.event_id, f.source_record_id)) AS event_key,
               f.dataset, f.feed, f.partner, f.agency, f.delivery_id,
               (CAST(CASE WHEN f.dataset IN ({periods})
                          THEN coalesce(f.event_end_date, f.event_date)
                          ELSE f.event_date END AS TIMESTAMP)
                 + to_days(CAST(1 + hash(f.feed || f.source_record_id) % 14 AS INTEGER))
                 + INTERVAL 9 HOUR) AS received_at,
               f.event_type, CAST(f.event_date AS DATE) AS event_date,
               CAST(f.event_end_date AS DATE) AS event_end_date, f.event_status,
               a.oa_code, f.attributes,
               'p' || r.person_id AS nominal_id, pseudo('p' || r.person_id) AS nominal_pseudo,
               'h' || r.household_id AS household_id,
               pseudo('h' || r.household_id) AS household_pseudo
        FROM feed_events f
        JOIN rec r USING (feed, source_record_id)
        LEFT JOIN t_addresses a ON a.address_id = r.address_id
        """
    ).to_arrow_table()
    con.register("ev", events)
    return _gold_tables(con, synth_dir, home, events)


def _gold_tables(
    con: duckdb.DuckDBPyConnection, synth_dir: Path, home: Home, events: pa.Table
) -> dict[str, int]:
    """The other gold tables from the truth, and all of them written in one snapshot."""

    members = con.sql(
        """
        SELECT 'h' || s.household_id AS household_id, 'p' || s.person_id AS nominal_id,
               s.from_date, s.to_date,
               CASE WHEN date_diff('year', p.date_of_birth, s.from_date) >= 18
                    THEN 'adult' ELSE 'child' END AS role
        FROM t_residence s JOIN t_people p USING (person_id)
        """
    ).to_arrow_table()
    con.register("mem", members)

    households = con.sql(
        f"""
        WITH cur AS (
          SELECT household_id, arg_max(address_id, from_date) AS address_id,
                 min(from_date) AS first_seen,
                 max(coalesce(to_date, DATE '2100-01-01')) AS last_seen,
                 count(DISTINCT person_id) FILTER (WHERE to_date IS NULL) AS member_count
          FROM t_residence GROUP BY household_id)
        SELECT 'h' || c.household_id AS household_id, pseudo('h' || c.household_id) AS household_pseudo,
               coalesce(a.uprn, 'A' || a.address_id) AS address_key, a.uprn, a.address_line_1,
               '{TOWN}' AS town, a.postcode, a.oa_code, c.first_seen,
               CASE WHEN c.last_seen = DATE '2100-01-01' THEN NULL ELSE c.last_seen END AS last_seen,
               c.member_count
        FROM cur c JOIN t_addresses a USING (address_id)
        """
    ).to_arrow_table()

    nominals = con.sql(
        f"""
        WITH cur AS (
          SELECT person_id, arg_max(household_id, from_date) AS household_id,
                 arg_max(address_id, from_date) AS address_id
          FROM t_residence GROUP BY person_id),
        seen AS (
          SELECT nominal_id, count(*) AS record_count, count(DISTINCT agency) AS agency_count,
                 string_agg(DISTINCT agency, ',' ORDER BY agency) AS agencies,
                 min(event_date) AS first_seen, max(event_date) AS last_seen
          FROM ev GROUP BY nominal_id)
        SELECT 'p' || p.person_id AS nominal_id, pseudo('p' || p.person_id) AS nominal_pseudo,
               p.given_name, p.middle_names, p.family_name, p.date_of_birth, p.sex,
               p.ethnicity_code AS ethnicity, a.address_line_1, '{TOWN}' AS town, a.postcode,
               a.uprn, a.oa_code, p.nhs_number, p.ni_number, p.police_id, p.pupil_number,
               'h' || c.household_id AS household_id,
               coalesce(s.record_count, 0) AS record_count,
               coalesce(s.agency_count, 0) AS agency_count, coalesce(s.agencies, '') AS agencies,
               s.first_seen, s.last_seen
        FROM t_people p JOIN cur c USING (person_id) JOIN t_addresses a USING (address_id)
        LEFT JOIN seen s ON s.nominal_id = 'p' || p.person_id
        """
    ).to_arrow_table()

    relationships = con.sql(
        """
        WITH r AS (
          SELECT person_id_a AS a, person_id_b AS b, relationship FROM t_relationships)
        SELECT 'p' || a AS nominal_id, 'p' || b AS related_nominal_id,
               CASE WHEN relationship IN ('mother', 'father', 'step_father', 'grandparent')
                    THEN 'parent' WHEN relationship = 'twin' THEN 'sibling'
                    ELSE 'partner' END AS relationship, 'truth' AS dataset
        FROM r
        UNION ALL
        SELECT 'p' || b, 'p' || a,
               CASE WHEN relationship IN ('mother', 'father', 'step_father', 'grandparent')
                    THEN 'child' WHEN relationship = 'twin' THEN 'sibling'
                    ELSE 'partner' END, 'truth'
        FROM r
        """
    ).to_arrow_table()

    geo = json.loads((synth_dir / "geography" / "output_areas.geojson").read_text())
    shapes = {
        f["properties"]["OA21CD"]: (
            f["properties"].get("WD22CD"),
            f["properties"].get("WD22NM"),
            json.dumps(f["geometry"]),
        )
        for f in geo["features"]
    }
    dep = con.execute("SELECT oa21cd, imd_score, imd_decile FROM t_dep").fetchall()
    areas = pa.table(
        {
            "oa_code": [r[0] for r in dep],
            "ward_code": [shapes.get(r[0], (None, None, None))[0] for r in dep],
            "name": [f"{shapes.get(r[0], (None, '', None))[1]} {r[0]}".strip() for r in dep],
            "imd_score": pa.array([float(r[1]) for r in dep], pa.float64()),
            "imd_decile": pa.array([int(r[2]) for r in dep], pa.int64()),
            "geometry": [shapes.get(r[0], (None, None, None))[2] for r in dep],
        }
    )

    tables = {
        "gold.events": events,
        "gold.nominals": nominals,
        "gold.households": households,
        "gold.household_members": members,
        "gold.relationships": relationships,
        "reference.output_areas": areas,
    }
    lake = Lake(home.lake)
    with lake.transaction("oracle-gold") as tx:
        for name, table in tables.items():
            tx.replace(name, [tx.write_arrow(name, table.select(GOLD_COLUMNS[name]))])
        tx.commit({"source": str(synth_dir), "linkage": "oracle"})
    return {name: table.num_rows for name, table in tables.items()}


def future_copy(events: pa.Table, shift_days: int) -> pa.Table:
    """The same events moved ``shift_days`` later (for point-in-time tests)."""
    frame = events.to_pandas()
    delta = timedelta(days=shift_days)
    frame["event_date"] = frame["event_date"].map(lambda d: d + delta if d is not None else d)
    frame["received_at"] = frame["received_at"] + delta
    frame["record_key"] = "future-" + frame["record_key"]
    return pa.Table.from_pandas(frame, schema=events.schema, preserve_index=False)
