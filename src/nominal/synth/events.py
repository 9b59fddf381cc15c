"""Life events seen by the partner agencies, and the four outcomes, from latent factors.

Most events are Poisson processes per person (or household) with a yearly rate
``base * exp(sum(coef * latent factor))``: the same latent factors drive events across
agencies, so a model that combines agencies' records can approach the best possible
prediction. The four outcomes are drawn per 12-month window with known probabilities
(``truth/outcomes.parquet``) and appear in the feeds as the events that realise them:
a domestic-abuse incident graded high, a children's social care referral for
exploitation, an early-years record with no good level of development, and a child in
need or child protection plan starting.

The early-help programme thins later events of enrolled families by known rate ratios
(exact for Poisson processes), and lowers the outcome log-odds by a known amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from nominal.synth.params import SynthParams
from nominal.synth.population import OPEN, Population, to_days, years_before
from nominal.synth.town import Town

YEAR = 365.25


@dataclass
class EventTable:
    """One dataset's events, one row per person appearance; rows of one event share ``event_no``."""

    dataset: str
    person: np.ndarray
    event_no: np.ndarray
    day: np.ndarray
    end_day: np.ndarray  # OPEN when the dataset has no end, or the involvement is still open
    attrs: dict[str, np.ndarray] = field(default_factory=dict)
    household_ref: np.ndarray | None = None  # the partner's own family / case number
    relationship: np.ndarray | None = None

    @classmethod
    def empty(cls, dataset: str, attrs: tuple[str, ...] = ()) -> EventTable:
        none = np.zeros(0, dtype=np.int64)
        return cls(dataset, none, none, none, none, {a: np.zeros(0, dtype=object) for a in attrs})

    def __len__(self) -> int:
        return len(self.person)

    def take(self, idx: np.ndarray) -> EventTable:
        return EventTable(
            self.dataset,
            self.person[idx],
            self.event_no[idx],
            self.day[idx],
            self.end_day[idx],
            {k: v[idx] for k, v in self.attrs.items()},
            None if self.household_ref is None else self.household_ref[idx],
            None if self.relationship is None else self.relationship[idx],
        )


def blank_as_null(values: np.ndarray) -> np.ndarray:
    """Object array with None where the value is an empty string."""
    out = np.asarray(values, dtype=object).copy()
    out[out == ""] = None
    return out


