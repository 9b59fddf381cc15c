"""What each partner agency sees: background events per dataset, from latent factors.

Each generator returns an :class:`EventTable` of one dataset; realised outcomes
(drawn in :mod:`nominal.synth.outcomes`) are added to the same datasets. Rates are per
person-year (or household-year) and are documented in docs/synthetic-population.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nominal.synth.events import EventTable, World, household_members, pick, sigmoid
from nominal.synth.outcomes import Outcomes
from nominal.synth.population import COMMUNAL, OPEN, R, T

Generator = Callable[[World, np.random.Generator], EventTable]


def _single(
    w: World,
    dataset: str,
    person: np.ndarray,
    day: np.ndarray,
    attrs: dict[str, np.ndarray],
    end: np.ndarray | None = None,
) -> EventTable:
    return EventTable(
        dataset,
        person,
        w.new_event_numbers(len(person)),
        day,
        np.full(len(person), OPEN, dtype=np.int64) if end is None else end,
        attrs,
    )


def _person_process(
    w: World,
    rng: np.random.Generator,
    dataset: str,
    age_lo: float,
    age_hi: float,
    rate: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    who, lo, hi = w.exposure(age_lo, age_hi)
    person, day = w.poisson(rng, who, rate(who), lo, hi, dataset)
    keep = w.thin(rng, dataset, person, day)
    return person[keep], day[keep]


def police_incidents(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "police_incidents", 10, 120,
        lambda i: 0.06 * np.exp(0.5 * p.offending[i] + 0.35 * p.mental_health[i]
                                + 0.3 * p.adversity[i] + 0.2 * p.substance[i]),
    )  # fmt: skip
    n = len(person)
    kinds = ["concern for welfare", "suspicious behaviour", "disturbance", "road traffic",
             "mental health", "alcohol related", "neighbour dispute", "concern for child"]  # fmt: skip
    wts = np.stack(
        [np.full(n, 2.0), np.full(n, 1.2), 1.2 * np.exp(0.5 * p.offending[person]),
         np.full(n, 0.8), 0.6 * np.exp(0.9 * p.mental_health[person]),
         0.5 * np.exp(0.9 * p.substance[person]), np.full(n, 0.8),
         0.4 * np.exp(0.6 * p.adversity[person])], axis=1,
    )  # fmt: skip
    role = pick(
        rng, ["subject", "caller", "victim", "witness"], np.array([0.4, 0.25, 0.2, 0.15]), n
    )
    return _single(
        w, "police_incidents", person, day,
        {"incident_type": pick(rng, kinds, wts, n), "role": role,
         "grade": pick(rng, ["immediate", "priority", "scheduled"], np.array([0.2, 0.5, 0.3]), n)},
    )  # fmt: skip


def crimes(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    sus, sday = _person_process(
        w, rng, "crimes", 10, 120,
        lambda i: 0.025 * np.exp(1.1 * p.offending[i] + 0.2 * p.substance[i]),
    )  # fmt: skip
    vic, vday = _person_process(
        w, rng, "crimes", 0, 120,
        lambda i: 0.035 * np.exp(0.35 * p.adversity[i] + 0.3 * p.vulnerability[i]),
    )  # fmt: skip
    crime_no = w.new_event_numbers(len(sus) + len(vic))
    offences = ["theft", "burglary", "criminal damage", "violence without injury",
                "violence with injury", "public order", "drug offences", "vehicle offences",
                "possession of weapons", "sexual offences"]  # fmt: skip
    off_s = pick(rng, offences, np.array([22, 8, 12, 18, 12, 10, 9, 5, 3, 1.0]), len(sus))
    off_v = pick(rng, offences, np.array([28, 14, 16, 18, 12, 5, 0.01, 5, 1, 1.0]), len(vic))
    # a third of suspects' crimes name a victim from the town as well
    pair = np.flatnonzero(rng.random(len(sus)) < 0.3)
    victims = rng.integers(0, p.n, len(pair))
    ok = (p.dob[victims] < sday[pair]) & (victims != sus[pair])
    pair, victims = pair[ok], victims[ok]
    person = np.concatenate([sus, vic, victims])
    return EventTable(
        "crimes",
        person,
        np.concatenate([crime_no[: len(sus)], crime_no[len(sus) :], crime_no[pair]]),
        np.concatenate([sday, vday, sday[pair]]),
        np.full(len(person), OPEN, dtype=np.int64),
        {
            "role": np.array(
                ["suspect"] * len(sus) + ["victim"] * (len(vic) + len(pair)), dtype=object
            ),
            "offence_group": np.concatenate([off_s, off_v, off_s[pair]]),
            "crime_outcome": pick(
                rng,
                ["charged", "caution", "community resolution", "no further action",
                 "investigation complete - no suspect", "under investigation"],
                np.array([0.08, 0.04, 0.06, 0.3, 0.42, 0.1]),
                len(person),
            ),
        },
    )  # fmt: skip


def anti_social_behaviour(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "anti_social_behaviour", 10, 120,
        lambda i: 0.025 * np.exp(0.9 * p.offending[i] + 0.3 * p.adversity[i]
                                 - 0.02 * np.clip(w.age(i, w.end) - 25, 0, None)),
    )  # fmt: skip
    n = len(person)
    return _single(
        w, "anti_social_behaviour", person, day,
        {"asb_category": pick(rng, ["personal", "nuisance", "environmental"],
                              np.array([0.3, 0.55, 0.15]), n),
         "asb_type": pick(rng, ["rowdy behaviour", "noise", "vehicle nuisance", "drug use",
                                "fly-tipping", "intimidation", "street drinking"],
                          np.array([0.3, 0.2, 0.1, 0.12, 0.08, 0.12, 0.08]), n),
         "action_taken": pick(rng, ["advice", "warning letter", "acceptable behaviour contract",
                                    "community protection warning", "injunction", "none"],
                              np.array([0.35, 0.25, 0.1, 0.1, 0.03, 0.17]), n)},
    )  # fmt: skip


def domestic_abuse(w: World, rng: np.random.Generator) -> EventTable:
    """Standard and medium risk incidents (high-risk ones are outcome 1)."""
    p = w.pop
    live = ~np.isin(p.hh_type, COMMUNAL)
    h = np.flatnonzero(live)
    rate = 0.05 * np.exp(1.0 * p.hh_da[h] + 0.3 * p.hh_adversity[h])
    hh, day = w.poisson(
        rng, h, rate, np.full(len(h), w.start), np.full(len(h), w.end), "domestic_abuse"
    )
    # the victim and suspect are adults of the household that day
    row, member = household_members(w, hh, day)
    adult = w.age(member, day[row]) >= 18
    row, member = row[adult], member[adult]
    fem = p.sex[member] == "F"
    victim = np.full(len(hh), -1)
    suspect = np.full(len(hh), -1)
    r = rng.random(len(row))
    o = np.lexsort((r, ~fem, row))
    first = np.r_[True, row[o][1:] != row[o][:-1]]
    victim[row[o][first]] = member[o][first]
    o2 = np.lexsort((r, fem, row))
    first2 = np.r_[True, row[o2][1:] != row[o2][:-1]]
    cand = member[o2][first2]
    suspect[row[o2][first2]] = np.where(p.sex[cand] == "M", cand, -1)
    # after a separation the suspect is often the ex-partner, who now lives elsewhere
    ex = w.ex_partner(hh, day)
    use_ex = (suspect < 0) & (ex >= 0) & (rng.random(len(hh)) < 0.7)
    suspect[use_ex] = ex[use_ex]
    ok = victim >= 0
    keep = w.thin(rng, "domestic_abuse", np.maximum(victim, 0), day) & ok
    hh, day, victim, suspect = hh[keep], day[keep], victim[keep], suspect[keep]
    grade = np.where(
        rng.random(len(hh)) < sigmoid(-1.2 + 0.8 * p.hh_da[hh]), "medium", "standard"
    ).astype(object)
    ev = w.new_event_numbers(len(hh))
    has_s = (suspect >= 0) & (suspect != victim)
    n = len(hh) + int(has_s.sum())
    return EventTable(
        "domestic_abuse",
        np.concatenate([victim, suspect[has_s]]),
        np.concatenate([ev, ev[has_s]]),
        np.concatenate([day, day[has_s]]),
        np.full(n, OPEN, dtype=np.int64),
        {"role": np.array(["victim"] * len(hh) + ["suspect"] * int(has_s.sum()), dtype=object),
         "dash_risk": np.concatenate([grade, grade[has_s]])},
    )  # fmt: skip


def missing_persons(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    kp, kd = _person_process(
        w, rng, "missing_persons", 10, 18,
        lambda i: 0.02 * np.exp(1.1 * p.vulnerability[i] + 0.4 * p.offending[i]),
    )  # fmt: skip
    ap, ad = _person_process(
        w, rng, "missing_persons", 18, 120,
        lambda i: 0.004 * np.exp(1.0 * p.mental_health[i] + 0.3 * p.substance[i]),
    )  # fmt: skip
    person = np.concatenate([kp, ap])
    day = np.concatenate([kd, ad])
    n = len(person)
    end = np.minimum(day + rng.geometric(0.6, n) - 1, w.end - 1)
    return _single(
        w, "missing_persons", person, day,
        {"risk_grading": pick(rng, ["low", "medium", "high"], np.array([0.35, 0.5, 0.15]), n)},
        end,
    )  # fmt: skip


def csc_referrals(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "csc_referrals", 0, 18,
        lambda i: 0.03 * np.exp(0.9 * p.vulnerability[i] + 0.3 * p.da_propensity[i]),
    )  # fmt: skip
    n = len(person)
    return _single(
        w, "csc_referrals", person, day,
        {"referral_reason": pick(
            rng, ["neglect", "domestic abuse", "physical abuse", "emotional abuse",
                  "parental substance misuse", "parental mental health", "child behaviour"],
            np.array([0.25, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1]), n),
         "referral_source": pick(rng, ["Police", "School", "Health", "Individual",
                                       "Local Authority", "Anonymous"],
                                 np.array([0.3, 0.2, 0.15, 0.1, 0.15, 0.1]), n),
         "referral_outcome": pick(rng, ["no further action", "early help", "assessment"],
                                  np.array([0.45, 0.3, 0.25]), n)},
    )  # fmt: skip


def cin_cp_plans(w: World, rng: np.random.Generator) -> EventTable:
    """All plans are outcome 4 realisations; nothing else starts one."""
    return EventTable.empty("cin_cp_plans", ("plan_type", "category_of_need"))  # fmt: skip


def school_attendance(w: World, rng: np.random.Generator) -> EventTable:
    """One row per pupil per completed academic year (September to July)."""
    p = w.pop
    rows_p: list[np.ndarray] = []
    rows_d: list[np.ndarray] = []
    first = w.as_of.year - w.years
    for year in range(first, w.as_of.year):
        from datetime import date

        from nominal.synth.population import to_days

        ay_start = to_days(date(year, 9, 1))
        ay_end = to_days(date(year + 1, 7, 22))
        if ay_end > w.end or ay_end < w.start:
            continue
        aug31 = to_days(date(year, 8, 31))
        age = (aug31 - p.dob) / 365.25
        pupils = np.flatnonzero((age >= 4) & (age < 16))
        rows_p.append(pupils)
        rows_d.append(np.full(len(pupils), ay_start))
    person = np.concatenate(rows_p)
    day = np.concatenate(rows_d)
    n = len(person)
    age = w.age(person, day)
    teen = np.clip(age - 11, 0, None) / 4
    mean = sigmoid(-3.0 + 0.55 * p.vulnerability[person] + 0.3 * p.adversity[person]
                   + 0.3 * teen + 0.25 * teen * p.offending[person])  # fmt: skip
    hh = w.household_at(person, day)
    enrolled = w.enrol_day[hh] < day + 120
    mean = np.where(enrolled, mean * w.params.programme.absence_ratio, mean)
    rate = rng.beta(mean * 12, (1 - mean) * 12)
    possible = rng.integers(370, 381, n)
    missed = rng.binomial(possible, rate)
    pct = np.round(100 * (1 - missed / possible), 1)
    end = day + 324
    return _single(
        w, "school_attendance", person, day,
        {"sessions_possible": possible, "sessions_missed": missed, "attendance_pct": pct,
         "persistent_absence": np.where(pct < 90, "Y", "N").astype(object),
         "year_group": np.floor(age).astype(np.int64) - 4},
        end,
    )  # fmt: skip


def school_exclusions(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "school_exclusions", 6, 16,
        lambda i: 0.03 * np.exp(1.0 * p.offending[i] + 0.6 * p.vulnerability[i]),
    )  # fmt: skip
    # no exclusions in the summer holiday
    doy = (
        day.astype("datetime64[D]") - day.astype("datetime64[D]").astype("datetime64[Y]")
    ).astype(np.int64)
    keep = (doy < 200) | (doy > 243)
    person, day = person[keep], day[keep]
    n = len(person)
    perm = rng.random(n) < 0.03 * np.exp(0.5 * p.offending[person])
    return _single(
        w, "school_exclusions", person, day,
        {"exclusion_type": np.where(perm, "permanent", "suspension").astype(object),
         "exclusion_reason": pick(
             rng, ["persistent disruptive behaviour", "physical assault against a pupil",
                   "physical assault against an adult", "verbal abuse or threatening behaviour",
                   "drug and alcohol related", "use or threat of use of an offensive weapon"],
             np.array([0.45, 0.15, 0.08, 0.2, 0.07, 0.05]), n),
         "sessions_excluded": np.where(perm, 0, rng.integers(1, 11, n))},
    )  # fmt: skip


def early_years(w: World, rng: np.random.Generator) -> EventTable:
    """All early-years records are outcome 3 draws (every child in each cohort)."""
    return EventTable.empty("early_years")


def ae_attendances(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop

    def rate(i: np.ndarray) -> np.ndarray:
        age = w.age(i, w.end)
        base = 0.22 + 0.25 * (age < 5) + 0.35 * (age > 75)
        return base * np.exp(0.35 * p.substance[i] + 0.3 * p.mental_health[i]
                             + 0.25 * (p.sex[i] == "F") * p.da_propensity[i])  # fmt: skip

    person, day = _person_process(w, rng, "ae_attendances", 0, 120, rate)
    n = len(person)
    wts = np.stack(
        [np.full(n, 3.0), np.full(n, 3.5), 0.2 * np.exp(0.8 * p.mental_health[person]),
         0.2 * np.exp(0.9 * p.substance[person]), 0.1 * np.exp(0.9 * p.substance[person]),
         0.15 * np.exp(0.6 * p.da_propensity[person] + 0.3 * p.offending[person]),
         0.3 + 1.2 * (w.age(person, day) > 70)], axis=1,
    )  # fmt: skip
    complaint = pick(rng, ["illness", "injury", "self-harm", "alcohol", "overdose", "assault",
                           "fall"], wts, n)  # fmt: skip
    return _single(
        w, "ae_attendances", person, day,
        {"presenting_complaint": complaint,
         "arrival_mode": pick(rng, ["walk-in", "ambulance", "police"],
                              np.array([0.7, 0.27, 0.03]), n),
         "disposal": pick(rng, ["discharged", "admitted", "referred", "left before seen"],
                          np.array([0.6, 0.25, 0.1, 0.05]), n)},
    )  # fmt: skip


def ambulance_callouts(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop

    def rate(i: np.ndarray) -> np.ndarray:
        age = w.age(i, w.end)
        base = 0.06 + 0.3 * (age > 75)
        return base * np.exp(0.45 * p.substance[i] + 0.35 * p.mental_health[i])

    person, day = _person_process(w, rng, "ambulance_callouts", 0, 120, rate)
    n = len(person)
    nature = pick(
        rng, ["fall", "breathing problems", "chest pain", "overdose or poisoning", "assault",
              "mental health", "unconscious", "sick person"],
        np.stack([0.5 + 2.0 * (w.age(person, day) > 70), np.full(n, 1.0), np.full(n, 1.0),
                  0.2 * np.exp(0.9 * p.substance[person]), 0.2 * np.exp(0.4 * p.offending[person]),
                  0.3 * np.exp(0.8 * p.mental_health[person]), np.full(n, 0.5),
                  np.full(n, 1.5)], axis=1), n)  # fmt: skip
    return _single(
        w, "ambulance_callouts", person, day,
        {"call_category": rng.choice(np.array([1, 2, 3, 4]), n, p=[0.1, 0.55, 0.25, 0.1]),
         "nature_of_call": nature,
         "conveyed": np.where(rng.random(n) < 0.65, "true", "false").astype(object)},
    )  # fmt: skip


def mental_health(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "mental_health", 5, 120,
        lambda i: 0.022 * np.exp(1.1 * p.mental_health[i] + 0.2 * p.substance[i]),
    )  # fmt: skip
    n = len(person)
    age = w.age(person, day)
    team = np.where(age < 18, "CAMHS", np.where(age >= 65, "Older Adults", "Adult Community"))
    crisis = rng.random(n) < 0.15 * np.exp(0.4 * p.mental_health[person])
    team = np.where(crisis & (age >= 18), "Crisis Resolution", team).astype(object)
    return _single(
        w, "mental_health", person, day,
        {"team": team,
         "referral_source": pick(rng, ["GP", "A&E", "Police", "Self", "Social Care", "School"],
                                 np.array([0.45, 0.15, 0.1, 0.1, 0.1, 0.1]), n),
         "primary_reason": pick(rng, ["depression", "anxiety", "psychosis", "self-harm",
                                      "eating disorder", "personality disorder", "dementia"],
                                np.stack([np.full(n, 3.0), np.full(n, 3.0), np.full(n, 0.7),
                                          np.full(n, 1.0), 0.5 * (age < 30), np.full(n, 0.6),
                                          3.0 * (age > 70)], axis=1), n)},
        w.involvement(rng, day, 120, 0.9),
    )  # fmt: skip


def substance_misuse(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "substance_misuse", 14, 120,
        lambda i: 0.012 * np.exp(1.4 * p.substance[i]),
    )  # fmt: skip
    n = len(person)
    end = w.involvement(rng, day, 200, 0.8)
    exit_reason = pick(rng, ["completed - drug free", "completed - occasional user",
                             "dropped out", "transferred", "prison", "died"],
                       np.array([0.35, 0.15, 0.3, 0.12, 0.06, 0.02]), n)  # fmt: skip
    exit_reason = np.where(end == OPEN, "", exit_reason).astype(object)
    return _single(
        w, "substance_misuse", person, day,
        {"primary_substance": pick(rng, ["alcohol", "opiates", "crack", "cannabis", "cocaine",
                                         "benzodiazepines"],
                                   np.array([0.45, 0.2, 0.1, 0.12, 0.1, 0.03]), n),
         "referral_source": pick(rng, ["self", "GP", "criminal justice", "hospital",
                                      "social care"], np.array([0.4, 0.2, 0.2, 0.1, 0.1]), n),
         "exit_reason": exit_reason},
        end,
    )  # fmt: skip


def _household_events(
    w: World,
    rng: np.random.Generator,
    dataset: str,
    rate: np.ndarray,
    households: np.ndarray,
    adults_only: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Household-level Poisson events, one row per member present (or per adult)."""
    start, end = np.full(len(households), w.start), np.full(len(households), w.end)
    hh, day = w.poisson(rng, households, rate, start, end, dataset)
    row, member = household_members(w, hh, day)
    if adults_only:
        adult = w.age(member, day[row]) >= 18
        row, member = row[adult], member[adult]
    keep = w.thin(rng, dataset, member, day[row])
    return row[keep], member[keep], hh, day


