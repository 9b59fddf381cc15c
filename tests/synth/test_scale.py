"""A larger town keeps the same guarantees (slow: run with ``pytest -m slow``)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from nominal.synth import generate


@pytest.mark.slow
def test_fifty_thousand_people_stay_consistent(tmp_path: Path) -> None:
    summary = generate(tmp_path / "t", 50_000, seed=11)
    assert summary.people == 50_000
    truth = tmp_path / "t" / "truth"
    con = duckdb.connect()
    overlaps, unresolved, written = con.execute(
        f"""SELECT
              (SELECT count(*) FROM (
                 SELECT to_date, lead(from_date) OVER (PARTITION BY person_id ORDER BY from_date) nf
                 FROM '{truth}/residence.parquet') WHERE nf IS NOT NULL AND (to_date IS NULL OR to_date > nf)),
              (SELECT count(*) FROM '{truth}/records.parquet'
                 WHERE person_id NOT IN (SELECT person_id FROM '{truth}/people.parquet')),
              (SELECT count(*) FROM '{truth}/records.parquet')"""
    ).fetchone()
    assert overlaps == 0 and unresolved == 0
    assert written == summary.total_records
    outcomes = con.execute(
        f"""SELECT outcome, sum(realised), sum(probability), sqrt(sum(probability * (1 - probability)))
            FROM '{truth}/outcomes.parquet' GROUP BY 1"""
    ).fetchall()
    for _name, realised, expected, sd in outcomes:
        assert abs(realised - expected) <= 6 * sd + 1
