"""Name pools by ethnic group, built once from Faker's locale providers (never per person).

Pools are plain arrays of strings; people hold indices into them, so a million people
cost a few integer arrays. Common English short forms (Bill for William, Peggy for
Margaret) are listed here because partners record them in place of the full name.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

# ONS 2021 ethnic group (England and Wales), share of the population in percent.
ETHNIC_GROUPS: tuple[tuple[str, str, float, str], ...] = (
    ("W1", "White: English, Welsh, Scottish, Northern Irish or British", 74.4, "british"),
    ("W2", "White: Irish", 0.9, "irish"),
    ("W3", "White: Gypsy or Irish Traveller", 0.1, "irish"),
    ("W4", "White: Roma", 0.2, "romanian"),
    ("W5", "White: Other White", 6.2, "other_white"),
    ("M1", "Mixed or Multiple: White and Black Caribbean", 0.9, "british"),
    ("M2", "Mixed or Multiple: White and Black African", 0.4, "african"),
    ("M3", "Mixed or Multiple: White and Asian", 0.8, "british"),
    ("M4", "Mixed or Multiple: Other Mixed or Multiple", 0.8, "british"),
    ("A1", "Asian or Asian British: Indian", 3.1, "indian"),
    ("A2", "Asian or Asian British: Pakistani", 2.7, "pakistani"),
    ("A3", "Asian or Asian British: Bangladeshi", 1.1, "pakistani"),
    ("A4", "Asian or Asian British: Chinese", 0.7, "chinese"),
    ("A5", "Asian or Asian British: Other Asian", 1.6, "indian"),
    ("B1", "Black, Black British, Caribbean or African: Caribbean", 1.0, "british"),
    ("B2", "Black, Black British, Caribbean or African: African", 2.5, "african"),
    ("B3", "Black, Black British, Caribbean or African: Other Black", 0.5, "african"),
    ("O1", "Other ethnic group: Arab", 0.6, "arab"),
    ("O2", "Other ethnic group: Any other ethnic group", 1.6, "arab"),
)

# How agencies code ethnicity: the ONS 2021 codes above, the NHS Data Dictionary ethnic
# category letters and the DfE codes of children's services and schools.
NHS_ETHNIC_CATEGORY: dict[str, str] = {
    "W1": "A", "W2": "B", "W3": "C", "W4": "C", "W5": "C", "M1": "D", "M2": "E", "M3": "F",
    "M4": "G", "A1": "H", "A2": "J", "A3": "K", "A4": "R", "A5": "L", "B1": "M", "B2": "N",
    "B3": "P", "O1": "S", "O2": "S",
}  # fmt: skip
DFE_ETHNICITY: dict[str, str] = {
    "W1": "WBRI", "W2": "WIRI", "W3": "WIRT", "W4": "WROM", "W5": "WOTH", "M1": "MWBC",
    "M2": "MWBA", "M3": "MWAS", "M4": "MOTH", "A1": "AIND", "A2": "APKN", "A3": "ABAN",
    "A4": "CHNE", "A5": "AOTH", "B1": "BCRB", "B2": "BAFR", "B3": "BOTH", "O1": "OOTH",
    "O2": "OOTH",
}  # fmt: skip
ETHNICITY_SCHEMES: dict[str, tuple[dict[str, str], str]] = {
    # scheme -> (ONS code -> code, the code for "not stated")
    "ons": ({c: c for c, _, _, _ in ETHNIC_GROUPS}, "NS"),
    "nhs": (NHS_ETHNIC_CATEGORY, "Z"),
    "dfe": (DFE_ETHNICITY, "NOBT"),
}

# name group -> [(locale, weight)], first names and family names
_SOURCES: dict[str, list[tuple[str, float]]] = {
    "british": [("en_GB", 0.9), ("en_IE", 0.1)],
    "irish": [("en_IE", 1.0)],
    "romanian": [("ro_RO", 1.0)],
    "other_white": [("pl_PL", 0.55), ("ro_RO", 0.2), ("lt_LT", 0.1), ("pt_PT", 0.15)],
    "indian": [("en_IN", 1.0)],
    "pakistani": [("fr_DZ", 1.0)],  # Arabic-origin given names in Latin transliteration
    "chinese": [("zh_CN", 1.0)],
    "african": [("yo_NG", 0.4), ("ig_NG", 0.2), ("en_KE", 0.4)],
    "arab": [("fr_DZ", 1.0)],
}
_FAMILY_SOURCES: dict[str, list[str]] = {"pakistani": ["en_PK"]}

NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "Richard": ("Rick", "Dick", "Rich"), "James": ("Jim", "Jimmy", "Jamie"),
    "John": ("Jack", "Johnny"), "Thomas": ("Tom", "Tommy"), "Michael": ("Mike", "Mick"),
    "Christopher": ("Chris", "Kit"), "Anthony": ("Tony",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Joseph": ("Joe", "Joey"), "David": ("Dave", "Davey"),
    "Edward": ("Ed", "Ted", "Eddie"), "Benjamin": ("Ben",), "Samuel": ("Sam",),
    "Alexander": ("Alex", "Sandy"), "Nicholas": ("Nick",), "Stephen": ("Steve",),
    "Steven": ("Steve",), "Andrew": ("Andy", "Drew"), "Peter": ("Pete",),
    "Timothy": ("Tim",), "Jonathan": ("Jon",), "Patrick": ("Pat", "Paddy"),
    "Henry": ("Harry", "Hal"), "Frederick": ("Fred", "Freddie"), "Charles": ("Charlie", "Chuck"),
    "Gerald": ("Gerry",), "Lawrence": ("Larry",), "Ronald": ("Ron", "Ronnie"),
    "Kenneth": ("Ken", "Kenny"), "Raymond": ("Ray",), "Leonard": ("Len", "Lenny"),
    "Margaret": ("Peggy", "Maggie", "Meg"), "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Catherine": ("Cathy", "Kate"),
    "Rebecca": ("Becky", "Becca"), "Jennifer": ("Jen", "Jenny"), "Victoria": ("Vicky", "Tori"),
    "Susan": ("Sue", "Susie"), "Deborah": ("Debbie", "Deb"), "Patricia": ("Pat", "Trish"),
    "Jacqueline": ("Jackie",), "Samantha": ("Sam",), "Alexandra": ("Alex", "Lexi"),
    "Christine": ("Chris",), "Caroline": ("Carrie",), "Dorothy": ("Dot", "Dolly"),
    "Eleanor": ("Ellie", "Nell"), "Helen": ("Nell",), "Jessica": ("Jess",),
    "Josephine": ("Jo", "Josie"), "Kimberley": ("Kim",), "Lucy": ("Lu",), "Mary": ("Molly",),
    "Natalie": ("Nat",), "Pamela": ("Pam",), "Sarah": ("Sally",), "Abigail": ("Abbie", "Abby"),
    "Charlotte": ("Charlie", "Lottie"), "Amanda": ("Mandy",), "Joanne": ("Jo",),
    "Stephanie": ("Steph",), "Gillian": ("Gill",), "Hannah": ("Annie",),
}  # fmt: skip

_LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ɏ' -]+$")
# characters without a decomposition that legacy (ASCII, cp1252) systems replace
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ı": "i"})


def strip_diacritics(text: str) -> str:
    """``Wróblewski`` -> ``Wroblewski``, ``Łukasz`` -> ``Lukasz``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def has_diacritics(text: str) -> bool:
    return strip_diacritics(text) != text


