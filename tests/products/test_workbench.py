"""The analyst workbench: only permitted, pseudonymised content; only SELECT; audited."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

import nominal
from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.models import AuditEntry
from nominal.products import workbench
from nominal.products.lakeview import ProductsError

from .governance import SHARED, govern_hub

IDENTIFYING = {
    "nominal_id",
    "household_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "postcode",
    "address_line_1",
    "nhs_number",
    "ni_number",
    "police_id",
    "uprn",
}


@pytest.fixture
def bench(con: duckdb.DuckDBPyConnection) -> workbench.Workbench:
    return workbench.restricted_connection(con, ("crimes", "police_incidents"))


def test_only_permitted_datasets_and_no_identifiers(bench: workbench.Workbench, con) -> None:  # type: ignore[no-untyped-def]
    got = dict(bench.run("SELECT dataset, count(*) FROM events GROUP BY 1").rows)
    expected = dict(
        con.execute(
            "SELECT dataset, count(*) FROM gold.events WHERE dataset IN ('crimes', 'police_incidents') GROUP BY 1"
        ).fetchall()
    )
    assert got == expected
    for table in bench.tables:
        columns = {r[0] for r in bench.con.execute(f'DESCRIBE "{table}"').fetchall()}
        assert not columns & IDENTIFYING, (table, columns & IDENTIFYING)


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE events",
        "SELECT 1; SELECT 2",
        "INSERT INTO events SELECT * FROM events",
        "UPDATE events SET agency = 'x'",
        "DELETE FROM events",
        "CREATE TABLE x AS SELECT 1",
        "SET enable_external_access = true",
        "ATTACH '/tmp/other.db'",
        "COPY events TO '/tmp/out.csv'",
        "PRAGMA version",
        "SELECT * FROM read_parquet('/etc/hostname')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM gold.events",
        "SELEC 1",
    ],
)
def test_anything_but_a_read_of_the_bench_is_refused(bench: workbench.Workbench, sql: str) -> None:
    with pytest.raises(workbench.QueryRejected):
        bench.run(sql)


def test_files_stay_unreadable_even_past_the_parser(
    bench: workbench.Workbench, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(duckdb.Error):
        bench.con.execute(f"SELECT * FROM read_csv('{secret}')").fetchall()
    with pytest.raises(duckdb.Error):
        bench.con.execute("SET enable_external_access = true")


def test_rows_are_capped(bench: workbench.Workbench) -> None:
    result = bench.run("SELECT * FROM events", max_rows=10)
    assert len(result.rows) == 10 and result.truncated


def test_connect_is_restricted_by_agreements_and_audited(gold_home: Home, town: Path) -> None:
    control = ControlPlane(gold_home.database_url)
    try:
        govern_hub(control, town / "contracts")
        con = nominal.connect(username="ana", purpose="research", home=gold_home)
        assert isinstance(con, duckdb.DuckDBPyConnection)
        datasets = {r[0] for r in con.execute("SELECT DISTINCT dataset FROM events").fetchall()}
        assert datasets and datasets <= set(SHARED)
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_parquet('x.parquet')").fetchall()
        with pytest.raises(ProductsError, match="token"):
            nominal.connect("nominal_bad_token", home=gold_home)
        with control.session() as s:
            entry = s.scalars(
                sa.select(AuditEntry)
                .where(AuditEntry.action == "workbench_connect")
                .order_by(AuditEntry.seq.desc())
            ).first()
            assert entry is not None and entry.username == "ana" and entry.outcome == "allowed"
            assert entry.purpose == "research"
    finally:
        control.dispose()
