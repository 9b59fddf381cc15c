"""Households and people, their latent risk factors, and how they change over the years.

Composition is drawn as at the start of the period (children born later join at birth).
Then, in date order: households move house, couples separate (one partner leaves for an
address of their own), cohabiting couples marry (a family-name change), and single
adults partner up (one moves in with the other). Everything is arrays; only the
chronological loop over those few changes (a fraction of the households) is Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from nominal.synth.names import ETHNIC_GROUPS, NamePools, extend_pools, name_group_of
from nominal.synth.params import SynthParams

DAY0 = date(1970, 1, 1)
OPEN = 2**31 - 1  # "still current" end of an interval, in days


def to_days(d: date) -> int:
    return (d - DAY0).days


def years_before(d: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


# household types: name, share of households
HOUSEHOLD_TYPES: tuple[tuple[str, float], ...] = (
    ("single", 0.30),
    ("couple", 0.25),
    ("couple_with_children", 0.18),
    ("lone_parent", 0.09),
    ("blended_family", 0.03),
    ("three_generation", 0.025),
    ("sharers", 0.05),
    ("couple_with_adult_child", 0.045),
    ("care_home_resident", 0.02),
    ("hostel_resident", 0.01),
)
T = {name: i for i, (name, _) in enumerate(HOUSEHOLD_TYPES)}
COMMUNAL = (T["care_home_resident"], T["hostel_resident"])
ROLES = ("head", "partner", "child", "stepchild", "grandparent", "sharer", "adult_child")
R = {name: i for i, name in enumerate(ROLES)}


@dataclass
class Population:
    # people (index = person_id)
    household0: np.ndarray  # household at the start (or at birth)
    role: np.ndarray  # index into ROLES
    sex: np.ndarray  # "M"/"F" object
    dob: np.ndarray  # days
    ethnicity: np.ndarray  # ONS code, object
    given: np.ndarray  # name index
    middle: np.ndarray  # name index or -1
    family0: np.ndarray  # family name at the start
    birth_family: np.ndarray  # family name at birth (differs for those married earlier)
    family1: np.ndarray  # family name after a change in the period, or -1
    name_change: np.ndarray  # day of that change, or OPEN
    twin_of: np.ndarray  # person index or -1
    named_after_father: np.ndarray  # bool
    nhs_number: np.ndarray  # object str
    ni_number: np.ndarray  # object str ("" for children)
    police_id: np.ndarray
    pupil_number: np.ndarray  # object str ("" if never of school age in the period)
    phone: np.ndarray
    email: np.ndarray
    # latent factors (standard-normal scale)
    adversity: np.ndarray  # household, copied to members
    da_propensity: np.ndarray  # household
    substance: np.ndarray
    mental_health: np.ndarray
    offending: np.ndarray
    vulnerability: np.ndarray
    # households (index = household_id); later households are formed by separations
    hh_type: np.ndarray
    hh_adversity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hh_da: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hh_address0: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # histories, filled by `evolve`
    membership: dict[str, np.ndarray] = field(default_factory=dict)  # person, household, from, to
    hh_address: dict[str, np.ndarray] = field(default_factory=dict)  # household, address, from, to
    residence: dict[str, np.ndarray] = field(default_factory=dict)  # person, address, from, to
    relationships: dict[str, np.ndarray] = field(default_factory=dict)
    changes: dict[str, np.ndarray] = field(default_factory=dict)  # life changes, for truth
    pools: NamePools | None = None

    @property
    def n(self) -> int:
        return len(self.sex)


def nhs_check_digit(first9: np.ndarray) -> np.ndarray:
    """Modulus-11 check digit of 9-digit integers; 10 means the number is not usable."""
    weights = np.arange(10, 1, -1)
    digits = (first9[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    check = 11 - (digits * weights).sum(axis=1) % 11
    return np.where(check == 11, 0, check)


def make_nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique, check-digit-valid NHS numbers in the unissued 9xx range."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        cand = 900_000_000 + rng.choice(100_000_000, int(n * 1.2) + 10, replace=False)
        cand = np.setdiff1d(cand, out)
        check = nhs_check_digit(cand)
        ok = check != 10
        out = np.concatenate([out, cand[ok] * 10 + check[ok]])
    out = rng.permutation(out)[:n]
    return np.array([str(v) for v in out], dtype=object)


_NI_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NI_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NI_BAD = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def make_ni_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    prefixes = [a + b for a in _NI_FIRST for b in _NI_SECOND if a + b not in _NI_BAD]
    pre = rng.integers(0, len(prefixes), n)
    num = rng.choice(1_000_000, n, replace=n > 1_000_000)
    suf = rng.integers(0, 4, n)
    return np.array(
        [f"{prefixes[p]}{v:06d}{'ABCD'[s]}" for p, v, s in zip(pre, num, suf, strict=True)],
        dtype=object,
    )


_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def make_upns(rng: np.random.Generator, n: int, year2: np.ndarray) -> np.ndarray:
    """Unique pupil numbers: check letter + LA code 999 + allocation year + serial."""
    serial = rng.choice(10_000_000, n, replace=False)
    out = np.empty(n, dtype=object)
    weights = np.arange(2, 14)
    for i in range(n):
        body = f"999{year2[i]:02d}{serial[i]:07d}"
        total = sum(int(c) * w for c, w in zip(body, weights, strict=True))
        out[i] = _UPN_LETTERS[total % 23] + body
    return out


def build_people(
    rng: np.random.Generator,
    n_people: int,
    as_of: date,
    years: int,
    pools: NamePools,
    params: SynthParams,
) -> Population:
    start_d = to_days(years_before(as_of, years))
    as_of_d = to_days(as_of)
    shares = np.array([s for _, s in HOUSEHOLD_TYPES])
    n_hh = int(n_people / 2.2) + 50
    htype = rng.choice(len(shares), n_hh, p=shares / shares.sum())
    kids = np.zeros(n_hh, dtype=np.int64)
    fam = np.isin(htype, [T["couple_with_children"], T["lone_parent"], T["three_generation"]])
    kids[fam] = 1 + np.minimum(rng.poisson(0.8, fam.sum()), 4)
    blended = htype == T["blended_family"]
    kids[blended] = 2 + np.minimum(rng.poisson(0.7, blended.sum()), 3)
    sharers = np.where(htype == T["sharers"], rng.integers(2, 5, n_hh), 0)
    # eldest child's age and mother's age at first birth fix the family's ages
    eldest = rng.uniform(0, 18, n_hh)
    afb = np.clip(rng.normal(28.5, 5.5, n_hh), 17, 44)
    gaps = 1 + rng.gamma(2.0, 0.9, (n_hh, 5))
    child_age = (
        eldest[:, None] - np.concatenate([np.zeros((n_hh, 1)), np.cumsum(gaps, 1)], 1)[:, :5]
    )
    child_ok = (np.arange(5)[None, :] < kids[:, None]) & (child_age >= 0)
    kids = child_ok.sum(axis=1)
    n_adults = np.select(
        [
            htype == T["single"],
            htype == T["lone_parent"],
            htype == T["three_generation"],
            htype == T["sharers"],
            htype == T["couple_with_adult_child"],
            np.isin(htype, COMMUNAL),
        ],
        [1, 1, 3, sharers, 3, 1],
        default=2,
    )
    size = n_adults + kids
    # whole households up to the requested size, then single adults to make it exact
    cut = int((np.cumsum(size) <= n_people).sum())
    gap = n_people - int(size[:cut].sum())
    fill = slice(cut, cut + gap)
    htype[fill], kids[fill], n_adults[fill], sharers[fill] = T["single"], 0, 1, 0
    child_ok[fill] = False
    cut += gap
    htype, kids, n_adults, sharers = htype[:cut], kids[:cut], n_adults[:cut], sharers[:cut]
    eldest, afb, child_age, child_ok = eldest[:cut], afb[:cut], child_age[:cut], child_ok[:cut]
    n_hh = cut
    size = n_adults + kids

    # ---- adults -------------------------------------------------------------------
    hh_of, pos = _expand(n_adults)
    p_type = htype[hh_of]
    a_role = np.full(len(hh_of), R["head"])
    couple_like = np.isin(
        p_type,
        [T[t] for t in ("couple", "couple_with_children", "blended_family", "three_generation",
                        "couple_with_adult_child")],
    )  # fmt: skip
    a_role[couple_like & (pos == 1)] = R["partner"]
    a_role[(p_type == T["three_generation"]) & (pos == 2)] = R["grandparent"]
    a_role[(p_type == T["couple_with_adult_child"]) & (pos == 2)] = R["adult_child"]
    a_role[(p_type == T["sharers"])] = R["sharer"]
    min_adult = years + 18.0
    mother_age = afb + eldest
    u = rng.random(len(hh_of))
    age = np.select(
        [
            p_type == T["single"],
            p_type == T["couple"],
            p_type == T["sharers"],
            p_type == T["care_home_resident"],
            p_type == T["hostel_resident"],
            p_type == T["couple_with_adult_child"],
        ],
        [
            np.select(
                [u < 0.25, u < 0.6],
                [rng.uniform(min_adult, 40, len(u)), rng.uniform(40, 66, len(u))],
                rng.uniform(65, 97, len(u)),
            ),
            np.where(u < 0.25, rng.uniform(min_adult + 2, 42, len(u)), rng.uniform(45, 90, len(u))),
            rng.uniform(min_adult, 38, len(u)),
            rng.uniform(72, 103, len(u)),
            rng.uniform(min_adult, 62, len(u)),
            rng.uniform(48, 72, len(u)),
        ],
        default=np.maximum(mother_age[hh_of], min_adult),
    )
    # partner ages follow the head's; grandparents are a generation older
    partner_gap = rng.normal(2.5, 3.0, len(u))
    head_idx = np.flatnonzero(pos == 0)
    head_of_hh = np.empty(n_hh, dtype=np.int64)
    head_of_hh[hh_of[head_idx]] = head_idx
    is_partner = a_role == R["partner"]
    # in families the mother's age is fixed by her children; the head is her partner
    with_kids = np.isin(p_type, [T["couple_with_children"], T["blended_family"],
                                 T["three_generation"]])  # fmt: skip
    head_fam = (pos == 0) & with_kids
    age[head_fam] = np.maximum(mother_age[hh_of[head_fam]] + partner_gap[head_fam], min_adult)
    age[is_partner] = np.where(
        with_kids[is_partner],
        np.maximum(mother_age[hh_of[is_partner]], min_adult),
        np.maximum(age[head_of_hh[hh_of[is_partner]]] - partner_gap[is_partner], min_adult),
    )
    gp = a_role == R["grandparent"]
    age[gp] = age[head_of_hh[hh_of[gp]]] + rng.uniform(22, 34, gp.sum())
    ac = a_role == R["adult_child"]
    age[ac] = np.clip(age[head_of_hh[hh_of[ac]]] - rng.uniform(22, 34, ac.sum()), 18, None)
    sex_a = np.where(rng.random(len(u)) < 0.48, "M", "F").astype(object)
    same_sex = rng.random(n_hh) < 0.03
    # couples: a man and a woman in 97%; the mother is the partner in family households
    sex_a[couple_like & (pos == 0)] = np.where(same_sex[hh_of[couple_like & (pos == 0)]], "F", "M")
    sex_a[is_partner] = "F"
    lone = p_type == T["lone_parent"]
    sex_a[lone] = np.where(rng.random(lone.sum()) < 0.9, "F", "M")
    sex_a[p_type == T["hostel_resident"]] = np.where(
        rng.random((p_type == T["hostel_resident"]).sum()) < 0.75, "M", "F"
    )
    sex_a[p_type == T["care_home_resident"]] = np.where(
        rng.random((p_type == T["care_home_resident"]).sum()) < 0.32, "M", "F"
    )
    # in couples the man is the head and the woman the partner (mother)
    # ---- children -----------------------------------------------------------------
    c_hh = np.repeat(np.arange(n_hh), kids)
    c_age = child_age[child_ok]
    c_rank = _expand(kids)[1]
    c_role = np.where(
        (htype[c_hh] == T["blended_family"]) & (c_rank == 0), R["stepchild"], R["child"]
    )
    c_sex = np.where(rng.random(len(c_hh)) < 0.512, "M", "F").astype(object)

    # ---- assemble people, household by household --------------------------------
    hh = np.concatenate([hh_of, c_hh])
    role = np.concatenate([a_role, c_role])
    sex = np.concatenate([sex_a, c_sex])
    ages = np.concatenate([age, c_age])
    rank = np.concatenate([pos, 10 + c_rank])
    order = np.lexsort((rank, hh))
    hh, role, sex, ages, rank = hh[order], role[order], sex[order], ages[order], rank[order]
    n = len(hh)
    dob = as_of_d - np.round(ages * 365.25).astype(np.int64) - rng.integers(0, 2, n)
    # twins: the next child shares the elder one's date of birth (about 1.5% of births)
    is_child = np.isin(role, [R["child"], R["stepchild"]])
    prev_same = np.r_[False, (hh[1:] == hh[:-1]) & is_child[1:] & is_child[:-1]]
    twin = prev_same & (rng.random(n) < 0.03)
    twin_of = np.where(twin, np.arange(n) - 1, -1)
    dob[twin] = dob[np.flatnonzero(twin) - 1]

    # ---- ethnicity and names ------------------------------------------------------
    codes = np.array([c for c, _, _, _ in ETHNIC_GROUPS], dtype=object)
    shares_e = np.array([s for _, _, s, _ in ETHNIC_GROUPS])
    hh_eth = rng.choice(codes, n_hh, p=shares_e / shares_e.sum())
    eth = hh_eth[hh]
    # partners from another group in some couples; their children are of mixed ethnicity
    mixed = (role == R["partner"]) & (rng.random(n) < 0.08) & (eth != "W1")
    eth[mixed] = "W1"
    group = name_group_of(eth)
    hh_group = name_group_of(hh_eth)
    given = np.empty(n, dtype=np.int64)
    middle = np.full(n, -1, dtype=np.int64)
    fam_name = np.empty(n, dtype=np.int64)
    for g in np.unique(group):
        for s, pool in (("M", pools.male[g]), ("F", pools.female[g])):
            sel = (group == g) & (sex == s)
            given[sel] = pool[rng.integers(0, len(pool), sel.sum())]
            mid = sel & (rng.random(n) < 0.55)
            middle[mid] = pool[rng.integers(0, len(pool), mid.sum())]
        sel = group == g
        fam_name[sel] = pools.family[g][rng.integers(0, len(pools.family[g]), sel.sum())]
    hh_surname = np.empty(n_hh, dtype=np.int64)
    for g in np.unique(hh_group):
        sel = hh_group == g
        hh_surname[sel] = pools.family[g][rng.integers(0, len(pools.family[g]), sel.sum())]
    # double-barrelled family names for some households
    names = list(pools.names)
    barrel = rng.random(n_hh) < 0.03
    extra: dict[str, int] = {}
    for h in np.flatnonzero(barrel):
        other = pools.family["british"][rng.integers(0, len(pools.family["british"]))]
        text = f"{names[other]}-{names[hh_surname[h]]}"
        if text not in extra:
            extra[text] = len(names)
            names.append(text)
        hh_surname[h] = extra[text]
    pools = extend_pools(pools, names[len(pools.names) :])
    h_type = htype[hh]
    partner_married = rng.random(n_hh) < 0.68
    married_pre = partner_married[hh]
    birth_family = fam_name.copy()
    family0 = fam_name.copy()
    # heads, their children, grandparents (same surname line) and adult children
    same_line = np.isin(role, [R["head"], R["child"], R["adult_child"]]) & ~np.isin(
        h_type, COMMUNAL
    )
    family0[same_line] = hh_surname[hh[same_line]]
    birth_family[same_line] = family0[same_line]
    married_now = (role == R["partner"]) & married_pre
    family0[married_now] = hh_surname[hh[married_now]]
    # children of cohabiting couples sometimes take the mother's name
    head_p = np.empty(n_hh, dtype=np.int64)
    first_in_hh = np.r_[True, hh[1:] != hh[:-1]]
    head_p[hh[first_in_hh]] = np.flatnonzero(first_in_hh)
    partner_p = np.full(n_hh, -1, dtype=np.int64)
    partner_p[hh[role == R["partner"]]] = np.flatnonzero(role == R["partner"])
    kid = role == R["child"]
    mums_name = (~married_pre) & (partner_p[hh] >= 0) & (rng.random(n) < 0.15) & kid
    family0[mums_name] = family0[partner_p[hh[mums_name]]]
    # lone parents' children often carry the absent father's name
    lone_kid = kid & (h_type == T["lone_parent"]) & (rng.random(n) < 0.4)
    lone_dad_name = np.array(
        [pools.family[g][rng.integers(0, len(pools.family[g]))] for g in hh_group],
        dtype=np.int64,
    )
    family0[lone_kid] = lone_dad_name[hh[lone_kid]]
    step = role == R["stepchild"]
    family0[step] = lone_dad_name[hh[step]]
    birth_family[kid | step] = family0[kid | step]
    # Polish women's family names take the feminine form
    fem = (sex == "F") & (group == "other_white")
    family0[fem] = pools.feminine[family0[fem]]
    birth_family[fem] = pools.feminine[birth_family[fem]]
    # sons named after their fathers
    dad = head_p[hh]
    son_named = kid & (sex == "M") & (sex[dad] == "M") & (rng.random(n) < 0.05) & (rank == 10)
    given[son_named] = given[dad[son_named]]
    # twins share a family name
    family0[twin] = family0[np.flatnonzero(twin) - 1]
    birth_family[twin] = family0[twin]

    # ---- identifiers and contact details ------------------------------------------
    nhs = make_nhs_numbers(rng, n)
    ni = make_ni_numbers(rng, n)
    ni[(as_of_d - dob) < 16 * 365.25] = ""
    police = np.array([f"NP{1_000_000 + i * 3 + 7:08d}" for i in rng.permutation(n)], dtype=object)
    # pupils: anyone of school age at some time in the period
    school_age = ((as_of_d - dob) / 365.25 >= 4) & ((start_d - dob) / 365.25 < 16)
    upn = np.full(n, "", dtype=object)
    sa = np.flatnonzero(school_age)
    year2 = ((dob[sa] + int(4.5 * 365.25)) // 365.25 + 1970).astype(np.int64) % 100
    upn[sa] = make_upns(rng, len(sa), year2)
    adult_now = (as_of_d - dob) >= 16 * 365.25
    phone = np.where(
        adult_now & (rng.random(n) < 0.85),
        np.array([f"077009{v:05d}" for v in rng.integers(0, 100_000, n)], dtype=object),
        "",
    ).astype(object)
    domains = np.array(["example.com", "example.org", "example.net"], dtype=object)
    names_arr = np.array(names, dtype=object)
    email = np.full(n, "", dtype=object)
    has_email = np.flatnonzero(adult_now & (rng.random(n) < 0.6))
    for i, d in zip(has_email, rng.integers(0, 3, len(has_email)), strict=True):
        local = f"{names_arr[given[i]]}.{names_arr[family0[i]]}{i % 97}".lower()
        email[i] = f"{''.join(c for c in local if c.isalnum() or c == '.')}@{domains[d]}"

    # ---- latent factors -------------------------------------------------------------
    hh_adv = rng.normal(0, 1, n_hh)
    hh_da = rng.normal(0, 1, n_hh)
    adult = ~np.isin(role, [R["child"], R["stepchild"]])
    z = rng.normal(0, 1, (4, n))
    pop = Population(
        household0=hh,
        role=role,
        sex=sex,
        dob=dob,
        ethnicity=eth,
        given=given,
        middle=middle,
        family0=family0,
        birth_family=birth_family,
        family1=np.full(n, -1, dtype=np.int64),
        name_change=np.full(n, OPEN, dtype=np.int64),
        twin_of=twin_of,
        named_after_father=son_named,
        nhs_number=nhs,
        ni_number=ni,
        police_id=police,
        pupil_number=upn,
        phone=phone,
        email=email,
        adversity=hh_adv[hh],  # completed by `set_latent` once the area is known
        da_propensity=hh_da[hh],
        substance=z[0] * adult,
        mental_health=z[1],
        offending=z[2],
        vulnerability=z[3],
        hh_type=htype,
        pools=pools,
    )
    pop.changes["married_before"] = married_now
    return pop


def set_latent(pop: Population, rng: np.random.Generator, hh_deprivation: np.ndarray) -> None:
    """Latent risk factors: household adversity follows area deprivation, and the rest
    follow adversity, so the same families turn up across agencies."""
    n_hh = len(pop.hh_type)
    dep = hh_deprivation
    base = rng.normal(0, 1, n_hh)
    adv = 0.5 * dep + np.sqrt(1 - 0.25) * base
    adv[pop.hh_type == T["hostel_resident"]] += 1.5
    da = 0.45 * adv + np.sqrt(1 - 0.45**2) * rng.normal(0, 1, n_hh)
    single_old = np.isin(pop.hh_type, [T["care_home_resident"]])
    da[single_old] -= 1.5
    hh = pop.household0
    pop.hh_adversity = adv
    pop.hh_da = da
    pop.adversity = adv[hh]
    pop.da_propensity = da[hh]
    adult = ~np.isin(pop.role, [R["child"], R["stepchild"]])
    male = pop.sex == "M"
    z_sub, z_mh, z_off, z_vul = (
        pop.substance,
        pop.mental_health,
        pop.offending,
        pop.vulnerability,
    )
    sub = np.where(adult, 0.4 * pop.adversity + 0.9 * z_sub + 0.2 * male, 0.0)
    sub[pop.hh_type[hh] == T["hostel_resident"]] += 1.0
    mh = 0.35 * pop.adversity + 0.3 * sub + 0.88 * z_mh
    off = 0.4 * pop.adversity + 0.35 * sub + 0.45 * male + 0.8 * z_off - 0.2
    # a child's vulnerability follows the household and the adults' difficulties
    max_sub = np.full(n_hh, -9.0)
    np.maximum.at(max_sub, hh[adult], sub[adult])
    max_sub[max_sub == -9.0] = 0.0
    vul = 0.45 * pop.adversity + 0.3 * pop.da_propensity + 0.25 * max_sub[hh] + 0.75 * z_vul
    pop.substance = sub
    pop.mental_health = mh
    pop.offending = off
    pop.vulnerability = np.where(adult, 0.0, vul)
    pop.changes["max_adult_substance"] = max_sub


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per group: the group of each item and its position within the group."""
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(len(group)) - starts[group]


