"""Search: candidates from the index, scored by the linkage model, ranked, explained.

This module knows nothing of users or web requests. It takes a parsed
:class:`~nominal.search.query.Query` and the set of datasets the caller's agreements
cover (from the policy decision point, see :mod:`nominal.search.access`) and returns
ranked golden nominals with their match score and the reasons for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from nominal.search.index import SearchIndex, record_keys
from nominal.search.query import Query

# Candidates scored per search, the most promising (most keys shared) first.
CANDIDATE_LIMIT = 200
# A postcode sector or district the person was recorded in ranks them as if the model
# had seen this much more evidence (in bits: 2**10 to 1). It is a preference, not a
# filter: the hub's latest address of a person who has just moved may be elsewhere.
AREA_BONUS = 10.0
EPOCH = date(1970, 1, 1)


@dataclass
class Hit:
    """One ranked golden nominal."""

    nominal_id: str
    score: float  # match probability under the linkage model
    match_weight: float
    reasons: list[str]
    record: dict[str, Any]  # golden-record values (before policy filtering)
    datasets: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "nominal_id": self.nominal_id,
            "score": round(self.score, 4),
            "match_weight": round(self.match_weight, 2),
            "reasons": self.reasons,
        }


@dataclass
class SearchResult:
    hits: list[Hit]
    candidates: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _days(day: date) -> int:
    return (day - EPOCH).days


def _weight_text(weight: float) -> str:
    return f"{weight:+.1f}"


def query_keys(query: Query, std: dict[str, Any]) -> list[str]:
    """Blocking keys of the query: as given, names swapped, and with partial fields."""
    base = dict(std)
    if query.dob_range is not None:
        years = range(query.dob_range.first.year, query.dob_range.last.year + 1)
    else:
        years = range(0)
    prefix = (query.postcode_prefix or "").replace(" ", "")
    variants = [base]
    if base.get("given_std") or base.get("family_std"):
        swapped = dict(base)
        swapped["given_std"], swapped["family_std"] = base.get("family_std"), base.get("given_std")
        swapped["given_canon"] = base.get("family_std")
        swapped["given_initial"] = (base.get("family_std") or "")[:1] or None
        variants.append(swapped)
    keys: list[str] = []
    for variant in variants:
        keys.extend(record_keys(variant))
        for year in list(years)[:15]:
            keys.extend(record_keys({**variant, "dob_year": year}))
        if prefix:
            sector = prefix if query.postcode_prefix and " " in query.postcode_prefix else None
            keys.extend(
                record_keys(
                    {
                        **variant,
                        "postcode_sector": sector,
                        "postcode_district": prefix if sector is None else prefix[:-1],
                    }
                )
            )
    return list(dict.fromkeys(keys))


def _filters(index: SearchIndex, query: Query, rows: np.ndarray) -> np.ndarray:
    """Rows whose date of birth is within what is known in part (a year, an age range)."""
    keep = np.ones(len(rows), dtype=bool)
    if query.dob_range is not None:
        days = index.dob_days[rows]
        keep &= (days >= _days(query.dob_range.first)) & (days <= _days(query.dob_range.last))
    return rows[keep]


def _in_area(index: SearchIndex, query: Query, rows: np.ndarray) -> np.ndarray:
    """Whether each row was ever recorded at a postcode in the query's sector or district."""
    keep = np.ones(len(rows), dtype=bool)
    if query.postcode_prefix:
        prefix = query.postcode_prefix.replace(" ", "")
        # a sector leaves two characters of the postcode, a district three
        rest = 2 if " " in query.postcode_prefix else 3
        codes = index.postcodes[rows]
        keep &= np.fromiter(
            (
                any(c.startswith(prefix) and len(c) - len(prefix) == rest for c in known.split("|"))
                for known in codes
            ),
            dtype=bool,
            count=len(rows),
        )
    return keep


def _scan(index: SearchIndex, query: Query) -> np.ndarray:
    """Every row meeting the partial fields (when the query has no key at all)."""
    rows = _filters(index, query, np.arange(index.size, dtype=np.int64))
    return rows[_in_area(index, query, rows)]


