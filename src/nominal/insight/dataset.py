"""Model rows: one unit as of one date, its features, its groups and its outcome.

Rows for several as-of dates make a training set; the outcome of a row is read from
events in the window after its as-of date (never used as a feature). Rows as of a date
whose window is not over yet have an incomplete outcome and are only ever scored.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from nominal.engines.lake import Snapshot
from nominal.insight import features
from nominal.insight.specs import ModelSpec

KEY_COLUMNS = ("unit_id", "as_of", "household_id", "oa_code", "sex", "ethnicity")


def window_end(as_of: date, months: int) -> date:
    years, rem = divmod(months, 12)
    month = as_of.month + rem
    year = as_of.year + years + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(as_of.day, 28) if (month == 2 and as_of.day > 28) else as_of.day
    return date(year, month, day)


def _columns(con: duckdb.DuckDBPyConnection, table: str, prefix: str) -> list[str]:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return [n for n in names if n.startswith(prefix)]


def unit_rows(con: duckdb.DuckDBPyConnection, spec: ModelSpec, as_of: date) -> pd.DataFrame:
    """Rows of ``spec``'s population as of ``as_of`` (after :func:`features.build` on ``con``)."""
    t = f"DATE '{as_of.isoformat()}'"
    end = f"DATE '{window_end(as_of, spec.window_months).isoformat()}'"
    population = spec.population_sql.format(t=t, end=end)
    outcome = spec.outcome_sql
    h_cols = ", ".join(f"h.{c}" for c in _columns(con, "fh", "h_"))
    a_cols = ", ".join(f"a.{c}" for c in _columns(con, "fa", "a_"))
    if spec.unit == "household":
        sql = f"""
        WITH ref AS (
          SELECT m.household_id, arg_max(n.sex, m.age) AS sex,
                 arg_max(n.ethnicity, m.age) AS ethnicity
          FROM members m JOIN gold.nominals n USING (nominal_id)
          WHERE m.age >= 18 GROUP BY m.household_id),
        lab AS (
          SELECT DISTINCT m.household_id AS unit_id FROM gold.events e
          JOIN members m USING (nominal_id)
          WHERE e.event_date >= {t} AND e.event_date < {end} AND {outcome})
        SELECT u.household_id AS unit_id, u.as_of, u.household_id, u.oa_code,
               ref.sex, ref.ethnicity, {h_cols.replace("h.", "u.")}, {a_cols},
               CAST(lab.unit_id IS NOT NULL AS INTEGER) AS label
        FROM fh u
        LEFT JOIN fa a ON a.oa_code = u.oa_code
        LEFT JOIN ref USING (household_id)
        LEFT JOIN lab ON lab.unit_id = u.household_id
        WHERE {population}
        ORDER BY unit_id"""
    else:
        p_cols = ", ".join(f"u.{c}" for c in _columns(con, "fp", "p_"))
        sql = f"""
        WITH lab AS (
          SELECT DISTINCT e.nominal_id AS unit_id FROM gold.events e
          WHERE e.event_date >= {t} AND e.event_date < {end} AND {outcome})
        SELECT u.nominal_id AS unit_id, u.as_of, u.household_id, h.oa_code,
               u.sex, u.ethnicity, {p_cols}, {h_cols}, {a_cols},
               CAST(lab.unit_id IS NOT NULL AS INTEGER) AS label
        FROM fp u LEFT JOIN fh h USING (household_id)
        LEFT JOIN fa a ON a.oa_code = h.oa_code
        LEFT JOIN lab ON lab.unit_id = u.nominal_id
        WHERE {population}
        ORDER BY unit_id"""
    frame = con.sql(sql).df()
    feature_cols = [c for c in frame.columns if c[:2] in ("p_", "h_", "a_")]
    frame[feature_cols] = frame[feature_cols].fillna(0).astype(float)
    # a unit with no household at the as-of date has no household or area features
    return frame.copy()


def rows_for_dates(
    snapshot: Snapshot,
    specs: list[ModelSpec],
    dates: list[date],
    respect_received: bool | None = None,
) -> dict[str, pd.DataFrame]:
    """Model rows of each spec over several as-of dates (features built once per date)."""
    from nominal.engines.duck import connect

    con = connect(
        snapshot,
        tables=[
            "gold.events",
            "gold.nominals",
            "gold.household_members",
            "gold.households",
            "reference.output_areas",
        ],
    )
    parts: dict[str, list[pd.DataFrame]] = {s.name: [] for s in specs}
    for as_of in dates:
        features.build(snapshot, as_of, con=con, respect_received=respect_received)
        for spec in specs:
            parts[spec.name].append(unit_rows(con, spec, as_of))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c[:2] in ("p_", "h_", "a_")]