def place(pop: Population, rng: np.random.Generator, address_kind: np.ndarray) -> np.ndarray:
    """Give every household an address at the start; returns the vacant dwellings."""
    n_hh = len(pop.hh_type)
    addr = np.empty(n_hh, dtype=np.int64)
    dwellings = np.flatnonzero(np.isin(address_kind, ["house", "flat"]))
    regular = np.flatnonzero(~np.isin(pop.hh_type, COMMUNAL))
    perm = rng.permutation(dwellings)
    addr[regular] = perm[: len(regular)]
    for t, kind in ((T["care_home_resident"], "care_home"), (T["hostel_resident"], "hostel")):
        sel = np.flatnonzero(pop.hh_type == t)
        homes = np.flatnonzero(address_kind == kind)
        addr[sel] = homes[rng.integers(0, len(homes), len(sel))]
    pop.hh_address0 = addr
    return np.sort(perm[len(regular) :])


def evolve(
    pop: Population,
    rng: np.random.Generator,
    vacant: np.ndarray,
    start_d: int,
    as_of_d: int,
    params: SynthParams,
) -> None:
    """Moves, separations, marriages and new partnerships over the period, in date order."""
    n_hh0 = len(pop.hh_type)
    span = as_of_d - start_d
    yrs = span / 365.25
    hh = pop.household0
    communal = np.isin(pop.hh_type, COMMUNAL)
    # household moves (renters in difficulty move more often)
    rate = params.household_move_rate * np.exp(0.3 * pop.hh_adversity) * yrs
    n_moves = np.where(communal, 0, rng.poisson(rate))
    mv_hh = np.repeat(np.arange(n_hh0), n_moves)
    mv_day = start_d + rng.integers(0, span, len(mv_hh))
    # separations: the partner of a family household leaves
    fam_types = [T["couple_with_children"], T["blended_family"], T["three_generation"]]
    p_sep = 1 - np.exp(-params.separation_rate * yrs * np.exp(0.5 * pop.hh_da))
    partner_p = np.full(n_hh0, -1, dtype=np.int64)
    head_p = np.full(n_hh0, -1, dtype=np.int64)
    is_partner = pop.role == R["partner"]
    partner_p[hh[is_partner]] = np.flatnonzero(is_partner)
    is_head = pop.role == R["head"]
    head_p[hh[is_head]] = np.flatnonzero(is_head)
    sep_hh = np.flatnonzero(np.isin(pop.hh_type, fam_types) & (rng.random(n_hh0) < p_sep))
    # the man leaves (the head in a man-and-woman couple); the children stay with the mother
    leaver = np.where(pop.sex[head_p[sep_hh]] == "M", head_p[sep_hh], partner_p[sep_hh])
    sep_day = start_d + rng.integers(0, span, len(sep_hh))
    # young adults leave home for an address of their own (kind 4, handled like a separation)
    young = np.flatnonzero(
        np.isin(pop.role, [R["child"], R["stepchild"], R["adult_child"]])
        & (pop.dob + int(18 * 365.25) < as_of_d)
    )
    age_end = (as_of_d - pop.dob[young]) / 365.25
    goes = young[rng.random(len(young)) < np.clip(0.1 * (age_end - 18), 0, 0.75)]
    earliest = np.maximum(start_d, pop.dob[goes] + int(18 * 365.25))
    home_day = earliest + (rng.random(len(goes)) * (as_of_d - earliest)).astype(np.int64)
    sep_hh = np.concatenate([sep_hh, hh[goes]])
    leaver = np.concatenate([leaver, goes])
    sep_day = np.concatenate([sep_day, home_day])
    sep_kind = np.concatenate([np.ones(len(sep_hh) - len(goes)), np.full(len(goes), 4)])
    # cohabiting couples marry; the woman takes the man's name in most cases
    couple_types = [*fam_types, T["couple"], T["couple_with_adult_child"]]
    cohab = np.flatnonzero(
        np.isin(pop.hh_type, couple_types)
        & (partner_p >= 0)
        & ~pop.changes["married_before"][np.maximum(partner_p, 0)]
    )
    p_mar = 1 - np.exp(-params.marriage_rate * yrs)
    mar_hh = cohab[rng.random(len(cohab)) < p_mar]
    mar_hh = np.setdiff1d(mar_hh, sep_hh)
    mar_day = start_d + rng.integers(0, span, len(mar_hh))
    # single adults partner up: one moves in with the other
    age_now = (as_of_d - pop.dob) / 365.25
    single = np.flatnonzero(
        (pop.hh_type[hh] == T["single"]) & (age_now > 25) & (age_now < 65) & is_head
    )
    single = single[rng.random(len(single)) < 1 - np.exp(-params.single_partnering_rate * yrs * 2)]
    men = single[pop.sex[single] == "M"]
    women = single[pop.sex[single] == "F"]
    men = men[np.argsort(pop.dob[men] + rng.integers(-900, 900, len(men)), kind="stable")]
    women = women[np.argsort(pop.dob[women] + rng.integers(-900, 900, len(women)), kind="stable")]
    k = min(len(men), len(women))
    pair_m, pair_w = men[:k], women[:k]
    pair_day = start_d + rng.integers(0, span, k)
    woman_moves = rng.random(k) < 0.6
    takes_name = rng.random(k) < 0.7

    # chronological loop over all changes
    kinds = np.concatenate(
        [np.zeros(len(mv_hh)), np.ones(len(sep_hh)), np.full(len(mar_hh), 2), np.full(k, 3)]
    ).astype(np.int64)
    days = np.concatenate([mv_day, sep_day, mar_day, pair_day])
    refs = np.concatenate(
        [np.arange(len(mv_hh)), np.arange(len(sep_hh)), np.arange(len(mar_hh)), np.arange(k)]
    )
    order = np.lexsort((refs, kinds, days))
    vac = list(vacant.tolist())
    u = rng.random(len(order))
    hh_addr = list(pop.hh_address0.tolist())
    # households occupied their first address since some time before the period
    hh_from = list((start_d - rng.integers(0, 15 * 365, n_hh0)).tolist())
    hh_alive = [True] * n_hh0
    addr_rows: list[tuple[int, int, int, int]] = []
    person_hh = hh.copy()
    person_from = np.full(pop.n, -(2**31), dtype=np.int64)
    mem_rows: list[tuple[int, int, int, int]] = []
    change_rows: list[tuple[int, int, int, int, int]] = []  # kind, person, household, day, other
    new_hh_type: list[int] = []
    new_hh_parent: list[int] = []
    name_change = pop.name_change
    family1 = pop.family1

    def new_household(parent: int, htype: int, day: int, i: int) -> int | None:
        if not vac:
            return None
        j = int(u[i] * len(vac))
        address = vac[j]
        vac[j] = vac[-1]
        vac.pop()
        h = len(hh_addr)
        hh_addr.append(address)
        hh_from.append(day)
        hh_alive.append(True)
        new_hh_type.append(htype)
        new_hh_parent.append(parent)
        return h

    def leave(person: int, new_h: int, day: int) -> None:
        mem_rows.append((person, int(person_hh[person]), int(person_from[person]), day))
        person_hh[person] = new_h
        person_from[person] = day

    for i in order:
        kind, ref, day = int(kinds[i]), int(refs[i]), int(days[i])
        if kind == 0:
            h = int(mv_hh[ref])
            if not hh_alive[h] or not vac:
                continue
            j = int(u[i] * len(vac))
            address = vac[j]
            vac[j] = vac[-1]
            vac.pop()
            addr_rows.append((h, hh_addr[h], hh_from[h], day))
            vac.append(hh_addr[h])
            hh_addr[h] = address
            hh_from[h] = day
            change_rows.append((0, -1, h, day, address))
        elif kind == 1:
            h = int(sep_hh[ref])
            person = int(leaver[ref])
            if person_hh[person] != h or not hh_alive[h]:
                continue
            h2 = new_household(h, T["single"], day, i)
            if h2 is None:
                continue
            leave(person, h2, day)
            change_rows.append((int(sep_kind[ref]), person, h, day, h2))
        elif kind == 2:
            h = int(mar_hh[ref])
            wife = int(partner_p[h])
            husband = int(head_p[h])
            if pop.sex[wife] == pop.sex[husband] or person_hh[wife] != person_hh[husband]:
                continue
            if rng.random() < 0.8 and name_change[wife] == OPEN:
                name_change[wife] = day
                family1[wife] = pop.family0[husband]
            change_rows.append((2, wife, h, day, husband))
        else:
            man, woman = int(pair_m[ref]), int(pair_w[ref])
            hm, hw = int(person_hh[man]), int(person_hh[woman])
            if not (hh_alive[hm] and hh_alive[hw]) or hm == hw:
                continue
            mover, stay_h, gone_h = (woman, hm, hw) if woman_moves[ref] else (man, hw, hm)
            leave(mover, stay_h, day)
            addr_rows.append((gone_h, hh_addr[gone_h], hh_from[gone_h], day))
            vac.append(hh_addr[gone_h])
            hh_alive[gone_h] = False
            if takes_name[ref] and name_change[woman] == OPEN:
                name_change[woman] = day
                family1[woman] = pop.family0[man]
            change_rows.append((3, mover, stay_h, day, gone_h))

    n_hh = len(hh_addr)
    for h in range(n_hh):
        if hh_alive[h]:
            addr_rows.append((h, hh_addr[h], hh_from[h], OPEN))
    for p in range(pop.n):
        mem_rows.append((p, int(person_hh[p]), int(person_from[p]), OPEN))
    a = np.array(addr_rows, dtype=np.int64)
    pop.hh_address = {"household": a[:, 0], "address": a[:, 1], "from": a[:, 2], "to": a[:, 3]}
    m = np.array(mem_rows, dtype=np.int64)
    # nobody is anywhere before they are born
    m[:, 2] = np.maximum(m[:, 2], pop.dob[m[:, 0]])
    m = m[m[:, 3] > m[:, 2]]
    pop.membership = {"person": m[:, 0], "household": m[:, 1], "from": m[:, 2], "to": m[:, 3]}
    parent = np.array(new_hh_parent, dtype=np.int64)
    pop.hh_type = np.concatenate([pop.hh_type, np.array(new_hh_type, dtype=np.int64)])
    pop.hh_adversity = np.concatenate([pop.hh_adversity, pop.hh_adversity[parent]])
    pop.hh_da = np.concatenate([pop.hh_da, pop.hh_da[parent]])
    pop.hh_address0 = np.concatenate([pop.hh_address0, np.array(hh_addr[n_hh0:], dtype=np.int64)])
    c = np.array(change_rows, dtype=np.int64).reshape(-1, 5)
    pop.changes["life_events"] = c
    pop.residence = _residence(pop)
    pop.relationships = _relationships(pop, head_p, partner_p, start_d)


