"""Features and scores on Spark (``--engine spark``): the same tables as on DuckDB.

The point-in-time features of :mod:`nominal.insight.features` are written here in
Spark SQL over the same lake snapshot (each table a temporary view over the files
the snapshot lists, :mod:`nominal.engines.spark`) and written back as the same
``gold.features_*`` tables. Scoring builds each model's population in Spark SQL and
applies the trained LightGBM model, with its SHAP reasons, to each partition on the
executors (``mapInPandas``); only the narrow scored rows (unit, area, score, reasons)
come back to the driver, which ranks them, bands them and builds the cohorts with
the same code as the DuckDB path, so the two engines write the same
``gold.scores`` and ``gold.cohorts``.

The SQL follows the DuckDB text clause by clause; where the dialects differ:
``json_extract_string`` is ``get_json_object``, ``arg_max`` is ``max_by``, DuckDB's
year ``date_diff`` (which counts year boundaries) is a difference of years, and
``QUALIFY``/``EXCLUDE`` become a sub-query and explicit column lists. Types are cast
to DuckDB's (``BIGINT`` day and year counts, ``DECIMAL(38,0)`` residents) so that
the two engines' tables have the same schema. tests/engines check that both engines
give equal features and scores on the same lake.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from nominal.config import Home
from nominal.engines import spark as engine
from nominal.engines.lake import Lake, Snapshot
from nominal.insight import features, scoring, training
from nominal.insight.dataset import window_end
from nominal.insight.features import (
    ADULT_MAX,
    AREA_DATASETS,
    EVER,
    EXPLOITATION,
    NO_EVENT_DAYS,
    PERIOD_DATASETS,
    STANDARD_DATASETS,
)
from nominal.insight.specs import SPECS, ModelSpec

TABLES = (
    "gold.events",
    "gold.nominals",
    "gold.household_members",
    "gold.households",
    "reference.output_areas",
)


def to_spark_sql(sql: str) -> str:
    """DuckDB SQL of the feature and model specs, in Spark's dialect."""
    return sql.replace("json_extract_string(", "get_json_object(").replace(
        "gold.events", "gold_events"
    )


def _d(value: date) -> str:
    return f"DATE '{value.isoformat()}'"


def age_sql(dob: str, t: str) -> str:
    """Age in completed years at ``t`` (as :func:`features.age_sql` counts it)."""
    return (
        f"CAST(year({t}) - year({dob}) - CASE WHEN month({t}) * 100 + day({t}) "
        f"< month({dob}) * 100 + day({dob}) THEN 1 ELSE 0 END AS BIGINT)"
    )


@dataclass(frozen=True)
class SparkFeatures:
    """Features of every unit as of one date, as Spark DataFrames (views fp, fh, fa).

    As on DuckDB, the person and household views have their counts filled (a unit with
    no known event has zero counts, not nulls, in the model populations' SQL);
    :func:`write` fills the area view as the lake tables have it.
    """

    as_of: date
    person: Any
    household: Any
    area: Any


def attach(snapshot: Snapshot) -> Any:
    """The Spark session with the snapshot's feature inputs as temporary views."""
    spark = engine.session()
    engine.attach_snapshot(spark, snapshot, TABLES)
    return spark


def default_as_of(spark: Any) -> date:
    """The day after the latest event (as :func:`scoring.default_as_of`)."""
    latest = spark.sql("SELECT max(event_date) AS d FROM gold_events").collect()[0]["d"]
    if latest is None:
        raise training.TrainingError("gold.events is empty: link (or build oracle gold) first")
    value: date = latest
    return value + timedelta(days=1)


def backfilled(spark: Any, as_of: date) -> bool:
    """Was the history before ``as_of`` loaded in bulk after it? (see features.backfilled)"""
    t = _d(as_of)
    row = spark.sql(
        f"""SELECT count(*) FILTER (WHERE received_at > CAST({t} AS TIMESTAMP)) AS late,
                   count(*) AS n
            FROM gold_events WHERE event_date < {t}"""
    ).collect()[0]
    return bool(row["n"] and row["late"] > 0.5 * row["n"])


def _columns(spark: Any, view: str, skip: str) -> list[str]:
    return [c for c in spark.table(view).columns if c != skip]