def null_unless(ok: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Object array with None where ``ok`` is false."""
    out = np.asarray(values, dtype=object).copy()
    out[~ok] = None
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category per row of a (n, k) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1)


def pick(rng: np.random.Generator, labels: list[str], weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` labels; ``weights`` is one row for all, or one row per label drawn."""
    w = np.broadcast_to(np.asarray(weights, dtype=float), (n, len(labels)))
    return np.array(labels, dtype=object)[categorical(rng, w)]


class World:
    """Population, town and period, with the look-ups every event generator needs."""

    def __init__(self, pop: Population, town: Town, as_of: date, years: int, params: SynthParams):
        self.pop = pop
        self.town = town
        self.params = params
        self.as_of = as_of
        self.years = years
        self.end = to_days(as_of)
        self.start = to_days(years_before(as_of, years))
        m = pop.membership
        self._m_key = m["person"] * 200_000 + (m["from"] + 100_000)
        self._m_order = np.argsort(self._m_key, kind="stable")
        self._m_key = self._m_key[self._m_order]
        r = pop.residence
        self._r_key = r["person"] * 200_000 + (r["from"] + 100_000)  # sorted by construction
        self.max_sub = pop.changes["max_adult_substance"]
        self.enrol_day = np.full(len(pop.hh_type), OPEN, dtype=np.int64)
        self.prevented: dict[str, np.ndarray] = {}
        self.next_event = 1

    # -- look-ups ----------------------------------------------------------------
    def household_at(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        key = person * 200_000 + (np.maximum(day, -100_000) + 100_000)
        i = np.searchsorted(self._m_key, key, side="right") - 1
        return self.pop.membership["household"][self._m_order[np.maximum(i, 0)]]

    def residence_at(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Row of the residence history in force (the first one before the person's first)."""
        key = person * 200_000 + (np.maximum(day, -100_000) + 100_000)
        i = np.searchsorted(self._r_key, key, side="right") - 1
        i = np.maximum(i, 0)
        # before someone's first residence row (not normally reached) use their first
        wrong = self.pop.residence["person"][i] != person
        if wrong.any():
            i[wrong] = np.searchsorted(self.pop.residence["person"], person[wrong])
        return i

    def address_at(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.pop.residence["address"][self.residence_at(person, day)]

    def deprivation_at(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.town.deprivation[self.town.address_oa[self.address_at(person, day)]]

    def ex_partner(self, household: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The partner who left each household before ``day`` (-1 if none)."""
        life = self.pop.changes["life_events"]
        sep = life[life[:, 0] == 1]
        order = np.argsort(sep[:, 2], kind="stable")
        hh, who, when = sep[order, 2], sep[order, 1], sep[order, 3]
        i = np.minimum(np.searchsorted(hh, household), max(len(hh) - 1, 0))
        if len(hh) == 0:
            return np.full(len(household), -1, dtype=np.int64)
        found = (hh[i] == household) & (when[i] <= day)
        return np.where(found, who[i], -1)

    def members_at(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.pop.membership
        live = (m["from"] <= day) & (m["to"] > day)
        return m["person"][live], m["household"][live]

    def age(self, person: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        return (day - self.pop.dob[person]) / YEAR

    def new_event_numbers(self, n: int) -> np.ndarray:
        out = np.arange(self.next_event, self.next_event + n, dtype=np.int64)
        self.next_event += n
        return out

    # -- generic processes ---------------------------------------------------------
    def exposure(self, age_lo: float, age_hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """People and the part of the period they are aged [age_lo, age_hi)."""
        dob = self.pop.dob
        lo = np.maximum(self.start, dob + np.round(age_lo * YEAR).astype(np.int64))
        hi = np.minimum(self.end, dob + np.round(age_hi * YEAR).astype(np.int64))
        ok = hi > lo
        return np.flatnonzero(ok), lo[ok], hi[ok]

    def poisson(
        self,
        rng: np.random.Generator,
        person: np.ndarray,
        rate: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        dataset: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Event times of independent Poisson processes (rate per year) on [lo, hi),
        following the dataset's yearly cycle and trend (drawn at the highest rate, then
        thinned, which keeps them Poisson)."""
        amplitude, peak = self.params.time.seasonality.get(dataset or "", (0.0, 0))
        trend = self.params.time.trend.get(dataset or "", 0.0)
        top = (1 + amplitude) * max(1.0, (1 + trend) ** self.years)
        count = rng.poisson(rate * top * (hi - lo) / YEAR)
        who = np.repeat(np.arange(len(person)), count)
        day = lo[who] + (rng.random(len(who)) * (hi[who] - lo[who])).astype(np.int64)
        if top != 1.0:
            doy = (day - self.year_start(day)).astype(float)
            factor = (1 + amplitude * np.cos(2 * np.pi * (doy - peak) / YEAR)) * (1 + trend) ** (
                (day - self.start) / YEAR
            )
            keep = rng.random(len(day)) * top < factor
            who, day = who[keep], day[keep]
        order = np.argsort(day, kind="stable")
        return person[who][order], day[order]

    @staticmethod
    def year_start(day: np.ndarray) -> np.ndarray:
        """1 January of each day's year, in days."""
        d = day.astype("datetime64[D]")
        return d.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)

    def thin(
        self, rng: np.random.Generator, dataset: str, person: np.ndarray, day: np.ndarray
    ) -> np.ndarray:
        """Mask of events kept after the programme effect (events of enrolled families
        after enrolment are kept with the dataset's rate ratio); counts the prevented."""
        ratio = self.params.programme.rate_ratio.get(dataset)
        if ratio is None:
            return np.ones(len(person), dtype=bool)
        h = self.household_at(person, day)
        after = day >= self.enrol_day[h]
        drop = after & (rng.random(len(person)) >= ratio)
        counts = np.bincount(h[drop], minlength=len(self.pop.hh_type))
        self.prevented[dataset] = counts
        return ~drop

    def involvement(
        self, rng: np.random.Generator, day: np.ndarray, median_days: float, sigma: float = 0.8
    ) -> np.ndarray:
        """End of an involvement (case, plan, episode) that started on ``day``; OPEN if
        it is still open at the end of the period."""
        dur = np.maximum(1, np.round(median_days * np.exp(sigma * rng.normal(0, 1, len(day)))))
        end = day + dur.astype(np.int64)
        return np.where(end >= self.end, OPEN, end)


def household_members(
    world: World, household: np.ndarray, day: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each (household, day): the row it came from and each member present that day."""
    m = world.pop.membership
    if not hasattr(world, "_hh_sorted"):
        order = np.argsort(m["household"], kind="stable")
        world._hh_sorted = order  # type: ignore[attr-defined]
        world._hh_keys = m["household"][order]  # type: ignore[attr-defined]
    order = world._hh_sorted  # type: ignore[attr-defined]
    keys = world._hh_keys  # type: ignore[attr-defined]
    a = np.searchsorted(keys, household, side="left")
    b = np.searchsorted(keys, household, side="right")
    count = b - a
    row = np.repeat(np.arange(len(household)), count)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    mem = order[a[row] + offset]
    ok = (m["from"][mem] <= day[row]) & (m["to"][mem] > day[row])
    return row[ok], m["person"][mem[ok]]