def _residence(pop: Population) -> dict[str, np.ndarray]:
    """Person-level address history: memberships intersected with households' addresses."""
    import pandas as pd

    mem = pd.DataFrame(pop.membership)
    adr = pd.DataFrame(pop.hh_address)
    j = mem.merge(adr, on="household", suffixes=("_m", "_a"))
    lo = np.maximum(j["from_m"].to_numpy(), j["from_a"].to_numpy())
    hi = np.minimum(j["to_m"].to_numpy(), j["to_a"].to_numpy())
    keep = hi > lo
    out = pd.DataFrame(
        {
            "person": j["person"].to_numpy()[keep],
            "address": j["address"].to_numpy()[keep],
            "household": j["household"].to_numpy()[keep],
            "from": lo[keep],
            "to": hi[keep],
        }
    ).sort_values(["person", "from"], kind="stable")
    return {c: out[c].to_numpy() for c in out.columns}


def _relationships(
    pop: Population, head_p: np.ndarray, partner_p: np.ndarray, start_d: int
) -> dict[str, np.ndarray]:
    """Truth of who is related to whom: partners, parents, step-parents, grandparents, twins."""
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    hh = pop.household0
    has_both = (head_p >= 0) & (partner_p >= 0)
    hs = np.flatnonzero(has_both)
    married = pop.changes["married_before"][partner_p[hs]]
    a.append(head_p[hs])
    b.append(partner_p[hs])
    kind.append(np.where(married, "spouse", "partner").astype(object))
    kids = np.flatnonzero(pop.role == R["child"])
    mums = np.where(partner_p[hh[kids]] >= 0, partner_p[hh[kids]], head_p[hh[kids]])
    a.append(mums)
    b.append(kids)
    kind.append(np.where(pop.sex[mums] == "F", "mother", "father").astype(object))
    with_dad = kids[partner_p[hh[kids]] >= 0]
    a.append(head_p[hh[with_dad]])
    b.append(with_dad)
    kind.append(np.full(len(with_dad), "father", dtype=object))
    ac = np.flatnonzero(pop.role == R["adult_child"])
    for parents in (head_p, partner_p):
        ok = ac[parents[hh[ac]] >= 0]
        a.append(parents[hh[ok]])
        b.append(ok)
        kind.append(np.where(pop.sex[parents[hh[ok]]] == "F", "mother", "father").astype(object))
    step = np.flatnonzero(pop.role == R["stepchild"])
    a.append(partner_p[hh[step]])
    b.append(step)
    kind.append(np.full(len(step), "mother", dtype=object))
    a.append(head_p[hh[step]])
    b.append(step)
    kind.append(np.full(len(step), "step_father", dtype=object))
    gp = np.flatnonzero(pop.role == R["grandparent"])
    for child_role in (R["child"],):
        kids3 = np.flatnonzero((pop.role == child_role) & np.isin(hh, hh[gp]))
        gp_of = np.full(len(pop.hh_type), -1)
        gp_of[hh[gp]] = gp
        a.append(gp_of[hh[kids3]])
        b.append(kids3)
        kind.append(np.full(len(kids3), "grandparent", dtype=object))
    tw = np.flatnonzero(pop.twin_of >= 0)
    a.append(pop.twin_of[tw])
    b.append(tw)
    kind.append(np.full(len(tw), "twin", dtype=object))
    life = pop.changes["life_events"]
    new_pairs = life[life[:, 0] == 3]
    movers = new_pairs[:, 1]
    # the one who stayed is the head of the household moved into
    stayers = head_p[np.minimum(new_pairs[:, 2], len(head_p) - 1)]
    a.append(stayers)
    b.append(movers)
    kind.append(np.full(len(movers), "partner", dtype=object))
    out_a = np.concatenate(a)
    out_b = np.concatenate(b)
    out_k = np.concatenate(kind)
    start = np.full(len(out_a), -(2**31), dtype=np.int64)
    if len(movers):
        start[-len(movers) :] = new_pairs[:, 3]
    ok = (out_a >= 0) & (out_b >= 0)
    return {
        "person_a": out_a[ok],
        "person_b": out_b[ok],
        "relationship": out_k[ok],
        "from": start[ok],
    }
