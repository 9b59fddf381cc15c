"""The four risk models, declared in one place.

Each model has a unit (household or person), a population (who is scored), an
outcome observed in a window after the as-of date, a team capacity (how many units a
team can act on, the k of precision and recall at top k) and an intended use and
misuse. Everything else -- training, scoring, model cards, cohorts -- reads these
specs, so what a model is for is written once and shown wherever it is used.

Population and outcome are SQL over the point-in-time feature tables of
:mod:`nominal.insight.features` (``u`` is the unit's row) and over ``gold.events``
(``e``) with ``{t}`` the as-of date and ``{end}`` the end of the outcome window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    unit: str  # "household" | "person"
    population: str  # plain words
    population_sql: str  # predicate on u
    outcome: str  # plain words
    outcome_sql: str  # predicate on e (an event of the unit in the window)
    window_months: int
    capacity: int
    dataset: str  # the outcome's dataset: reading a cohort needs an agreement covering it
    intended_use: str
    misuse: str
    limitations: tuple[str, ...] = ()


HUMAN_OVERSIGHT = (
    "Scores support a practitioner's professional judgement; nothing is decided "
    "automatically. A score is a prompt to look at a family's situation with the "
    "partners who know it, never a reason on its own to open a case, to refer, to "
    "withhold a service or to take any action about a person. Every score is shown with "
    "its reasons so that a practitioner can see, question and override it."
)

COMMON_LIMITATIONS = (
    "Trained and evaluated on the events partners recorded: families who are over-policed "
    "or more often in contact with services have more recorded events, so the model can "
    "score them higher for the same underlying need (a feedback loop).",
    "Linkage errors (missed or false matches between partners' records) blur a person's "
    "history; compare the oracle-linkage metrics with the hub's own linkage.",
    "Outcomes are recorded decisions and incidents, not the harm itself; unreported harm "
    "is invisible to the model.",
    "Validated on one later period only; performance drifts as recording practice, "
    "services and the population change. Re-train and re-check the card at least yearly.",
)

SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="da_high_risk",
            title="Household escalation to high-risk domestic abuse",
            unit="household",
            population="Private households with at least one adult (not care homes or hostels).",
            population_sql="u.h_adults >= 1 AND u.h_communal = 0",
            outcome="A domestic-abuse incident graded high risk (DASH) involving a member "
            "of the household within 12 months.",
            outcome_sql="e.dataset = 'domestic_abuse' "
            "AND json_extract_string(e.attributes, '$.dash_risk') = 'high'",
            window_months=12,
            dataset="domestic_abuse",
            capacity=200,
            intended_use="To help a domestic-abuse partnership (MARAC, early-intervention "
            "teams) prioritise which households to discuss for a safety-planning or "
            "support offer, within a team's capacity.",
            misuse="Not for criminal-justice decisions, arrests, bail or charging; not to "
            "label anyone a perpetrator or victim; not for housing or benefit decisions.",
        ),
        ModelSpec(
            name="child_exploitation",
            title="Child exploitation concern",
            unit="person",
            population="Children aged 10 to 17.",
            population_sql="u.p_age BETWEEN 10 AND 17",
            outcome="A children's social care referral for child sexual or criminal "
            "exploitation within 12 months.",
            outcome_sql="e.dataset = 'csc_referrals' AND json_extract_string(e.attributes, "
            "'$.referral_reason') IN ('child sexual exploitation', "
            "'child criminal exploitation')",
            window_months=12,
            dataset="csc_referrals",
            capacity=50,
            intended_use="To help an exploitation panel and youth services see which "
            "children and which areas may need preventive, contextual safeguarding work.",
            misuse="Not to treat a child as an offender, not for police intelligence "
            "targeting of individual children, not for school exclusion decisions.",
            limitations=(
                "Exploitation concerns are rare: metrics rest on few cases and have wide "
                "uncertainty; area-level use is steadier than individual use.",
            ),
        ),
        ModelSpec(
            name="not_school_ready",
            title="Child not school-ready at reception",
            unit="person",
            population="Children due their reception-year assessment (early years "
            "foundation stage profile) within 12 months, whether or not any service "
            "knows the family.",
            population_sql="make_date(CAST(year(u.date_of_birth) AS INTEGER) "
            "+ CASE WHEN month(u.date_of_birth) >= 9 THEN 6 ELSE 5 END, 6, 29) "
            "BETWEEN {t} AND {end} - INTERVAL 1 DAY",
            outcome="The early years foundation stage profile records that the child did "
            "not reach a good level of development.",
            outcome_sql="e.dataset = 'early_years' "
            "AND json_extract_string(e.attributes, '$.good_level_of_development') = 'false'",
            window_months=12,
            dataset="early_years",
            capacity=280,
            intended_use="To help early-years and family-hub services offer support "
            "(nursery places, speech and language, parenting) before school starts, "
            "including to families not known to any service.",
            misuse="Not to stream, label or assess individual children's ability, and not "
            "for school admissions.",
            limitations=(
                "Age within the school year (summer-born) and sex are strong predictors: "
                "they describe when support matters, not a family's failing.",
            ),
        ),
        ModelSpec(
            name="cin_cp_escalation",
            title="Child escalating to child in need or child protection",
            unit="person",
            population="Children under 18 not already on a child in need or child protection plan.",
            population_sql="u.p_age < 18 AND u.p_on_plan = 0",
            outcome="A child in need or child protection plan starts within 12 months.",
            outcome_sql="e.dataset = 'cin_cp_plans'",
            window_months=12,
            dataset="cin_cp_plans",
            capacity=150,
            intended_use="To help early-help and family-support teams offer help early, "
            "so that fewer families need statutory intervention.",
            misuse="Not to open a statutory assessment, not as evidence in proceedings, "
            "not to prioritise or deprioritise a referral already made.",
        ),
    )
}


def get(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; models: {', '.join(SPECS)}") from None
