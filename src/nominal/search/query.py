"""What a practitioner knows about a person, parsed into a search query.

A practitioner rarely knows everything, or knows it exactly: a name heard over the
phone, "born in 1987", "about thirty", "somewhere in KT1 2", "flat 3, Mill Lane". A
:class:`Query` keeps what is known precisely (a full date of birth, a full postcode,
an identifier), which the linkage model scores as evidence, apart from what is known
only in part (a year, a year and month, an age range, a postcode sector or district),
which narrows the candidates but is not evidence the model was trained on.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

_FULL_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_OUTWARD = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


class QueryError(ValueError):
    """A search field that cannot be understood; the message names the field."""


@dataclass(frozen=True)
class DateRange:
    """Inclusive range of dates of birth a partial date or an age range allows."""

    first: date
    last: date
    label: str


@dataclass
class Query:
    """A parsed search. Empty strings are treated as not known."""

    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    dob_range: DateRange | None = None
    sex: str | None = None
    postcode: str | None = None  # full postcode, standard form "AB1 2CD"
    postcode_prefix: str | None = None  # sector "AB1 2" or district "AB1"
    address: str | None = None
    nhs_number: str | None = None
    ni_number: str | None = None
    police_id: str | None = None
    pupil_number: str | None = None
    notes: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(
            [
                self.given_name,
                self.family_name,
                self.date_of_birth,
                self.dob_range,
                self.postcode,
                self.postcode_prefix,
                self.address,
                self.nhs_number,
                self.ni_number,
                self.police_id,
                self.pupil_number,
            ]
        )

    def record(self) -> dict[str, Any]:
        """The query as a canonical identity record for the linkage model."""
        return {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "sex": self.sex,
            "address_line_1": self.address,
            "postcode": self.postcode,
            "nhs_number": self.nhs_number,
            "ni_number": self.ni_number,
            "police_id": self.police_id,
            "pupil_number": self.pupil_number,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["date_of_birth"] = self.date_of_birth.isoformat() if self.date_of_birth else None
        data["dob_range"] = self.dob_range.label if self.dob_range else None
        data.pop("notes")
        return {k: v for k, v in data.items() if v}


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(str(value).split())
    return cleaned or None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def parse_dob(value: str | None) -> tuple[date | None, DateRange | None]:
    """A full date, or a year / year and month as a range. Accepts ISO and UK forms.

    ``1987-03-14``, ``14/03/1987``, ``1987-03``, ``03/1987``, ``1987``.
    """
    text = _text(value)
    if text is None:
        return None, None
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text) or None
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
        if m:
            d, mo, y = int(m[1]), int(m[2]), int(m[3])
        else:
            ym = re.fullmatch(r"(\d{4})-(\d{1,2})", text) or re.fullmatch(
                r"(\d{1,2})[/.-](\d{4})", text
            )
            if ym:
                a, b = ym[1], ym[2]
                y, mo = (int(a), int(b)) if len(a) == 4 else (int(b), int(a))
                if not 1 <= mo <= 12:
                    raise QueryError(f"date of birth {text!r}: month {mo} is not 1-12")
                last = date(y + (mo == 12), mo % 12 + 1, 1).toordinal() - 1
                return None, DateRange(date(y, mo, 1), date.fromordinal(last), f"{y}-{mo:02d}")
            if re.fullmatch(r"\d{4}", text):
                y = int(text)
                return None, DateRange(date(y, 1, 1), date(y, 12, 31), str(y))
            raise QueryError(f"date of birth {text!r}: use YYYY-MM-DD, DD/MM/YYYY, YYYY-MM or YYYY")
    try:
        return date(y, mo, d), None
    except ValueError as exc:
        raise QueryError(f"date of birth {text!r}: {exc}") from None


def parse_age(value: str | None, today: date) -> DateRange | None:
    """An age ``34`` or range ``30-40`` as the dates of birth it allows on ``today``."""
    text = _text(value)
    if text is None:
        return None
    m = re.fullmatch(r"(\d{1,3})\s*(?:-|to)\s*(\d{1,3})", text) or re.fullmatch(r"(\d{1,3})", text)
    if not m:
        raise QueryError(f"age {text!r}: use an age (34) or a range (30-40)")
    low = int(m[1])
    high = int(m[2]) if m.lastindex and m.lastindex > 1 else low
    if high < low:
        low, high = high, low
    first = _add_years(today, -(high + 1)).toordinal() + 1
    last = _add_years(today, -low)
    return DateRange(date.fromordinal(first), last, f"aged {low}-{high}")


def parse_postcode(value: str | None) -> tuple[str | None, str | None]:
    """(full postcode, None) or (None, sector or district) from what was typed."""
    text = _text(value)
    if text is None:
        return None, None
    upper = text.upper()
    compact = re.sub(r"[^A-Z0-9]", "", upper)
    full = _FULL_POSTCODE.match(compact)
    if full:
        return f"{full[1]} {full[2]}", None
    parts = upper.split()
    if len(parts) == 2 and _OUTWARD.match(parts[0]) and re.fullmatch(r"[0-9][A-Z]?", parts[1]):
        return None, f"{parts[0]} {parts[1][0]}"
    if _OUTWARD.match(compact):
        return None, compact
    raise QueryError(
        f"postcode {text!r}: use a full postcode, a sector (AB1 2) or a district (AB1)"
    )


def parse_query(
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    name: str | None = None,
    dob: str | None = None,
    age: str | None = None,
    sex: str | None = None,
    postcode: str | None = None,
    address: str | None = None,
    nhs_number: str | None = None,
    ni_number: str | None = None,
    police_id: str | None = None,
    pupil_number: str | None = None,
    today: date | None = None,
) -> Query:
    """Build a :class:`Query` from form or command-line text; raises :class:`QueryError`.

    ``name`` is a free-text name ("John Smith", "Smith, John"): the last word is taken
    as the family name unless a comma says otherwise. The model sees through swapped
    names, so the guess need not be right.
    """
    given, family = _text(given_name), _text(family_name)
    free = _text(name)
    if free and not (given or family):
        if "," in free:
            family, _, given = (p.strip() for p in free.partition(","))
        else:
            words = free.split()
            given = " ".join(words[:-1]) or None
            family = words[-1]
    full_dob, dob_range = parse_dob(dob)
    age_range = parse_age(age, today or date.today())
    if age_range and dob_range:
        first = max(age_range.first, dob_range.first)
        last = min(age_range.last, dob_range.last)
        if first > last:
            raise QueryError("date of birth and age do not overlap")
        dob_range = DateRange(first, last, f"{dob_range.label}, {age_range.label}")
    elif age_range and full_dob is None:
        dob_range = age_range
    full_pc, prefix = parse_postcode(postcode)
    nhs = re.sub(r"\D", "", nhs_number or "") or None
    if nhs is not None and len(nhs) != 10:
        raise QueryError(f"NHS number {nhs_number!r}: must have 10 digits")
    sex_text = (_text(sex) or "").upper()[:1] or None
    if sex_text is not None and sex_text not in {"M", "F", "X"}:
        raise QueryError(f"sex {sex!r}: use M, F or X")
    return Query(
        given_name=given,
        family_name=family,
        date_of_birth=full_dob,
        dob_range=dob_range,
        sex=sex_text,
        postcode=full_pc,
        postcode_prefix=prefix,
        address=_text(address),
        nhs_number=nhs,
        ni_number=(re.sub(r"\s", "", ni_number or "").upper() or None),
        police_id=(_text(police_id) or "").upper() or None,
        pupil_number=(_text(pupil_number) or "").upper() or None,
    )
