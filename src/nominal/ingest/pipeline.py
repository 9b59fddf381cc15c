"""One ingest run: bronze copy, one-pass validation in DuckDB, split into silver tables.

For each delivery the file is read once and a single ``SELECT`` standardises and
validates every field and computes the record and event pseudonyms into a staged
temporary table; ``silver.identity``, ``silver.events`` and ``silver.quarantine`` are
then three ``COPY`` statements over that table (no further reads of the file), and the
data-quality figures one aggregate over it. The whole run is one lake transaction, so
readers see all of it or none of it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from nominal.config import Home
from nominal.contracts.model import (
    CANONICAL_IDENTITY_FIELDS,
    IDENTITY_TABLE_FIELDS,
    Contract,
    contract_for,
)
from nominal.engines.duck import sql_literal
from nominal.engines.lake import Lake, SnapshotWriter
from nominal.ingest import dq
from nominal.ingest.limits import ParseFailed, interrupt_after, parse_seconds
from nominal.ingest.pseudonym import compiled_kernel, hmac_sql, register_hmac_function
from nominal.ingest.readers import (
    ReadError,
    TextScan,
    duck_error,
    is_isolated,
    read_isolated,
    reader_for,
)
from nominal.ingest.standardise import (
    MACROS,
    SEX_VALUES,
    FieldSQL,
    column_ref,
    constant_sql,
    field_sql,
    text_sql,
)

IDENTITY_COLUMNS = IDENTITY_TABLE_FIELDS
EVENT_COLUMNS = ("event_type", "event_date", "event_end_date", "event_status", "oa_code")
_TYPES = {"date_of_birth": "DATE", "event_date": "DATE", "event_end_date": "DATE"}

DELIVERIES_SCHEMA = pa.schema(
    [
        ("delivery_id", pa.string()),
        ("feed", pa.string()),
        ("dataset", pa.string()),
        ("partner", pa.string()),
        ("file_name", pa.string()),
        ("bronze_path", pa.string()),
        ("bytes", pa.int64()),
        ("received_at", pa.timestamp("us")),
        ("rows_in", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("status", pa.string()),
        ("message", pa.string()),
    ]
)


# Snappy, like DuckDB's own default: silver is rewritten often and read by DuckDB locally,
# so write speed matters more than the last few per cent of size.
COMPRESSION = "snappy"
# A column chunk whose values need a dictionary of more than this many entries is
# written plainly. DuckDB's own limit is higher, so a column of near-unique values
# (record keys, source ids, dates of birth, postcodes) builds a large dictionary in
# every row group only to throw it away. At 4,096 entries (3 % of a 122,880-row group)
# the identity and events files of the benchmark feed have the same encodings, column
# by column, as with DuckDB's default, and their writing costs 0.33 CPU-s less per
# million rows (1.03-1.10 against 1.23-1.36 and 0.60-0.65 against 0.73-0.81, load
# 11-12). A column with between 4,096 and DuckDB's limit of distinct values per row
# group is stored plainly rather than dictionary-encoded: the same values, a larger file.
DICTIONARY_SIZE_LIMIT = 4096
PARQUET_OPTIONS = (
    f"FORMAT parquet, COMPRESSION {COMPRESSION}, DICTIONARY_SIZE_LIMIT {DICTIONARY_SIZE_LIMIT}"
)

# A delivery larger than this is refused before it is copied or read (a partner's
# mistake or an attempt to fill the disk); NOMINAL_MAX_DELIVERY_BYTES raises it.
MAX_DELIVERY_ENV = "NOMINAL_MAX_DELIVERY_BYTES"
DEFAULT_MAX_DELIVERY = 4 << 30


def max_delivery_bytes() -> int:
    return int(os.environ.get(MAX_DELIVERY_ENV) or DEFAULT_MAX_DELIVERY)


class IngestError(RuntimeError):
    """A delivery could not be ingested; the message names the file, row and field."""


@dataclass
class DeliveryResult:
    """What happened to one delivery file."""

    file: str
    feed: str | None
    dataset: str | None
    delivery_id: str | None
    status: str  # ingested | duplicate | failed | no_contract
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_superseded: int = 0
    rows_expired: int = 0
    message: str = ""
    seconds: float = 0.0
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestSummary:
    """The run: one entry per delivery, the totals, and the snapshot it committed."""

    deliveries: list[DeliveryResult] = field(default_factory=list)
    snapshot: str | None = None
    seconds: float = 0.0
    # accepted rows of earlier deliveries replaced by a re-sent version in this run
    superseded_earlier: int = 0

    @property
    def rows_in(self) -> int:
        return sum(d.rows_in for d in self.deliveries)

    @property
    def rows_accepted(self) -> int:
        return sum(d.rows_accepted for d in self.deliveries)

    @property
    def rows_quarantined(self) -> int:
        return sum(d.rows_quarantined for d in self.deliveries)

    @property
    def ok(self) -> bool:
        return all(d.status in ("ingested", "duplicate") for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        return {
            "ok": self.ok,
            "snapshot": self.snapshot,
            "files": len(self.deliveries),
            "statuses": counts,
            "rows_in": self.rows_in,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "rows_superseded": sum(d.rows_superseded for d in self.deliveries)
            + self.superseded_earlier,
            "seconds": round(self.seconds, 3),
            "deliveries": [d.to_dict() for d in self.deliveries],
        }


def copy_and_hash(src: Path, dest: Path, scan: TextScan | None = None) -> str:
    """Copy ``src`` to ``dest`` (fsynced) and return the SHA-256 of the bytes copied.

    ``scan``, if given, sees every chunk as well (one read of the file for all three).
    """
    digest = hashlib.sha256()
    with open(src, "rb") as inp, open(dest, "wb") as out:
        for chunk in iter(lambda: inp.read(1 << 22), b""):
            digest.update(chunk)
            if scan is not None:
                scan.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class RunContext:
    """What every delivery of one run shares."""

    home: Home
    lake: Lake
    tx: SnapshotWriter
    con: duckdb.DuckDBPyConnection
    work_dir: Path
    received_at: datetime
    as_of: date
    key: bytes
    known: set[str]  # delivery ids already ingested
    has_postcodes: bool
    erased: bool = False  # a temp table `erased_keys` holds records erased on request
    compiled_hmac: bool = False  # COMPILED_HMAC is registered on `con` with `key`
    new_files: dict[str, list[tuple[int, Path]]] = field(default_factory=dict)
    delivery_rows: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0


def _pseudonym_sql(ctx: RunContext, message_sql: str) -> str:
    """The pseudonym of a message: the compiled HMAC if registered, else the SQL form."""
    if ctx.compiled_hmac:
        return f"{COMPILED_HMAC}({message_sql})"
    return hmac_sql(ctx.key, message_sql)


# The DuckDB function name of the compiled HMAC (registered with the run's key).
COMPILED_HMAC = "nominal_pseudonym"


def _staging_sql(
    ctx: RunContext,
    contract: Contract,
    source_sql: str,
    columns: set[str],
    *,
    clean_text: bool = False,
) -> tuple[str, list[FieldSQL]]:
    """The one SELECT that validates, standardises and pseudonymises a delivery.

    ``clean_text``: no source value starts or ends with a space or holds a non-ASCII
    character (:class:`TextScan`), so the text level skips its trim test.
    """
    fmt = contract.format
    raws: list[str] = []
    fields: list[FieldSQL] = []
    for name, spec in contract.fields.items():
        if spec.source is not None:
            col = column_ref(spec.source) if spec.source in columns else "NULL"
            text = text_sql(col, fmt.null_values, clean=clean_text)
            raws.append(f"{text} AS {_q('r_' + name)}")
        else:
            raws.append(f"{constant_sql(spec)} AS {_q('r_' + name)}")
        fields.append(field_sql(contract, name, _q("r_" + name), _q("t_" + name), _q("v_" + name)))
    raw_struct = ", ".join(f"{_q(c)} := {_q(c)}" for c in sorted(columns))
    texts = ", ".join(f"{f.text} AS {_q('t_' + f.name)}" for f in fields)
    values = ",\n  ".join(f"{f.value} AS {_q('v_' + f.name)}" for f in fields)
    errors = ",\n  ".join(f"{f.error} AS {_q('e_' + f.name)}" for f in fields)
    # Only fields with a rule can fail, and the reasons are joined only for a row where
    # one did (a few in a thousand) rather than built and discarded for every row.
    checked = [f for f in fields if f.error != "NULL"]
    reasons = ", ".join(
        f"CASE WHEN {_q('e_' + f.name)} IS NOT NULL THEN {sql_literal(f.name + ': ')} || {_q('e_' + f.name)} END"
        for f in checked
    )
    any_error = " OR ".join(f"{_q('e_' + f.name)} IS NOT NULL" for f in checked)
    reasons_sql = (
        f"CASE WHEN {any_error} THEN concat_ws('; ', {reasons}) END"
        if checked
        else "CAST(NULL AS VARCHAR)"
    )
    first = " ".join(
        f"WHEN {_q('e_' + f.name)} IS NOT NULL THEN {sql_literal(f.name)}" for f in checked
    )
    # The first failing field: looked for only in a row with reasons (a few in a
    # thousand), not through a CASE over every checked field on every row.
    first_sql = (
        f"CASE WHEN __reasons IS NOT NULL THEN CASE {first} END "
        "WHEN __expired THEN 'event_date' END"
        if checked
        else "CASE WHEN __expired THEN 'event_date' END"
    )
    text_cols = ", ".join(_q("t_" + f.name) for f in fields)
    # Errors are summed up in __reasons; the staged table does not keep them per field.
    error_cols = ", ".join(_q("e_" + f.name) for f in fields)
    record_msg = f"{sql_literal(contract.dataset + '|')} || v_record_id"
    record_key = _pseudonym_sql(ctx, record_msg)
    if "event_id" in contract.fields:
        event_key = (
            f"CASE WHEN v_event_id IS NULL THEN __record_key ELSE "
            f"{_pseudonym_sql(ctx, sql_literal(contract.dataset + '|') + ' || v_event_id')} END"
        )
    else:
        event_key = "__record_key"
    expired = "false"
    if contract.retention.basis == "event_date":
        cutoff = ctx.as_of - timedelta(days=round(contract.retention.years * 365.25))
        expired = f"coalesce(v_event_date < DATE '{cutoff.isoformat()}', false)"
    # One statement, five projections: raw text -> mapped text -> values -> errors ->
    # reasons and keys. Each level computes its expressions once per row.
    sql = f"""
