"""Data-subject rights and retention: access, rectification, erasure, restriction, retention.

* **Access**: everything held about a person across the lake (identity and event rows
  of each of their records, their golden nominal if linked) and who has looked at them.
* **Rectification** is recorded and sent to the partner: the partner corrects the
  source record and re-sends it, and the corrected version supersedes the old one at
  ingest, so it flows through to the golden nominal on the next run.
* **Erasure** writes a new lake snapshot without the person's rows in every silver and
  gold table, then removes older snapshots and unreferenced files so the data does
  not survive in history; the erased record keys are kept so that ingest can refuse
  to bring them back (:func:`erased_record_keys`).
* **Restriction** keeps the data but withholds the records from every read.
* **Retention** removes events older than each contract's retention and identities
  left with no events, and reports what it removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.engines import duck
from nominal.engines.lake import Lake, Snapshot
from nominal.govern.admin import GovernError
from nominal.govern.audit import AuditLog, entry_json
from nominal.govern.models import (
    RIGHTS_KINDS,
    Dataset,
    ErasedRecord,
    RestrictedRecord,
    RetentionRun,
    RightsRequest,
)


def open_request(
    session: Session,
    kind: str,
    subject: str,
    record_keys: Iterable[str] = (),
    *,
    by: str,
    partner: str | None = None,
    detail: dict[str, Any] | None = None,
) -> RightsRequest:
    if kind not in RIGHTS_KINDS:
        raise GovernError(f"a rights request is one of {', '.join(RIGHTS_KINDS)}")
    if not subject.strip():
        raise GovernError("name the data subject (nominal id or description)")
    request = RightsRequest(
        kind=kind,
        status="open",
        subject=subject.strip(),
        record_keys=json.dumps(sorted(set(record_keys))),
        partner=partner,
        detail=json.dumps(detail or {}),
        requested_by=by,
        received_at=datetime.now(UTC),
    )
    session.add(request)
    session.flush()
    return request


def _close(request: RightsRequest | None, outcome: str) -> None:
    if request is not None:
        request.status = "completed"
        request.completed_at = datetime.now(UTC)
        request.outcome = outcome


# -- restriction --------------------------------------------------------------------------
def restrict(
    session: Session, record_keys: Iterable[str], request: RightsRequest | None = None
) -> int:
    count = 0
    for key in sorted(set(record_keys)):
        found = session.get(RestrictedRecord, key)
        if found is None:
            session.add(
                RestrictedRecord(
                    record_key=key,
                    request_id=request.id if request else None,
                    restricted_at=datetime.now(UTC),
                )
            )
            count += 1
        elif found.lifted_at is not None:
            found.lifted_at = None
            count += 1
    _close(request, f"{count} record(s) restricted")
    session.flush()
    return count


def lift_restriction(session: Session, record_keys: Iterable[str]) -> int:
    count = 0
    for key in set(record_keys):
        found = session.get(RestrictedRecord, key)
        if found is not None and found.lifted_at is None:
            found.lifted_at = datetime.now(UTC)
            count += 1
    return count


def restricted_record_keys(session: Session) -> frozenset[str]:
    return frozenset(
        session.scalars(
            sa.select(RestrictedRecord.record_key).where(RestrictedRecord.lifted_at.is_(None))
        )
    )


# -- rectification ------------------------------------------------------------------------
def rectify(
    session: Session, request: RightsRequest, record_key: str, field: str, corrected: str
) -> RightsRequest:
    """Record what must be corrected; the partner corrects at source and re-sends."""
    detail = json.loads(request.detail or "{}")
    detail.setdefault("corrections", []).append(
        {"record_key": record_key, "field": field, "corrected": corrected}
    )
    request.detail = json.dumps(detail)
    request.status = "sent to partner"
    session.flush()
    return request


# -- the lake helpers ---------------------------------------------------------------------
def _columns(con: Any, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _record_keys_of_nominal(con: Any, snapshot: Snapshot, nominal_id: str) -> list[str]:
    if not snapshot.has("gold.nominal_records"):
        return []
    rows = con.execute(
        "SELECT DISTINCT record_key FROM gold.nominal_records WHERE nominal_id = ?", [nominal_id]
    ).fetchall()
    return [r[0] for r in rows]


def _plain(rows: list[tuple[Any, ...]], names: list[str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        out.append(
            {
                k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in zip(names, row, strict=True)
            }
        )
    return out


def _select(con: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    result = con.execute(sql, params)
    names = [d[0] for d in result.description]
    return _plain(result.fetchall(), names)


# -- access -------------------------------------------------------------------------------
def subject_access(
    home: Home,
    session: Session,
    audit: AuditLog,
    *,
    nominal_id: str | None = None,
    record_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """Everything held about one person, and every audited look at them."""
    keys = set(record_keys)
    snapshot = Lake(home.lake).current()
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "nominal_id": nominal_id,
        "snapshot": snapshot.id if snapshot else None,
        "nominal": None,
        "records": [],
        "events": [],
        "accesses": [],
    }
    if snapshot is not None:
        con = duck.connect(snapshot, threads=1, memory_limit="1GB")
        try:
            if nominal_id:
                keys |= set(_record_keys_of_nominal(con, snapshot, nominal_id))
                if snapshot.has("gold.nominals"):
                    found = _select(
                        con, "SELECT * FROM gold.nominals WHERE nominal_id = ?", [nominal_id]
                    )
                    report["nominal"] = found[0] if found else None
            listed = sorted(keys)
            if listed and snapshot.has("silver.identity"):
                report["records"] = _select(
                    con,
                    "SELECT * FROM silver.identity WHERE list_contains(?, record_key)",
                    [listed],
                )
            if listed and snapshot.has("silver.events"):
                report["events"] = _select(
                    con,
                    "SELECT * FROM silver.events WHERE list_contains(?, record_key) ORDER BY event_date",
                    [listed],
                )
        finally:
            con.close()
    seen: dict[int, dict[str, Any]] = {}
    for key in sorted(keys):
        for entry in audit.search(record_key=key, limit=10_000):
            seen[entry.seq] = entry_json(entry)
    if nominal_id:
        for entry in audit.search(nominal_id=nominal_id, limit=10_000):
            seen[entry.seq] = entry_json(entry)
    report["accesses"] = [seen[s] for s in sorted(seen)]
    report["record_keys"] = sorted(keys)
    return report


# -- erasure ------------------------------------------------------------------------------
# The lake layers that hold a record's data or its key: silver and gold, and the linker's
# working tables (``link.standardised`` keeps standardised names and dates of birth,
# ``link.facts`` and ``link.blocking_index`` the record's key).
ERASABLE_LAYERS = ("silver.", "gold.", "link.")
# Columns naming a record: its key, the linker's ``unique_id`` (the same key) and the two
# sides of a scored pair (``gold.pairs``).
RECORD_KEY_COLUMNS = ("record_key", "unique_id", "record_key_l", "record_key_r")


def _remove_records(
    con: Any, tx: Any, base: Snapshot, keys: set[str], layers: tuple[str, ...]
) -> dict[str, int]:
    """Rewrite every table of ``layers`` without rows of ``keys`` (and without nominals
    left with no record); returns rows removed per table."""
    removed: dict[str, int] = {}
    listed = sorted(keys)
    if not listed:
        return removed
    gone_nominals: list[str] = []
    if base.has("gold.nominal_records"):
        gone_nominals = [
            r[0]
            for r in con.execute(
                "SELECT nominal_id FROM gold.nominal_records GROUP BY nominal_id "
                "HAVING bool_and(list_contains(?, record_key))",
                [listed],
            ).fetchall()
        ]
    for table in sorted(base.tables):
        if not table.startswith(layers):
            continue
        cols = _columns(con, table)
        conditions = []
        params: list[Any] = []
        for column in RECORD_KEY_COLUMNS:
            if column in cols:
                conditions.append(f"list_contains(?, {column})")
                params.append(listed)
        if "nominal_id" in cols and gone_nominals:
            conditions.append("list_contains(?, nominal_id)")
            params.append(gone_nominals)
        if not conditions:
            continue
        condition = " OR ".join(conditions)
        hit = con.execute(f"SELECT count(*) FROM {table} WHERE {condition}", params).fetchone()
        if not hit or not hit[0]:
            continue
        path = tx.new_file(table)
        con.execute(
            f"COPY (SELECT * FROM {table} WHERE NOT ({condition})) TO "
            f"{duck.sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)",
            params,
        )
        tx.replace(table, [path])
        removed[table] = int(hit[0])
    return removed


@dataclass(frozen=True)
class Erasure:
    record_keys: list[str]
    rows_removed: dict[str, int]
    snapshot_id: str | None


def erase(
    home: Home,
    session: Session,
    record_keys: Iterable[str],
    request: RightsRequest | None = None,
    *,
    nominal_id: str | None = None,
) -> Erasure:
    """Remove the records from every silver, gold and link table in a new snapshot, then vacuum."""
    lake = Lake(home.lake)
    keys = set(record_keys)
    removed: dict[str, int] = {}
    snapshot_id: str | None = None
    with lake.transaction("erasure") as tx:
        base = tx.base
        if base is not None:
            con = duck.connect(base, threads=1, memory_limit="1GB")
            try:
                if nominal_id:
                    keys |= set(_record_keys_of_nominal(con, base, nominal_id))
                removed = _remove_records(con, tx, base, keys, ERASABLE_LAYERS)
            finally:
                con.close()
        if removed:
            snapshot_id = tx.commit({"erased_records": len(keys), "rows_removed": removed}).id
    if removed:
        # Older snapshots still list the old files: keep only the new one.
        lake.vacuum(keep_last=1)
    for key in sorted(keys):
        if session.get(ErasedRecord, key) is None:
            session.add(
                ErasedRecord(
                    record_key=key,
                    request_id=request.id if request else None,
                    erased_at=datetime.now(UTC),
                    snapshot_id=snapshot_id,
                )
            )
    _close(request, f"{len(keys)} record(s) erased; rows removed: {removed}")
    session.flush()
    return Erasure(sorted(keys), removed, snapshot_id)


def erased_record_keys(home: Home) -> set[str]:
    """Record keys erased on request: ingest must drop these rows if a partner re-sends them.

    Reading the register needs no schema migration (running the migrations cost ingest
    about 0.2 CPU-seconds a run): a control plane without the register's table, or a
    SQLite file not yet created, has nothing erased. Any other error is raised.
    """
    url = sa.engine.make_url(home.database_url)
    if (
        url.get_backend_name() == "sqlite"
        and url.database
        and url.database != ":memory:"
        and not Path(url.database).exists()
    ):
        return set()
    control = ControlPlane(home.database_url, migrate=False)
    try:
        if not sa.inspect(control.engine).has_table(ErasedRecord.__tablename__):
            return set()
        with control.session() as session:
            return set(session.scalars(sa.select(ErasedRecord.record_key)))
    finally:
        control.dispose()


# -- retention ----------------------------------------------------------------------------
def retention_sweep(
    home: Home, session: Session, today: date | None = None
) -> list[dict[str, Any]]:
    """Remove events older than each dataset's retention, and identities left without events."""
    today = today or datetime.now(UTC).date()
    lake = Lake(home.lake)
    report: list[dict[str, Any]] = []
    datasets = [
        d for d in session.scalars(sa.select(Dataset).order_by(Dataset.code)) if d.retention_years
    ]
    with lake.transaction("retention") as tx:
        base = tx.base
        if base is None or not base.has("silver.events") or not datasets:
            return report
        con = duck.connect(base, threads=1, memory_limit="1GB")
        try:
            rules = []
            for ds in datasets:
                assert ds.retention_years is not None
                cutoff = today - timedelta(days=round(ds.retention_years * 365.25))
                column = (
                    "CAST(received_at AS DATE)"
                    if ds.retention_basis == "received"
                    else "event_date"
                )
                rules.append((ds.code, cutoff, column))
            expired_sql = " OR ".join(
                f"(dataset = {duck.sql_literal(code)} AND {column} < DATE {duck.sql_literal(cutoff.isoformat())})"
                for code, cutoff, column in rules
            )
            counts = dict(
                con.execute(
                    f"SELECT dataset, count(*) FROM silver.events WHERE {expired_sql} GROUP BY dataset"
                ).fetchall()
            )
            orphan_counts: dict[str, int] = {}
            if counts:
                con.execute(
                    f"CREATE TEMP TABLE kept AS SELECT * FROM silver.events WHERE NOT ({expired_sql})"
                )
                events_path = tx.new_file("silver.events")
                con.execute(
                    f"COPY kept TO {duck.sql_literal(str(events_path))} (FORMAT parquet, COMPRESSION zstd)"
                )
                tx.replace("silver.events", [events_path])
                if base.has("silver.identity"):
                    expired_datasets = [code for code in counts]
                    orphan_sql = "list_contains(?, dataset) AND record_key NOT IN (SELECT DISTINCT record_key FROM kept)"
                    orphan_counts = dict(
                        con.execute(
                            f"SELECT dataset, count(*) FROM silver.identity WHERE {orphan_sql} GROUP BY dataset",
                            [expired_datasets],
                        ).fetchall()
                    )
                    identity_path = tx.new_file("silver.identity")
                    con.execute(
                        f"COPY (SELECT * FROM silver.identity WHERE NOT ({orphan_sql})) TO "
                        f"{duck.sql_literal(str(identity_path))} (FORMAT parquet, COMPRESSION zstd)",
                        [expired_datasets],
                    )
                    tx.replace("silver.identity", [identity_path])
                    orphans = {
                        r[0]
                        for r in con.execute(
                            f"SELECT record_key FROM silver.identity WHERE {orphan_sql}",
                            [expired_datasets],
                        ).fetchall()
                    }
                    # Golden nominals built from those records go with them.
                    _remove_records(con, tx, base, orphans, ("gold.", "link."))
        finally:
            con.close()
        snapshot_id = None
        if counts:
            snapshot_id = tx.commit({"retention": counts}).id
    if counts:
        lake.vacuum(keep_last=1)
    for code, cutoff, _column in rules:
        row = {
            "dataset": code,
            "cutoff": cutoff.isoformat(),
            "events_removed": int(counts.get(code, 0)),
            "records_removed": int(orphan_counts.get(code, 0)),
            "snapshot_id": snapshot_id,
        }
        report.append(row)
        session.add(
            RetentionRun(
                at=datetime.now(UTC),
                dataset=code,
                cutoff=cutoff,
                events_removed=row["events_removed"],
                records_removed=row["records_removed"],
                snapshot_id=snapshot_id,
            )
        )
    session.flush()
    return report