def _latin(names: Any) -> list[str]:
    return [n for n in names if isinstance(n, str) and _LATIN.match(n)]


def _provider(locale: str) -> Any:
    return importlib.import_module(f"faker.providers.person.{locale}").Provider


def _first_names(locale: str, sex: str) -> list[str]:
    p = _provider(locale)
    if locale == "zh_CN":
        return _latin(p.first_romanized_names)
    attr = "first_names_male" if sex == "M" else "first_names_female"
    if hasattr(p, attr) and len(getattr(p, attr)) > 1:
        return _latin(getattr(p, attr))
    return _latin(p.first_names)


def _family_names(locale: str) -> list[str]:
    p = _provider(locale)
    if locale == "zh_CN":
        return _latin(p.last_romanized_names)
    if locale == "pl_PL":
        return _latin([*p.unisex_last_names, *p.male_last_names])
    if isinstance(p.last_names, dict):
        # weighted pools (en_GB): common names such as Smith appear up to ten times
        top = max(p.last_names.values())
        return _latin([n for n, w in p.last_names.items() for _ in range(1 + round(9 * w / top))])
    return _latin(p.last_names)


def feminine_polish(name: str) -> str:
    """Polish family names agree with sex: Kowalski -> Kowalska."""
    for male, female in (("ski", "ska"), ("cki", "cka"), ("dzki", "dzka")):
        if name.endswith(male):
            return name[: -len(male)] + female
    return name