def search(
    index: SearchIndex,
    query: Query,
    *,
    limit: int = 20,
    allowed_datasets: set[str] | None = None,
    min_probability: float = 0.0,
) -> SearchResult:
    """Rank golden nominals for ``query``.

    ``allowed_datasets``: only nominals with a record in one of these datasets are
    returned (None means no restriction, for trusted internal callers only).
    """
    started = time.perf_counter()
    if query.is_empty():
        return SearchResult(
            [], 0, 0.0, ["nothing to search for: give a name, date, postcode or id"]
        )
    std_table = index.scorer.standardise(query.record())
    std = std_table.to_pylist()[0]
    hits = index.lookup(query_keys(query, std))
    if hits:
        rows = np.fromiter(hits.keys(), dtype=np.int64, count=len(hits))
        rows = _filters(index, query, rows)
    elif query.dob_range is not None or query.postcode_prefix:
        rows = _scan(index, query)
    else:
        rows = np.zeros(0, dtype=np.int64)
    if allowed_datasets is not None and len(rows):
        rows = rows[(index.dataset_bits[rows] & index.bits_of(allowed_datasets)) != 0]
    if len(rows) > CANDIDATE_LIMIT:
        order = sorted(rows.tolist(), key=lambda r: -hits.get(r, 0))
        rows = np.asarray(order[:CANDIDATE_LIMIT], dtype=np.int64)
    candidates = index.table.take(pa.array(rows, pa.int64()))
    scored = index.scorer.score(std_table, candidates) if len(rows) else []
    in_area = dict(zip(rows.tolist(), _in_area(index, query, rows).tolist(), strict=True))
    prefix = query.postcode_prefix

    def rank(item: dict[str, Any]) -> float:
        bonus = AREA_BONUS if prefix and in_area[index.row_of[item["unique_id"]]] else 0.0
        return float(item["match_weight"]) + bonus

    scored.sort(key=lambda s: -rank(s))
    partial = _partial_reasons(query)
    out: list[Hit] = []
    for item in scored:
        if item["match_probability"] < min_probability:
            continue
        row = index.row_of[item["unique_id"]]
        record = _display(index.table, row)
        reasons = [f"{r.text} ({_weight_text(r.weight)})" for r in item["reasons"]] + partial
        if prefix:
            kind = "sector" if " " in prefix else "district"
            where = "recorded" if in_area[row] else "never recorded"
            reasons.append(f"{where.capitalize()} at a postcode in {kind} {prefix}")
        out.append(
            Hit(
                nominal_id=item["unique_id"],
                score=item["match_probability"],
                match_weight=item["match_weight"],
                reasons=reasons,
                record=record,
                datasets=list(index.table.column("datasets")[row].as_py()),
            )
        )
        if len(out) >= limit:
            break
    return SearchResult(out, len(rows), time.perf_counter() - started)


def _partial_reasons(query: Query) -> list[str]:
    reasons = []
    if query.dob_range is not None:
        reasons.append(f"Date of birth within {query.dob_range.label} (filter)")
    return reasons


def _display(table: pa.Table, row: int) -> dict[str, Any]:
    def value(name: str) -> Any:
        return table.column(name)[row].as_py()

    return {
        "nominal_id": value("nominal_id"),
        "nominal_pseudo": value("nominal_pseudo"),
        "given_name": value("given_name"),
        "middle_names": value("middle_names"),
        "family_name": value("family_name"),
        "date_of_birth": value("date_of_birth"),
        "sex": value("display_sex"),
        "address_line_1": value("address_line_1"),
        "town": value("town"),
        "postcode": value("postcode"),
        "nhs_number": value("display_nhs_number"),
        "ni_number": value("display_ni_number"),
        "police_id": value("display_police_id"),
        "pupil_number": value("display_pupil_number"),
        "household_id": value("household_id"),
        "agencies": value("agencies"),
    }
