"""Point-in-time features of people, households and output areas, in DuckDB SQL.

A feature "as of T" may use only what the hub could have known at T: events that
happened before T (``event_date < T``) **and** had reached the hub by then
(``received_at <= T``). Household membership is taken as it stood at T, and the area
of a household is the output area of its latest event before T. Whether a case was
still open at T uses its end date only to say "not yet ended at T", never the date
itself. Leakage is the classic failure of risk models, so tests/insight check that
adding future events to the lake changes no feature as of T.

Features are plain numbers named ``p_*`` (person), ``h_*`` (household) and ``a_*``
(area); :mod:`nominal.insight.describe` turns each into words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from nominal.engines.lake import Lake, Snapshot

# Involvements with a start and an end (a plan, an episode, a claim, an order).
CASE_DATASETS = (
    "cin_cp_plans",
    "mental_health",
    "substance_misuse",
    "probation",
    "benefits",
    "early_help",
)

# The datasets the hub's standard feeds deliver; every one gets its own counts so
# that a model's columns do not depend on which datasets a given lake happens to hold.
STANDARD_DATASETS = (
    "police_incidents",
    "crimes",
    "domestic_abuse",
    "missing_persons",
    "anti_social_behaviour",
    "csc_referrals",
    "cin_cp_plans",
    "school_attendance",
    "school_exclusions",
    "early_years",
    "ae_attendances",
    "ambulance_callouts",
    "mental_health",
    "substance_misuse",
    "homelessness",
    "fire_incidents",
    "home_fire_safety_visits",
    "probation",
    "benefits",
    "early_help",
)

# Records that summarise a period (a pupil's attendance over an academic year, dated
# at its start): what they say is known only once the period is over, whatever the
# record's own date or delivery time.
PERIOD_DATASETS = ("school_attendance",)

# Area event rates per 1,000 residents over the last 12 months.
AREA_DATASETS = (
    "police_incidents",
    "anti_social_behaviour",
    "domestic_abuse",
    "crimes",
    "csc_referrals",
    "missing_persons",
)

NO_EVENT_DAYS = 3 * 365 + 1  # "days since" when nothing was recorded in three years

EXPLOITATION = "('child sexual exploitation', 'child criminal exploitation')"

# Counts over everything known before T; a temporary column, replaced by a rate per year
# of history (:func:`_rate_columns`). Training mixes as-of dates with one to five years of
# history behind them, so a bare "ever" count means different things at different dates:
# the latent propensities the outcomes follow are steady, and a yearly rate estimates them
# the same way at every date.
EVER = "ever__"

# Per-person yearly rates whose highest value among a household's adults is a feature of
# its own: the adults' difficulties (substance misuse above all) act through the worst
# affected adult, which a sum over the household blurs with its size.
ADULT_MAX = (
    "alcohol_drugs",
    "substance_misuse",
    "police_incidents",
    "mental_health",
    "crime_suspect",
    "probation",
    "ae_attendances",
)


@dataclass(frozen=True)
class FeatureSet:
    """Features of every unit as of one date."""

    as_of: date
    person: pa.Table
    household: pa.Table
    area: pa.Table


def _d(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def age_sql(dob: str, t: str) -> str:
    """Age in completed years at ``t`` (DuckDB's year difference counts boundaries)."""
    return (
        f"(date_diff('year', {dob}, {t}) - CASE WHEN month({t}) * 100 + day({t}) "
        f"< month({dob}) * 100 + day({dob}) THEN 1 ELSE 0 END)"
    )


def _known_events(
    con: duckdb.DuckDBPyConnection, as_of: date, respect_received: bool = True
) -> None:
    """The events the hub knew of at ``as_of`` (temp table ``known``).

    ``respect_received=False`` drops the ``received_at`` condition: only for training on
    a history that was loaded in bulk after the fact (every ``received_at`` is the load
    date), where the condition would hide every past event. Model cards say so.
    """
    t = _d(as_of)
    received = f"AND received_at <= CAST({t} AS TIMESTAMP)" if respect_received else ""
    periods = ", ".join(f"'{d}'" for d in PERIOD_DATASETS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE known AS
        SELECT nominal_id, event_key, dataset, agency, event_type, event_date, event_end_date,
               oa_code,
               attributes, date_diff('day', event_date, {t}) AS days_ago,
               event_date < {t} AND (event_end_date IS NULL OR event_end_date >= {t})
                 AS open_at
        FROM gold.events
        WHERE event_date < {t} {received}
          AND (dataset NOT IN ({periods}) OR coalesce(event_end_date, event_date) < {t})
          AND nominal_id IS NOT NULL
        """
    )


def _members(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Who lived in which household at ``as_of`` (temp table ``members``)."""
    t = _d(as_of)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE members AS
        SELECT m.household_id, m.nominal_id,
               {age_sql("n.date_of_birth", t)} AS age
        FROM gold.household_members m JOIN gold.nominals n USING (nominal_id)
        WHERE m.from_date <= {t} AND (m.to_date IS NULL OR m.to_date > {t})
          AND n.date_of_birth < {t}
        QUALIFY row_number() OVER (PARTITION BY m.nominal_id
                                   ORDER BY m.from_date DESC, m.household_id) = 1
        """
    )


def _count_columns(prefix: str, datasets: tuple[str, ...]) -> str:
    cols = []
    for ds in datasets:
        cols += [
            f"count(*) FILTER (WHERE dataset = '{ds}' AND days_ago <= 365) AS {prefix}_{ds}_12m",
            f"count(*) FILTER (WHERE dataset = '{ds}' AND days_ago <= 1095) AS {prefix}_{ds}_3y",
            # latent traits (propensities) show best in long histories of rare events
            f"count(*) FILTER (WHERE dataset = '{ds}' AND days_ago <= 1826) AS {prefix}_{ds}_5y",
            f"coalesce(min(days_ago) FILTER (WHERE dataset = '{ds}' AND days_ago <= 1095), "
            f"{NO_EVENT_DAYS}) AS {prefix}_{ds}_days_since",
            # everything known, turned into a yearly rate by :func:`_rate_columns`
            f"count(*) FILTER (WHERE dataset = '{ds}') AS {EVER}{prefix}_{ds}",
        ]
    return ",\n".join(cols)


def _specific_columns(prefix: str) -> str:
    """Signals within datasets: DASH grades, exploitation referrals, open cases, prior outcomes."""
    a = "json_extract_string(attributes, '$.{}')"
    cases = ", ".join(f"'{c}'" for c in CASE_DATASETS)
    return f""",
        count(DISTINCT agency) FILTER (WHERE days_ago <= 1095) AS {prefix}_agencies_3y,
        count(DISTINCT agency) FILTER (WHERE days_ago <= 365) AS {prefix}_agencies_12m,
        count(*) FILTER (WHERE days_ago <= 1095) AS {prefix}_events_3y,
        count(*) FILTER (WHERE dataset IN ({cases}) AND open_at) AS {prefix}_open_cases,
        count(*) FILTER (WHERE dataset = 'domestic_abuse' AND {a.format("dash_risk")} = 'high'
                         AND days_ago <= 1826) AS {prefix}_da_high_5y,
        count(*) FILTER (WHERE dataset = 'domestic_abuse'
                         AND {a.format("dash_risk")} = 'medium' AND days_ago <= 1826)
            AS {prefix}_da_medium_5y,
        count(*) FILTER (WHERE dataset = 'domestic_abuse' AND {a.format("role")} = 'victim'
                         AND days_ago <= 1826) AS {prefix}_da_victim_5y,
        count(*) FILTER (WHERE dataset = 'domestic_abuse' AND {a.format("role")} = 'suspect'
                         AND days_ago <= 1826) AS {prefix}_da_suspect_5y,
        count(*) FILTER (WHERE dataset = 'crimes' AND {a.format("role")} = 'suspect'
                         AND days_ago <= 1826) AS {prefix}_crime_suspect_5y,
        count(*) FILTER (WHERE dataset = 'csc_referrals'
                         AND {a.format("referral_reason")} IN {EXPLOITATION})
            AS {prefix}_exploitation_referrals,
        count(*) FILTER (WHERE dataset = 'csc_referrals'
                         AND {a.format("referral_reason")} = 'domestic abuse'
                         AND days_ago <= 1826) AS {prefix}_referrals_for_da_5y,
        count(*) FILTER (WHERE dataset = 'homelessness'
                         AND {a.format("homelessness_reason")} = 'domestic abuse'
                         AND days_ago <= 1826) AS {prefix}_homeless_for_da_5y,
        count(*) FILTER (WHERE dataset IN ('ae_attendances', 'ambulance_callouts')
                         AND ({a.format("presenting_complaint")} = 'assault'
                              OR {a.format("nature_of_call")} = 'assault')
                         AND days_ago <= 1826) AS {prefix}_assault_injuries_5y,
        count(*) FILTER (WHERE dataset = 'cin_cp_plans') AS {prefix}_cin_cp_plans_ever,
        count(*) FILTER (WHERE dataset = 'cin_cp_plans' AND open_at) AS {prefix}_on_plan,
        count(*) FILTER (WHERE dataset = 'cin_cp_plans'
                         AND {a.format("plan_type")} = 'child protection') AS {prefix}_cp_plans_ever,
        count(*) FILTER (WHERE dataset = 'early_years'
                         AND {a.format("good_level_of_development")} = 'false')
            AS {prefix}_not_school_ready_before,
        count(*) FILTER (WHERE dataset = 'mental_health' AND open_at) AS {prefix}_mental_health_open,
        count(*) FILTER (WHERE dataset = 'substance_misuse' AND open_at) AS {prefix}_substance_open,
        count(*) FILTER (WHERE dataset = 'probation' AND open_at) AS {prefix}_probation_open,
        count(*) FILTER (WHERE dataset = 'early_help' AND open_at) AS {prefix}_early_help_open,
        count(*) FILTER (WHERE dataset = 'early_help') AS {prefix}_early_help_ever,
        count(*) FILTER (WHERE dataset = 'school_attendance'
                         AND {a.format("persistent_absence")} = 'true' AND days_ago <= 1095)
            AS {prefix}_persistent_absence_3y,
        coalesce(100.0 * sum(CAST({a.format("sessions_missed")} AS DOUBLE))
                   FILTER (WHERE dataset = 'school_attendance' AND days_ago <= 1826)
                 / nullif(sum(CAST({a.format("sessions_possible")} AS DOUBLE))
                   FILTER (WHERE dataset = 'school_attendance' AND days_ago <= 1826), 0), 0)
            AS {prefix}_absence_rate_5y,
        count(*) FILTER (WHERE dataset = 'benefits' AND open_at) AS {prefix}_benefits_open,
        count(*) FILTER (WHERE days_ago <= 1826 AND (
              {a.format("presenting_complaint")} IN ('alcohol', 'overdose')
              OR {a.format("nature_of_call")} = 'overdose or poisoning'
              OR (dataset = 'police_incidents' AND {a.format("incident_type")} = 'alcohol related')
              OR {a.format("offence_group")} = 'drug offences'
              OR {a.format("asb_type")} IN ('drug use', 'street drinking')))
            AS {prefix}_alcohol_drugs_5y,
        count(DISTINCT event_key) FILTER (WHERE dataset = 'domestic_abuse'
                         AND {a.format("dash_risk")} = 'high') AS {EVER}{prefix}_da_high,
        count(DISTINCT event_key) FILTER (WHERE dataset = 'domestic_abuse'
                         AND {a.format("dash_risk")} = 'medium') AS {EVER}{prefix}_da_medium,
        -- one incident names a victim and a suspect: in a household both rows are one
        -- incident, so count incidents, not rows
        count(DISTINCT event_key) FILTER (WHERE dataset = 'domestic_abuse')
            AS {EVER}{prefix}_da_incidents,
        count(*) FILTER (WHERE dataset = 'csc_referrals'
                         AND {a.format("referral_reason")} = 'domestic abuse')
            AS {EVER}{prefix}_referrals_for_da,
        count(*) FILTER (WHERE dataset = 'homelessness'
                         AND {a.format("homelessness_reason")} = 'domestic abuse')
            AS {EVER}{prefix}_homeless_for_da,
        count(*) FILTER (WHERE dataset IN ('ae_attendances', 'ambulance_callouts')
                         AND ({a.format("presenting_complaint")} = 'assault'
                              OR {a.format("nature_of_call")} = 'assault'))
            AS {EVER}{prefix}_assault_injuries,
        count(*) FILTER (WHERE {a.format("presenting_complaint")} IN ('alcohol', 'overdose')
              OR {a.format("nature_of_call")} = 'overdose or poisoning'
              OR (dataset = 'police_incidents' AND {a.format("incident_type")} = 'alcohol related')
              OR {a.format("offence_group")} = 'drug offences'
              OR {a.format("asb_type")} IN ('drug use', 'street drinking'))
            AS {EVER}{prefix}_alcohol_drugs,
        count(*) FILTER (WHERE dataset = 'crimes' AND {a.format("role")} = 'suspect')
            AS {EVER}{prefix}_crime_suspect,
        count(*) FILTER (WHERE dataset = 'police_incidents'
                         AND {a.format("incident_type")} IN ('alcohol related', 'mental health'))
            AS {EVER}{prefix}_police_alcohol_mh"""


def history_start(firsts: list[date]) -> date | None:
    """When the known history begins: the median over datasets of their first known
    event (the lower median), as :func:`nominal.insight.risk.data_start` -- a benefit
    claim opened long before the feeds began would make the earliest date overstate it.
    Both engines call this on their own list of first dates, so they agree exactly."""
    ordered = sorted(firsts)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def _history_start(con: duckdb.DuckDBPyConnection) -> str:
    """:func:`history_start` of the temp table ``known``, as SQL (NULL when empty)."""
    rows = con.execute("SELECT min(event_date) FROM known GROUP BY dataset").fetchall()
    start = history_start([r[0] for r in rows if r[0] is not None])
    return "NULL" if start is None else _d(start)


def _ever(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0].startswith(EVER)]


def _rate_columns(con: duckdb.DuckDBPyConnection, table: str, years: str) -> str:
    """``count / years`` for every temporary "ever" column of ``table`` (named without it)."""
    names = _ever(con, table)
    return ", ".join(f"coalesce({n}, 0) / {years} AS {n[len(EVER) :]}_per_year" for n in names)


def build(
    snapshot: Snapshot,
    as_of: date,
    datasets: tuple[str, ...] = STANDARD_DATASETS,
    con: duckdb.DuckDBPyConnection | None = None,
    respect_received: bool | None = None,
) -> FeatureSet:
    """Compute the person, household and area features as of ``as_of``.

    ``respect_received`` (wait for each event's delivery) defaults to yes unless the
    history before ``as_of`` was loaded in bulk after it (:func:`backfilled`).
    """
    from nominal.engines.duck import connect

    con = con or connect(
        snapshot,
        tables=[
            "gold.events",
            "gold.nominals",
            "gold.household_members",
            "gold.households",
            "reference.output_areas",
        ],
    )
    build_tables(con, as_of, datasets, respect_received)
    return FeatureSet(
        as_of,
        _fill(con.sql("SELECT * FROM fp ORDER BY nominal_id").to_arrow_table(), "p_"),
        _fill(con.sql("SELECT * FROM fh ORDER BY household_id").to_arrow_table(), "h_"),
        _fill(con.sql("SELECT * FROM fa ORDER BY oa_code").to_arrow_table(), "a_"),
    )


def build_tables(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    datasets: tuple[str, ...] = STANDARD_DATASETS,
    respect_received: bool | None = None,
) -> None:
    """:func:`build` without reading the tables out: the features as of ``as_of`` stay
    in ``con``'s temp tables ``fp``, ``fh`` and ``fa`` (what model rows are made from;
    at a million people the person table alone is gigabytes once in Python)."""
    t = _d(as_of)
    if respect_received is None:
        respect_received = not _backfilled(con, as_of)
    _known_events(con, as_of, respect_received)
    _members(con, as_of)
    start = _history_start(con)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fp AS
        WITH p AS (
          SELECT n.nominal_id, n.sex, n.ethnicity, n.date_of_birth, m.household_id,
                 {age_sql("n.date_of_birth", t)} AS age
          FROM gold.nominals n LEFT JOIN members m USING (nominal_id)
          WHERE n.date_of_birth < {t}),
        c AS (
          SELECT nominal_id, {_count_columns("p", datasets)}{_specific_columns("p")}
          FROM known GROUP BY nominal_id),
        att AS (
          SELECT nominal_id,
                 CAST(arg_max(json_extract(attributes, '$.attendance_pct'),
                              (event_date, json_extract_string(attributes, '$.attendance_pct')))
                      AS DOUBLE) AS p_attendance_pct_last
          FROM known WHERE dataset = 'school_attendance' AND days_ago <= 730
          GROUP BY nominal_id)
        SELECT {t} AS as_of, p.nominal_id, p.household_id, p.sex, p.ethnicity, p.date_of_birth,
               p.age AS p_age, CAST(p.sex = 'M' AS INTEGER) AS p_male,
               date_diff('day', p.date_of_birth, {t}) AS p_age_days,
               CAST((month(p.date_of_birth) + 3) % 12 AS INTEGER) AS p_month_in_school_year,
               coalesce(att.p_attendance_pct_last, -1) AS p_attendance_pct_last,
               c.* EXCLUDE (nominal_id)
        FROM p LEFT JOIN c USING (nominal_id) LEFT JOIN att USING (nominal_id)
        """
    )
    # years of history behind each person as of T: from the start of the feeds or birth
    years = (
        f"greatest(date_diff('day', greatest(coalesce({start}, {t}), date_of_birth), {t}) "
        "/ 365.25, 0.25)"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fp AS
        SELECT * EXCLUDE ({", ".join(_ever(con, "fp"))}),
               {years} AS p_history_years, {_rate_columns(con, "fp", years)}
        FROM fp"""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE known_hh AS "
        "SELECT k.*, m.household_id FROM known k JOIN members m USING (nominal_id)"
    )
    adult_max = ", ".join(
        f"max(p_{name}_per_year) AS h_max_adult_{name}_per_year" for name in ADULT_MAX
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fh AS
        WITH comp AS (
          SELECT household_id, count(*) AS h_members,
                 count(*) FILTER (WHERE age >= 18) AS h_adults,
                 count(*) FILTER (WHERE age < 18) AS h_children,
                 count(*) FILTER (WHERE age < 5) AS h_under_fives,
                 coalesce(max(age) FILTER (WHERE age < 18), -1) AS h_oldest_child_age,
                 coalesce(min(age) FILTER (WHERE age >= 18), -1) AS h_youngest_adult_age
          FROM members GROUP BY household_id),
        c AS (
          SELECT household_id, {_count_columns("h", datasets)}{_specific_columns("h")}
          FROM known_hh GROUP BY household_id),
        area AS (
          SELECT household_id, arg_max(oa_code, (event_date, oa_code)) AS oa_code,
                 -- household adversity follows the deprivation of where the family lived
                 -- (not only where it lives now), and families in difficulty move more
                 arg_min(oa_code, (event_date, oa_code)) AS first_oa,
                 count(DISTINCT oa_code) FILTER (WHERE days_ago <= 1826) AS h_areas_5y
          FROM known_hh WHERE oa_code IS NOT NULL GROUP BY household_id),
        adults AS (
          SELECT m.household_id, {adult_max}
          FROM members m JOIN fp USING (nominal_id)
          WHERE m.age >= 18 GROUP BY m.household_id)
        SELECT {t} AS as_of, comp.household_id,
               coalesce(area.oa_code, h.oa_code) AS oa_code,
               comp.* EXCLUDE (household_id),
               CAST(comp.h_adults = 1 AND comp.h_children > 0 AS INTEGER) AS h_lone_adult,
               CAST(comp.h_members >= 15 AS INTEGER) AS h_communal,
               coalesce(area.h_areas_5y, 0) AS h_areas_5y,
               coalesce(o.imd_score, 0) AS h_first_area_imd_score,
               adults.* EXCLUDE (household_id),
               c.* EXCLUDE (household_id)
        FROM comp LEFT JOIN c USING (household_id) LEFT JOIN area USING (household_id)
        LEFT JOIN adults USING (household_id)
        LEFT JOIN gold.households h USING (household_id)
        LEFT JOIN reference.output_areas o
          ON o.oa_code = coalesce(area.first_oa, area.oa_code, h.oa_code)
        """
    )
    h_years = f"greatest(date_diff('day', coalesce({start}, {t}), {t}) / 365.25, 0.25)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fh AS
        SELECT * EXCLUDE ({", ".join(_ever(con, "fh"))}),
               {h_years} AS h_history_years,
               coalesce(h_events_3y, 0) / h_members AS h_events_per_member_3y,
               -- DASH grades an incident medium more often where abuse runs deeper
               coalesce({EVER}h_da_medium, 0)
                 / greatest(coalesce({EVER}h_da_incidents, 0) - coalesce({EVER}h_da_high, 0), 1)
                 AS h_da_medium_share,
               {_rate_columns(con, "fh", h_years)}
        FROM fh"""
    )
    rates = ",\n".join(
        f"1000.0 * count(*) FILTER (WHERE k.dataset = '{ds}' AND k.days_ago <= 365)"
        f" / greatest(r.residents, 1) AS a_{ds}_rate"
        for ds in AREA_DATASETS
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE fa AS
        WITH r AS (SELECT oa_code, sum(h_members) AS residents,
                          sum(h_children) AS children FROM fh GROUP BY oa_code),
        k AS (SELECT k.*, fh.oa_code AS home_oa FROM known_hh k JOIN fh USING (household_id))
        SELECT {t} AS as_of, o.oa_code, o.ward_code,
               coalesce(o.imd_score, 0) AS a_imd_score, coalesce(o.imd_decile, 0) AS a_imd_decile,
               coalesce(r.residents, 0) AS a_residents, coalesce(r.children, 0) AS a_children,
               {rates},
               count(*) FILTER (WHERE k.dataset = 'csc_referrals'
                  AND json_extract_string(k.attributes, '$.referral_reason') IN {EXPLOITATION}
                  AND k.days_ago <= 730) AS a_exploitation_referrals_2y,
               count(DISTINCT k.household_id) FILTER (WHERE k.days_ago <= 365)
                  AS a_households_known_12m
        FROM reference.output_areas o LEFT JOIN r USING (oa_code)
        LEFT JOIN k ON k.home_oa = o.oa_code
        GROUP BY o.oa_code, o.ward_code, o.imd_score, o.imd_decile, r.residents, r.children
        """
    )
    # units without a known event have NULL counts after the outer joins: fill them in
    # the tables themselves, so that a model's population (SQL over fp/fh) sees zeros
    for table, prefix in (("fp", "p_"), ("fh", "h_")):
        _fill_sql(con, table, prefix)
    # the events as of T are only needed to build the three tables: free them
    con.execute("DROP TABLE IF EXISTS known_hh")
    con.execute("DROP TABLE IF EXISTS known")