SELECT * EXCLUDE (__src, {error_cols}),
  {first_sql} AS __field,
  CASE WHEN __reasons IS NOT NULL AND NOT __expired THEN to_json(__src) END AS __raw,
  (__reasons IS NULL AND NOT __expired) AS __ok,
  CASE WHEN __reasons IS NULL AND NOT __expired THEN {record_key} END AS __record_key
FROM (
  SELECT *, {reasons_sql} AS __reasons, {expired} AS __expired
  FROM (
    SELECT * EXCLUDE ({text_cols}), {errors}
    FROM (
      SELECT *, {values}
      FROM (
        SELECT {texts}, __src
        FROM (SELECT {", ".join(raws)}, struct_pack({raw_struct}) AS __src FROM {source_sql}) AS r
      ) AS t
    ) AS v
  ) AS e
) AS k
"""
    # The event key refers to the record key, so it is added in a wrapping SELECT.
    sql = f"SELECT *, CASE WHEN __ok THEN {event_key} END AS __event_key FROM ({sql})"
    return sql, fields


def _json_object(names: list[str]) -> str:
    if not names:
        return "CAST('{}' AS VARCHAR)"
    pairs = ", ".join(f"{_q(n)} := {_q('v_' + n)}" for n in names)
    # VARCHAR, not DuckDB's JSON type, so every file of a table has the same schema.
    return f"CAST(to_json(struct_pack({pairs})) AS VARCHAR)"


def _enum(value_sql: str, values: Iterable[str]) -> str:
    """``value_sql`` as a DuckDB ENUM of ``values``: written to Parquet as plain strings.

    DuckDB's Parquet writer writes an ENUM column straight from the type's own
    dictionary, where a VARCHAR column has every value hashed into a dictionary
    built per row group. The file is the same (a dictionary-encoded UTF-8 column,
    read back as VARCHAR by DuckDB, Spark and pyarrow), and a per-delivery constant
    such as the dataset or delivery id costs about a sixth as much to write.
    """
    listed = ", ".join(sql_literal(v) for v in dict.fromkeys(values))
    return f"CAST({value_sql} AS ENUM({listed}))"


def _const(ctx: RunContext, contract: Contract, delivery_id: str) -> dict[str, str]:
    """The delivery's constants, the same on every silver row of it (strings as ENUMs)."""
    strings = {
        "dataset": contract.dataset,
        "feed": contract.feed,
        "partner": contract.partner.code,
        "agency": contract.agency,
        "delivery_id": delivery_id,
    }
    out = {k: _enum(sql_literal(v), [v]) for k, v in strings.items()}
    out["received_at"] = f"TIMESTAMP '{ctx.received_at.isoformat(sep=' ')}'"
    return out


