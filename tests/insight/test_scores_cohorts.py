"""gold.scores and gold.cohorts: schema, ranks, bands, reasons, capacity."""

from __future__ import annotations

import json

from insight_fixtures import Trained

from nominal.engines.duck import connect
from nominal.engines.lake import Lake

SCORE_COLUMNS = [
    ("model", "VARCHAR"),
    ("unit_type", "VARCHAR"),
    ("unit_id", "VARCHAR"),
    ("unit_pseudo", "VARCHAR"),
    ("as_of", "DATE"),
    ("score", "DOUBLE"),
    ("band", "VARCHAR"),
    ("rank", "BIGINT"),
    ("reasons", "VARCHAR"),
    ("model_version", "VARCHAR"),
]


def test_scores_table_schema(trained: Trained) -> None:
    con = connect(Lake(trained.home.lake).require_current())
    described = [(r[0], r[1]) for r in con.execute("DESCRIBE gold.scores").fetchall()]
    assert described == SCORE_COLUMNS


def test_scores_ranked_banded_and_explained(trained: Trained) -> None:
    con = connect(Lake(trained.home.lake).require_current())
    per_model = con.execute(
        """SELECT model, count(*), min(rank), max(rank), count(DISTINCT rank),
                  count(*) FILTER (WHERE unit_pseudo IS NULL),
                  count(*) FILTER (WHERE score < 0 OR score > 1),
                  count(*) FILTER (WHERE band = 'high'), any_value(as_of)
           FROM gold.scores GROUP BY model"""
    ).fetchall()
    assert {r[0] for r in per_model} == {"da_high_risk", "not_school_ready", "cin_cp_escalation"}
    for model, n, lo, hi, distinct, no_pseudo, out_of_range, high, as_of in per_model:
        assert (lo, hi, distinct) == (1, n, n), model
        assert no_pseudo == 0 and out_of_range == 0
        assert high == trained.scored["models"][model]["k"]
        assert str(as_of) == str(trained.scored["as_of"])
    # a higher rank never has a lower score
    bad = con.execute(
        """SELECT count(*) FROM (SELECT model, score,
               lag(score) OVER (PARTITION BY model ORDER BY rank) AS above FROM gold.scores)
           WHERE above < score"""
    ).fetchone()
    assert bad == (0,)
    reasons = [json.loads(r[0]) for r in con.execute(
        "SELECT reasons FROM gold.scores WHERE band = 'high'").fetchall()]  # fmt: skip
    assert all(isinstance(r, list) for r in reasons)
    assert sum(1 for r in reasons if r) > 0.9 * len(reasons)
    assert all({"feature", "value", "contribution", "text"} <= set(x) for r in reasons for x in r)


def test_households_scored_by_household_pseudonym(trained: Trained) -> None:
    con = connect(Lake(trained.home.lake).require_current())
    mismatched = con.execute(
        """SELECT count(*) FROM gold.scores s JOIN gold.households h
             ON h.household_id = s.unit_id
           WHERE s.model = 'da_high_risk' AND s.unit_pseudo <> h.household_pseudo"""
    ).fetchone()
    assert mismatched == (0,)


def test_cohorts_within_capacity_with_their_rule(trained: Trained) -> None:
    con = connect(Lake(trained.home.lake).require_current())
    rows = con.execute(
        """SELECT cohort, count(*), any_value(size), max(size), min(size), any_value(capacity),
                  any_value(rule), count(DISTINCT unit_id), max(rank)
           FROM gold.cohorts GROUP BY cohort"""
    ).fetchall()
    names = {r[0] for r in rows}
    assert {"da-escalation", "cin-cp-escalation"} <= names
    for cohort, n, size, size_max, size_min, capacity, rule, distinct, top in rows:
        assert size == size_max == size_min == n == distinct == top, cohort
        assert n <= capacity, cohort
        assert len(rule) > 40
    # the DA cohort is exactly the households in the model's high band
    diff = con.execute(
        """SELECT count(*) FROM (
             SELECT unit_id FROM gold.cohorts WHERE cohort = 'da-escalation'
             EXCEPT SELECT unit_id FROM gold.scores WHERE model = 'da_high_risk' AND band = 'high')"""
    ).fetchone()
    assert diff == (0,)


def test_not_school_ready_cohort_only_families_unknown_to_services(trained: Trained) -> None:
    con = connect(Lake(trained.home.lake).require_current())
    known = con.execute(
        """SELECT count(*) FROM gold.cohorts c
           JOIN gold.household_members m ON m.nominal_id = c.unit_id
           JOIN gold.household_members o ON o.household_id = m.household_id
           JOIN gold.events e ON e.nominal_id = o.nominal_id
           WHERE c.cohort = 'not-school-ready-unknown'
             AND e.dataset IN ('police_incidents', 'csc_referrals', 'cin_cp_plans', 'early_help')
             AND e.event_date < c.as_of AND e.event_date >= c.as_of - INTERVAL 3 YEAR
             AND m.from_date <= c.as_of AND (m.to_date IS NULL OR m.to_date > c.as_of)
             AND o.from_date <= c.as_of AND (o.to_date IS NULL OR o.to_date > c.as_of)"""
    ).fetchone()
    assert known == (0,)
    scores = con.execute(
        "SELECT min(score) FROM gold.cohorts WHERE cohort = 'not-school-ready-unknown'"
    ).fetchone()
    assert scores is not None and (scores[0] is None or scores[0] >= 0.5)


def test_drift_check_compares_todays_scores_with_validation(trained: Trained) -> None:
    from nominal.insight.scoring import psi

    for name, info in trained.scored["models"].items():
        d = info["drift"]
        assert d["current_units"] == info["units"] and d["validation_units"] > 0, name
        assert d["psi"] >= 0 and d["status"] != "unknown", name
    rng = __import__("numpy").random.default_rng(0)
    same = rng.beta(1, 30, 5000)
    assert psi(same, rng.beta(1, 30, 5000)) < 0.02
    assert psi(same, rng.beta(1, 10, 5000)) > 0.25
