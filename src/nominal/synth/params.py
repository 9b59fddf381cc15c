"""Parameters of the synthetic population: every rate the generator uses, in one place.

They are written to ``truth/parameters.json`` with each run, so an analyst can compare a
model with the generative process that made the data. The defaults are documented in
``docs/synthetic-population.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordingErrors:
    """Rates of recording errors, per row and per field, before a feed's own multiplier.

    The *_invalid rates make values that ingest validation must quarantine; the other
    rates make values that are valid but wrong, which linking must cope with.
    """

    typo: float = 0.02  # one character edited in the given or family name
    nickname: float = 0.05  # given name recorded as a common short form (where one exists)
    name_order_swapped: float = 0.01  # given and family name exchanged
    initial_only: float = 0.01  # given name recorded as its initial
    partial_double_barrel: float = 0.4  # of hyphenated family names, one part only
    diacritics_dropped: float = 0.5  # of names with diacritics, recorded without them
    former_family_name: float = 0.15  # of records after a name change, the former name
    dob_day_month_swapped: float = 0.01  # when both are 12 or less
    dob_digit_error: float = 0.005  # day or year one off
    dob_missing: float = 0.01
    sex_missing: float = 0.02
    old_address: float = 0.2  # of records within a year of a move, the previous address
    postcode_partial: float = 0.01  # outward code only
    postcode_mistyped: float = 0.01  # one character of the inward code wrong (still valid)
    postcode_missing: float = 0.02
    identifier_missing: float = 0.08  # an identifier the partner holds is blank
    # people the police hold twice (a second nominal id); half their records use it
    duplicate_nominal: float = 0.03
    # invalid values (quarantined by ingest)
    nhs_number_invalid: float = 0.002  # two digits transposed: the check digit fails
    date_invalid: float = 0.001  # an impossible calendar date in a text date column
    postcode_invalid: float = 0.001  # malformed postcode
    required_missing: float = 0.001  # the event date left blank


@dataclass(frozen=True)
class OutcomeModel:
    """Logistic models of the four outcomes: intercepts and coefficients on latent factors.

    ``p = 1 / (1 + exp(-(intercept + sum(coef * factor))))`` per unit and 12-month window.
    """

    da_high: dict[str, float] = field(
        default_factory=lambda: {
            "intercept": -5.4,
            "da_propensity": 1.1,
            "adversity": 0.35,
            "max_adult_substance": 0.3,
            "programme": -0.4,
        }
    )
    exploitation: dict[str, float] = field(
        default_factory=lambda: {
            "intercept": -6.0,
            "vulnerability": 1.0,
            "offending": 0.6,
            "deprivation": 0.3,
            "programme": -0.4,
        }
    )
    not_school_ready: dict[str, float] = field(
        default_factory=lambda: {
            "intercept": -1.5,
            "adversity": 0.55,
            "deprivation": 0.25,
            "vulnerability": 0.3,
            "male": 0.45,
            "summer_born": 0.6,
            "programme": -0.4,
        }
    )
    cin_cp: dict[str, float] = field(
        default_factory=lambda: {
            "intercept": -5.6,
            "vulnerability": 0.9,
            "da_propensity": 0.5,
            "max_adult_substance": 0.4,
            "adversity": 0.3,
            "programme": -0.4,
        }
    )


@dataclass(frozen=True)
class Programme:
    """The early-help (supporting families) programme and its causal effect."""

    # Enrolment is targeted at families in difficulty, so a naive before/after or
    # enrolled/not comparison is confounded; truth holds the real effect.
    enrol_intercept: float = -4.1
    enrol_adversity: float = 1.1
    enrol_da: float = 0.6
    # multiplier on event rates after enrolment (0.75 = 25% fewer events)
    rate_ratio: dict[str, float] = field(
        default_factory=lambda: {
            "police_incidents": 0.7,
            "crimes": 0.75,
            "anti_social_behaviour": 0.65,
            "domestic_abuse": 0.8,
            "missing_persons": 0.8,
            "ae_attendances": 0.9,
            "ambulance_callouts": 0.9,
            "homelessness": 0.8,
        }
    )
    absence_ratio: float = 0.75  # school absence after enrolment


@dataclass(frozen=True)
class TimeProfile:
    """Demand over the calendar: a yearly cycle and a trend per dataset.

    The rate on a day is ``base × (1 + amplitude × cos(2π (day of year − peak) / 365.25))
    × (1 + trend) ^ years since the start``.
    """

    seasonality: dict[str, tuple[float, int]] = field(
        default_factory=lambda: {
            # dataset: (amplitude, day of the year of the peak)
            "anti_social_behaviour": (0.3, 200),
            "domestic_abuse": (0.15, 185),
            "police_incidents": (0.1, 200),
            "missing_persons": (0.15, 200),
            "ae_attendances": (0.1, 15),
            "ambulance_callouts": (0.2, 10),
            "fire_incidents": (0.2, 350),
            "csc_referrals": (0.1, 300),
        }
    )
    trend: dict[str, float] = field(
        default_factory=lambda: {
            "mental_health": 0.06,
            "homelessness": 0.08,
            "home_fire_safety_visits": 0.05,
            "substance_misuse": -0.02,
            "anti_social_behaviour": -0.03,
        }
    )


@dataclass(frozen=True)
class SynthParams:
    errors: RecordingErrors = field(default_factory=RecordingErrors)
    outcomes: OutcomeModel = field(default_factory=OutcomeModel)
    programme: Programme = field(default_factory=Programme)
    time: TimeProfile = field(default_factory=TimeProfile)
    persons_per_output_area: float = 290.0  # about 125 households
    vacancy_rate: float = 0.07
    household_move_rate: float = 0.07  # per household per year, before adversity
    separation_rate: float = 0.015  # per couple with children per year
    marriage_rate: float = 0.04  # per cohabiting couple per year
    single_partnering_rate: float = 0.01  # per single adult per year

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
