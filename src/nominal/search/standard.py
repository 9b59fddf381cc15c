"""The linkage standardisation of one record, in Python, for a query.

A search has one record to standardise (the query) and must answer in milliseconds;
running :func:`nominal.link.standardise.standardise_sql` through DuckDB for one row
costs more than the whole rest of the search. This is the same transformation written
for one record. ``tests/search/test_standard.py`` holds it to the SQL on every record of
a synthetic town and on awkward cases, so a change to the linkage standardisation that
is not made here fails the tests instead of making search and linking disagree.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from typing import Any

from nominal.link.standardise import ADDRESS_ABBREVIATIONS, STANDARD_COLUMNS, nickname_rows

_NOT_NAME = re.compile(r"[^a-z\- ]")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_NOT_ADDRESS = re.compile(r"[^a-z0-9 ]")
_HOUSE = re.compile(r"^[0-9]+[a-z]?$")


@lru_cache(maxsize=1)
def _nick_groups() -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for name, canonical in nickname_rows():
        groups.setdefault(name, set()).add(canonical)
    return {name: sorted(values) for name, values in groups.items()}


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = _NOT_NAME.sub("", _strip_accents(str(value)).lower())
    text = _SPACES.sub(" ", text).strip()
    return text or None


def _squash(value: str | None) -> str | None:
    if value is None:
        return None
    return value.replace("-", "").replace(" ", "") or None


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def _district(pc: str | None, digits_only: bool) -> str | None:
    if not pc:
        return None
    if digits_only:
        return pc
    if len(pc) >= 5:
        return pc[:-3]
    return pc if 2 <= len(pc) <= 4 else None


def standardise_record(record: dict[str, Any], unique_id: str = "query") -> dict[str, Any]:
    """The standardised columns of one canonical identity record."""
    given_raw = _clean(record.get("given_name"))
    given = given_raw.split(" ")[0] or None if given_raw else None
    family_raw = _clean(record.get("family_name"))
    other_raw = _clean(record.get("other_names"))
    dob = _date(record.get("date_of_birth"))
    sex_text = str(record.get("sex") or "").strip().upper()
    sex = {"M": "M", "F": "F", "MALE": "M", "FEMALE": "F", "X": "X"}.get(sex_text)
    pc = _NOT_ALNUM.sub("", str(record.get("postcode") or "")).upper() or None
    parts = ("street_number", "address_line_1", "address_line_2")
    lines = [str(record[p]) for p in parts if record.get(p) is not None]
    address_raw = _strip_accents(" ".join(lines)).lower()
    town = str(record.get("town") or "").lower()
    tokens = [
        t
        for t in (
            ADDRESS_ABBREVIATIONS.get(t, t) for t in _NOT_ADDRESS.sub(" ", address_raw).split(" ")
        )
        if t != "" and t != town
    ]
    # UK postcodes; an all-digit postcode (other countries) is kept whole
    digits_only = bool(pc) and pc.isdigit() and pc.isascii()  # type: ignore[union-attr]
    groups = _nick_groups().get(given) if given else None
    if groups is None and given is not None:
        groups = [given]
    digits = re.sub(r"[^0-9]", "", str(record.get("nhs_number") or "")) or None
    family_parts = family_raw.replace("-", " ") if family_raw else None
    out: dict[str, Any] = {
        "unique_id": unique_id,
        "dataset": record.get("dataset"),
        "given_std": given,
        "given_groups": groups,
        "given_canon": groups[0] if groups else given,
        "given_initial": given[:1] if given else None,
        "middle_std": _clean(record.get("middle_names")),
        "family_std": _squash(family_raw),
        "family_tokens": [t for t in family_parts.split(" ") if t]
        if family_parts is not None
        else None,
        "family_first": (family_parts.split(" ")[0] or None) if family_parts else None,
        "other_std": _squash(other_raw),
        "dob": dob,
        "dob_str": dob.strftime("%Y%m%d") if dob else None,
        "dob_swapped": date(dob.year, dob.day, dob.month)
        if dob and dob.day <= 12 and dob.day != dob.month
        else None,
        "dob_year": dob.year if dob else None,
        "sex": sex,
        "postcode_std": pc if pc and (len(pc) >= 5 or digits_only) else None,
        "postcode_sector": pc[:-2] if pc and len(pc) >= 5 and not digits_only else None,
        "postcode_district": _district(pc, digits_only),
        "house_number": next((t for t in tokens if _HOUSE.match(t)), None),
        "address_std": " ".join(tokens) or None,
        "address_tokens": tokens or None,
        "uprn": re.sub(r"[^0-9]", "", str(record.get("uprn") or "")) or None,
        "nhs_number": digits if digits and len(digits) == 10 else None,
        "ni_number": re.sub(r"\s", "", str(record.get("ni_number") or "")).upper() or None,
        "pupil_number": str(record.get("pupil_number") or "").strip().upper() or None,
        "police_id": str(record.get("police_id") or "").strip().upper() or None,
    }
    return {name: out[name] for name in STANDARD_COLUMNS}