def _fill_sql(con: duckdb.DuckDBPyConnection, table: str, prefix: str) -> None:
    """Replace NULL counts with zero (and NULL recencies with 'none in 3 years') in place."""
    names = [
        r[0]
        for r in con.execute(f"DESCRIBE {table}").fetchall()
        if r[0].startswith(prefix) and r[1] not in ("VARCHAR", "DATE")
    ]
    filled = ", ".join(
        f"coalesce({n}, {NO_EVENT_DAYS if n.endswith('_days_since') else 0}) AS {n}" for n in names
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * REPLACE ({filled}) FROM {table}")


def _fill(table: pa.Table, prefix: str) -> pa.Table:
    """Units with no events get zero counts and the 'nothing in three years' recency."""
    import pyarrow.compute as pc

    for i, name in enumerate(table.column_names):
        if not name.startswith(prefix):
            continue
        default = NO_EVENT_DAYS if name.endswith("_days_since") else 0
        col = table.column(i)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            filled = pc.fill_null(col, pa.scalar(default, col.type))
        elif pa.types.is_boolean(col.type):
            filled = pc.cast(pc.fill_null(col, False), pa.int32())
        else:
            continue
        table = table.set_column(i, name, filled)
    return table


def write(lake: Lake, features: list[FeatureSet]) -> dict[str, int]:
    """Replace gold.features_* with these as-of dates' features (one snapshot)."""
    tables = {
        "gold.features_person": pa.concat_tables([f.person for f in features]),
        "gold.features_household": pa.concat_tables([f.household for f in features]),
        "gold.features_area": pa.concat_tables([f.area for f in features]),
    }
    with lake.transaction("features") as tx:
        for name, table in tables.items():
            tx.replace(name, [tx.write_arrow(name, table)])
        tx.commit({"as_of": [f.as_of.isoformat() for f in features]})
    return {name: table.num_rows for name, table in tables.items()}


def backfilled(snapshot: Snapshot, as_of: date) -> bool:
    """Was the history before ``as_of`` loaded in bulk after it?

    True when most events dated before ``as_of`` reached the hub only after it -- a
    lake filled from historical extracts rather than from live feeds.
    """
    from nominal.engines.duck import connect

    return _backfilled(connect(snapshot, tables=["gold.events"]), as_of)


def _backfilled(con: duckdb.DuckDBPyConnection, as_of: date) -> bool:
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE received_at > CAST({_d(as_of)} AS TIMESTAMP)),
                   count(*)
            FROM gold.events WHERE event_date < {_d(as_of)}"""
    ).fetchall()[0]
    return bool(row[1] and row[0] > 0.5 * row[1])
