"""The early-help programme and the four outcomes, drawn per 12-month window.

Windows are the years of the period ending on each anniversary of --as-of. For each
window and eligible unit the true probability is a logistic function of latent factors
(``SynthParams.outcomes``); the realised outcome is a Bernoulli draw, and each realised
outcome becomes an event in a partner feed during the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from nominal.synth.events import EventTable, World, household_members, pick, sigmoid
from nominal.synth.population import COMMUNAL, OPEN, T, to_days, years_before


@dataclass
class Outcomes:
    columns: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {
            k: []
            for k in (
                "outcome",
                "unit_type",
                "unit_id",
                "window_start",
                "window_end",
                "probability",
                "realised",
            )
        }
    )
    events: dict[str, list[EventTable]] = field(default_factory=dict)

    def add(
        self,
        outcome: str,
        unit_type: str,
        unit: np.ndarray,
        lo: int,
        hi: int,
        p: np.ndarray,
        realised: np.ndarray,
    ) -> None:
        n = len(unit)
        c = self.columns
        c["outcome"].append(np.full(n, outcome, dtype=object))
        c["unit_type"].append(np.full(n, unit_type, dtype=object))
        c["unit_id"].append(unit.astype(np.int64))
        c["window_start"].append(np.full(n, lo, dtype=np.int64))
        c["window_end"].append(np.full(n, hi, dtype=np.int64))
        c["probability"].append(p)
        c["realised"].append(realised.astype(np.int8))

    def event(self, table: EventTable) -> None:
        self.events.setdefault(table.dataset, []).append(table)


def windows(world: World) -> list[tuple[int, int]]:
    a = world.as_of
    edges = [to_days(years_before(a, world.years - w)) for w in range(world.years + 1)]
    return list(pairwise(edges))


def _logit(coef: dict[str, float], **factors: np.ndarray) -> np.ndarray:
    x = np.full(len(next(iter(factors.values()))), coef["intercept"])
    for name, value in factors.items():
        x = x + coef[name] * value
    return x


def _pick_member(
    rng: np.random.Generator,
    households: np.ndarray,
    member_hh: np.ndarray,
    member: np.ndarray,
    ok: np.ndarray,
) -> np.ndarray:
    """A random member satisfying ``ok`` for each household (-1 where there is none)."""
    sel = np.flatnonzero(ok)
    order = np.lexsort((rng.random(len(sel)), member_hh[sel]))
    sh = member_hh[sel][order]
    first = np.r_[True, sh[1:] != sh[:-1]]
    chosen_h = sh[first]
    chosen_p = member[sel][order][first]
    i = np.searchsorted(chosen_h, households)
    i = np.minimum(i, max(len(chosen_h) - 1, 0))
    if len(chosen_h) == 0:
        return np.full(len(households), -1, dtype=np.int64)
    return np.where(chosen_h[i] == households, chosen_p[i], -1)


def enrol_programme(world: World, rng: np.random.Generator) -> EventTable:
    """Families enrolled on the early-help programme (and the feed that records it)."""
    pop = world.pop
    pr = world.params.programme
    fam = np.isin(
        pop.hh_type,
        [T["couple_with_children"], T["lone_parent"], T["blended_family"], T["three_generation"]],
    )
    p = sigmoid(
        pr.enrol_intercept + pr.enrol_adversity * pop.hh_adversity + pr.enrol_da * pop.hh_da
    )
    enrolled = np.flatnonzero(fam & (rng.random(len(fam)) < p))
    day = rng.integers(world.start + 365, world.end - 180, len(enrolled))
    world.enrol_day[enrolled] = day
    # one row per family member on the day of enrolment
    row, person = household_members(world, enrolled, day)
    hh = enrolled[row]
    start = day[row]
    order = np.lexsort((person, start))
    person, hh, start = person[order], hh[order], start[order]
    n = len(person)
    fam_no = np.searchsorted(np.unique(hh), hh)
    adult = world.age(person, start) >= 18
    rel = np.where(adult, "parent/carer", "child").astype(object)
    end = start + 365 + rng.integers(-60, 120, n)[np.searchsorted(np.unique(hh), hh)]
    end = np.where(end >= world.end, OPEN, end)
    first_h = np.searchsorted(np.unique(hh), hh)
    lead = pick(
        rng,
        ["Family Support Worker", "School", "Health Visitor", "Youth Worker", "Housing Officer"],
        np.array([0.45, 0.2, 0.15, 0.1, 0.1]),
        len(np.unique(hh)),
    )[first_h]
    outcome = pick(
        rng,
        ["significant and sustained progress", "some progress", "disengaged", "moved away"],
        np.array([0.45, 0.3, 0.15, 0.1]),
        len(np.unique(hh)),
    )[first_h]
    outcome = np.where(end == OPEN, "", outcome).astype(object)
    headline = pick(
        rng,
        ["crime and anti-social behaviour", "domestic abuse", "school attendance",
         "health and wellbeing", "financial stability", "children needing help"],
        np.array([0.2, 0.2, 0.25, 0.15, 0.1, 0.1]),
        len(np.unique(hh)),
    )[first_h]  # fmt: skip
    return EventTable(
        "early_help",
        person,
        world.new_event_numbers(len(np.unique(hh)))[fam_no] if n else np.zeros(0, np.int64),
        start,
        end,
        {"lead_professional": lead, "headline_problem": headline, "closure_outcome": outcome},
        household_ref=fam_no,
        relationship=rel,
    )


def draw_outcomes(world: World, rng: np.random.Generator) -> Outcomes:
    pop = world.pop
    c = world.params.outcomes
    out = Outcomes()
    plan_end = np.full(pop.n, -(2**31), dtype=np.int64)  # on a CIN/CP plan until this day
    for lo, hi in windows(world):
        span = hi - lo
        members, mhh = world.members_at(lo)
        age = world.age(members, lo)
        adult = age >= 18
        enrolled_h = world.enrol_day < lo
        # ---- (1) household escalates to high-risk domestic abuse ----------------
        hhs = np.unique(mhh[adult & ~np.isin(pop.hh_type[mhh], COMMUNAL)])
        max_sub = np.full(len(pop.hh_type), -9.0)
        np.maximum.at(max_sub, mhh[adult], pop.substance[members[adult]])
        max_sub = np.where(max_sub == -9.0, 0.0, max_sub)
        p = sigmoid(
            _logit(
                c.da_high,
                da_propensity=pop.hh_da[hhs],
                adversity=pop.hh_adversity[hhs],
                max_adult_substance=max_sub[hhs],
                programme=enrolled_h[hhs].astype(float),
            )
        )
        hit = rng.random(len(hhs)) < p
        out.add("da_high_risk", "household", hhs, lo, hi, p, hit)
        h = hhs[hit]
        victim = _pick_member(rng, h, mhh, members, adult & (pop.sex[members] == "F"))
        victim = np.where(victim < 0, _pick_member(rng, h, mhh, members, adult), victim)
        suspect = _pick_member(rng, h, mhh, members, adult & (pop.sex[members] == "M"))
        day = lo + rng.integers(0, span, len(h))
        ex = world.ex_partner(h, day)
        suspect = np.where((suspect < 0) & (ex >= 0), ex, suspect)
        ev = world.new_event_numbers(len(h))
        has_s = (suspect >= 0) & (suspect != victim)
        out.event(
            EventTable(
                "domestic_abuse",
                np.concatenate([victim, suspect[has_s]]),
                np.concatenate([ev, ev[has_s]]),
                np.concatenate([day, day[has_s]]),
                np.full(len(h) + has_s.sum(), OPEN, dtype=np.int64),
                {
                    "role": np.array(["victim"] * len(h) + ["suspect"] * int(has_s.sum()), object),
                    "dash_risk": np.full(len(h) + has_s.sum(), "high", dtype=object),
                },
            )
        )
        # ---- (2) child exploitation concern ---------------------------------------
        kids = members[(age >= 10) & (age < 18)]
        kh = mhh[(age >= 10) & (age < 18)]
        p = sigmoid(
            _logit(
                c.exploitation,
                vulnerability=pop.vulnerability[kids],
                offending=pop.offending[kids],
                deprivation=world.deprivation_at(kids, np.full(len(kids), lo)),
                programme=enrolled_h[kh].astype(float),
            )
        )
        hit = rng.random(len(kids)) < p
        out.add("child_exploitation", "person", kids, lo, hi, p, hit)
        k = kids[hit]
        day = lo + rng.integers(0, span, len(k))
        kind = np.where(
            (pop.sex[k] == "F") & (rng.random(len(k)) < 0.6),
            "child sexual exploitation",
            "child criminal exploitation",
        ).astype(object)
        out.event(
            EventTable(
                "csc_referrals",
                k,
                world.new_event_numbers(len(k)),
                day,
                np.full(len(k), OPEN, dtype=np.int64),
                {"referral_reason": kind, "referral_source": pick(
                    rng, ["Police", "School", "Health", "Youth Justice"],
                    np.array([0.5, 0.25, 0.1, 0.15]), len(k)),
                 "referral_outcome": np.full(len(k), "assessment", dtype=object)},
            )
        )  # fmt: skip
        mp = rng.random(len(k)) < 0.6
        mday = np.maximum(lo, day[mp] - rng.integers(0, 30, mp.sum()))
        out.event(
            EventTable(
                "missing_persons",
                k[mp],
                world.new_event_numbers(int(mp.sum())),
                mday,
                np.minimum(mday + rng.integers(0, 4, mp.sum()), world.end - 1),
                {
                    "risk_grading": pick(
                        rng, ["medium", "high"], np.array([0.6, 0.4]), int(mp.sum())
                    )
                },
            )
        )
        # ---- (3) child not school-ready at reception --------------------------------
        dob = pop.dob
        born = dob.astype("datetime64[D]")
        by = born.astype("datetime64[Y]").astype(np.int64) + 1970
        bm = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
        assess_year = np.where(bm >= 9, by + 6, by + 5)
        assess_day = (
            (assess_year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
            + 180  # late June
        )
        cohort = np.flatnonzero((assess_day >= lo) & (assess_day < hi))
        youngness = ((bm[cohort] - 9) % 12) / 11.0  # 0 for September-born, 1 for August
        ch = world.household_at(cohort, assess_day[cohort])
        p = sigmoid(
            _logit(
                c.not_school_ready,
                adversity=pop.adversity[cohort],
                deprivation=world.deprivation_at(cohort, assess_day[cohort]),
                vulnerability=pop.vulnerability[cohort],
                male=(pop.sex[cohort] == "M").astype(float),
                summer_born=youngness,
                programme=(world.enrol_day[ch] < assess_day[cohort]).astype(float),
            )
        )
        hit = rng.random(len(cohort)) < p
        out.add("not_school_ready", "person", cohort, lo, hi, p, hit)
        out.event(
            EventTable(
                "early_years",
                cohort,
                world.new_event_numbers(len(cohort)),
                assess_day[cohort],
                np.full(len(cohort), OPEN, dtype=np.int64),
                {"good_level_of_development": np.where(hit, "N", "Y").astype(object),
                 "early_learning_goals_met": np.where(
                     hit, rng.integers(5, 12, len(cohort)), rng.integers(12, 18, len(cohort)))},
                household_ref=ch,
                relationship=np.full(len(cohort), "child", dtype=object),
            )
        )  # fmt: skip
        # ---- (4) child escalates to child in need / child protection ----------------
        child = (age < 18) & (plan_end[members] <= lo)
        kids, kh = members[child], mhh[child]
        p = sigmoid(
            _logit(
                c.cin_cp,
                vulnerability=pop.vulnerability[kids],
                da_propensity=pop.hh_da[kh],
                max_adult_substance=max_sub[kh],
                adversity=pop.hh_adversity[kh],
                programme=enrolled_h[kh].astype(float),
            )
        )
        hit = rng.random(len(kids)) < p
        out.add("cin_cp_escalation", "person", kids, lo, hi, p, hit)
        k, khh = kids[hit], kh[hit]
        day = lo + rng.integers(0, span, len(k))
        cp = rng.random(len(k)) < sigmoid(-0.9 + 0.5 * pop.vulnerability[k])
        end = world.involvement(rng, day, 270, 0.5)
        plan_end[k] = np.where(end == OPEN, 2**31 - 1, end)
        out.event(
            EventTable(
                "cin_cp_plans",
                k,
                world.new_event_numbers(len(k)),
                day,
                end,
                {
                    "plan_type": np.where(cp, "child protection", "child in need").astype(object),
                    "category_of_need": pick(
                        rng,
                        ["abuse or neglect", "family dysfunction", "family in acute stress",
                         "parental illness or disability", "socially unacceptable behaviour"],
                        np.array([0.55, 0.15, 0.1, 0.1, 0.1]),
                        len(k),
                    ),
                },
                household_ref=khh,
                relationship=np.full(len(k), "child", dtype=object),
            )
        )  # fmt: skip
        # the referral that led to it, a few weeks earlier
        rday = np.maximum(world.start, day - rng.integers(10, 60, len(k)))
        out.event(
            EventTable(
                "csc_referrals",
                k,
                world.new_event_numbers(len(k)),
                rday,
                np.full(len(k), OPEN, dtype=np.int64),
                {"referral_reason": pick(
                    rng, ["neglect", "domestic abuse", "physical abuse", "emotional abuse",
                          "parental substance misuse", "parental mental health"],
                    np.array([0.3, 0.25, 0.12, 0.13, 0.1, 0.1]), len(k)),
                 "referral_source": pick(
                    rng, ["Police", "School", "Health", "Individual", "Local Authority"],
                    np.array([0.3, 0.25, 0.2, 0.1, 0.15]), len(k)),
                 "referral_outcome": np.full(len(k), "assessment", dtype=object)},
            )
        )  # fmt: skip
    return out


def outcome_columns(out: Outcomes) -> dict[str, np.ndarray]:
    return {k: np.concatenate(v) for k, v in out.columns.items()}