def homelessness(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    h = np.flatnonzero(p.hh_type != T["care_home_resident"])
    rate = 0.006 * np.exp(0.9 * p.hh_adversity[h] + 0.5 * p.hh_da[h])
    row, member, hh, day = _household_events(w, rng, "homelessness", rate, h, False)
    ev = w.new_event_numbers(len(hh))
    first = np.r_[True, row[1:] != row[:-1]]
    age = w.age(member, day[row])
    rel = np.where(first, "applicant", np.where(age < 18, "child", "household member")).astype(
        object
    )
    n_app = len(hh)
    reason = pick(rng, ["end of private tenancy", "family or friends no longer willing",
                        "domestic abuse", "relationship breakdown", "eviction from supported housing",
                        "leaving institution"],
                  np.stack([np.full(n_app, 3.0), np.full(n_app, 3.0),
                            1.5 * np.exp(0.8 * p.hh_da[hh]), np.full(n_app, 1.5),
                            0.5 + 2.0 * (p.hh_type[hh] == T["hostel_resident"]),
                            np.full(n_app, 0.5)], axis=1), n_app)  # fmt: skip
    duty = pick(rng, ["prevention", "relief", "main duty", "no duty owed"],
                np.array([0.45, 0.35, 0.1, 0.1]), n_app)  # fmt: skip
    return EventTable(
        "homelessness", member, ev[row], day[row],
        np.full(len(member), OPEN, dtype=np.int64),
        {"homelessness_reason": reason[row], "duty_owed": duty[row],
         "priority_need": np.where(rng.random(n_app) < 0.4, "yes", "no").astype(object)[row]},
        household_ref=ev[row], relationship=rel,
    )  # fmt: skip


def fire_incidents(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    h = np.flatnonzero(p.hh_type != T["care_home_resident"])
    rate = 0.005 * np.exp(0.45 * p.hh_adversity[h] + 0.3 * p.hh_da[h])
    row, member, _hh, day = _household_events(w, rng, "fire_incidents", rate, h, True)
    first = np.r_[True, row[1:] != row[:-1]]  # the occupier who reported it
    row, member = row[first], member[first]
    n = len(member)
    return _single(
        w, "fire_incidents", member, day[row],
        {"incident_type": pick(rng, ["accidental dwelling fire", "deliberate fire",
                                     "false alarm", "special service"],
                               np.array([0.35, 0.1, 0.4, 0.15]), n),
         "cause": pick(rng, ["cooking", "smoking materials", "electrical", "candles",
                             "heating", "unknown"], np.array([0.45, 0.15, 0.15, 0.05, 0.1, 0.1]), n),
         "casualties": rng.poisson(0.08, n)},
    )  # fmt: skip


def home_fire_safety_visits(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    members, mhh = w.members_at(w.start)
    old = np.zeros(len(p.hh_type), dtype=bool)
    old[mhh[w.age(members, w.start) >= 70]] = True
    h = np.flatnonzero(~np.isin(p.hh_type, COMMUNAL))
    rate = 0.02 + 0.08 * old[h] + 0.01 * np.exp(0.6 * p.hh_adversity[h])
    row, member, hh, day = _household_events(w, rng, "home_fire_safety_visits", rate, h, True)
    first = np.r_[True, row[1:] != row[:-1]]
    row, member = row[first], member[first]
    n = len(member)
    return _single(
        w, "home_fire_safety_visits", member, day[row],
        {"referral_source": pick(rng, ["self", "partner agency", "targeted campaign",
                                       "post-incident"], np.array([0.35, 0.35, 0.2, 0.1]), n),
         "risk_level": pick(rng, ["low", "medium", "high"], np.stack(
             [np.full(n, 3.0), np.full(n, 2.0), 0.6 * np.exp(0.7 * p.hh_adversity[hh[row]])],
             axis=1), n),
         "smoke_alarms_fitted": rng.integers(0, 3, n)},
    )  # fmt: skip


def probation(w: World, rng: np.random.Generator) -> EventTable:
    p = w.pop
    person, day = _person_process(
        w, rng, "probation", 18, 120,
        lambda i: 0.004 * np.exp(1.4 * p.offending[i] + 0.3 * p.substance[i]),
    )  # fmt: skip
    n = len(person)
    order = pick(rng, ["community order", "suspended sentence order", "licence",
                       "post-sentence supervision"], np.array([0.5, 0.2, 0.25, 0.05]), n)  # fmt: skip
    return _single(
        w, "probation", person, day,
        {"order_type": order,
         "tier": pick(rng, ["A", "B", "C", "D"], np.array([0.3, 0.35, 0.25, 0.1]), n),
         "risk_of_serious_harm": pick(rng, ["low", "medium", "high", "very high"],
                                      np.array([0.35, 0.45, 0.17, 0.03]), n)},
        w.involvement(rng, day, 420, 0.4),
    )  # fmt: skip


def benefits(w: World, rng: np.random.Generator) -> EventTable:
    """Benefit claims that were open at some time in the period (some began before it)."""
    p = w.pop
    members, _ = w.members_at(w.end - 1)
    age = w.age(members, w.end)
    adult = members[age >= 18]
    a_age = age[age >= 18]
    adv = p.adversity[adult]
    kinds = [
        ("Universal Credit", sigmoid(-1.6 + 1.1 * adv) * (a_age < 67), 900, 1.0),
        ("Personal Independence Payment",
         sigmoid(-3.0 + 0.8 * p.mental_health[adult] + 0.03 * (a_age - 40)) * (a_age < 67), 1500, 0.6),
        ("Pension Credit", sigmoid(-1.8 + 0.9 * adv) * (a_age >= 67), 2000, 0.5),
        ("Carer's Allowance", np.full(len(adult), 0.02) * (a_age < 67), 1200, 0.7),
    ]  # fmt: skip
    person_l, start_l, end_l, type_l, amount_l = [], [], [], [], []
    for name, prob, median, sigma in kinds:
        claim = adult[rng.random(len(adult)) < prob]
        start = w.start - 3 * 365 + rng.integers(0, (w.end - w.start) + 3 * 365, len(claim))
        start = np.minimum(start, w.end - 1)
        end = start + np.round(median * np.exp(sigma * rng.normal(0, 1, len(claim)))).astype(
            np.int64
        )
        keep = end > w.start
        person_l.append(claim[keep])
        start_l.append(start[keep])
        end_l.append(np.where(end[keep] >= w.end, OPEN, end[keep]))
        type_l.append(np.full(int(keep.sum()), name, dtype=object))
        amount_l.append(np.round(rng.gamma(4, 25, int(keep.sum())), 2))
    person = np.concatenate(person_l)
    return _single(
        w, "benefits", person, np.concatenate(start_l),
        {"benefit_type": np.concatenate(type_l), "weekly_amount": np.concatenate(amount_l)},
        np.concatenate(end_l),
    )  # fmt: skip


def early_help(w: World, rng: np.random.Generator) -> EventTable:
    """Filled from the programme enrolment (see outcomes.enrol_programme)."""
    return EventTable.empty("early_help")


GENERATORS: dict[str, Generator] = {
    "police_incidents": police_incidents,
    "crimes": crimes,
    "domestic_abuse": domestic_abuse,
    "missing_persons": missing_persons,
    "anti_social_behaviour": anti_social_behaviour,
    "csc_referrals": csc_referrals,
    "cin_cp_plans": cin_cp_plans,
    "school_attendance": school_attendance,
    "school_exclusions": school_exclusions,
    "early_years": early_years,
    "ae_attendances": ae_attendances,
    "ambulance_callouts": ambulance_callouts,
    "mental_health": mental_health,
    "substance_misuse": substance_misuse,
    "homelessness": homelessness,
    "fire_incidents": fire_incidents,
    "home_fire_safety_visits": home_fire_safety_visits,
    "probation": probation,
    "benefits": benefits,
    "early_help": early_help,
}


def concat(tables: list[EventTable]) -> EventTable:
    """Tables of one dataset as one, sorted by date; attributes missing from a part are blank."""
    tables = [t for t in tables if len(t) or t is tables[0]]
    keys: list[str] = []
    for t in tables:
        keys += [k for k in t.attrs if k not in keys]

    def col(t: EventTable, k: str) -> np.ndarray:
        if k in t.attrs:
            return t.attrs[k]
        return np.full(len(t), "", dtype=object)

    def opt(name: str) -> np.ndarray | None:
        parts = [getattr(t, name) for t in tables]
        if all(x is None for x in parts):
            return None
        return np.concatenate(
            [x if x is not None else np.full(len(t), -1, dtype=np.int64) if name == "household_ref"
             else np.full(len(t), "", dtype=object) for x, t in zip(parts, tables, strict=True)]
        )  # fmt: skip

    attrs = {}
    for k in keys:
        parts = [col(t, k) for t in tables]
        if any(p.dtype == object for p in parts):
            parts = [p.astype(object) for p in parts]
        attrs[k] = np.concatenate(parts)
    out = EventTable(
        tables[0].dataset,
        np.concatenate([t.person for t in tables]).astype(np.int64),
        np.concatenate([t.event_no for t in tables]).astype(np.int64),
        np.concatenate([t.day for t in tables]).astype(np.int64),
        np.concatenate([t.end_day for t in tables]).astype(np.int64),
        attrs,
        opt("household_ref"),
        opt("relationship"),
    )
    return out.take(np.lexsort((out.person, out.event_no, out.day)))


def with_family_members(
    w: World, table: EventTable, relation_of: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> EventTable:
    """Add a row per adult of the child's household (children's social care records the
    parents and carers of the child on the same referral)."""
    hh = w.household_at(table.person, table.day)
    row, member = household_members(w, hh, table.day)
    adult = (w.age(member, table.day[row]) >= 18) & (member != table.person[row])
    row, member = row[adult], member[adult]
    extra = table.take(row)
    extra.person = member
    extra.relationship = relation_of(member, table.person[row])
    base_rel = (
        table.relationship
        if table.relationship is not None
        else np.full(len(table), "child", dtype=object)
    )
    table.relationship = base_rel
    table.household_ref = hh
    extra.household_ref = hh[row]
    return concat([table, extra])


def all_events(
    w: World, rng_for: Callable[[str], np.random.Generator], outcomes: Outcomes, early: EventTable
) -> dict[str, EventTable]:
    out: dict[str, EventTable] = {}
    p = w.pop

    def relation(adult: np.ndarray, child: np.ndarray) -> np.ndarray:
        role = p.role[adult]
        step = p.role[child] == R["stepchild"]
        return np.select(
            [role == R["grandparent"], (role == R["head"]) & step & (p.sex[adult] == "M"),
             p.sex[adult] == "F", p.sex[adult] == "M"],
            ["grandparent", "stepfather", "mother", "father"], "other adult",
        ).astype(object)  # fmt: skip

    for name, gen in GENERATORS.items():
        parts = [gen(w, rng_for(name)), *outcomes.events.get(name, [])]
        if name == "early_help":
            parts = [early]
        table = concat(parts)
        if name in ("csc_referrals", "cin_cp_plans"):
            table = with_family_members(w, table, relation)
        out[name] = table
    return out