def _col(contract: Contract, name: str) -> str:
    if name in contract.fields:
        return f"v_{name}"
    return f"CAST(NULL AS {_TYPES.get(name, 'VARCHAR')})"


def _write_outputs(
    ctx: RunContext, contract: Contract, delivery_id: str, file_name: str
) -> tuple[Path, Path, Path | None]:
    con = ctx.con
    c = _const(ctx, contract, delivery_id)
    personal = [
        n for n in contract.fields if n not in CANONICAL_IDENTITY_FIELDS and contract.is_personal(n)
    ]
    attributes = [n for n in contract.attribute_fields if not contract.is_personal(n)]
    ident = {n: _col(contract, n) for n in IDENTITY_COLUMNS}
    if "sex" in contract.fields:  # the sex rule's values are M, F, X (or NULL)
        ident["sex"] = _enum(ident["sex"], SEX_VALUES)
    ident_cols = ",\n ".join(f"{sql} AS {n}" for n, sql in ident.items())
    identity_sql = f"""
SELECT __record_key AS record_key, {c["dataset"]} AS dataset, {c["feed"]} AS feed,
  {c["partner"]} AS partner, {c["agency"]} AS agency, {c["delivery_id"]} AS delivery_id,
  CAST(rowid + 1 AS BIGINT) AS row_number, {c["received_at"]} AS received_at,
  v_record_id AS source_record_id,
  {ident_cols},
  {_json_object(personal)} AS personal_attributes
FROM staged WHERE __ok AND NOT __superseded"""
    oa = _col(contract, "oa_code")
    join = ""
    if ctx.has_postcodes and "postcode" in contract.fields:
        oa = f"coalesce({oa}, ref.oa_code)"
        join = "LEFT JOIN reference_postcodes ref ON ref.postcode = s.v_postcode"
    events_sql = f"""
SELECT __record_key AS record_key, __event_key AS event_key, {c["dataset"]} AS dataset,
  {c["feed"]} AS feed, {c["partner"]} AS partner, {c["agency"]} AS agency,
  {c["delivery_id"]} AS delivery_id, {c["received_at"]} AS received_at,
  {_col(contract, "event_type")} AS event_type, {_col(contract, "event_date")} AS event_date,
  {_col(contract, "event_end_date")} AS event_end_date,
  {_col(contract, "event_status")} AS event_status, {oa} AS oa_code,
  {_json_object(attributes)} AS attributes
FROM staged s {join} WHERE __ok AND NOT __superseded"""
    quarantine_sql = f"""
SELECT {c["delivery_id"]} AS delivery_id, {c["feed"]} AS feed, {c["dataset"]} AS dataset,
  {sql_literal(file_name)} AS file_name, CAST(rowid + 1 AS BIGINT) AS row_number,
  __field AS field,
  coalesce(__reasons, 'retention_expired: older than the contract''s retention of '
           || {sql_literal(f"{contract.retention.years:g} years")}) AS reason,
  CAST(__raw AS VARCHAR) AS raw, {c["received_at"]} AS quarantined_at
FROM staged WHERE NOT __ok"""
    outputs: list[Path | None] = []
    for table, sql, always in (
        ("silver.identity", identity_sql, True),
        ("silver.events", events_sql, True),
        ("silver.quarantine", quarantine_sql, ctx.tx.rows("silver.quarantine") == 0),
    ):
        if not always and _count(con, "SELECT count(*) FROM staged WHERE NOT __ok") == 0:
            outputs.append(None)
            continue
        path = ctx.tx.new_file(table)
        con.execute(f"COPY ({sql}) TO {sql_literal(str(path))} ({PARQUET_OPTIONS})")
        outputs.append(path)
    identity, events, quarantine = outputs
    assert identity is not None and events is not None
    return identity, events, quarantine


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _write_all(
    ctx: RunContext, contract: Contract, delivery_id: str, file_name: str
) -> tuple[Path, Path, Path | None]:
    """The silver files of one delivery, written in parallel and in any row order.

    Row order in the files does not matter (each row carries its row number), so the
    writers may run on every core rather than keep the staged table's order.
    """
    ctx.con.execute("SET preserve_insertion_order = false")
    try:
        return _write_outputs(ctx, contract, delivery_id, file_name)
    finally:
        ctx.con.execute("SET preserve_insertion_order = true")