@dataclass
class NamePools:
    """All names as one array; groups are index ranges into it."""

    names: np.ndarray  # object array of str
    male: dict[str, np.ndarray]  # group -> indices of male given names
    female: dict[str, np.ndarray]
    family: dict[str, np.ndarray]
    feminine: np.ndarray  # index -> index of the feminine form (Polish), else itself
    nickname: np.ndarray  # index -> index of a short form, or -1
    initial: np.ndarray  # index -> index of the initial letter


def extend_pools(pools: NamePools, new_names: list[str]) -> NamePools:
    """The pools with extra names appended (e.g. double-barrelled family names)."""
    start = len(pools.names)
    letters = {str(pools.names[i]): int(i) for i in np.unique(pools.initial)}
    return NamePools(
        names=np.concatenate([pools.names, np.array(new_names, dtype=object)]),
        male=pools.male,
        female=pools.female,
        family=pools.family,
        feminine=np.concatenate([pools.feminine, start + np.arange(len(new_names))]),
        nickname=np.concatenate([pools.nickname, np.full(len(new_names), -1)]),
        initial=np.concatenate(
            [pools.initial, [letters[strip_diacritics(s)[0].upper()] for s in new_names]]
        ).astype(np.int64),
    )


def build_pools() -> NamePools:
    index: dict[str, int] = {}
    names: list[str] = []

    def ids(values: list[str]) -> np.ndarray:
        out = []
        for v in values:
            if v not in index:
                index[v] = len(names)
                names.append(v)
            out.append(index[v])
        return np.array(sorted(set(out)), dtype=np.int64)

    male: dict[str, np.ndarray] = {}
    female: dict[str, np.ndarray] = {}
    family: dict[str, np.ndarray] = {}
    for group, sources in _SOURCES.items():
        # weights are applied by repeating names in proportion, keeping one pool per group
        m: list[str] = []
        f: list[str] = []
        fam: list[str] = []
        for locale, weight in sources:
            reps = max(1, round(weight * 10))
            m += _first_names(locale, "M") * reps
            f += _first_names(locale, "F") * reps
            if group not in _FAMILY_SOURCES:
                fam += _family_names(locale) * reps
        for locale in _FAMILY_SOURCES.get(group, []):
            fam += _family_names(locale)
        male[group] = np.array([ids([n])[0] for n in m], dtype=np.int64)
        female[group] = np.array([ids([n])[0] for n in f], dtype=np.int64)
        family[group] = np.array([ids([n])[0] for n in fam], dtype=np.int64)
    for full, shorts in NICKNAMES.items():
        ids([full, *shorts])
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        ids([letter])
    n = len(names)
    feminine = np.arange(n)
    for i in range(n):
        fem = feminine_polish(names[i])
        if fem != names[i]:
            feminine[i] = ids([fem])[0]
    n = len(names)
    feminine = np.concatenate([feminine, np.arange(len(feminine), n)])
    nickname = np.full(n, -1, dtype=np.int64)
    for full, shorts in NICKNAMES.items():
        # the most common short form is the one recorded
        nickname[index[full]] = index[shorts[0]]
    initial = np.array([index[strip_diacritics(s)[0].upper()] for s in names], dtype=np.int64)
    return NamePools(
        names=np.array(names, dtype=object),
        male=male,
        female=female,
        family=family,
        feminine=feminine,
        nickname=nickname,
        initial=initial,
    )


def name_group_of(ethnic_codes: np.ndarray) -> np.ndarray:
    """Name group (string) for each ONS ethnic-group code."""
    lookup = {code: group for code, _, _, group in ETHNIC_GROUPS}
    return np.array([lookup[c] for c in ethnic_codes], dtype=object)