def _filled(frame: Any, prefix: str) -> Any:
    """Units with no events get zero counts and the 'nothing in three years' recency."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    cols = []
    for field in frame.schema.fields:
        col = F.col(f"`{field.name}`")
        if field.name.startswith(prefix) and isinstance(field.dataType, NumericType):
            default = NO_EVENT_DAYS if field.name.endswith("_days_since") else 0
            col = F.coalesce(col, F.lit(default).cast(field.dataType)).alias(field.name)
        elif field.name.startswith(prefix) and isinstance(field.dataType, BooleanType):
            col = F.coalesce(col, F.lit(False)).cast("int").alias(field.name)
        cols.append(col)
    return frame.select(*cols)


def _with_rates(spark: Any, frame: Any, years: str, years_name: str, extra: str = "") -> Any:
    """The frame without its temporary "ever" counts, then the history's length in years,
    ``extra`` and a yearly rate per "ever" count, in the order DuckDB writes them."""
    frame.createOrReplaceTempView("with_ever")
    ever = [c for c in frame.columns if c.startswith(EVER)]
    cols = [", ".join(f"`{c}`" for c in frame.columns if not c.startswith(EVER))]
    cols.append(f"{years} AS {years_name}")
    cols += [extra] if extra else []
    cols += [
        f"CAST(coalesce({c}, 0) AS DOUBLE) / {years} AS {c[len(EVER) :]}_per_year" for c in ever
    ]
    return spark.sql(f"SELECT {', '.join(cols)} FROM with_ever")


def build(
    spark: Any,
    as_of: date,
    datasets: tuple[str, ...] = STANDARD_DATASETS,
    respect_received: bool | None = None,
) -> SparkFeatures:
    """Person, household and area features as of ``as_of`` (after :func:`attach`)."""
    t = _d(as_of)
    if respect_received is None:
        respect_received = not backfilled(spark, as_of)
    received = f"AND received_at <= CAST({t} AS TIMESTAMP)" if respect_received else ""
    periods = ", ".join(f"'{d}'" for d in PERIOD_DATASETS)
    spark.sql(
        f"""SELECT nominal_id, event_key, dataset, agency, event_type, event_date, event_end_date,
               oa_code, attributes, CAST(datediff({t}, event_date) AS BIGINT) AS days_ago,
               event_date < {t} AND (event_end_date IS NULL OR event_end_date >= {t})
                 AS open_at
        FROM gold_events
        WHERE event_date < {t} {received}
          AND (dataset NOT IN ({periods}) OR coalesce(event_end_date, event_date) < {t})
          AND nominal_id IS NOT NULL"""
    ).cache().createOrReplaceTempView("known")
    spark.sql(
        f"""SELECT household_id, nominal_id, age FROM (
          SELECT m.household_id, m.nominal_id, {age_sql("n.date_of_birth", t)} AS age,
                 row_number() OVER (PARTITION BY m.nominal_id
                                    ORDER BY m.from_date DESC, m.household_id) AS rn
          FROM gold_household_members m JOIN gold_nominals n USING (nominal_id)
          WHERE m.from_date <= {t} AND (m.to_date IS NULL OR m.to_date > {t})
            AND n.date_of_birth < {t})
        WHERE rn = 1"""
    ).cache().createOrReplaceTempView("members")
    firsts = spark.sql("SELECT min(event_date) AS d FROM known GROUP BY dataset").collect()
    first = features.history_start([r["d"] for r in firsts if r["d"] is not None])
    start = "CAST(NULL AS DATE)" if first is None else _d(first)

    count_cols = to_spark_sql(
        features._count_columns("p", datasets) + features._specific_columns("p")
    )
    spark.sql(
        f"SELECT nominal_id, {count_cols} FROM known GROUP BY nominal_id"
    ).createOrReplaceTempView("person_counts")
    c_cols = ", ".join(f"c.{c}" for c in _columns(spark, "person_counts", "nominal_id"))
    attendance = "get_json_object(attributes, '$.attendance_pct')"
    person = spark.sql(
        f"""WITH p AS (
          SELECT n.nominal_id, n.sex, n.ethnicity, n.date_of_birth, m.household_id,
                 {age_sql("n.date_of_birth", t)} AS age
          FROM gold_nominals n LEFT JOIN members m USING (nominal_id)
          WHERE n.date_of_birth < {t}),
        att AS (
          SELECT nominal_id,
                 CAST(max_by({attendance}, struct(event_date, {attendance})) AS DOUBLE)
                   AS p_attendance_pct_last
          FROM known WHERE dataset = 'school_attendance' AND days_ago <= 730
          GROUP BY nominal_id)
        SELECT {t} AS as_of, p.nominal_id, p.household_id, p.sex, p.ethnicity, p.date_of_birth,
               p.age AS p_age, CAST(p.sex = 'M' AS INTEGER) AS p_male,
               CAST(datediff({t}, p.date_of_birth) AS BIGINT) AS p_age_days,
               CAST((month(p.date_of_birth) + 3) % 12 AS INTEGER) AS p_month_in_school_year,
               coalesce(att.p_attendance_pct_last, -1D) AS p_attendance_pct_last,
               {c_cols}
        FROM p LEFT JOIN person_counts c USING (nominal_id) LEFT JOIN att USING (nominal_id)"""
    )
    # as on DuckDB: yearly rates over the history behind each person (features._rate_columns)
    years = (
        f"greatest(CAST(datediff({t}, greatest(coalesce({start}, {t}), date_of_birth)) AS BIGINT)"
        " / 365.25D, 0.25D)"
    )
    person = _with_rates(spark, person, years, "p_history_years")
    # as on DuckDB, units without a known event get zero counts in the views themselves,
    # so that a model's population (SQL over fp/fh) sees zeros, not nulls
    person = _filled(person, "p_").cache()
    person.createOrReplaceTempView("fp")

    spark.sql(
        "SELECT k.*, m.household_id FROM known k JOIN members m USING (nominal_id)"
    ).cache().createOrReplaceTempView("known_hh")
    count_cols = to_spark_sql(
        features._count_columns("h", datasets) + features._specific_columns("h")
    )
    spark.sql(
        f"SELECT household_id, {count_cols} FROM known_hh GROUP BY household_id"
    ).createOrReplaceTempView("household_counts")
    c_cols = ", ".join(f"c.{c}" for c in _columns(spark, "household_counts", "household_id"))
    adult_max = ", ".join(
        f"max(p_{name}_per_year) AS h_max_adult_{name}_per_year" for name in ADULT_MAX
    )
    max_cols = ", ".join(f"adults.h_max_adult_{name}_per_year" for name in ADULT_MAX)
    household = spark.sql(
        f"""WITH comp AS (
          SELECT household_id, count(*) AS h_members,
                 count(*) FILTER (WHERE age >= 18) AS h_adults,
                 count(*) FILTER (WHERE age < 18) AS h_children,
                 count(*) FILTER (WHERE age < 5) AS h_under_fives,
                 coalesce(max(age) FILTER (WHERE age < 18), -1) AS h_oldest_child_age,
                 coalesce(min(age) FILTER (WHERE age >= 18), -1) AS h_youngest_adult_age
          FROM members GROUP BY household_id),
        area AS (
          SELECT household_id, max_by(oa_code, struct(event_date, oa_code)) AS oa_code,
                 min_by(oa_code, struct(event_date, oa_code)) AS first_oa,
                 count(DISTINCT oa_code) FILTER (WHERE days_ago <= 1826) AS h_areas_5y
          FROM known_hh WHERE oa_code IS NOT NULL GROUP BY household_id),
        adults AS (
          SELECT m.household_id, {adult_max}
          FROM members m JOIN fp USING (nominal_id)
          WHERE m.age >= 18 GROUP BY m.household_id)
        SELECT {t} AS as_of, comp.household_id,
               coalesce(area.oa_code, h.oa_code) AS oa_code,
               comp.h_members, comp.h_adults, comp.h_children, comp.h_under_fives,
               comp.h_oldest_child_age, comp.h_youngest_adult_age,
               CAST(comp.h_adults = 1 AND comp.h_children > 0 AS INTEGER) AS h_lone_adult,
               CAST(comp.h_members >= 15 AS INTEGER) AS h_communal,
               coalesce(area.h_areas_5y, 0) AS h_areas_5y,
               coalesce(o.imd_score, 0) AS h_first_area_imd_score,
               {max_cols},
               {c_cols}
        FROM comp LEFT JOIN household_counts c USING (household_id)
        LEFT JOIN area USING (household_id)
        LEFT JOIN adults USING (household_id)
        LEFT JOIN gold_households h USING (household_id)
        LEFT JOIN reference_output_areas o
          ON o.oa_code = coalesce(area.first_oa, area.oa_code, h.oa_code)"""
    )
    h_years = f"greatest(CAST(datediff({t}, coalesce({start}, {t})) AS BIGINT) / 365.25D, 0.25D)"
    extra = (
        "CAST(coalesce(h_events_3y, 0) AS DOUBLE) / h_members AS h_events_per_member_3y, "
        f"CAST(coalesce({EVER}h_da_medium, 0) AS DOUBLE) / greatest(coalesce({EVER}h_da_incidents,"
        f" 0) - coalesce({EVER}h_da_high, 0), 1) AS h_da_medium_share"
    )
    household = _with_rates(spark, household, h_years, "h_history_years", extra)
    household = _filled(household, "h_").cache()
    household.createOrReplaceTempView("fh")

    rates = ",\n".join(
        f"CAST(1000.0 * count(*) FILTER (WHERE k.dataset = '{ds}' AND k.days_ago <= 365)"
        f" AS DOUBLE) / greatest(CAST(r.residents AS DOUBLE), 1D) AS a_{ds}_rate"
        for ds in AREA_DATASETS
    )
    area = spark.sql(
        f"""WITH r AS (SELECT oa_code, CAST(sum(h_members) AS DECIMAL(38, 0)) AS residents,
                          CAST(sum(h_children) AS DECIMAL(38, 0)) AS children
                   FROM fh GROUP BY oa_code),
        k AS (SELECT k.*, fh.oa_code AS home_oa FROM known_hh k JOIN fh USING (household_id))
        SELECT {t} AS as_of, o.oa_code, o.ward_code,
               coalesce(o.imd_score, 0) AS a_imd_score, coalesce(o.imd_decile, 0) AS a_imd_decile,
               coalesce(r.residents, 0) AS a_residents, coalesce(r.children, 0) AS a_children,
               {rates},
               count(*) FILTER (WHERE k.dataset = 'csc_referrals'
                  AND get_json_object(k.attributes, '$.referral_reason') IN {EXPLOITATION}
                  AND k.days_ago <= 730) AS a_exploitation_referrals_2y,
               count(DISTINCT k.household_id) FILTER (WHERE k.days_ago <= 365)
                  AS a_households_known_12m
        FROM reference_output_areas o LEFT JOIN r USING (oa_code)
        LEFT JOIN k ON k.home_oa = o.oa_code
        GROUP BY o.oa_code, o.ward_code, o.imd_score, o.imd_decile, r.residents, r.children"""
    )
    area = area.cache()
    area.createOrReplaceTempView("fa")
    return SparkFeatures(as_of, person, household, area)


def write(lake: Lake, found: SparkFeatures) -> dict[str, int]:
    """Replace gold.features_* with these features (one snapshot), written by Spark."""
    tables = {
        "gold.features_person": _filled(found.person, "p_"),
        "gold.features_household": _filled(found.household, "h_"),
        "gold.features_area": _filled(found.area, "a_"),
    }
    with lake.transaction("features") as tx:
        for name, frame in tables.items():
            tx.replace(name, engine.write_table(tx, name, frame))
        tx.commit({"as_of": [found.as_of.isoformat()], "engine": "spark"})
        return {name: tx.rows(name) for name in tables}


def build_and_write(home: Home, as_of: date | None = None) -> dict[str, Any]:
    """The features stage on Spark: features as of ``as_of`` (default: 'now')."""
    lake = Lake(home.lake)
    spark = attach(lake.require_current())
    as_of = as_of or default_as_of(spark)
    rows = write(lake, build(spark, as_of))
    return {"as_of": as_of.isoformat(), "rows": rows, "engine": "spark"}


# -- scoring -----------------------------------------------------------------------------


def unit_frame(spark: Any, spec: ModelSpec, model_features: list[str], as_of: date) -> Any:
    """The model's population as of ``as_of`` with its features (after :func:`build`).

    The columns are what :func:`nominal.insight.dataset.unit_rows` gives the model
    (null features as zero, a feature the lake cannot produce today as zero), plus
    the unit's pseudonym and area; no label, since the outcome is not known yet.
    """
    t = _d(as_of)
    end = _d(window_end(as_of, spec.window_months))
    population = to_spark_sql(spec.population_sql.format(t=t, end=end))
    if spec.unit == "household":
        available = {f"u.{c}" for c in spark.table("fh").columns if c.startswith("h_")}
        available |= {f"a.{c}" for c in spark.table("fa").columns if c.startswith("a_")}
        source = """fh u LEFT JOIN fa a ON a.oa_code = u.oa_code
            LEFT JOIN gold_households g ON g.household_id = u.household_id"""
        keys = "u.household_id AS unit_id, g.household_pseudo AS unit_pseudo, u.oa_code"
    else:
        available = {f"u.{c}" for c in spark.table("fp").columns if c.startswith("p_")}
        available |= {f"h.{c}" for c in spark.table("fh").columns if c.startswith("h_")}
        available |= {f"a.{c}" for c in spark.table("fa").columns if c.startswith("a_")}
        source = """fp u LEFT JOIN fh h USING (household_id)
            LEFT JOIN fa a ON a.oa_code = h.oa_code
            LEFT JOIN gold_nominals g ON g.nominal_id = u.nominal_id"""
        keys = "u.nominal_id AS unit_id, g.nominal_pseudo AS unit_pseudo, h.oa_code"
    by_name = {c.split(".", 1)[1]: c for c in available}
    wanted = list(dict.fromkeys([*model_features, *_known_columns()]))
    cols = ", ".join(
        f"CAST(coalesce({by_name[c]}, 0) AS DOUBLE) AS {c}" if c in by_name else f"0D AS {c}"
        for c in wanted
    )
    return spark.sql(f"SELECT {keys}, {cols} FROM {source} WHERE {population}")


def _known_columns() -> list[str]:
    """The household columns the 'not known to services' cohort reads."""
    return [f"h_{ds}_3y" for ds in scoring.TARGETED_SERVICES]


def _score_partitions(model: training.TrainedModel) -> Any:
    """A ``mapInPandas`` function: score and explain each batch of units."""
    from nominal.insight import explain

    known = _known_columns()

    def run(batches: Any) -> Any:
        for frame in batches:
            if not len(frame):
                continue
            score = model.predict(frame)
            _, why = explain.reasons(model, frame)
            out = frame[["unit_id", "unit_pseudo", "oa_code", *known]].copy()
            out["score"] = score
            out["reasons"] = [json.dumps(r) for r in why]
            yield out

    return run


def score_model(spark: Any, model: training.TrainedModel, as_of: date) -> scoring.Scored:
    """Score the model's population on the executors; rank and band on the driver."""
    units = unit_frame(spark, model.spec, model.features, as_of)
    known = _known_columns()
    schema = (
        "unit_id string, unit_pseudo string, oa_code string, "
        + ", ".join(f"{c} double" for c in known)
        + ", score double, reasons string"
    )
    # the closure is shipped to every task: leave the validation rows behind
    slim = dataclasses.replace(model, validation=model.validation.head(0))
    scored = units.mapInPandas(_score_partitions(slim), schema).toPandas()
    if not len(scored):
        scored = pd.DataFrame(columns=[*schema_names(schema)])
    return scoring.ranked(model, scored)


def schema_names(schema: str) -> list[str]:
    return [part.strip().split(" ")[0] for part in schema.split(",")]


def score_all(
    home: Home, as_of: date | None = None, names: list[str] | None = None
) -> dict[str, Any]:
    """:func:`scoring.score_all` on Spark: the same gold.scores and gold.cohorts."""
    lake = Lake(home.lake)
    snapshot = lake.require_current()
    models, skipped = scoring.load_models(home, names or list(SPECS))
    spark = attach(snapshot)
    as_of = as_of or default_as_of(spark)
    build(spark, as_of)
    scored = {name: score_model(spark, m, as_of) for name, m in models.items()}
    return {**scoring.write_scores(lake, scored, as_of, skipped), "engine": "spark"}