def _refuse_erased(con: duckdb.DuckDBPyConnection) -> None:
    """A partner re-sending a record erased on request: counted in quarantine, kept nowhere.

    The quarantine row names the reason but holds no copy of the row (``raw`` is NULL),
    so the erasure stands and rows in = accepted + quarantined still holds.
    """
    con.execute(
        """UPDATE staged SET __ok = false, __field = 'record_id', __raw = NULL,
             __reasons = 'record_id: erased_on_request', __record_key = NULL
           WHERE __record_key IN (SELECT record_key FROM erased_keys)"""
    )


def _mark_duplicates_in_delivery(con: duckdb.DuckDBPyConnection) -> int:
    """A source record id sent twice in one delivery: the later row supersedes the earlier."""
    dups = con.execute(
        "SELECT count(*) FROM (SELECT __record_key FROM staged WHERE __ok "
        "GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()
    if not dups or dups[0] == 0:
        return 0
    con.execute(
        """UPDATE staged SET __superseded = true WHERE rowid IN (
             SELECT rid FROM (SELECT rowid AS rid, row_number() OVER (
               PARTITION BY __record_key ORDER BY rowid DESC) AS rn
             FROM staged WHERE __ok) WHERE rn > 1)"""
    )
    return int(con.execute("SELECT count(*) FROM staged WHERE __superseded").fetchone()[0])  # type: ignore[index]


def ingest_table_delivery(
    ctx: RunContext,
    path: Path,
    contract: Contract,
    delivery_id: str,
    bronze_rel: str,
    *,
    clean_text: bool = False,
) -> DeliveryResult:
    """Validate, standardise and split one tabular delivery into silver files.

    ``clean_text``: the bronze copy found no value of this CSV file that trimming
    would change (:class:`TextScan`).
    """
    t0 = time.perf_counter()
    con = ctx.con
    # Parsing (the reader, then DuckDB reading the whole file into ``staged``) runs
    # under the parse time limit: a hostile file fails, named, instead of hanging.
    limit = parse_seconds()
    try:
        with interrupt_after(con, path, limit):
            if is_isolated(contract.format.type):
                source_sql = read_isolated(con, path, contract, limit)
            else:
                source_sql = reader_for(contract.format.type)(con, path, contract, ctx.work_dir)
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
            except duckdb.Error as exc:
                raise ReadError(f"{path.name}: {exc}") from None
            present = {r[0] for r in described}
            for name, spec in contract.fields.items():
                if spec.source is not None and spec.required and spec.source not in present:
                    raise ReadError(
                        f"{path.name}: row 1 (header): required column {spec.source!r} "
                        f"(field {name!r}) is missing"
                    )
            if not ctx.compiled_hmac:
                kernel = compiled_kernel(path.stat().st_size)
                if kernel is not None:
                    register_hmac_function(con, ctx.key, COMPILED_HMAC, kernel=kernel)
                    ctx.compiled_hmac = True
            sql, fields = _staging_sql(ctx, contract, source_sql, present, clean_text=clean_text)
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {sql}")
            except duckdb.Error as exc:
                raise duck_error(path, exc) from None
    except ParseFailed as exc:
        raise ReadError(str(exc)) from None
    con.execute("ALTER TABLE staged ADD COLUMN __superseded BOOLEAN DEFAULT false")
    if ctx.erased:
        _refuse_erased(con)
    superseded = _mark_duplicates_in_delivery(con)
    identity, events, quarantine = _write_all(ctx, contract, delivery_id, path.name)
    stats = dq.delivery_stats(con, contract, [f.name for f in fields])
    result = DeliveryResult(
        file=str(path),
        feed=contract.feed,
        dataset=contract.dataset,
        delivery_id=delivery_id,
        status="ingested",
        rows_in=stats["rows_in"],
        rows_accepted=stats["rows_accepted"],
        rows_quarantined=stats["rows_quarantined"],
        rows_superseded=superseded,
        rows_expired=stats["rows_expired"],
    )
    if result.rows_in != result.rows_accepted + result.rows_quarantined:  # pragma: no cover
        raise IngestError(f"{path.name}: rows in != accepted + quarantined (a defect)")
    ctx.seq += 1
    for table, p in (
        ("silver.identity", identity),
        ("silver.events", events),
        ("silver.quarantine", quarantine),
    ):
        if p is not None:
            ctx.new_files.setdefault(table, []).append((ctx.seq, p))
    report = dq.write_report(ctx.home, contract, path.name, delivery_id, ctx.received_at, stats)
    result.report = str(report)
    result.seconds = round(time.perf_counter() - t0, 3)
    con.execute("DROP TABLE staged")
    return result


def _connect(work_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # File order matters: a quarantined row is named by its row number (rowid + 1).
    con.execute("SET preserve_insertion_order = true")
    # The IN-clause optimiser plans value lists as a hash join, which does not keep
    # file order; the staging SELECT is a pure projection only without it.
    con.execute("SET disabled_optimizers = 'in_clause'")
    con.execute(f"SET temp_directory = {sql_literal(str(work_dir / 'spill'))}")
    for macro in MACROS:
        con.execute(macro)
    return con


def _load_erased(con: duckdb.DuckDBPyConnection, home: Home) -> bool:
    """Load the erasure register (records erased on request) into a temp table."""
    from nominal.govern.rights import erased_record_keys

    keys = sorted(erased_record_keys(home))
    if not keys:
        return False
    con.execute("CREATE OR REPLACE TEMP TABLE erased_keys (record_key VARCHAR PRIMARY KEY)")
    con.executemany("INSERT INTO erased_keys VALUES (?)", [(k,) for k in keys])
    return True


def _known_deliveries(ctx_con: duckdb.DuckDBPyConnection, tx: SnapshotWriter) -> set[str]:
    files = tx.files("silver.deliveries")
    if not files:
        return set()
    listed = ", ".join(sql_literal(str(f)) for f in files)
    rows = ctx_con.execute(
        f"SELECT DISTINCT delivery_id FROM read_parquet([{listed}]) WHERE status = 'ingested'"
    ).fetchall()
    return {r[0] for r in rows}


def _supersede(ctx: RunContext) -> int:
    """Across deliveries, a later version of a source record replaces the earlier one.

    Record keys are pseudonyms of ``dataset|source record id``, so a key that appears in
    more than one delivery is a re-sent record: the latest delivery (this run's, in
    file order, after any earlier run's) keeps it and the others' rows are rewritten
    out of both identity and events.
    """
    con = ctx.con
    new = [p for _, p in ctx.new_files.get("silver.identity", [])]
    if not new:
        return 0
    order = {str(p): seq for seq, p in ctx.new_files["silver.identity"]}
    new_set = {str(p) for p in new}
    old = [p for p in ctx.tx.files("silver.identity") if str(p) not in new_set]
    if len(new) == 1 and not old:
        return 0  # one delivery into an empty lake: nothing it could supersede
    lst = ", ".join(sql_literal(str(p)) for p in new)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE new_keys AS SELECT record_key, delivery_id, filename "
        f"FROM read_parquet([{lst}], filename = true)"
    )
    parts = []
    if len(new) > 1:
        parts.append(
            "SELECT record_key FROM new_keys GROUP BY 1 HAVING count(DISTINCT delivery_id) > 1"
        )
    if old:
        olst = ", ".join(sql_literal(str(p)) for p in old)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE old_keys AS SELECT o.record_key, o.delivery_id, "
            f"o.filename FROM read_parquet([{olst}], filename = true) o "
            f"SEMI JOIN new_keys n ON n.record_key = o.record_key"
        )
        parts.append("SELECT record_key FROM old_keys")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE old_keys AS SELECT * FROM new_keys WHERE false")
    if not parts:
        return 0
    con.execute(f"CREATE OR REPLACE TEMP TABLE dup_keys AS {' UNION '.join(parts)}")
    if con.execute("SELECT count(*) FROM dup_keys").fetchone()[0] == 0:  # type: ignore[index]
        return 0
    # Rank every version: older runs first, then this run's deliveries in order.
    seq_values = ", ".join(f"({sql_literal(k)}, {v})" for k, v in order.items())
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE losers AS
        WITH versions AS (
          SELECT record_key, delivery_id, 0 AS seq FROM old_keys
          UNION ALL
          SELECT n.record_key, n.delivery_id, s.seq FROM new_keys n
          JOIN (VALUES {seq_values}) s(filename, seq) USING (filename)
          SEMI JOIN dup_keys d ON d.record_key = n.record_key
        )
        SELECT record_key, delivery_id FROM (
          SELECT *, row_number() OVER (PARTITION BY record_key ORDER BY seq DESC) AS rn
          FROM versions) WHERE rn > 1"""
    )
    removed = 0
    for table in ("silver.identity", "silver.events"):
        old_files = ctx.tx.files(table)
        new_entries = ctx.new_files.get(table, [])
        every = [*old_files, *(p for _, p in new_entries)]
        if not every:
            continue
        listed = ", ".join(sql_literal(str(p)) for p in every)
        affected = {
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT filename FROM read_parquet([{listed}], filename = true) f "
                f"SEMI JOIN losers l ON l.record_key = f.record_key "
                f"AND l.delivery_id = f.delivery_id"
            ).fetchall()
        }
        if not affected:
            continue

        def rewrite(p: Path, table: str = table) -> Path:
            nonlocal removed
            out = ctx.tx.new_file(table)
            src = sql_literal(str(p))
            con.execute(
                f"COPY (SELECT * FROM read_parquet({src}) f ANTI JOIN losers l "
                f"ON l.record_key = f.record_key AND l.delivery_id = f.delivery_id) "
                f"TO {sql_literal(str(out))} ({PARQUET_OPTIONS})"
            )
            if table == "silver.identity":
                counts = con.execute(
                    f"SELECT (SELECT count(*) FROM read_parquet({src})) - "
                    f"(SELECT count(*) FROM read_parquet({sql_literal(str(out))}))"
                ).fetchone()
                removed += int(counts[0]) if counts else 0
            return out

        if any(str(p) in affected for p in old_files):
            ctx.tx.replace(table, [rewrite(p) if str(p) in affected else p for p in old_files])
        ctx.new_files[table] = [
            (seq, rewrite(p) if str(p) in affected else p) for seq, p in new_entries
        ]
    return removed


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named, and the files directly inside folders named, in name order.

    Inside a folder (the inbox is one partners can write to) symbolic links are not
    followed: a link named like a delivery could otherwise pull any file the hub can
    read into the lake.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.iterdir()
                    if f.is_file() and not f.is_symlink() and not f.name.startswith(".")
                )
            )
        elif p.is_file():
            out.append(p)
        else:
            raise IngestError(f"{p}: no such file or folder")
    return out


ProgressHook = Callable[[str, DeliveryResult | None], None]


def run_ingest(
    home: Home,
    files: list[Path],
    contracts: list[Contract],
    *,
    as_of: date | None = None,
    on_file: ProgressHook | None = None,
) -> IngestSummary:
    """Ingest ``files`` (each matched to a contract) as one lake transaction."""
    from nominal.ingest.documents import ingest_document

    t0 = time.perf_counter()
    home.ensure()
    lake = Lake(home.lake)
    summary = IngestSummary()
    received_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with (
        tempfile.TemporaryDirectory(prefix="nominal-ingest-") as tmp,
        lake.transaction("ingest") as tx,
    ):
        work = Path(tmp)
        con = _connect(work)
        has_pc = tx.files("reference.postcodes") != []
        if has_pc:
            lst = ", ".join(sql_literal(str(p)) for p in tx.files("reference.postcodes"))
            con.execute(
                f"CREATE TEMP TABLE reference_postcodes AS SELECT DISTINCT ON (postcode) "
                f"postcode, oa_code FROM read_parquet([{lst}])"
            )
        erased = _load_erased(con, home)
        ctx = RunContext(
            home=home, lake=lake, tx=tx, con=con, work_dir=work, received_at=received_at,
            as_of=as_of or received_at.date(), key=home.pseudonym_key,
            known=_known_deliveries(con, tx), has_postcodes=has_pc, erased=erased,
        )  # fmt: skip
        for path in files:
            if on_file is not None:
                on_file(path.name, None)
            result = _ingest_one(ctx, path, contracts, ingest_document)
            summary.deliveries.append(result)
            if on_file is not None:
                on_file(path.name, result)
        superseded_total = _supersede(ctx)
        summary.superseded_earlier = superseded_total
        for table in ("silver.identity", "silver.events", "silver.quarantine"):
            paths = [p for _, p in ctx.new_files.get(table, [])]
            live = set(map(str, tx.files(table)))
            to_add = [p for p in paths if str(p) not in live]
            if to_add:
                tx.append(table, to_add)
        for table in ("silver.documents",):
            paths = [p for _, p in ctx.new_files.get(table, [])]
            if paths:
                tx.append(table, paths)
        if ctx.delivery_rows:
            tx.append(
                "silver.deliveries",
                [
                    tx.write_arrow(
                        "silver.deliveries",
                        pa.Table.from_pylist(ctx.delivery_rows, DELIVERIES_SCHEMA),
                    )
                ],
            )
        con.close()
        summary.seconds = time.perf_counter() - t0
        if any(d.status in ("ingested", "failed") for d in summary.deliveries):
            snap = tx.commit(
                {
                    "rows_in": summary.rows_in,
                    "rows_accepted": summary.rows_accepted,
                    "rows_quarantined": summary.rows_quarantined,
                    "rows_superseded_across_deliveries": superseded_total,
                    "files": len(summary.deliveries),
                }
            )
            summary.snapshot = snap.id
        else:
            current = lake.current()
            summary.snapshot = current.id if current else None
    return summary


def _ingest_one(
    ctx: RunContext,
    path: Path,
    contracts: list[Contract],
    ingest_document: Callable[[RunContext, Path, Contract, str, str], DeliveryResult],
) -> DeliveryResult:
    t0 = time.perf_counter()
    contract = contract_for(path.name, contracts)
    if contract is None:
        return DeliveryResult(
            file=str(path), feed=None, dataset=None, delivery_id=None, status="no_contract",
            message=f"{path.name}: no registered contract's delivery pattern matches this file",
        )  # fmt: skip
    size, limit = path.stat().st_size, max_delivery_bytes()
    if size > limit:
        return DeliveryResult(
            file=str(path), feed=contract.feed, dataset=contract.dataset, delivery_id=None,
            status="failed",
            message=f"{path.name}: {size:,} bytes is more than the delivery size limit of "
            f"{limit:,} bytes ({MAX_DELIVERY_ENV}); the file was not taken in",
        )  # fmt: skip
    # One read of the file: copied into bronze and checksummed in the same pass.
    incoming = ctx.lake.bronze / contract.dataset / f".incoming-{uuid.uuid4().hex}"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    scan = TextScan.for_contract(contract)
    delivery_id = copy_and_hash(path, incoming, scan)
    bronze = ctx.lake.bronze / contract.dataset / delivery_id / path.name
    if delivery_id in ctx.known or bronze.exists():
        incoming.unlink()
    else:
        bronze.parent.mkdir(parents=True, exist_ok=True)
        incoming.replace(bronze)
    if delivery_id in ctx.known:
        return DeliveryResult(
            file=str(path), feed=contract.feed, dataset=contract.dataset,
            delivery_id=delivery_id, status="duplicate",
            message=f"{path.name}: these exact bytes were ingested before; nothing to do",
        )  # fmt: skip
    bronze_rel = str(bronze.relative_to(ctx.lake.root))
    try:
        if contract.format.type == "document":
            result = ingest_document(ctx, bronze, contract, delivery_id, bronze_rel)
            result.file = str(path)
        else:
            clean = scan is not None and scan.clean
            result = ingest_table_delivery(
                ctx, bronze, contract, delivery_id, bronze_rel, clean_text=clean
            )
            result.file = str(path)
    except (ReadError, IngestError) as exc:
        ctx.con.execute("DROP TABLE IF EXISTS staged")
        result = DeliveryResult(
            file=str(path), feed=contract.feed, dataset=contract.dataset,
            delivery_id=delivery_id, status="failed", message=str(exc),
        )  # fmt: skip
    result.seconds = round(time.perf_counter() - t0, 3)
    ctx.delivery_rows.append(
        {
            "delivery_id": delivery_id,
            "feed": contract.feed,
            "dataset": contract.dataset,
            "partner": contract.partner.code,
            "file_name": path.name,
            "bronze_path": bronze_rel,
            "bytes": path.stat().st_size,
            "received_at": ctx.received_at,
            "rows_in": result.rows_in,
            "rows_accepted": result.rows_accepted,
            "rows_quarantined": result.rows_quarantined,
            "status": result.status,
            "message": result.message or None,
        }
    )
    if result.status == "ingested":
        ctx.known.add(delivery_id)
    return result
