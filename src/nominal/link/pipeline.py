"""``nominal link``: from silver identity records to golden nominals and households.

One run:

1. reads the current lake snapshot (``silver.identity``, ``silver.events``; the latest
   version of each record);
2. standardises the records (:mod:`nominal.link.standardise`) and keeps them in
   ``link.standardised`` for the next incremental run;
3. scores candidate pairs with the trained Splink model (:mod:`nominal.link.model`):
   every blocked pair in a full run; in an incremental run only the new or changed
   records against the records in their blocks and each other, the earlier pairs
   being kept in ``gold.pairs``;
4. decides each pair: a match at or above the match threshold unless a veto applies
   (given name or date of birth clearly disagree and no trusted identifier agrees:
   twins, a father and son of the same name), review in the uncertainty band; a
   reviewer's decision overrides the model;
5. clusters the match edges (Splink's connected components): all records in a full
   run, only the nominals the new edges touch in an incremental one;
6. keeps nominal ids stable: a cluster takes the id of the earlier nominal it shares
   most records with; merges, splits and forwards go to ``gold.nominal_lineage``;
7. writes the golden nominals (survivorship with provenance), addresses, residence,
   households, relationships and the events with nominal and household ids, and
   queues uncertain pairs for clerical review.

Gold tables are written as deltas where that is possible: new pairs and new
nominal records are appended as new files, and of the other tables only the rows of
changed nominals are rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import yaml

from nominal.config import Home
from nominal.engines import duck
from nominal.engines.lake import (
    Lake,
    LakeError,
    Snapshot,
    SnapshotWriter,
    note_rows,
    parquet_rows,
)
from nominal.link import blocking, thresholds
from nominal.link import compiled as compiled_sql
from nominal.link import model as link_model
from nominal.link.households import LINEAGE as HOUSEHOLD_LINEAGE
from nominal.link.households import assign_household_ids
from nominal.link.lineage import lineage_sql
from nominal.link.standardise import register_nicknames, standardise_sql
from nominal.link.tables import lists_table

log = logging.getLogger(__name__)

STANDARDISED = "link.standardised"
FACTS = "link.facts"
GOLD_TABLES = (
    "gold.nominal_records",
    "gold.nominals",
    "gold.nominal_provenance",
    "gold.nominal_lineage",
    "gold.pairs",
    "gold.addresses",
    "gold.residence",
    "gold.households",
    "gold.household_members",
    HOUSEHOLD_LINEAGE,
    "gold.relationships",
    "gold.events",
)
IDENTIFIERS = ("nhs_number", "ni_number", "pupil_number")
# An incremental run appends a file to most gold tables; past this many files a
# table's smaller half is merged into one.
MAX_DELTA_FILES = 16
# A file of which more than this share of rows is deleted is rewritten with the rest.
REWRITE_FRACTION = 0.25
# DuckDB's own memory budget in a link run (it spills to disk beyond it); with
# Python, Arrow and Splink on top the process stays under 8 GiB.
LINK_MEMORY_LIMIT = "6GB"
# Rows of a row group in the Parquet files DuckDB writes (its unit of parallel scans).
ROW_GROUP_ROWS = 122_880
# A pair is vetoed (never a match on the model's word alone) when it looks like two
# members of one family rather than one person, and no trusted identifier agrees:
# twins (same date of birth, given names clearly different), or two people whose
# dates of birth clearly disagree (a parent and child, or siblings, of the same name;
# the date-of-birth levels already absorb typos, swapped day and month and one day or
# one year out). Family members agree on family name, address and postcode, so the
# model's independence assumption over-counts exactly that evidence.
ID_AGREES = "(p.mw_nhs_number > 0 OR p.mw_ni_number > 0 OR p.mw_pupil_number > 0)"
VETO_SQL = (
    "(((p.mw_given_name < -3 AND p.mw_date_of_birth > 5) "
    "OR p.mw_date_of_birth < -3 OR abs(l.dob_year - r.dob_year) >= 12) "
    "AND NOT " + ID_AGREES + ")"
)


def veto_join(std: str) -> str:
    """The joins :data:`VETO_SQL` needs (``l``/``r``: the pair's standardised records)."""
    return (
        f"LEFT JOIN {std} l ON l.unique_id = p.unique_id_l "
        f"LEFT JOIN {std} r ON r.unique_id = p.unique_id_r"
    )


class LinkError(RuntimeError):
    """The link run cannot proceed (no silver data, bad engine or mode, ...)."""


@dataclass
class RunContext:
    """Everything one run shares between its steps."""

    home: Home
    con: duckdb.DuckDBPyConnection
    snapshot: Snapshot
    run_id: str
    model: link_model.LinkModel
    engine: str
    mode: str
    timings: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda _step: None
    # the rules' keys for the blocking index (None: some rule has none, or Spark)
    index_keys: list[blocking.RuleKey] | None = None
    # whether this run blocked through the saved index (then it only appends to it)
    index_used: bool = False
    # incremental: read only the silver files delivered since the last run (see
    # :func:`_silver_since_last_run`); ``prev_all_current``: every earlier
    # standardised record is still current (none re-sent or withdrawn)
    silver_delta: bool = False
    prev_all_current: bool = False

    def step(self, name: str) -> _Timer:
        self.progress(name)
        return _Timer(self.timings, name)


class _Timer:
    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.sink[self.name] = round(
            self.sink.get(self.name, 0.0) + time.perf_counter() - self.start, 3
        )


def pseudo(key: bytes, kind: str, value: str) -> str:
    """Keyed HMAC pseudonym of an id (what analysts see instead of the id)."""
    return hmac.new(key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(_q(con, f"SELECT count(*) FROM {table}")[0][0])


def _is_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = _q(
        con,
        f"SELECT count(*) FROM duckdb_views() WHERE view_name = {duck.sql_literal(name)} "
        "AND NOT internal",
    )
    return bool(rows[0][0])


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, _, table = name.rpartition(".")
    sql = f"SELECT count(*) FROM duckdb_views() WHERE view_name = '{table}'"
    sql2 = f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{table}'"
    if schema:
        sql += f" AND schema_name = '{schema}'"
        sql2 += f" AND schema_name = '{schema}'"
    return bool(_q(con, f"SELECT ({sql}) + ({sql2})")[0][0])


# --------------------------------------------------------------------------------------
# Reliability of sources (contracts)
# --------------------------------------------------------------------------------------
# libyaml's safe loader where present (a tenth of the pure-Python one's time)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dataset_reliability(home: Home) -> dict[str, float]:
    """Each dataset's ``reliability`` from the feed contracts kept in the home."""
    out: dict[str, float] = {}
    for folder in (home.root / "contracts", home.root / "lake" / "contracts"):
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                text = path.read_text(encoding="utf-8")
                data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(data, dict) and "dataset" in data:
                out[str(data["dataset"])] = float(data.get("reliability", 0.5))
    return out


# --------------------------------------------------------------------------------------
# Review decisions (control plane)
# --------------------------------------------------------------------------------------
def control_plane(home: Home) -> Any:
    """The control plane; migrations run only if the link tables are not there yet.

    Upgrading every branch of migrations costs seconds, more than an incremental run
    should spend on reading a handful of decisions.
    """
    import sqlalchemy as sa

    from nominal.db import ControlPlane, make_engine

    engine = make_engine(home.database_url)
    try:
        ready = sa.inspect(engine).has_table("link_decisions")
    except sa.exc.SQLAlchemyError:
        ready = False
    finally:
        engine.dispose()
    return ControlPlane(home.database_url, migrate=not ready)


def _sqlite_path(home: Home) -> Path | None:
    """The control plane's SQLite file when it is a plain SQLite URL, else None."""
    url = home.database_url
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or len(url) == len(prefix):
        return None
    return Path(url[len(prefix) :])


def _sqlite_link_tables(home: Home) -> sqlite3.Connection | None:
    """A plain ``sqlite3`` connection to a SQLite control plane that already has the
    link tables (None otherwise: PostgreSQL, or tables still to be migrated).

    A run reads a handful of decisions and may queue a few review items: with the
    standard library's driver that costs milliseconds, where importing SQLAlchemy and
    the ORM models costs most of a CPU second, more than a quarter of a short
    incremental run. The statements are those the ORM would issue; timestamps are
    written in SQLAlchemy's SQLite format, so the ORM reads them back alike.
    """
    path = _sqlite_path(home)
    if path is None or not path.exists():
        return None
    con = sqlite3.connect(path, timeout=10)
    con.execute("PRAGMA busy_timeout=10000")
    names = {
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('link_decisions', 'link_review_items')"
        )
    }
    if names != {"link_decisions", "link_review_items"}:
        con.close()
        return None
    return con


def _sqlite_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def load_decisions(home: Home) -> list[tuple[str, str, str, datetime | None]]:
    """Latest reviewer decision per record pair (keys ordered l < r):
    ``(record_key_l, record_key_r, decision, decided_at)``."""
    raw: list[tuple[str, str, str, datetime | None]]
    path = _sqlite_path(home)
    lite = _sqlite_link_tables(home)
    if path is not None and not path.exists():
        raw = []  # no control plane yet: nobody can have decided anything
    elif lite is not None:
        try:
            raw = [
                (left, right, decision, _sqlite_time(at))
                for left, right, decision, at in lite.execute(
                    "SELECT record_key_l, record_key_r, decision, decided_at "
                    "FROM link_decisions ORDER BY id"
                )
            ]
        finally:
            lite.close()
    else:
        from sqlalchemy import select

        from nominal.link.models import LinkDecision

        cp = control_plane(home)
        try:
            with cp.session() as session:
                rows = session.execute(
                    select(
                        LinkDecision.record_key_l,
                        LinkDecision.record_key_r,
                        LinkDecision.decision,
                        LinkDecision.decided_at,
                    ).order_by(LinkDecision.id)
                ).all()
        finally:
            cp.dispose()
        raw = [(a, b, d, _sqlite_time(at)) for a, b, d, at in rows]
    latest: dict[tuple[str, str], tuple[str, datetime | None]] = {}
    for left, right, decision, decided_at in raw:
        a, b = sorted((left, right))
        latest[(a, b)] = (decision, decided_at)
    return [(k[0], k[1], v[0], v[1]) for k, v in latest.items()]


def register_decisions(con: duckdb.DuckDBPyConnection, decisions: list[Any]) -> None:
    """``decisions_arrow`` (record_key_l, record_key_r, decision, decided_at)."""
    lists_table(
        con,
        "decisions_arrow",
        {
            "record_key_l": ("VARCHAR", [d[0] for d in decisions]),
            "record_key_r": ("VARCHAR", [d[1] for d in decisions]),
            "decision": ("VARCHAR", [d[2] for d in decisions]),
            "decided_at": ("TIMESTAMP", [d[3] for d in decisions]),
        },
    )


def queue_reviews(
    home: Home,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    pairs: str = "run_pairs",
    scored_only: bool = False,
) -> int:
    """Add the run's uncertain pairs without a decision to the review queue.

    ``scored_only`` (an incremental run): only the pairs this run scored; the earlier
    pairs it re-decides were queued by the run that scored them.

    ``pairs``: the run's decided pairs (``decision``, ``override``), or any view of
    them that holds at least their pairs in the review band.
    """
    this_run = f"AND p.linked_run = '{run_id}'" if scored_only else ""
    rows = _q(
        con,
        f"""SELECT p.record_key_l, p.record_key_r, a.nominal_id, b.nominal_id,
                  p.match_probability, p.match_weight
           FROM {pairs} p
           JOIN assign a ON a.record_key = p.record_key_l
           JOIN assign b ON b.record_key = p.record_key_r
           WHERE p.decision = 'review' AND p.override IS NULL {this_run}""",
    )
    if not rows:
        return 0
    now = datetime.now(UTC)
    lite = _sqlite_link_tables(home)
    if lite is not None:
        try:
            with lite:  # one transaction
                existing = set(
                    lite.execute("SELECT record_key_l, record_key_r FROM link_review_items")
                )
                fresh = [r for r in rows if (r[0], r[1]) not in existing]
                # SQLAlchemy's SQLite DATETIME format (it drops the UTC offset)
                stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
                lite.executemany(
                    """INSERT INTO link_review_items (record_key_l, record_key_r,
                        nominal_id_l, nominal_id_r, match_probability, match_weight,
                        status, run_id, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)""",
                    [
                        (left, right, nl, nr, float(prob), float(weight), run_id, stamp)
                        for left, right, nl, nr, prob, weight in fresh
                    ],
                )
        finally:
            lite.close()
        return len(fresh)
    import sqlalchemy as sa
    from sqlalchemy import insert, select

    from nominal.link.models import LinkReviewItem

    cp = control_plane(home)
    try:
        with cp.session() as session:
            existing = set(
                session.execute(
                    select(LinkReviewItem.record_key_l, LinkReviewItem.record_key_r)
                ).all()
            )
            fresh_rows = [
                {
                    "record_key_l": left,
                    "record_key_r": right,
                    "nominal_id_l": nl,
                    "nominal_id_r": nr,
                    "match_probability": float(prob),
                    "match_weight": float(weight),
                    "status": "open",
                    "run_id": run_id,
                    "created_at": now,
                }
                for left, right, nl, nr, prob, weight in rows
                if (left, right) not in existing
            ]
            if fresh_rows:
                # one multi-row INSERT batch, not an ORM object a pair (a million-record
                # run queues tens of thousands of pairs)
                table = cast(sa.Table, LinkReviewItem.__table__)
                session.execute(insert(table), fresh_rows)
    finally:
        cp.dispose()
    return len(fresh_rows)


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------
def _pairs_select(
    source: str, run_id: str, version: str, std: str = "std_all", ordered: bool = True
) -> str:
    """Normalise Splink's prediction rows to gold.pairs columns (keys ordered l < r
    unless ``ordered`` is false); ``std`` holds the records (or profiles) scored."""
    mw = ", ".join(f"p.mw_{c}" for c in thresholds.COMPARISON_NAMES)
    left, right = (
        ("least(p.unique_id_l, p.unique_id_r)", "greatest(p.unique_id_l, p.unique_id_r)")
        if ordered
        else ("p.unique_id_l", "p.unique_id_r")
    )
    return f"""
        SELECT {left} AS record_key_l, {right} AS record_key_r,
               CAST(p.match_weight AS DOUBLE) AS match_weight,
               CAST(p.match_probability AS DOUBLE) AS match_probability,
               {mw},
               CASE WHEN coalesce({VETO_SQL}, false) THEN 'veto'
                    WHEN p.match_probability >= {thresholds.MATCH_PROBABILITY} THEN 'match'
                    WHEN p.match_probability >= {thresholds.REVIEW_PROBABILITY} THEN 'review'
                    ELSE 'non_match' END AS model_decision,
               '{version}' AS model_version,
               '{run_id}' AS linked_run
        FROM {source} p {veto_join(std)}"""


def score_duckdb(ctx: RunContext, new_table: str | None) -> None:
    """Create ``scored`` with the pairs to score this run (DuckDB backend).

    Records are grouped into profiles of identical compared columns and the profile
    pairs the blocking rules generate are scored by Splink, then expanded to record
    pairs (:mod:`nominal.link.blocking`): the same pairs and weights as scoring the
    records one by one, for a fraction of the work. An incremental run blocks only
    the new records' profiles (against each other and every earlier record).
    """
    con = ctx.con
    incremental = new_table is not None
    with ctx.step("score pairs: profiles"):
        sizes = blocking.build_profiles(con, "std_all", new_table)
        # Splink's prediction SQL for this model and these columns, recorded by an
        # earlier run (:mod:`nominal.link.compiled`): replayed, it spares the run
        # importing Splink and building a linker.
        key = compiled_sql.fingerprint(con, ctx.model, blocking.PROFILES)
        recorded = compiled_sql.load(ctx.home, ctx.model, key)
        rules = recorded.rules if recorded is not None else blocking.rule_sqls()
    with ctx.step("score pairs: blocking"):
        ctx.index_keys = blocking.index_keys(con, rules, blocking.PROFILES)
        index = _saved_index(ctx) if incremental else None
        if index is not None and ctx.index_keys is not None:
            ctx.index_used = True
            sizes["profile_pairs"] = blocking.block_indexed(con, ctx.index_keys, index, "std_old")
        else:
            sizes["profile_pairs"] = blocking.block(con, rules, incremental)
    with ctx.step("score pairs: predict"):
        if recorded is not None:
            predictions = compiled_sql.replay(con, ctx.model, recorded)
        else:
            made = compiled_sql.record(con, ctx.model, blocking.PROFILES, blocking.BLOCKED, rules)
            compiled_sql.save(ctx.home, ctx.model, key, made)
            predictions = made.output
        profile_pairs = _pairs_select(
            predictions, ctx.run_id, ctx.model.version, blocking.PROFILES, ordered=False
        )
        _q(con, f"CREATE OR REPLACE TABLE scored_profiles AS {profile_pairs}")
        _q(con, f"DROP TABLE {predictions}")
    with ctx.step("score pairs: expand"):
        # A full run keeps the record pairs a view: they are many times the profile
        # pairs (9.4M for 2.7M at a million records) and are only streamed (counted,
        # written to gold.pairs, filtered for review), never needed in memory at once.
        kind = "TABLE" if incremental else "VIEW"
        _q(
            con,
            f"CREATE OR REPLACE {kind} scored AS "
            + blocking.expand_sql("scored_profiles", incremental),
        )
    ctx.sizes.update(sizes)


def _saved_index(ctx: RunContext) -> str | None:
    """The saved blocking keys of the earlier records (a view), if the snapshot holds
    them for these rules: every key column, one row per standardised record."""
    con, snap, keys = ctx.con, ctx.snapshot, ctx.index_keys
    if keys is None or not snap.has(blocking.INDEX):
        return None
    if snap.rows(blocking.INDEX) != snap.rows(STANDARDISED):
        return None
    have = {r[0] for r in _q(con, f"DESCRIBE {blocking.INDEX}")}
    if not {k.column for k in keys} <= have:
        return None
    # the earlier records still current (std_prev); usually all of them
    every = ctx.prev_all_current
    # a view: block_indexed reads it once, keeping only the rows a new key finds
    _q(
        con,
        f"CREATE OR REPLACE VIEW link_index_old AS SELECT * FROM {blocking.INDEX}"
        + ("" if every else " WHERE unique_id IN (SELECT unique_id FROM std_prev_keys)"),
    )
    return "link_index_old"


def _write_index(ctx: RunContext, tx: SnapshotWriter, empty: dict[str, bool] | None = None) -> None:
    """Save the blocking keys of the current records (see :mod:`nominal.link.blocking`):
    the new records' rows appended when this run used the saved index, else all."""
    keys = ctx.index_keys
    if keys is None:  # some rule has no key, or a Spark run: nothing to keep in step
        tx.drop(blocking.INDEX)
    elif ctx.index_used:
        _replace_rows(
            ctx.con,
            tx,
            blocking.INDEX,
            blocking.index_sql(keys, "std_new"),
            "t.unique_id IN (SELECT record_key FROM lost)",
            ("lost",),
            empty,
        )
    else:
        tx.replace(
            blocking.INDEX,
            [_copy(ctx.con, tx, blocking.INDEX, blocking.index_sql(keys, "std_all"))],
        )


def score_spark(ctx: RunContext, new_table: str | None, workdir: Path) -> None:
    """Create ``scored`` using Splink's Spark backend (pyspark, local mode)."""
    from splink import SparkAPI

    from nominal.link.spark import spark_session

    spark = spark_session()
    std_path = workdir / "std_all.parquet"
    _q(ctx.con, f"COPY std_all TO {duck.sql_literal(str(std_path))} (FORMAT parquet)")
    db_api = SparkAPI(spark_session=spark)
    frame = spark.read.parquet(str(std_path))
    frame.createOrReplaceTempView("std_all_spark")
    linker = link_model.linker_for(db_api, frame, ctx.model)
    keep = thresholds.KEEP_PROBABILITY
    if new_table is None:
        preds = [linker.inference.predict(threshold_match_probability=keep, warning_mode="never")]
    else:
        new_path = workdir / "std_new.parquet"
        old_path = workdir / "std_old.parquet"
        _q(ctx.con, f"COPY {new_table} TO {duck.sql_literal(str(new_path))} (FORMAT parquet)")
        _q(ctx.con, f"COPY std_old TO {duck.sql_literal(str(old_path))} (FORMAT parquet)")
        new_sdf = db_api.register(spark.read.parquet(str(new_path)))
        old_sdf = db_api.register(spark.read.parquet(str(old_path)))
        preds = [
            linker.inference.predict_within(
                new_sdf, threshold_match_probability=keep, warning_mode="never"
            ),
            linker.inference.predict_between(
                new_sdf, old_sdf, threshold_match_probability=keep, warning_mode="never"
            ),
        ]
    parts = []
    for i, pred in enumerate(preds):
        out = workdir / f"pred_{i}"
        pred.as_spark_dataframe().write.mode("overwrite").parquet(str(out))
        parts.append(f"read_parquet({duck.sql_literal(str(out) + '/*.parquet')})")
    union = " UNION ALL ".join(_pairs_select(p, ctx.run_id, ctx.model.version) for p in parts)
    _q(ctx.con, f"CREATE OR REPLACE TABLE scored AS {union}")


# --------------------------------------------------------------------------------------
# Clustering and stable ids
# --------------------------------------------------------------------------------------
def spill_dir(home: Home, run_id: str) -> Path:
    """The folder DuckDB spills to during one link run, created (with ``tmp/``) now.

    DuckDB creates only the last level of its temp directory, and only when it first
    spills: ``$NOMINAL_HOME/tmp`` did not exist in a new hub, so a 922,639-record link
    failed after 25 minutes at its first spill ("Failed to create directory").
    """
    spill = home.root / "tmp" / f"link-{run_id}"
    spill.mkdir(parents=True, exist_ok=True)
    return spill


def cluster(con: duckdb.DuckDBPyConnection, nodes: str, edges: str) -> str:
    """Connected components of ``edges`` (record_key_l, record_key_r) over ``nodes``.

    Returns a table ``clusters`` (record_key, cluster_id): a component's id is its
    smallest record key. Record keys are numbered in DuckDB (in key order) and the
    components are found on the integer edge list by SciPy's sparse-graph solver
    (a breadth-first search in C over one CSR matrix), so no string key and no
    per-edge Python object is ever handled; a million records and their edges take a
    second or two and a few tens of MB. Edges naming a record not in ``nodes`` are
    ignored.
    """
    import numpy as np
    import pyarrow as pa
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _q(
        con,
        f"""CREATE OR REPLACE TABLE cc_nodes AS
        SELECT record_key, CAST(row_number() OVER (ORDER BY record_key) - 1 AS INTEGER) AS i
        FROM (SELECT DISTINCT record_key FROM {nodes} WHERE record_key IS NOT NULL)""",
    )
    n = _count(con, "cc_nodes")
    ends = con.execute(
        f"""SELECT a.i AS l, b.i AS r FROM {edges} e
        JOIN cc_nodes a ON a.record_key = e.record_key_l
        JOIN cc_nodes b ON b.record_key = e.record_key_r"""
    ).fetchnumpy()
    left = np.asarray(ends["l"], dtype=np.int32)
    right = np.asarray(ends["r"], dtype=np.int32)
    graph = coo_matrix((np.ones(len(left), dtype=np.float32), (left, right)), shape=(n, n)).tocsr()
    _count_components, labels = connected_components(graph, directed=False)
    # nodes are numbered in key order: a component's first node holds its smallest key
    _labels, first = np.unique(labels, return_index=True)
    rep = first[labels].astype(np.int32)
    con.register(
        "cc_rep_arrow",
        pa.table({"i": pa.array(np.arange(n, dtype=np.int32)), "rep": pa.array(rep)}),
    )
    _q(
        con,
        """CREATE OR REPLACE TABLE clusters AS
        SELECT n.record_key, k.record_key AS cluster_id
        FROM cc_nodes n JOIN cc_rep_arrow c ON c.i = n.i JOIN cc_nodes k ON k.i = c.rep""",
    )
    con.unregister("cc_rep_arrow")
    _q(con, "DROP TABLE cc_nodes")
    return "clusters"


def assign_ids(ctx: RunContext, clusters: str, previous: str | None) -> None:
    """Give each cluster a nominal id, keeping earlier ids; record lineage.

    Creates ``new_assign`` (record_key, nominal_id) for the clustered records and
    ``lineage_new`` rows. ``previous`` holds the earlier (record_key, nominal_id) of
    the same scope (None in a first run).
    """
    con = ctx.con
    prev = previous or "(SELECT NULL::VARCHAR AS record_key, NULL::VARCHAR AS nominal_id LIMIT 0)"
    _q(
        con,
        f"""CREATE OR REPLACE TABLE id_overlap AS
        SELECT c.cluster_id, p.nominal_id, count(*) AS n
        FROM {clusters} c JOIN {prev} p USING (record_key)
        GROUP BY 1, 2""",
    )
    # Each earlier nominal goes to the cluster holding most of its records; a cluster
    # chosen by several earlier nominals keeps the one it shares most records with.
    _q(
        con,
        """CREATE OR REPLACE TABLE id_kept AS
        WITH best_cluster AS (
            SELECT nominal_id, cluster_id, n FROM id_overlap
            QUALIFY row_number() OVER (PARTITION BY nominal_id ORDER BY n DESC, cluster_id) = 1
        )
        SELECT cluster_id, nominal_id FROM best_cluster
        QUALIFY row_number() OVER (PARTITION BY cluster_id ORDER BY n DESC, nominal_id) = 1""",
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE id_new AS
        SELECT c.cluster_id, min(c.record_key) AS min_key
        FROM {clusters} c LEFT JOIN id_kept k USING (cluster_id)
        WHERE k.nominal_id IS NULL GROUP BY 1""",
    )
    used = {r[0] for r in _q(con, "SELECT nominal_id FROM id_kept")}
    if previous is not None:
        used |= {r[0] for r in _q(con, f"SELECT DISTINCT nominal_id FROM {previous}")}
    if _exists(con, "gold.nominal_lineage"):
        used |= {
            r[0]
            for r in _q(
                con,
                "SELECT from_nominal_id FROM gold.nominal_lineage "
                "UNION SELECT to_nominal_id FROM gold.nominal_lineage",
            )
            if r[0]
        }
    fresh: list[tuple[str, str]] = []
    for cluster_id, min_key in _q(con, "SELECT cluster_id, min_key FROM id_new"):
        candidate = "N" + hashlib.sha256(min_key.encode()).hexdigest()[:15]
        if candidate in used:
            candidate = "N" + hashlib.sha256(f"{min_key}|{ctx.run_id}".encode()).hexdigest()[:15]
        used.add(candidate)
        fresh.append((cluster_id, candidate))
    lists_table(
        con,
        "id_fresh_arrow",
        {
            "cluster_id": ("VARCHAR", [f[0] for f in fresh]),
            "nominal_id": ("VARCHAR", [f[1] for f in fresh]),
        },
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE new_assign AS
        SELECT c.record_key, coalesce(k.nominal_id, f.nominal_id) AS nominal_id
        FROM {clusters} c LEFT JOIN id_kept k USING (cluster_id)
        LEFT JOIN id_fresh_arrow f USING (cluster_id)""",
    )
    # Lineage. An earlier id that lost its cluster merged into the id its records went
    # to (and is forwarded there); a fresh id made of records of a kept id split off it.
    now = datetime.now(UTC).replace(tzinfo=None)
    _q(
        con,
        "CREATE OR REPLACE TABLE lineage_new AS "
        + lineage_sql(
            unit="nominal",
            moves=f"""SELECT p.nominal_id, a.nominal_id, count(*)
                FROM {prev} p JOIN new_assign a USING (record_key)
                WHERE p.nominal_id <> a.nominal_id GROUP BY 1, 2""",
            live="SELECT DISTINCT nominal_id FROM new_assign",
            vanished=f"""SELECT DISTINCT p.nominal_id FROM {prev} p
                WHERE p.nominal_id NOT IN (SELECT id FROM live)""",
            fresh="SELECT nominal_id FROM id_fresh_arrow",
            change_prefix=f"{ctx.run_id}-",
            run_id=ctx.run_id,
            changed_at=now,
        ),
    )


# --------------------------------------------------------------------------------------
# Gold tables
# --------------------------------------------------------------------------------------
ATTRIBUTES_PERSON = (
    "given_name",
    "middle_names",
    "family_name",
    "date_of_birth",
    "sex",
    "ethnicity",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
)
ATTRIBUTES_ADDRESS = ("address_line_1", "town", "postcode", "uprn")
# The key of a record's address (``s``: its standardised row): the UPRN where known,
# else the normalised address and postcode.
ADDRESS_KEY_SQL = """CASE WHEN s.uprn IS NOT NULL THEN 'uprn:' || s.uprn
                    WHEN s.address_std IS NOT NULL AND s.postcode_std IS NOT NULL
                    THEN 'addr:' || s.address_std || '|' || s.postcode_std END"""


def build_record_facts(
    ctx: RunContext,
    reliability: dict[str, float],
    only: str | None = None,
    stored_for: str | None = None,
    sources: tuple[str, str] = ("ident", "std_all"),
    stored: str = FACTS,
    assign: str = "assign",
) -> None:
    """``facts``: per record, its nominal, reliability, dates, address and roles.

    With ``only`` (a table of record_key) facts are computed for those records alone
    and the stored facts of the others (``link.facts``, written by every run) are
    reused with their current nominal id: an incremental run never re-reads every
    record and event. ``stored_for`` (a table of nominal_id) limits the reused facts
    to the records of those nominals. ``sources`` names the identity rows and the
    standardised rows to read (an incremental run passes its new records alone);
    ``stored`` the stored facts to reuse (``link.facts``, or a table of some of them);
    ``assign`` the (record_key, nominal_id) of at least those records.
    """
    ident, std = sources
    con = ctx.con
    lists_table(
        con,
        "reliability_arrow",
        {
            "dataset": ("VARCHAR", list(reliability)),
            "reliability": ("DOUBLE", list(reliability.values())),
        },
    )
    has_events = _exists(con, "silver.events")
    limit = f"WHERE record_key IN (SELECT record_key FROM {only})" if only else ""
    events = (
        f"""(SELECT record_key, min(event_date) AS first_date, max(event_date) AS last_date,
                  max(event_end_date) AS end_date, any_value(oa_code) AS oa_code
           FROM silver.events {limit} GROUP BY 1)"""
        if has_events
        else "(SELECT NULL::VARCHAR record_key, NULL::DATE first_date, NULL::DATE last_date, "
        "NULL::DATE end_date, NULL::VARCHAR oa_code LIMIT 0)"
    )
    where = f"WHERE i.record_key IN (SELECT record_key FROM {only})" if only else ""
    computed = f"""
        SELECT i.record_key, a.nominal_id, i.dataset, i.agency, i.source_record_id,
               coalesce(r.reliability, 0.5) AS reliability,
               coalesce(e.first_date, CAST(i.received_at AS DATE)) AS first_date,
               coalesce(e.last_date, e.first_date, CAST(i.received_at AS DATE)) AS last_date,
               e.oa_code,
               {ADDRESS_KEY_SQL} AS address_key,
               i.household_ref, lower(i.relationship) AS relationship,
               i.address_line_1, i.address_line_2, i.town, i.postcode, i.uprn
        FROM {ident} i JOIN {assign} a USING (record_key)
        JOIN {std} s ON s.unique_id = i.record_key
        LEFT JOIN reliability_arrow r ON r.dataset = i.dataset
        LEFT JOIN {events} e ON e.record_key = i.record_key
        {where}"""
    if only:
        # the records of the chosen nominals first, then their stored facts
        chosen = (
            f"(SELECT record_key, nominal_id FROM {assign} "
            f"WHERE nominal_id IN (SELECT nominal_id FROM {stored_for}))"
            if stored_for
            else assign
        )
        computed += f"""
        UNION ALL BY NAME
        SELECT f.* REPLACE (a.nominal_id AS nominal_id)
        FROM {stored} f JOIN {chosen} a USING (record_key)
        WHERE f.record_key NOT IN (SELECT record_key FROM {only})"""
    _q(con, f"CREATE OR REPLACE TABLE facts AS {computed}")


def build_nominals(ctx: RunContext, scope: str) -> None:
    """``nominals_new`` and ``provenance_new`` for the nominals in ``scope``."""
    con = ctx.con
    scope_keys = f"""(SELECT record_key FROM facts
                     WHERE nominal_id IN (SELECT nominal_id FROM {scope}))"""
    if ctx.mode == "full":  # every nominal is in scope: no copy of every record
        _q(con, "CREATE OR REPLACE VIEW ident_scope AS SELECT * FROM ident")
    elif ctx.mode == "incremental":
        # ``ident`` is a view over all of silver there: the scope's keys first, then
        # their latest rows, in one pass, reading only the columns survivorship takes
        # (decoding every column of every silver row was half the statement's time).
        columns = ", ".join(
            f"s.{c}" for c in ("record_key", *ATTRIBUTES_PERSON) if c != "ethnicity"
        )
        if ctx.silver_delta:  # no ident_latest: the latest of the scope's rows
            _q(
                con,
                f"""CREATE OR REPLACE TABLE ident_scope AS
                SELECT {columns}, s.personal_attributes FROM silver.identity s
                WHERE s.record_key IN {scope_keys}
                QUALIFY row_number() OVER (PARTITION BY s.record_key
                    ORDER BY s.received_at DESC, s.delivery_id DESC, s.row_number DESC) = 1""",
            )
        else:
            _q(
                con,
                f"""CREATE OR REPLACE TABLE ident_scope AS
            SELECT {columns}, s.personal_attributes FROM silver.identity s
            SEMI JOIN (SELECT * FROM ident_latest WHERE record_key IN {scope_keys}) l
              ON l.record_key = s.record_key
              AND l.received_at IS NOT DISTINCT FROM s.received_at
              AND l.delivery_id IS NOT DISTINCT FROM s.delivery_id
              AND l.row_number IS NOT DISTINCT FROM s.row_number""",
            )
    else:
        _q(
            con,
            f"CREATE OR REPLACE TABLE ident_scope AS SELECT * FROM ident "
            f"WHERE record_key IN {scope_keys}",
        )
    unpivot = " UNION ALL ".join(
        f"SELECT record_key, '{a}' AS attribute, CAST({src} AS VARCHAR) AS value FROM ident_scope"
        for a, src in [
            *[(a, a) for a in ATTRIBUTES_PERSON if a != "ethnicity"],
            ("ethnicity", "json_extract_string(personal_attributes, '$.ethnicity')"),
        ]
    )
    # Person attributes: the value best supported by reliable sources (sum of the
    # reliabilities of the records giving it), then the most recent.
    _q(
        con,
        f"""CREATE OR REPLACE TABLE prov_person AS
        WITH v AS (
            SELECT f.nominal_id, u.attribute, u.value, f.record_key, f.dataset,
                   f.reliability, f.last_date
            FROM ({unpivot}) u JOIN facts f USING (record_key)
            WHERE u.value IS NOT NULL AND f.nominal_id IN (SELECT nominal_id FROM {scope})
        ),
        g AS (
            -- rounded: a float sum's last bits depend on the order DuckDB adds in, which
            -- varies between runs; equal supports must tie so the next keys decide
            SELECT nominal_id, attribute, value, round(sum(reliability), 9) AS support,
                   max(last_date) AS latest, count(*) AS n,
                   arg_max(record_key, (reliability, last_date, record_key)) AS record_key,
                   arg_max(dataset, (reliability, last_date, record_key)) AS dataset
            FROM v GROUP BY 1, 2, 3
        )
        SELECT nominal_id, attribute, value, record_key, dataset,
               'reliability x frequency, then recency' AS rule
        FROM g QUALIFY row_number() OVER (
            PARTITION BY nominal_id, attribute ORDER BY support DESC, latest DESC, value) = 1""",
    )
    # Address: the whole address of the most recent record that has one (lines and
    # postcode from one record, so they never mix two homes).
    _q(
        con,
        f"""CREATE OR REPLACE TABLE prov_address AS
        WITH latest AS (
            SELECT f.nominal_id, f.record_key, f.dataset, f.oa_code
            FROM facts f
            WHERE f.nominal_id IN (SELECT nominal_id FROM {scope})
              AND f.address_line_1 IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY f.nominal_id
                ORDER BY f.last_date DESC, f.reliability DESC, f.record_key) = 1
        )
        SELECT l.nominal_id, u.attribute, u.value, l.record_key, l.dataset,
               'recency (whole address of the latest record)' AS rule
        FROM latest l JOIN facts i USING (record_key),
        LATERAL (VALUES ('address_line_1', i.address_line_1), ('town', i.town),
                        ('postcode', i.postcode), ('uprn', i.uprn)) u(attribute, value)
        WHERE u.value IS NOT NULL""",
    )
    _q(
        con,
        """CREATE OR REPLACE TABLE provenance_new AS
        SELECT * FROM prov_person UNION ALL SELECT * FROM prov_address""",
    )
    postcodes = (
        "LEFT JOIN reference.postcodes rp ON rp.postcode = pv.postcode"
        if _exists(con, "reference.postcodes")
        else "LEFT JOIN (SELECT NULL::VARCHAR postcode, NULL::VARCHAR oa_code LIMIT 0) rp "
        "ON rp.postcode = pv.postcode"
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE nominals_base AS
        WITH pv AS (
            PIVOT (SELECT nominal_id, attribute, value FROM provenance_new)
            ON attribute IN ('given_name', 'middle_names', 'family_name', 'date_of_birth',
                'sex', 'ethnicity', 'address_line_1', 'town', 'postcode', 'uprn',
                'nhs_number', 'ni_number', 'police_id', 'pupil_number')
            USING any_value(value) GROUP BY nominal_id
        ),
        agg AS (
            SELECT nominal_id, count(*) AS record_count, count(DISTINCT agency) AS agency_count,
                   string_agg(DISTINCT agency, ',' ORDER BY agency) AS agencies,
                   min(first_date) AS first_seen, max(last_date) AS last_seen
            FROM facts WHERE nominal_id IN (SELECT nominal_id FROM {scope}) GROUP BY 1
        ),
        oa AS (
            SELECT p.nominal_id, f.oa_code FROM prov_address p JOIN facts f USING (record_key)
            WHERE p.attribute = 'address_line_1'
        )
        SELECT agg.nominal_id, pv.given_name, pv.middle_names, pv.family_name,
               TRY_CAST(pv.date_of_birth AS DATE) AS date_of_birth, pv.sex, pv.ethnicity,
               pv.address_line_1, pv.town, pv.postcode, pv.uprn,
               coalesce(rp.oa_code, oa.oa_code) AS oa_code,
               pv.nhs_number, pv.ni_number, pv.police_id, pv.pupil_number,
               agg.record_count, agg.agency_count, agg.agencies, agg.first_seen, agg.last_seen
        FROM agg LEFT JOIN pv USING (nominal_id) LEFT JOIN oa USING (nominal_id)
        {postcodes}""",
    )


def build_households(
    ctx: RunContext, addresses: str | None = None, hh_facts: str = "facts"
) -> None:
    """Addresses, residence, households and members (cheap set SQL).

    A full run builds them for every nominal. With ``addresses`` (an incremental run:
    a table of the address keys that changed) only those addresses are regrouped: a
    household elsewhere has no changed member, so it stays as it is. ``facts`` then
    holds every record of the changed nominals, whose residence is rebuilt whole (a
    person's latest address closes the others), and ``hh_facts`` those and every
    other record at one of the addresses. The other people living there are
    unchanged nominals: their residence is the stored one (``gold.residence``), read
    at those addresses only. ``hh_dropped`` lists the earlier households the new rows
    replace.

    A person lives at an address from the first to the last date a record puts them
    there; the latest address of a person is open-ended. A household is the people at
    one address whose periods overlap (an address re-let to another family later
    makes a new household).
    """
    con = ctx.con
    key = ctx.home.pseudonym_key
    only = f"AND f.address_key IN (SELECT address_key FROM {addresses})" if addresses else ""
    _q(
        con,
        f"""CREATE OR REPLACE TABLE addresses_new AS
        -- ties on the date go to the greatest record key, so every run picks alike
        SELECT f.address_key,
               arg_max(f.uprn, (f.last_date, f.record_key)) AS uprn,
               arg_max(f.address_line_1, (f.last_date, f.record_key)) AS address_line_1,
               arg_max(f.address_line_2, (f.last_date, f.record_key)) AS address_line_2,
               arg_max(f.town, (f.last_date, f.record_key)) AS town,
               arg_max(f.postcode, (f.last_date, f.record_key)) AS postcode,
               arg_max(f.oa_code, (f.last_date, f.record_key)) AS oa_code,
               min(f.first_date) AS first_seen, max(f.last_date) AS last_seen,
               count(DISTINCT f.nominal_id) AS nominal_count
        FROM {hh_facts} f
        WHERE f.address_key IS NOT NULL {only} GROUP BY 1""",
    )
    _q(
        con,
        """CREATE OR REPLACE TABLE residence_new AS
        WITH stints AS (
            SELECT nominal_id, address_key, min(first_date) AS from_date,
                   max(last_date) AS seen_to
            FROM facts WHERE address_key IS NOT NULL GROUP BY 1, 2
        )
        SELECT nominal_id, address_key, from_date,
               CASE WHEN row_number() OVER (PARTITION BY nominal_id
                        ORDER BY from_date DESC, seen_to DESC, address_key) = 1
                    THEN NULL ELSE seen_to END AS to_date
        FROM stints""",
    )
    residence = "residence_new"
    if addresses:
        # the unchanged nominals' stays at these addresses, as stored (their records,
        # and so their residence, are as the earlier run left them)
        residence = f"""(SELECT nominal_id, address_key, from_date, to_date FROM residence_new
            UNION ALL SELECT nominal_id, address_key, from_date, to_date FROM gold.residence
            WHERE address_key IN (SELECT address_key FROM {addresses})
              AND nominal_id NOT IN (SELECT nominal_id FROM changed_nominals)
              AND nominal_id NOT IN (SELECT nominal_id FROM affected))"""
    _q(
        con,
        f"""CREATE OR REPLACE TABLE hh_groups AS
        WITH r AS (
            SELECT *, coalesce(to_date, DATE '9999-12-31') AS until FROM {residence} f
            WHERE TRUE {only}
        ),
        marked AS (
            SELECT *, CASE WHEN from_date > max(until) OVER (PARTITION BY address_key
                        ORDER BY from_date, nominal_id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                      THEN 1 ELSE 0 END AS starts
            FROM r
        )
        SELECT *, sum(starts) OVER (PARTITION BY address_key ORDER BY from_date, nominal_id
                                    ROWS UNBOUNDED PRECEDING) AS grp
        FROM marked""",
    )
    # Ids carried over from the earlier run by overlap of members (households.py).
    assign_household_ids(
        con,
        ctx.run_id,
        "hh_groups",
        previous=_exists(con, "gold.households") and _exists(con, "gold.household_members"),
        previous_lineage=_exists(con, HOUSEHOLD_LINEAGE),
        nominal_forwards="lineage_new" if _exists(con, "lineage_new") else None,
        addresses=addresses,
    )
    _q(
        con,
        """CREATE OR REPLACE TABLE hh_ids AS
        SELECT address_key, grp, any_value(a.household_id) AS household_id,
               min(from_date) AS first_seen,
               CASE WHEN bool_or(to_date IS NULL) THEN NULL ELSE max(to_date) END AS to_date,
               max(coalesce(to_date, from_date)) AS last_date,
               count(DISTINCT nominal_id) AS member_count
        FROM hh_groups JOIN hh_assigned a USING (address_key, grp) GROUP BY 1, 2""",
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE household_members_new AS
        SELECT h.household_id, g.nominal_id, g.from_date, g.to_date,
               coalesce(arg_max(f.relationship, (f.last_date, f.record_key)), 'resident') AS role
        FROM hh_groups g JOIN hh_ids h USING (address_key, grp)
        LEFT JOIN {hh_facts} f ON f.nominal_id = g.nominal_id AND f.address_key = g.address_key
             AND f.relationship IS NOT NULL
        GROUP BY 1, 2, 3, 4""",
    )
    hh = [r[0] for r in _q(con, "SELECT household_id FROM hh_ids")]
    lists_table(
        con,
        "hh_pseudo_arrow",
        {
            "household_id": ("VARCHAR", hh),
            "household_pseudo": ("VARCHAR", [pseudo(key, "household", h) for h in hh]),
        },
    )
    _q(
        con,
        """CREATE OR REPLACE TABLE households_new AS
        SELECT h.household_id, p.household_pseudo, h.address_key, a.uprn, a.address_line_1,
               a.town, a.postcode, a.oa_code, h.first_seen,
               coalesce(h.to_date, greatest(h.last_date, a.last_seen)) AS last_seen,
               h.member_count
        FROM hh_ids h JOIN addresses_new a USING (address_key)
        JOIN hh_pseudo_arrow p USING (household_id)""",
    )
    members = "household_members_new"
    if addresses:
        # Earlier households replaced: those at the changed addresses, and ids this
        # run retired or gave to another group. A nominal's current household may be
        # one that did not change, elsewhere.
        _q(
            con,
            f"""CREATE OR REPLACE TABLE hh_dropped AS
            SELECT household_id FROM gold.households
            WHERE address_key IN (SELECT address_key FROM {addresses})
            UNION SELECT from_household_id FROM household_lineage_new
            WHERE from_household_id IS NOT NULL
            UNION SELECT household_id FROM households_new""",
        )
        _q(
            con,
            f"""CREATE OR REPLACE TABLE members_all AS
            SELECT household_id, nominal_id, from_date, to_date FROM household_members_new
            UNION ALL SELECT household_id, nominal_id, from_date, to_date
            FROM gold.household_members
            WHERE nominal_id IN (SELECT nominal_id FROM {hh_facts})
              AND household_id NOT IN (SELECT household_id FROM hh_dropped)""",
        )
        members = "members_all"
    _q(
        con,
        f"""CREATE OR REPLACE TABLE current_household AS
        SELECT nominal_id, household_id FROM {members}
        QUALIFY row_number() OVER (PARTITION BY nominal_id
            ORDER BY to_date IS NULL DESC, coalesce(to_date, from_date) DESC, household_id) = 1""",
    )
    if not addresses:  # an incremental run builds them from the family references
        build_relationships(con, "facts")


def build_relationships(con: duckdb.DuckDBPyConnection, facts: str) -> None:
    """``relationships_new`` from the roles records of ``facts`` state."""
    # Relationships the partners state: roles within one family / case reference.
    _q(
        con,
        f"""CREATE OR REPLACE TABLE relationships_new AS
        WITH m AS (
            SELECT dataset, household_ref, nominal_id,
                   CASE WHEN relationship IN ('child', 'son', 'daughter') THEN 'child'
                        WHEN relationship IN ('mother', 'father', 'stepfather', 'stepmother',
                             'parent/carer', 'parent', 'carer') THEN 'parent'
                        WHEN relationship IN ('partner', 'spouse', 'husband', 'wife') THEN 'partner'
                        ELSE NULL END AS role
            FROM {facts} WHERE household_ref IS NOT NULL
        ),
        p AS (
            SELECT DISTINCT a.nominal_id, b.nominal_id AS related_nominal_id,
                   CASE WHEN a.role = 'parent' AND b.role = 'child' THEN 'parent'
                        WHEN a.role = 'child' AND b.role = 'parent' THEN 'child'
                        WHEN a.role = 'child' AND b.role = 'child' THEN 'sibling'
                        WHEN a.role = 'parent' AND b.role IN ('parent', 'partner') THEN 'partner'
                        WHEN a.role = 'partner' AND b.role = 'parent' THEN 'partner'
                   END AS relationship, a.dataset
            FROM m a JOIN m b ON a.dataset = b.dataset AND a.household_ref = b.household_ref
                 AND a.nominal_id <> b.nominal_id
        )
        SELECT nominal_id, related_nominal_id, relationship,
               string_agg(DISTINCT dataset, ',' ORDER BY dataset) AS dataset
        FROM p WHERE relationship IS NOT NULL GROUP BY 1, 2, 3""",
    )


def finish_nominals(ctx: RunContext) -> None:
    """``nominals_new`` = base attributes + pseudonym + current household."""
    key = ctx.home.pseudonym_key
    ids = [r[0] for r in _q(ctx.con, "SELECT nominal_id FROM nominals_base")]
    lists_table(
        ctx.con,
        "nominal_pseudo_arrow",
        {
            "nominal_id": ("VARCHAR", ids),
            "nominal_pseudo": ("VARCHAR", [pseudo(key, "nominal", i) for i in ids]),
        },
    )
    _q(
        ctx.con,
        """CREATE OR REPLACE TABLE nominals_new AS
        SELECT b.nominal_id, p.nominal_pseudo, b.given_name, b.middle_names, b.family_name,
               b.date_of_birth, b.sex, b.ethnicity, b.address_line_1, b.town, b.postcode,
               b.uprn, b.oa_code, b.nhs_number, b.ni_number, b.police_id, b.pupil_number,
               h.household_id, b.record_count, b.agency_count, b.agencies,
               b.first_seen, b.last_seen
        FROM nominals_base b JOIN nominal_pseudo_arrow p USING (nominal_id)
        LEFT JOIN current_household h USING (nominal_id)""",
    )


def build_events(
    ctx: RunContext,
    scope_records: str | None,
    members: str = "household_members_new",
    households: str = "households_new",
) -> None:
    """``events_new``: silver events with nominal and household ids and pseudonyms.

    An event belongs to the household its person lived in on the event's date (the
    latest-starting one if several), else to the person's current household. The
    household is chosen on (record_key, event_key) alone and joined back, so the wide
    event rows are never sorted; only when silver holds an event twice (same record
    and event key) is each kept once with a window over the whole rows.

    ``members`` and ``households`` hold the memberships and pseudonyms of (at least)
    the nominals of the events written.
    """
    con = ctx.con
    if not _exists(con, "silver.events"):
        _q(con, "CREATE OR REPLACE TABLE events_new AS SELECT NULL::VARCHAR AS record_key LIMIT 0")
        return
    where = (
        f"WHERE e.record_key IN (SELECT record_key FROM {scope_records})" if scope_records else ""
    )
    events = f"SELECT e.* FROM silver.events e {where}"
    if scope_records:
        # a few records' events: read from silver once, for the check and the rows
        _q(con, f"CREATE OR REPLACE TABLE events_scope AS {events}")
        events = "SELECT e.* FROM events_scope e"
    total, distinct = _q(
        con,
        f"SELECT count(*), count(DISTINCT (record_key, event_key)) FROM ({events})",
    )[0]
    if total != distinct:
        events += " QUALIFY row_number() OVER (PARTITION BY e.record_key, e.event_key) = 1"
    _q(
        con,
        f"""CREATE OR REPLACE TABLE events_new AS
        WITH ev AS ({events}),
        dated AS (
            SELECT e.record_key, e.event_key,
                   arg_max(hm.household_id, (hm.from_date, hm.household_id)) AS household_id
            FROM ev e JOIN assign a USING (record_key)
            JOIN {members} hm ON hm.nominal_id = a.nominal_id
             AND e.event_date >= hm.from_date
             AND e.event_date <= coalesce(hm.to_date, DATE '9999-12-31')
            GROUP BY 1, 2
        )
        SELECT e.*, a.nominal_id, np.nominal_pseudo,
               coalesce(d.household_id, ch.household_id) AS household_id,
               coalesce(hp.household_pseudo, chp.household_pseudo) AS household_pseudo
        FROM ev e
        JOIN assign a USING (record_key)
        LEFT JOIN nominal_pseudo_all np ON np.nominal_id = a.nominal_id
        LEFT JOIN dated d ON d.record_key = e.record_key
             AND d.event_key IS NOT DISTINCT FROM e.event_key
        LEFT JOIN current_household ch ON ch.nominal_id = a.nominal_id
        LEFT JOIN {households} hp ON hp.household_id = d.household_id
        LEFT JOIN {households} chp ON chp.household_id = ch.household_id""",
    )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def _copy(con: duckdb.DuckDBPyConnection, tx: SnapshotWriter, table: str, sql: str) -> Path:
    path = tx.new_file(table)
    # DuckDB answers a COPY with the number of rows written: noted, so that counting
    # the new file's rows (here and when the snapshot lists it) reads no footer
    written = _q(
        con, f"COPY ({sql}) TO {duck.sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
    )
    if written and written[0] and isinstance(written[0][0], int):
        note_rows(path, int(written[0][0]))
    return path


def _replace_rows(
    con: duckdb.DuckDBPyConnection,
    tx: SnapshotWriter,
    table: str,
    new_rows_sql: str,
    drop_where: str,
    drop_from: tuple[str, ...] = (),
    empty: dict[str, bool] | None = None,
) -> None:
    """Drop the rows of ``table`` that ``drop_where`` names; append the new rows.

    ``drop_where`` is a condition on a row (``t``); ``drop_from`` the tables it reads
    keys from (when all are empty no file is read at all; ``empty`` may say which are,
    counted once for all tables). Files keep their rows: the
    positions of dropped rows go to the table's deletion file (see
    :mod:`nominal.engines.lake`), so a delivery writes in proportion to what it
    changes, not to the size of the files holding it. A file of which more than
    :data:`REWRITE_FRACTION` is deleted is rewritten with its live rows, and once a
    table has more than :data:`MAX_DELTA_FILES` files the smaller half is merged into
    one (a rewrite of a fraction of the table, once in many runs).
    """
    files = tx.files(table)
    old_deletes = tx.deletes(table)
    nothing = bool(drop_from) and all(
        (empty.get(t) if empty and t in empty else _count(con, t) == 0) for t in drop_from
    )
    root = str(tx.lake.root) + "/"
    cut = len(root) + 1

    def rel(path: Path) -> str:
        return str(path.relative_to(tx.lake.root))

    gone = (
        f"SELECT file, pos FROM {duck.parquet_source(old_deletes)}"
        if old_deletes
        else "SELECT NULL::VARCHAR AS file, NULL::BIGINT AS pos LIMIT 0"
    )
    # the positions deleted before (``fresh`` false) and now, in one statement (DuckDB
    # answers a CREATE TABLE AS with its number of rows)
    made = 0
    if files and not nothing:
        listed = ", ".join(duck.sql_literal(str(f)) for f in files)
        made = int(
            _q(
                con,
                f"""CREATE OR REPLACE TABLE rr_gone AS
                WITH old AS ({gone})
                SELECT file, pos, false AS fresh FROM old
                UNION ALL
                SELECT substr(t.filename, {cut}) AS file, t.file_row_number AS pos, true
                FROM read_parquet([{listed}], union_by_name = true, filename = true,
                                  file_row_number = true) t
                ANTI JOIN old x ON x.file = substr(t.filename, {cut})
                  AND x.pos = t.file_row_number
                WHERE {drop_where}""",
            )[0][0]
        )
    else:
        _q(
            con,
            f"CREATE OR REPLACE TABLE rr_gone AS SELECT file, pos, false AS fresh FROM ({gone})",
        )
    per_file: dict[str, int] = {}
    hits = 0
    if made or old_deletes:
        counted = _q(
            con, "SELECT file, count(*), count(*) FILTER (fresh) FROM rr_gone GROUP BY file"
        )
        per_file = {file: int(total) for file, total, _fresh in counted}
        hits = sum(int(fresh) for _file, _total, fresh in counted)

    def live(paths: list[Path]) -> str:
        listed = ", ".join(duck.sql_literal(str(f)) for f in paths)
        return f"""SELECT t.* EXCLUDE (filename, file_row_number)
            FROM read_parquet([{listed}], union_by_name = true, filename = true,
                              file_row_number = true) t
            ANTI JOIN rr_gone x ON x.file = substr(t.filename, {cut})
              AND x.pos = t.file_row_number"""

    keep: list[Path] = []
    folded: set[str] = set()  # files whose deleted rows are gone from the table's files
    for path in files:
        dead = int(per_file.get(rel(path), 0))
        if dead and dead > REWRITE_FRACTION * parquet_rows(path):
            folded.add(rel(path))
            rewritten = _copy(con, tx, table, live([path]))
            if parquet_rows(rewritten):
                keep.append(rewritten)
        else:
            keep.append(path)
    added = _copy(con, tx, table, new_rows_sql)
    if parquet_rows(added) or not keep:
        keep.append(added)
    if len(keep) > MAX_DELTA_FILES:
        sizes = sorted(keep, key=lambda f: f.stat().st_size)
        small = sizes[: len(keep) // 2 + 1]
        merged = _copy(con, tx, table, live(small))
        folded |= {rel(f) for f in small}
        keep = [f for f in keep if f not in small] + [merged]
    deletes = old_deletes
    if hits or folded:
        kept = [rel(f) for f in keep if rel(f) in per_file and rel(f) not in folded]
        deletes = []
        if kept:
            listed = ", ".join(duck.sql_literal(k) for k in kept)
            deletes = [
                _copy(
                    con,
                    tx,
                    table,
                    f"SELECT file, pos FROM rr_gone WHERE file IN ({listed}) ORDER BY file, pos",
                )
            ]
    earlier = tx.files(table)
    if deletes == old_deletes and keep[: len(earlier)] == earlier and len(keep) == len(earlier) + 1:
        tx.append(table, keep[-1:])  # only the new file's footer is read
    else:
        tx.replace(table, keep, deletes)


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------
def _load_inputs(ctx: RunContext, incremental: bool = False) -> None:
    """``ident``: the latest version of each silver identity record.

    A full run copies them. An incremental run keeps only their keys and versions
    (``ident_latest``) and reads whole rows where it needs them (``ident`` is then a
    view): it standardises and re-surveys only a few records, and copying every
    column of every record would cost more than the rest of the run.
    """
    con = ctx.con
    if not _exists(con, "silver.identity"):
        raise LinkError("the lake has no silver.identity table: run `nominal ingest` first")
    latest = """QUALIFY row_number() OVER (PARTITION BY record_key
            ORDER BY received_at DESC, delivery_id DESC, row_number DESC) = 1"""
    if not incremental:
        _q(con, f"CREATE OR REPLACE TABLE ident AS SELECT * FROM silver.identity {latest}")
        return
    new_files = _silver_since_last_run(ctx)
    if new_files is not None:
        _load_delta(ctx, new_files, latest)
        return
    # Most keys have one row: only those with several are ranked (a window over every
    # row cost twice the two scans).
    _q(
        con,
        f"""CREATE OR REPLACE TABLE ident_latest AS
        WITH several AS (SELECT record_key FROM silver.identity GROUP BY 1 HAVING count(*) > 1)
        SELECT record_key, received_at, delivery_id, row_number FROM silver.identity
        ANTI JOIN several USING (record_key)
        UNION ALL (
            SELECT record_key, received_at, delivery_id, row_number FROM silver.identity
            SEMI JOIN several USING (record_key) {latest})""",
    )
    # Null-safe: delivery_id and row_number are nullable in silver (rows not from a
    # delivered file have neither), and with ``=`` such a row would match nothing --
    # the record would vanish from the run as if it had never arrived.
    _q(
        con,
        """CREATE OR REPLACE VIEW ident AS SELECT s.* FROM silver.identity s
        SEMI JOIN ident_latest l ON l.record_key = s.record_key
          AND l.received_at IS NOT DISTINCT FROM s.received_at
          AND l.delivery_id IS NOT DISTINCT FROM s.delivery_id
          AND l.row_number IS NOT DISTINCT FROM s.row_number""",
    )


SILVER_SEEN = "link_silver_identity"


def _silver_seen(snapshot: Snapshot, count: int | None = None) -> dict[str, Any]:
    """What a link run records of the silver records it read: the number of
    ``silver.identity`` files and digests of their names and of its deletion files
    (``count``: of the first files only)."""
    entry = snapshot.tables.get("silver.identity")
    files = list(entry.files) if entry else []
    deletes = list(entry.deletes) if entry else []
    if count is not None:
        files = files[:count]

    def digest(names: list[str]) -> str:
        return hashlib.sha256("\n".join(names).encode()).hexdigest()

    return {"files": len(files), "files_digest": digest(files), "deletes_digest": digest(deletes)}


def _silver_since_last_run(ctx: RunContext) -> list[Path] | None:
    """The ``silver.identity`` files delivered since the last link run, or None when the
    run cannot rely on that.

    The last link run's snapshot (the nearest ancestor committed by a link run) records
    the silver files that run read (:func:`_silver_seen`). When those are still the
    first files of the table, with the same deletion files (none), and the standardised
    records are the ones that run wrote, every record outside the newer files is as
    that run saw it: only the newer files need reading whole.
    """
    snap = ctx.snapshot
    if snap.deletes("silver.identity") or not snap.has(STANDARDISED):
        return None
    lake = Lake(snap.lake_root)
    linked: Snapshot | None = snap
    for _hop in range(1000):
        if linked is None or "link_run" in linked.summary:
            break
        try:
            linked = lake.snapshot(linked.parent) if linked.parent else None
        except LakeError:  # vacuumed
            return None
    if linked is None or "link_run" not in linked.summary:
        return None
    seen = linked.summary.get(SILVER_SEEN)
    if not isinstance(seen, dict) or linked.tables.get(STANDARDISED) != snap.tables[STANDARDISED]:
        return None
    files = snap.files("silver.identity")
    count = int(seen.get("files", -1))
    if not 0 <= count <= len(files):
        return None
    if _silver_seen(snap, count) != seen:
        return None
    return files[count:]


def _load_delta(ctx: RunContext, new_files: list[Path], latest: str) -> None:
    """:func:`_load_inputs` of an incremental run that reads only the silver files
    delivered since the last run (``new_files``; see :func:`_silver_since_last_run`).

    A record none of them holds is exactly as the last run read it. For the records
    they hold, the latest version is found among all their rows (their earlier rows
    read by key, four columns); those whose latest version is not the one the last
    run standardised (``received_at``, as a full scan would compare it) are
    ``delta_changed``, with their rows in ``ident_new``; ``resent`` are those of them
    the last run had.
    """
    con = ctx.con
    ctx.silver_delta = True
    files = ctx.snapshot.files("silver.identity")
    old_files = files[: len(files) - len(new_files)]
    if new_files:
        every = ", ".join(duck.sql_literal(str(f)) for f in files)
        listed = ", ".join(duck.sql_literal(str(f)) for f in new_files)
        # the view's columns (union by name over every file); DuckDB reads only the
        # files the filter on their name keeps
        _q(
            con,
            f"""CREATE OR REPLACE TABLE silver_new AS SELECT * EXCLUDE (filename)
            FROM read_parquet([{every}], union_by_name = true, filename = true)
            WHERE filename IN ({listed})""",
        )
    else:
        _q(con, "CREATE OR REPLACE TABLE silver_new AS SELECT * FROM silver.identity LIMIT 0")
    old = (
        f"""SELECT record_key, received_at, delivery_id, row_number
            FROM {duck.parquet_source(old_files)}
            WHERE record_key IN (SELECT record_key FROM silver_new)"""
        if old_files
        else "SELECT record_key, received_at, delivery_id, row_number FROM silver_new LIMIT 0"
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE delta_changed AS
        WITH l AS (
            SELECT * FROM ({old} UNION ALL
                SELECT record_key, received_at, delivery_id, row_number FROM silver_new)
            {latest}
        ),
        p AS (
            SELECT unique_id, std_received_at FROM {STANDARDISED}
            WHERE unique_id IN (SELECT record_key FROM silver_new)
        )
        SELECT l.*, p.unique_id IS NOT NULL AS resent FROM l
        LEFT JOIN p ON p.unique_id = l.record_key
        WHERE NOT coalesce(l.received_at = p.std_received_at, false)""",
    )
    _q(
        con,
        "CREATE OR REPLACE TABLE resent AS SELECT record_key FROM delta_changed WHERE resent",
    )
    ctx.prev_all_current = _count(con, "resent") == 0
    # Null-safe, as below.
    _q(
        con,
        """CREATE OR REPLACE TABLE ident_new AS SELECT s.* FROM silver_new s
        SEMI JOIN delta_changed l ON l.record_key = s.record_key
          AND l.received_at IS NOT DISTINCT FROM s.received_at
          AND l.delivery_id IS NOT DISTINCT FROM s.delivery_id
          AND l.row_number IS NOT DISTINCT FROM s.row_number""",
    )
    _q(
        con,
        "CREATE OR REPLACE VIEW std_prev_keys AS SELECT unique_id FROM link.standardised"
        + ("" if ctx.prev_all_current else " ANTI JOIN resent r ON r.record_key = unique_id"),
    )
    _q(con, f"CREATE OR REPLACE VIEW ident AS SELECT * FROM silver.identity {latest}")


def _standardise(ctx: RunContext, incremental: bool) -> str | None:
    """Create ``std_all`` (and ``std_new``/``std_old`` when incremental).

    Returns the name of the table of records to score against the rest, or None for
    a full run.
    """
    con = ctx.con
    register_nicknames(con)
    present = {r[0] for r in _q(con, "DESCRIBE silver.identity")}
    if not incremental:
        _q(
            con,
            f"""CREATE OR REPLACE TABLE std_all AS
            SELECT s.*, i.received_at AS std_received_at
            FROM ({standardise_sql("ident", present)}) s JOIN ident i ON i.record_key = s.unique_id""",
        )
        return None
    if not ctx.silver_delta:
        _previous_and_new(ctx)
    _q(
        con,
        f"""CREATE OR REPLACE TABLE std_new AS
        SELECT s.*, i.received_at AS std_received_at
        FROM ({standardise_sql("ident_new", present)}) s JOIN ident_new i ON i.record_key = s.unique_id""",
    )
    # Usually every earlier record is still current: then no filter to apply at each
    # read (blocking reads the earlier records once per run).
    every = ctx.prev_all_current
    _q(
        con,
        "CREATE OR REPLACE VIEW std_prev AS SELECT * FROM link.standardised"
        + ("" if every else " WHERE unique_id IN (SELECT unique_id FROM std_prev_keys)"),
    )
    _q(con, "CREATE OR REPLACE VIEW std_old AS SELECT * FROM std_prev")
    _q(
        con,
        "CREATE OR REPLACE VIEW std_all AS SELECT * FROM std_old UNION ALL BY NAME SELECT * FROM std_new",
    )
    return "std_new"


def _previous_and_new(ctx: RunContext) -> None:
    """``std_prev_keys`` (the earlier standardised records still current) and
    ``ident_new`` (the silver rows of the others) from every silver key."""
    con = ctx.con
    # Earlier standardised records whose source row is unchanged are reused (views, so
    # nothing is copied: Splink reads them where they lie).
    _q(
        con,
        """CREATE OR REPLACE TABLE std_prev_keys AS
        SELECT p.unique_id FROM link.standardised p
        JOIN ident_latest i ON i.record_key = p.unique_id
        WHERE i.received_at = p.std_received_at""",
    )
    # The keys first, then their rows: one pass over silver for a few records.
    _q(
        con,
        """CREATE OR REPLACE TABLE ident_new AS SELECT s.* FROM silver.identity s
        SEMI JOIN (SELECT * FROM ident_latest ANTI JOIN std_prev_keys k
                   ON k.unique_id = ident_latest.record_key) l
          ON l.record_key = s.record_key
          AND l.received_at IS NOT DISTINCT FROM s.received_at
          AND l.delivery_id IS NOT DISTINCT FROM s.delivery_id
          AND l.row_number IS NOT DISTINCT FROM s.row_number""",
    )
    ctx.prev_all_current = _count(con, "std_prev_keys") == ctx.snapshot.rows(STANDARDISED)


def _decide(ctx: RunContext, pairs: str, registered: bool = False, edges: bool = True) -> None:
    """``run_pairs``: pairs with the reviewer's override and the final decision; and
    (``edges``) ``edges``, the match edges to cluster."""
    con = ctx.con
    if not registered:
        register_decisions(con, load_decisions(ctx.home))
    # a full DuckDB run streams its record pairs (``scored`` is a view there)
    kind = "VIEW" if ctx.mode == "full" and _is_view(con, pairs) else "TABLE"
    _q(
        con,
        f"""CREATE OR REPLACE {kind} run_pairs AS
        SELECT p.*, d.decision AS override,
               coalesce(d.decision, CASE WHEN p.model_decision = 'veto' THEN 'non_match'
                                         ELSE p.model_decision END) AS decision
        FROM {pairs} p LEFT JOIN decisions_arrow d
          ON d.record_key_l = p.record_key_l AND d.record_key_r = p.record_key_r""",
    )
    if not edges:
        return
    reviewer_matches = """
        SELECT d.record_key_l, d.record_key_r FROM decisions_arrow d
        WHERE d.decision = 'match'
          AND d.record_key_l IN (SELECT unique_id FROM std_all)
          AND d.record_key_r IN (SELECT unique_id FROM std_all)"""
    if not _exists(con, "scored_profiles") or ctx.mode != "full":
        # A reviewer's match decision links a pair even when no blocking rule found it.
        _q(
            con,
            f"""CREATE OR REPLACE TABLE edges AS
            SELECT record_key_l, record_key_r FROM run_pairs WHERE decision = 'match'
            UNION {reviewer_matches}""",
        )
        return
    # Full DuckDB run: the same connected components from far fewer edges. Every record
    # pair of a matching profile pair (A, B) is a match unless a reviewer decided it,
    # so A and B end up in one component: the edges (A, b) for b in B and (a, B) for a
    # in A connect them just as well (a profile's id is its smallest record key).
    # Profile pairs holding a reviewed record pair keep their record-level edges.
    members = blocking.MEMBERS
    _q(
        con,
        f"""CREATE OR REPLACE TABLE reviewed_profile_pairs AS
        SELECT DISTINCT least(a.profile_id, b.profile_id) AS p1,
               greatest(a.profile_id, b.profile_id) AS p2
        FROM decisions_arrow d
        JOIN {members} a ON a.record_key = d.record_key_l
        JOIN {members} b ON b.record_key = d.record_key_r""",
    )
    reviewed = _count(con, "reviewed_profile_pairs")
    record_level = (
        f"""UNION ALL
        SELECT r.record_key_l, r.record_key_r FROM run_pairs r
        JOIN {members} a ON a.record_key = r.record_key_l
        JOIN {members} b ON b.record_key = r.record_key_r
        JOIN reviewed_profile_pairs t
          ON t.p1 = least(a.profile_id, b.profile_id)
         AND t.p2 = greatest(a.profile_id, b.profile_id)
        WHERE r.decision = 'match'"""
        if reviewed
        else ""
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE edges AS
        WITH free AS (
            SELECT least(record_key_l, record_key_r) AS p1,
                   greatest(record_key_l, record_key_r) AS p2
            FROM scored_profiles WHERE model_decision = 'match'
            EXCEPT SELECT p1, p2 FROM reviewed_profile_pairs
        ),
        e AS (
            SELECT f.p1 AS k1, m.record_key AS k2 FROM free f
            JOIN {members} m ON m.profile_id = f.p2
            UNION ALL
            SELECT m.record_key, f.p2 FROM free f JOIN {members} m ON m.profile_id = f.p1
            {record_level}
            UNION ALL {reviewer_matches}
        )
        SELECT DISTINCT least(k1, k2) AS record_key_l, greatest(k1, k2) AS record_key_r
        FROM e WHERE k1 <> k2""",
    )


def link_lake(
    home: Home,
    engine: str = "duckdb",
    mode: str = "full",
    *,
    retrain: bool = False,
    progress: Callable[[str], None] | None = None,
    reliability: dict[str, float] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Link the lake's silver records into the gold tables; returns a run summary.

    ``mode="incremental"`` scores only records new or changed since the last run and
    re-clusters only the nominals they touch; with no earlier run it does a full run.
    ``retrain`` trains a new model version first (also done when none exists).
    """
    if engine not in ("duckdb", "spark"):
        raise LinkError(f"unknown engine {engine!r}: use duckdb or spark")
    if mode not in ("full", "incremental"):
        raise LinkError(f"unknown mode {mode!r}: use full or incremental")
    started = time.perf_counter()
    # Modules the run needs later (sqlglot's DuckDB dialect for Splink's SQL, then the
    # control plane: SQLAlchemy and its models) take about a second to import;
    # importing them while DuckDB reads and standardises keeps that off a short run's
    # critical path.
    threading.Thread(target=_import_later_modules, args=(home,), daemon=True).start()
    lake = Lake(home.ensure().lake)
    snapshot = lake.require_current()
    # An incremental run builds on every table of an earlier run (a lake linked before
    # a table existed gets a full run first).
    incremental = mode == "incremental" and all(
        snapshot.has(t) for t in (STANDARDISED, FACTS, *GOLD_TABLES)
    )
    if threads is None and incremental:
        threads = incremental_threads(snapshot)
    con = duck.connect(snapshot, threads=threads, memory_limit=LINK_MEMORY_LIMIT)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    # Beyond its memory limit DuckDB spills to disk: under the hub's home, one folder
    # a run (DuckDB removes its files when the connection closes), not the cwd.
    spill = spill_dir(home, run_id)
    _q(con, f"SET temp_directory = {duck.sql_literal(str(spill))}")
    if incremental and retrain:
        raise LinkError("--retrain needs a full run (a new model rescales every pair)")
    ctx = RunContext(
        home=home,
        con=con,
        snapshot=snapshot,
        run_id=run_id,
        # replaced by the saved model once the records are read
        model=link_model.LinkModel("none", {}, Path(), {}),
        engine=engine,
        mode="incremental" if incremental else "full",
        progress=progress or (lambda _s: None),
    )
    with ctx.step("read silver"):
        _load_inputs(ctx, incremental)
    with ctx.step("standardise"):
        new_table = _standardise(ctx, incremental)
    with ctx.step("model"):
        if retrain or link_model.current_version(home) is None:
            trained, tf, summary = link_model.train(con, "std_all")
            link_model.save(home, trained, tf, summary)
        ctx.model = link_model.load(home)
    if (
        incremental
        and _count(con, "std_new") == 0
        and _count(con, "std_prev_keys") == _count(con, "gold.nominal_records")
        and not _decisions_since_last_run(ctx)
    ):
        return {
            "ok": True,
            "run_id": run_id,
            "mode": "incremental",
            "engine": engine,
            "new_records": 0,
            "changed": False,
            "seconds": round(time.perf_counter() - started, 3),
        }
    with ctx.step("score pairs"):
        if engine == "spark":
            import tempfile

            with tempfile.TemporaryDirectory(prefix="nominal-link-spark-") as tmp:
                score_spark(ctx, new_table, Path(tmp))
        else:
            score_duckdb(ctx, new_table)
    summary = _incremental(ctx, lake) if incremental else _full(ctx, lake, reliability)
    if not incremental:  # charts describe a whole run; incremental runs keep them
        with ctx.step("charts"):
            summary["charts"] = [str(p) for p in _charts(ctx, lake)]
    summary.update(
        {
            "ok": True,
            "run_id": run_id,
            "engine": engine,
            "model_version": ctx.model.version,
            "seconds": round(time.perf_counter() - started, 3),
            "timings": ctx.timings,
            "sizes": ctx.sizes,
        }
    )
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    return summary


def incremental_threads(snapshot: Snapshot) -> int:
    """DuckDB threads for an incremental run: one per row group of the earlier records.

    DuckDB parallelises a scan by Parquet row group (:data:`ROW_GROUP_ROWS` rows), and
    an incremental run's statements are scans of the earlier tables and joins of a
    delivery-sized set. Below two row groups a second thread has nothing to take
    over; it only waits for work, spinning: at 90,000 records an incremental run on
    two threads used about twice the CPU time of one thread for no shorter wall time.
    """
    groups = snapshot.rows(STANDARDISED) // ROW_GROUP_ROWS
    return max(1, min(os.cpu_count() or 1, groups))


def _import_later_modules(home: Home) -> None:
    import importlib

    # sqlglot (Splink's SQL) only when no compiled prediction can spare it
    modules = (
        []
        if compiled_sql.any_for(home, link_model.current_version(home))
        else ["sqlglot.dialects.duckdb"]
    )
    # SQLAlchemy only when the control plane is not a SQLite file with the link tables
    # (those are read and written with the standard library's sqlite3)
    lite = _sqlite_link_tables(home)
    if lite is None:
        modules.append("nominal.link.models")
    else:
        lite.close()
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # the run imports it again and reports any error itself
            log.debug("import of %s failed", module, exc_info=True)


def _charts(ctx: RunContext, lake: Lake) -> list[Path]:
    """Quality charts of the model (once per version) and of this run's clusters."""
    from nominal.link import charts

    written: list[Path] = []
    marker = ctx.home.reports / "linkage" / "match_weights.json"
    try:
        if ctx.model.meta.get("charted") is not True and (
            not marker.exists() or ctx.model.version not in marker.read_text()
        ):
            written += charts.model_charts(ctx.home, ctx.model)
        con = duck.connect(lake.require_current(), tables=["gold.nominal_records", "gold.pairs"])
        try:
            written += charts.run_charts(ctx.home, con)
        finally:
            con.close()
    except Exception as exc:  # charts are a report: a failure must not undo the link
        log.warning("linkage charts not written: %s", exc)
    return written


def _decisions_since_last_run(ctx: RunContext) -> bool:
    decisions = load_decisions(ctx.home)
    if not decisions:
        return False
    last = ctx.snapshot.summary.get("link_run_at")
    if not last:
        return True
    cutoff = datetime.fromisoformat(last).replace(tzinfo=None)
    return any(d[3] is not None and d[3] > cutoff for d in decisions)


def _full(ctx: RunContext, lake: Lake, reliability: dict[str, float] | None) -> dict[str, Any]:
    con = ctx.con
    with ctx.step("decide and cluster"):
        with ctx.step("decide and cluster: decide"):
            _decide(ctx, "scored")
        with ctx.step("decide and cluster: components"):
            _q(con, "CREATE OR REPLACE TABLE nodes AS SELECT unique_id AS record_key FROM std_all")
            clusters = cluster(con, "nodes", "edges")
        with ctx.step("decide and cluster: ids"):
            previous = None
            if _exists(con, "gold.nominal_records"):
                _q(
                    con,
                    "CREATE OR REPLACE TABLE prev_assign AS "
                    "SELECT record_key, nominal_id FROM gold.nominal_records",
                )
                previous = "prev_assign"
            assign_ids(ctx, clusters, previous)
            _q(con, "CREATE OR REPLACE TABLE assign AS SELECT * FROM new_assign")
    with ctx.step("golden nominals"):
        with ctx.step("golden nominals: facts"):
            build_record_facts(
                ctx, reliability if reliability is not None else dataset_reliability(ctx.home)
            )
        with ctx.step("golden nominals: survivorship"):
            _q(con, "CREATE OR REPLACE TABLE scope AS SELECT DISTINCT nominal_id FROM assign")
            build_nominals(ctx, "scope")
    with ctx.step("households"):
        with ctx.step("households: households"):
            build_households(ctx)
        with ctx.step("households: nominals"):
            finish_nominals(ctx)
            _q(
                con,
                "CREATE OR REPLACE TABLE nominal_pseudo_all AS SELECT nominal_id, nominal_pseudo FROM nominals_new",
            )
        with ctx.step("households: events"):
            build_events(ctx, None)
    with ctx.step("write gold"), lake.transaction("link") as tx:
        simple = {
            STANDARDISED: "SELECT * FROM std_all",
            FACTS: "SELECT * FROM facts",
            "gold.nominal_records": f"""SELECT f.record_key, f.nominal_id, f.dataset, f.agency,
                f.source_record_id, CAST(1.0 AS DOUBLE) AS cluster_probability,
                '{ctx.run_id}' AS linked_run FROM facts f""",
            "gold.nominals": "SELECT * FROM nominals_new",
            "gold.nominal_provenance": "SELECT * FROM provenance_new",
            "gold.pairs": "SELECT * EXCLUDE (override) FROM run_pairs",
            "gold.addresses": "SELECT * FROM addresses_new",
            "gold.residence": "SELECT * FROM residence_new",
            "gold.households": "SELECT * FROM households_new",
            "gold.household_members": "SELECT * FROM household_members_new",
            "gold.relationships": "SELECT * FROM relationships_new",
            "gold.events": "SELECT * FROM events_new",
        }
        for table, sql in simple.items():
            with ctx.step(f"write gold: {table}"):
                tx.replace(table, [_copy(con, tx, table, sql)])
        with ctx.step("write gold: blocking index"):
            _write_index(ctx, tx)
        _write_lineage(con, tx)
        with ctx.step("write gold: review queue"):
            queued = queue_reviews(ctx.home, con, ctx.run_id, _review_band(ctx))
        tx.commit(_run_summary(ctx))
    return _counts(ctx, queued) | {"mode": "full"}


def _review_band(ctx: RunContext) -> str:
    """The decided pairs a review item can come from: in a full DuckDB run only the
    profile pairs the model put in the review band are expanded to record pairs (a
    record pair is in the band only if its profile pair is), not all of them."""
    con = ctx.con
    if not _is_view(con, "run_pairs") or not _exists(con, "scored_profiles"):
        return "run_pairs"
    band = blocking.expand_sql(
        "(SELECT * FROM scored_profiles WHERE model_decision = 'review')", incremental=False
    )
    _q(
        con,
        f"""CREATE OR REPLACE VIEW review_band_pairs AS
        SELECT p.*, d.decision AS override,
               coalesce(d.decision, p.model_decision) AS decision
        FROM ({band}) p LEFT JOIN decisions_arrow d
          ON d.record_key_l = p.record_key_l AND d.record_key_r = p.record_key_r""",
    )
    return "review_band_pairs"


def _write_lineage(con: duckdb.DuckDBPyConnection, tx: SnapshotWriter) -> None:
    for table, rows in (
        ("gold.nominal_lineage", "lineage_new"),
        (HOUSEHOLD_LINEAGE, "household_lineage_new"),
    ):
        if _count(con, rows):
            tx.append(table, [_copy(con, tx, table, f"SELECT * FROM {rows}")])
        elif not tx.files(table):
            tx.replace(table, [_copy(con, tx, table, f"SELECT * FROM {rows}")])


def _run_summary(ctx: RunContext) -> dict[str, Any]:
    return {
        "link_run": ctx.run_id,
        "link_run_at": datetime.now(UTC).isoformat(),
        "link_mode": ctx.mode,
        "link_model_version": ctx.model.version,
        SILVER_SEEN: _silver_seen(ctx.snapshot),
    }


def _counts(ctx: RunContext, queued: int) -> dict[str, Any]:
    con = ctx.con
    # one statement for the counts, one for the lineage kinds (each is a round trip)
    records, nominals, pairs, matches = _q(
        con,
        """SELECT (SELECT count(*) FROM assign), (SELECT count(DISTINCT nominal_id) FROM assign),
                  (SELECT count(*) FROM scored),
                  (SELECT count(*) FROM run_pairs WHERE decision = 'match')""",
    )[0]
    kinds: dict[str, dict[str, int]] = {"n": {}, "h": {}}
    for unit, kind, n in _q(
        con,
        """SELECT 'n', kind, count(*) FROM lineage_new GROUP BY 2
        UNION ALL SELECT 'h', kind, count(*) FROM household_lineage_new GROUP BY 2""",
    ):
        kinds[unit][kind] = n
    return {
        "records": int(records),  # every record has one nominal
        "nominals": int(nominals),
        "pairs_scored": int(pairs),
        "matches": int(matches),
        "review_queued": queued,
        "lineage": kinds["n"],
        "household_lineage": kinds["h"],
    }


def cluster_small(con: duckdb.DuckDBPyConnection, nodes: str, edges: str) -> str:
    """Connected components of ``edges`` over ``nodes`` with a union-find in Python.

    For an incremental run's scope (the nominals a delivery touches: thousands of
    records, not millions) this is far cheaper than the dozen SQL statements of
    Splink's solver. Each component is labelled by its smallest record key, as
    Splink labels it, so ids are kept or minted the same way. Returns ``clusters``
    (record_key, cluster_id); every edge end must be a node.
    """
    keys = [r[0] for r in _q(con, f"SELECT record_key FROM {nodes}")]
    parent = {k: k for k in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for left, right in _q(con, f"SELECT record_key_l, record_key_r FROM {edges}"):
        a, b = root(left), root(right)
        if a != b:  # the smaller key stays the root: a component's label is its minimum
            parent[max(a, b)] = min(a, b)
    lists_table(
        con,
        "clusters",
        {"record_key": ("VARCHAR", keys), "cluster_id": ("VARCHAR", [root(k) for k in keys])},
    )
    return "clusters"


def _incremental(ctx: RunContext, lake: Lake) -> dict[str, Any]:
    """Link a delivery against the earlier run, doing work in proportion to it.

    Clusters are connected components of the match edges, so only the earlier
    nominals a new match edge reaches (or that lost a record, or hold a pair a
    reviewer decided since the last run) can change: they are re-clustered with the
    new records, every other nominal is kept as it is. Golden records are rebuilt
    for the changed nominals, households only at the addresses their records name,
    and each gold table gets only its changed rows (:func:`_write_incremental`).
    """
    con = ctx.con
    last = ctx.snapshot.summary.get("link_run_at")
    cutoff = (
        f"d.decided_at > TIMESTAMP '{datetime.fromisoformat(last).replace(tzinfo=None)}'"
        if last
        else "TRUE"
    )
    with ctx.step("decide and cluster"):
        register_decisions(con, load_decisions(ctx.home))
        _q(
            con,
            "CREATE OR REPLACE TABLE prev_assign AS "
            "SELECT record_key, nominal_id FROM gold.nominal_records",
        )
        # Earlier records withdrawn, or re-delivered with other details (those are
        # in std_new and were scored afresh): their earlier pairs no longer hold.
        if ctx.silver_delta:  # the earlier records are those standardised: the re-sent
            _q(
                con,
                "CREATE OR REPLACE TABLE lost AS SELECT record_key FROM prev_assign "
                "SEMI JOIN resent USING (record_key)",
            )
        else:
            _q(
                con,
                """CREATE OR REPLACE TABLE lost AS SELECT record_key FROM prev_assign
                ANTI JOIN std_prev_keys k ON k.unique_id = prev_assign.record_key""",
            )
        # This run's pairs decided, to find the earlier nominals a match reaches.
        _decide(ctx, "scored", registered=True, edges=False)
        # Affected: nominals a new match edge reaches, nominals that lost a record,
        # and nominals holding a pair a reviewer decided since the last run. Earlier
        # clusters are connected components of earlier edges, so no earlier edge
        # leaves an affected nominal: the scope is closed without a search.
        _q(
            con,
            f"""CREATE OR REPLACE TABLE recent_records AS
            SELECT d.record_key_l AS record_key FROM decisions_arrow d WHERE {cutoff}
            UNION SELECT d.record_key_r FROM decisions_arrow d WHERE {cutoff}""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE touched_records AS
            SELECT record_key_l AS record_key FROM run_pairs WHERE decision = 'match'
            UNION SELECT record_key_r FROM run_pairs WHERE decision = 'match'
            UNION SELECT record_key FROM lost
            UNION SELECT record_key FROM recent_records""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE affected AS
            SELECT DISTINCT nominal_id FROM prev_assign
            SEMI JOIN touched_records t USING (record_key)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE prev_scope AS SELECT * FROM prev_assign
            SEMI JOIN affected USING (nominal_id)""",
        )
        # Broken: affected nominals whose own edges may no longer hold (a record went
        # or changed, or a reviewer decided one of their pairs since).
        _q(
            con,
            """CREATE OR REPLACE TABLE broken AS
            SELECT DISTINCT nominal_id FROM prev_scope
            WHERE record_key IN (SELECT record_key FROM lost)
               OR record_key IN (SELECT record_key FROM recent_records)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE nodes_old AS SELECT record_key, nominal_id FROM prev_scope
            ANTI JOIN lost USING (record_key)""",
        )
        old_pairs = "(SELECT NULL::VARCHAR record_key_l, NULL::VARCHAR record_key_r LIMIT 0)"
        if _count(con, "broken"):
            _q(
                con,
                """CREATE OR REPLACE TABLE broken_nodes AS SELECT record_key FROM nodes_old
                SEMI JOIN broken USING (nominal_id)""",
            )
            old_pairs = """(SELECT p.record_key_l, p.record_key_r
                FROM gold.pairs p
                SEMI JOIN broken_nodes a ON a.record_key = p.record_key_l
                SEMI JOIN broken_nodes b ON b.record_key = p.record_key_r
                LEFT JOIN decisions_arrow d
                  ON d.record_key_l = p.record_key_l AND d.record_key_r = p.record_key_r
                WHERE p.model_decision = 'match' AND d.decision IS DISTINCT FROM 'non_match')"""
        # Each unbroken earlier nominal is connected by its earlier edges, all still
        # valid, so it enters the clustering as one node (its smallest record, which
        # is also the label its component would get); a broken one's records are
        # joined by its earlier model matches, re-decided with today's reviewer
        # decisions. Then this run's matches and every reviewer match in the scope.
        _q(
            con,
            """CREATE OR REPLACE TABLE node_of AS
            SELECT record_key, min(record_key) OVER (PARTITION BY nominal_id) AS node
            FROM nodes_old ANTI JOIN broken USING (nominal_id)
            UNION ALL SELECT record_key, record_key FROM nodes_old SEMI JOIN broken USING (nominal_id)
            UNION ALL SELECT unique_id, unique_id FROM std_new""",
        )
        _q(
            con,
            "CREATE OR REPLACE TABLE cc_nodes AS SELECT DISTINCT node AS record_key FROM node_of",
        )
        _q(
            con,
            f"""CREATE OR REPLACE TABLE scope_edges AS
            WITH e AS (
                SELECT * FROM {old_pairs}
                UNION ALL SELECT record_key_l, record_key_r FROM run_pairs
                WHERE decision = 'match'
                UNION ALL SELECT d.record_key_l, d.record_key_r FROM decisions_arrow d
                WHERE d.decision = 'match'
            )
            SELECT DISTINCT a.node AS record_key_l, b.node AS record_key_r FROM e
            JOIN node_of a ON a.record_key = e.record_key_l
            JOIN node_of b ON b.record_key = e.record_key_r
            WHERE a.node <> b.node""",
        )
        cluster_small(con, "cc_nodes", "scope_edges")
        _q(
            con,
            """CREATE OR REPLACE TABLE scope_clusters AS
            SELECT n.record_key, c.cluster_id FROM node_of n
            JOIN clusters c ON c.record_key = n.node""",
        )
        clusters = "scope_clusters"
        assign_ids(ctx, clusters, "prev_scope")
        _q(
            con,
            """CREATE OR REPLACE TABLE assign AS
            SELECT record_key, nominal_id FROM prev_assign ANTI JOIN affected USING (nominal_id)
            UNION ALL SELECT record_key, nominal_id FROM new_assign""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE changed_nominals AS
            SELECT DISTINCT nominal_id FROM new_assign""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE changed_records AS
            SELECT n.record_key FROM new_assign n LEFT JOIN prev_assign p USING (record_key)
            WHERE p.nominal_id IS DISTINCT FROM n.nominal_id""",
        )
    with ctx.step("golden nominals"):
        # The addresses and family references the scope's earlier records name (their
        # nominals are the affected ones): a narrow read of link.facts.
        _q(
            con,
            """CREATE OR REPLACE TABLE prev_names AS
            SELECT address_key, dataset, household_ref FROM link.facts
            SEMI JOIN prev_scope USING (record_key)""",
        )
        # Addresses whose households may change: every address a record of a changed
        # nominal names, before (stored facts) or now (the new records).
        _q(
            con,
            f"""CREATE OR REPLACE TABLE touched_addr AS
            SELECT address_key FROM prev_names WHERE address_key IS NOT NULL
            UNION SELECT {ADDRESS_KEY_SQL} FROM std_new s
            WHERE {ADDRESS_KEY_SQL} IS NOT NULL""",
        )
        # Relationships: every family reference a changed nominal's record holds, now or
        # before, with all the records sharing it.
        _q(
            con,
            """CREATE OR REPLACE TABLE ref_groups AS
            SELECT DISTINCT dataset, household_ref FROM (
                SELECT dataset, household_ref FROM prev_names
                UNION ALL SELECT dataset, household_ref FROM ident_new
            ) WHERE household_ref IS NOT NULL""",
        )
        # Then every stored fact needed, whole, in one read: the scope's earlier records
        # (``prev_facts``) and the others (unchanged nominals, so their stored nominal
        # id is current) at a touched address or holding one of those references.
        _q(
            con,
            """CREATE OR REPLACE TABLE stored_facts AS
            SELECT * FROM (
                SELECT f.*, f.record_key IN (SELECT record_key FROM prev_scope) AS in_scope
                FROM link.facts f
            ) f
            WHERE in_scope OR f.address_key IN (SELECT address_key FROM touched_addr)
               OR EXISTS (SELECT 1 FROM ref_groups g WHERE g.dataset = f.dataset
                          AND g.household_ref = f.household_ref)""",
        )
        _q(
            con,
            """CREATE OR REPLACE VIEW prev_facts AS
            SELECT * EXCLUDE (in_scope) FROM stored_facts WHERE in_scope""",
        )
        _q(
            con,
            """CREATE OR REPLACE VIEW other_facts AS
            SELECT * EXCLUDE (in_scope) FROM stored_facts WHERE NOT in_scope""",
        )
        # Facts of the changed nominals' records: computed for the new ones, stored for
        # the others (with their nominal of this run).
        _q(con, "CREATE OR REPLACE TABLE facts_only AS SELECT unique_id AS record_key FROM std_new")
        build_record_facts(
            ctx,
            dataset_reliability(ctx.home),
            only="facts_only",
            sources=("ident_new", "std_new"),
            stored="prev_facts",
            # the changed nominals' records: the new ones and the scope's earlier ones
            assign="new_assign",
        )
        # Households at the touched addresses: everyone's records there.
        _q(
            con,
            """CREATE OR REPLACE VIEW hh_facts AS SELECT * FROM facts
            UNION ALL BY NAME SELECT * FROM other_facts
            WHERE address_key IN (SELECT address_key FROM touched_addr)""",
        )
        build_households(ctx, addresses="touched_addr", hh_facts="hh_facts")
        # Nominals whose current household moved need their row rewritten too.
        _q(
            con,
            """CREATE OR REPLACE TABLE household_changed AS
            SELECT n.nominal_id FROM current_household n
            LEFT JOIN gold.nominals g USING (nominal_id)
            WHERE g.household_id IS DISTINCT FROM n.household_id
            UNION SELECT nominal_id FROM household_members_new
            WHERE household_id IN (SELECT to_household_id FROM household_lineage_new)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE scope AS
            SELECT nominal_id FROM changed_nominals
            UNION SELECT nominal_id FROM household_changed""",
        )
        # Golden records of the changed nominals; an unchanged nominal whose household
        # moved keeps its stored row with the new household (its records, and so its
        # attributes and provenance, are as they were).
        build_nominals(ctx, "changed_nominals")
        finish_nominals(ctx)
        _q(
            con,
            """INSERT INTO nominals_new BY NAME
            SELECT g.* REPLACE (h.household_id AS household_id) FROM gold.nominals g
            LEFT JOIN current_household h USING (nominal_id)
            WHERE g.nominal_id IN (SELECT nominal_id FROM household_changed)
              AND g.nominal_id NOT IN (SELECT nominal_id FROM changed_nominals)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE ref_facts AS
            SELECT dataset, household_ref, nominal_id, relationship FROM other_facts
            SEMI JOIN ref_groups g USING (dataset, household_ref)
            UNION ALL SELECT dataset, household_ref, nominal_id, relationship FROM facts
            SEMI JOIN ref_groups g USING (dataset, household_ref)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE rel_changed AS
            SELECT nominal_id FROM changed_nominals UNION SELECT nominal_id FROM affected""",
        )
        build_relationships(con, "ref_facts")
        _q(
            con,
            """DELETE FROM relationships_new
            WHERE nominal_id NOT IN (SELECT nominal_id FROM rel_changed)
              AND related_nominal_id NOT IN (SELECT nominal_id FROM rel_changed)""",
        )
    with ctx.step("events"):
        # Events to (re)write. An event row is its silver event with the record's
        # nominal (id and pseudonym) and the household the nominal lived in on its date
        # (else its current one), so it changes only for a record that is new, re-sent
        # or moved to another nominal, or whose nominal's memberships (household, from,
        # to) or current household changed; the other events of the changed nominals
        # stay as they are.
        _q(
            con,
            """CREATE OR REPLACE TABLE member_changed AS
            WITH now AS (
                SELECT household_id, nominal_id, from_date, to_date FROM members_all
                WHERE nominal_id IN (SELECT nominal_id FROM scope)
            ),
            before AS (
                SELECT household_id, nominal_id, from_date, to_date FROM gold.household_members
                WHERE nominal_id IN (SELECT nominal_id FROM scope)
            )
            SELECT nominal_id FROM (SELECT * FROM now EXCEPT ALL SELECT * FROM before)
            UNION SELECT nominal_id FROM (SELECT * FROM before EXCEPT ALL SELECT * FROM now)
            UNION SELECT nominal_id FROM household_changed""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE event_scope AS
            SELECT record_key FROM assign SEMI JOIN member_changed USING (nominal_id)
            UNION SELECT record_key FROM changed_records
            UNION SELECT record_key FROM facts_only""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE nominal_pseudo_all AS
            SELECT nominal_id, nominal_pseudo FROM nominals_new
            UNION ALL SELECT nominal_id, nominal_pseudo FROM gold.nominals
            WHERE nominal_id NOT IN (SELECT nominal_id FROM nominals_new)""",
        )
        _q(
            con,
            """CREATE OR REPLACE TABLE households_all AS
            SELECT household_id, household_pseudo FROM households_new
            UNION ALL SELECT household_id, household_pseudo FROM gold.households
            WHERE household_id NOT IN (SELECT household_id FROM hh_dropped)""",
        )
        build_events(ctx, "event_scope", members="members_all", households="households_all")
    with ctx.step("write gold"), lake.transaction("link") as tx:
        _write_incremental(ctx, tx)
        _write_lineage(con, tx)
        queued = queue_reviews(ctx.home, con, ctx.run_id, scored_only=True)
        tx.commit(_run_summary(ctx))
    return _counts(ctx, queued) | {
        "mode": "incremental",
        "new_records": _count(con, "std_new"),
        "affected_nominals": _count(con, "affected"),
        # whether only the silver files delivered since the last run were read whole
        "silver_since_last_run": ctx.silver_delta,
    }


def _write_incremental(ctx: RunContext, tx: SnapshotWriter) -> None:
    """Each gold table: earlier rows of changed keys dropped, the new rows appended.

    Files holding none of the dropped rows are kept as they are (see
    :func:`_replace_rows`), so a delivery whose records join existing nominals mostly
    appends.
    """
    con = ctx.con
    run = ctx.run_id
    lost = "(SELECT record_key FROM lost)"
    changed = "(SELECT record_key FROM changed_records)"
    nominals = "(SELECT nominal_id FROM scope UNION SELECT nominal_id FROM affected)"
    # nominals whose attributes, provenance and residence were rebuilt
    rebuilt = "(SELECT nominal_id FROM rel_changed)"
    dropped_hh = "(SELECT household_id FROM hh_dropped)"
    # Records whose nominal changed, less the new ones (no earlier row to drop).
    _q(
        con,
        """CREATE OR REPLACE TABLE moved_records AS SELECT record_key FROM changed_records
        SEMI JOIN prev_assign USING (record_key)""",
    )
    moved = "(SELECT record_key FROM moved_records)"
    record_tables = ("lost", "moved_records")
    writes: list[tuple[str, str, str, tuple[str, ...]]] = [
        (STANDARDISED, "SELECT * FROM std_new", f"t.unique_id IN {lost}", ("lost",)),
        (
            FACTS,
            f"SELECT * FROM facts WHERE record_key IN {changed}",
            f"t.record_key IN {moved} OR t.record_key IN {lost}",
            record_tables,
        ),
        (
            "gold.pairs",
            f"SELECT * EXCLUDE (override) FROM run_pairs WHERE linked_run = '{run}'",
            f"t.record_key_l IN {lost} OR t.record_key_r IN {lost}",
            ("lost",),
        ),
        (
            "gold.nominal_records",
            f"""SELECT f.record_key, f.nominal_id, f.dataset, f.agency, f.source_record_id,
                CAST(1.0 AS DOUBLE) AS cluster_probability, '{run}' AS linked_run
                FROM facts f WHERE f.record_key IN {changed}""",
            f"t.record_key IN {moved} OR t.record_key IN {lost}",
            record_tables,
        ),
        ("gold.nominals", "SELECT * FROM nominals_new", f"t.nominal_id IN {nominals}", ()),
        (
            "gold.nominal_provenance",
            "SELECT * FROM provenance_new",
            f"t.nominal_id IN {rebuilt}",
            (),
        ),
        (
            "gold.events",
            "SELECT * FROM events_new",
            f"t.record_key IN (SELECT record_key FROM event_scope) OR t.record_key IN {lost}",
            (),
        ),
        (
            "gold.addresses",
            "SELECT * FROM addresses_new",
            "t.address_key IN (SELECT address_key FROM touched_addr)",
            ("touched_addr",),
        ),
        ("gold.residence", "SELECT * FROM residence_new", f"t.nominal_id IN {rebuilt}", ()),
        (
            "gold.households",
            "SELECT * FROM households_new",
            f"t.household_id IN {dropped_hh}",
            ("hh_dropped",),
        ),
        (
            "gold.household_members",
            "SELECT * FROM household_members_new",
            f"t.household_id IN {dropped_hh}",
            ("hh_dropped",),
        ),
        (
            "gold.relationships",
            "SELECT * FROM relationships_new",
            "t.nominal_id IN (SELECT nominal_id FROM rel_changed) "
            "OR t.related_nominal_id IN (SELECT nominal_id FROM rel_changed)",
            ("rel_changed",),
        ),
    ]
    # which of the tables naming the rows to drop are empty: one statement for all
    sources = sorted({t for *_rest, tables in writes for t in tables})
    counted = _q(con, "SELECT " + ", ".join(f"(SELECT count(*) = 0 FROM {t})" for t in sources))
    empty = dict(zip(sources, counted[0], strict=True))
    for table, new_rows, drop_where, drop_from in writes:
        _replace_rows(con, tx, table, new_rows, drop_where, drop_from, empty)
    _write_index(ctx, tx, empty)


# --------------------------------------------------------------------------------------
# Stable ids: resolve a possibly vanished id
# --------------------------------------------------------------------------------------
def resolve(nominal_id: str, home: Home | None = None) -> str | None:
    """The live nominal id for ``nominal_id`` (itself if live; None if retired).

    Follows ``forwarded`` rows of ``gold.nominal_lineage`` so that anything holding an
    old id (a task, a review, an audit record) finds the person it meant.
    """
    from nominal.config import home as default_home

    chosen = home or default_home()
    snap = Lake(chosen.lake).require_current()
    if not snap.has("gold.nominal_lineage"):
        raise LakeError("no link run yet: gold.nominal_lineage is missing")
    con = duck.connect(snap, tables=["gold.nominal_lineage", "gold.nominals"])
    try:
        forwards = dict(
            _q(
                con,
                """SELECT from_nominal_id, to_nominal_id FROM gold.nominal_lineage
                WHERE kind = 'forwarded'
                QUALIFY row_number() OVER (PARTITION BY from_nominal_id ORDER BY changed_at DESC) = 1""",
            )
        )
        live = {
            r[0]
            for r in _q(
                con,
                f"SELECT nominal_id FROM gold.nominals WHERE nominal_id = {duck.sql_literal(nominal_id)}",
            )
        }
    finally:
        con.close()
    current: str | None = nominal_id
    seen: set[str] = set()
    while current is not None and current not in live and current in forwards:
        if current in seen:
            break
        seen.add(current)
        current = forwards[current]
        if current is not None:
            live |= {current} if _is_live(chosen, current) else set()
    return current if current is None or current in live else None


def _is_live(home: Home, nominal_id: str) -> bool:
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap, tables=["gold.nominals"])
    try:
        return bool(
            _q(
                con,
                f"SELECT count(*) FROM gold.nominals WHERE nominal_id = {duck.sql_literal(nominal_id)}",
            )[0][0]
        )
    finally:
        con.close()


def table_rows(home: Home, table: str, where: str = "TRUE") -> list[dict[str, Any]]:
    """Rows of a gold table (small results; used by the CLI and tests)."""
    snap = Lake(home.lake).require_current()
    con = duck.connect(snap, tables=[table])
    try:
        rel = con.sql(f"SELECT * FROM {table} WHERE {where}")
        cols = rel.columns
        return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()
