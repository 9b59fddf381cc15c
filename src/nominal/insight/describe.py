"""Every feature in plain words, for explanations a practitioner can read.

``describe(feature, value)`` gives, for example, "3 police incidents in the household
in the last 12 months" or "known to 4 agencies in the last 3 years". The table
:func:`feature_table` lists every feature with its description (shown in model
cards), so no explanation ever shows a raw column name.
"""

from __future__ import annotations

import re

# dataset -> (one, many)
DATASET_WORDS: dict[str, tuple[str, str]] = {
    "police_incidents": ("police incident", "police incidents"),
    "crimes": ("crime record", "crime records"),
    "domestic_abuse": ("domestic abuse incident", "domestic abuse incidents"),
    "missing_persons": ("missing-person report", "missing-person reports"),
    "anti_social_behaviour": ("anti-social behaviour report", "anti-social behaviour reports"),
    "csc_referrals": ("children's social care referral", "children's social care referrals"),
    "cin_cp_plans": ("child in need or protection plan", "child in need or protection plans"),
    "school_attendance": ("school attendance record", "school attendance records"),
    "school_exclusions": ("school exclusion", "school exclusions"),
    "early_years": ("early years assessment", "early years assessments"),
    "ae_attendances": ("A&E attendance", "A&E attendances"),
    "ambulance_callouts": ("ambulance call-out", "ambulance call-outs"),
    "mental_health": ("mental health referral", "mental health referrals"),
    "substance_misuse": (
        "substance misuse treatment episode",
        "substance misuse treatment episodes",
    ),
    "homelessness": ("homelessness application", "homelessness applications"),
    "fire_incidents": ("fire incident", "fire incidents"),
    "home_fire_safety_visits": ("home fire safety visit", "home fire safety visits"),
    "probation": ("probation order", "probation orders"),
    "benefits": ("benefit claim", "benefit claims"),
    "early_help": ("early help episode", "early help episodes"),
}

WHO = {"p": "involving the person", "h": "in the household", "a": "in the area"}

# (count phrase: one, many) for the specific features, after the p_/h_ prefix
SPECIFIC: dict[str, tuple[str, str]] = {
    "events_3y": ("record from any agency in the last 3 years", "records from any agency in the last 3 years"),
    "open_cases": ("open case with an agency", "open cases with agencies"),
    "da_high_5y": ("high-risk (DASH) domestic abuse incident in the last 5 years", "high-risk (DASH) domestic abuse incidents in the last 5 years"),
    "da_medium_5y": ("medium-risk (DASH) domestic abuse incident in the last 5 years", "medium-risk (DASH) domestic abuse incidents in the last 5 years"),
    "da_victim_5y": ("domestic abuse incident as victim in the last 5 years", "domestic abuse incidents as victim in the last 5 years"),
    "da_suspect_5y": ("domestic abuse incident as suspect in the last 5 years", "domestic abuse incidents as suspect in the last 5 years"),
    "crime_suspect_5y": ("crime as suspect in the last 5 years", "crimes as suspect in the last 5 years"),
    "referrals_for_da_5y": ("children's social care referral for domestic abuse in the last 5 years", "children's social care referrals for domestic abuse in the last 5 years"),
    "homeless_for_da_5y": ("homelessness application because of domestic abuse in the last 5 years", "homelessness applications because of domestic abuse in the last 5 years"),
    "assault_injuries_5y": ("A&E attendance or ambulance call-out for assault in the last 5 years", "A&E attendances or ambulance call-outs for assault in the last 5 years"),
    "exploitation_referrals": ("earlier referral for child exploitation", "earlier referrals for child exploitation"),
    "cin_cp_plans_ever": ("earlier child in need or protection plan", "earlier child in need or protection plans"),
    "on_plan": ("child on a child in need or protection plan now", "children on a child in need or protection plan now"),
    "cp_plans_ever": ("earlier child protection plan", "earlier child protection plans"),
    "not_school_ready_before": ("child earlier assessed as not school-ready", "children earlier assessed as not school-ready"),
    "mental_health_open": ("open mental health episode", "open mental health episodes"),
    "substance_open": ("open substance misuse treatment episode", "open substance misuse treatment episodes"),
    "probation_open": ("current probation order", "current probation orders"),
    "early_help_open": ("open early help episode", "open early help episodes"),
    "early_help_ever": ("early help episode", "early help episodes"),
    "benefits_open": ("benefit claim open now", "benefit claims open now"),
    "alcohol_drugs_5y": ("alcohol- or drug-related record (A&E, ambulance, police, ASB) in the last 5 years", "alcohol- or drug-related records (A&E, ambulance, police, ASB) in the last 5 years"),
    "persistent_absence_3y": ("school year of persistent absence in the last 3 years", "school years of persistent absence in the last 3 years"),
}  # fmt: skip

# yearly rates over all known history (after the p_/h_ prefix, before "_per_year")
PER_YEAR: dict[str, str] = {
    "da_high": "high-risk (DASH) domestic abuse incidents",
    "da_medium": "medium-risk (DASH) domestic abuse incidents",
    "da_incidents": "domestic abuse incidents",
    "referrals_for_da": "children's social care referrals for domestic abuse",
    "homeless_for_da": "homelessness applications because of domestic abuse",
    "assault_injuries": "A&E attendances or ambulance call-outs for assault",
    "alcohol_drugs": "alcohol- or drug-related records (A&E, ambulance, police, ASB)",
    "crime_suspect": "crimes as suspect",
    "police_alcohol_mh": "alcohol-related or mental-health police incidents",
    **{ds: words[1] for ds, words in DATASET_WORDS.items()},
}

FIXED: dict[str, str] = {
    "p_age": "aged {v}",
    "p_male": "{male}",
    "p_age_days": "aged {years} years and {months} months",
    "p_month_in_school_year": "born in month {v1} of the school year (1 = September, 12 = August)",
    "p_attendance_pct_last": "latest school attendance {v}%",
    "p_absence_rate_5y": "missed {v}% of school sessions over the last 5 school years",
    "h_absence_rate_5y": "the household's children missed {v}% of school sessions over the last 5 school years",
    "p_agencies_3y": "known to {v} agencies in the last 3 years",
    "p_agencies_12m": "known to {v} agencies in the last 12 months",
    "h_agencies_3y": "household known to {v} agencies in the last 3 years",
    "h_agencies_12m": "household known to {v} agencies in the last 12 months",
    "h_members": "{v} people in the household",
    "h_adults": "{v} adults in the household",
    "h_children": "{v} children in the household",
    "h_under_fives": "{v} children under five in the household",
    "h_oldest_child_age": "oldest child in the household aged {v}",
    "h_youngest_adult_age": "youngest adult in the household aged {v}",
    "h_lone_adult": "{lone}",
    "h_communal": "a communal address (care home or hostel)",
    "p_history_years": "{v} years of partner records known about the person",
    "h_history_years": "{v} years of partner records known",
    "h_events_per_member_3y": "{v} records from any agency per household member in the last 3 years",
    "h_da_medium_share": "{pct}% of the household's standard or medium domestic abuse incidents graded medium risk",
    "h_areas_5y": "household recorded in {v} output areas in the last 5 years",
    "h_first_area_imd_score": "deprivation score {v} of the household's earliest known area",
    "a_imd_score": "home area deprivation score {v}",
    "a_imd_decile": "home area in deprivation decile {v} (1 = most deprived)",
    "a_residents": "{v} residents in the home output area",
    "a_children": "{v} children in the home output area",
    "a_exploitation_referrals_2y": "{v} child exploitation referrals in the home area in the last 2 years",
    "a_households_known_12m": "{v} households in the home area known to agencies in the last 12 months",
}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _count(n: float, words: tuple[str, str]) -> str:
    return f"{_num(n)} {words[0] if n == 1 else words[1]}"


def describe(feature: str, value: float) -> str:
    """The feature and its value in plain words."""
    v = float(value)
    if feature in FIXED:
        return FIXED[feature].format(
            v=_num(v),
            v1=_num(v + 1),
            years=_num(v // 365.25),
            months=_num((v % 365.25) // 30.44),
            male="a boy or man" if v else "a girl or woman",
            lone="a lone adult caring for children" if v else "not a lone-adult household",
            pct=_num(round(100 * v)),
        )
    prefix, _, rest = feature.partition("_")
    who = WHO.get(prefix, "")
    match = re.fullmatch(r"(.+)_rate", rest)
    if prefix == "a" and match and match.group(1) in DATASET_WORDS:
        return f"{DATASET_WORDS[match.group(1)][1]} in the home area: {_num(v)} per 1,000 residents in the last 12 months"
    match = re.fullmatch(r"(.+)_(12m|3y|5y|days_since)", rest)
    if match and match.group(1) in DATASET_WORDS:
        ds, span = match.groups()
        words = DATASET_WORDS[ds]
        if span == "days_since":
            if v > 3 * 365:
                return f"no {words[1]} {who} in the last 3 years"
            return f"last {words[0]} {who} {_num(v)} day{'' if v == 1 else 's'} ago"
        period = {"12m": "the last 12 months", "3y": "the last 3 years", "5y": "the last 5 years"}[
            span
        ]
        return f"{_count(v, words)} {who} in {period}"
    match = re.fullmatch(r"(max_adult_)?(.+)_per_year", rest)
    if match and match.group(2) in PER_YEAR:
        what = PER_YEAR[match.group(2)]
        if match.group(1):
            return f"{v:.1f} {what} a year for the most affected adult in the household"
        return f"{v:.1f} {what} a year {who} (over all records known)"
    if rest in SPECIFIC:
        return f"{_count(v, SPECIFIC[rest])} {who}".strip()
    return f"{feature.replace('_', ' ')}: {_num(v)}"


def label(feature: str) -> str:
    """What the feature measures (for the feature-description table)."""
    if feature == "p_month_in_school_year":
        return "month of birth within the school year (1 = September, 12 = August)"
    if feature == "h_da_medium_share":
        return "share of the household's standard or medium domestic abuse incidents graded medium risk"
    return re.sub(r"\b2(?:\.0)?\b", "N", describe(feature, 2))


def feature_table(features: list[str]) -> list[dict[str, str]]:
    return [{"feature": f, "description": label(f)} for f in features]
