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


def _dob_ok(index: SearchIndex, query: Query, rows: np.ndarray) -> np.ndarray:
    """Whether each row's date of birth is within what is known in part (a year, an age range)."""
    keep = np.ones(len(rows), dtype=bool)
    if query.dob_range is not None:
        days = index.dob_days[rows]
        keep &= (days >= _days(query.dob_range.first)) & (days <= _days(query.dob_range.last))
    return keep


def _filters(index: SearchIndex, query: Query, rows: np.ndarray) -> np.ndarray:
    """Rows whose date of birth is within what is known in part (a year, an age range)."""
    return rows[_dob_ok(index, query, rows)]


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
    scorer = index.scorer
    std = scorer.standardise_values(query.record())
    found, shared = index.lookup(query_keys(query, std))
    if len(found):
        keep = _dob_ok(index, query, found)
        rows, shared = found[keep], shared[keep]
    elif query.dob_range is not None or query.postcode_prefix:
        rows = _scan(index, query)
        shared = np.zeros(len(rows), dtype=np.int64)
    else:
        rows = shared = np.zeros(0, dtype=np.int64)
    if allowed_datasets is not None and len(rows):
        visible = (index.dataset_bits[rows] & index.bits_of(allowed_datasets)) != 0
        rows, shared = rows[visible], shared[visible]
    if len(rows) > CANDIDATE_LIMIT:
        # the most promising (most keys shared) first; ties in row order
        best = np.argsort(-shared, kind="stable")[:CANDIDATE_LIMIT]
        rows = rows[np.sort(best)]
    if not len(rows):
        return SearchResult([], 0, time.perf_counter() - started)
    prefix = query.postcode_prefix
    in_area = _in_area(index, query, rows)
    arrays = scorer.fast and index.score_columns is not None
    scored: list[dict[str, Any]] = []
    if arrays:
        assert index.score_columns is not None
        gammas, weights, total = scorer.score_arrays(
            scorer.values_for_levels(std), index.score_columns.take(rows)
        )
    else:
        candidates = index.table.take(pa.array(rows, pa.int64()))
        std_table = scorer.standardise(query.record())
        by_id = {s["unique_id"]: s for s in scorer.score(std_table, candidates)}
        scored = [by_id[uid] for uid in candidates.column("unique_id").to_pylist()]
        total = np.asarray([s["match_weight"] for s in scored], dtype=np.float64)
    rank = total + np.where(in_area, AREA_BONUS, 0.0) if prefix else total
    probability = _probabilities(total)
    order = [j for j in np.argsort(-rank, kind="stable").tolist()
             if probability[j] >= min_probability][:limit]  # fmt: skip
    partial = _partial_reasons(query)
    shown = index.table.take(pa.array(rows[order], pa.int64())) if order else None
    records = _display(shown) if shown is not None else []
    datasets = shown.column("datasets").to_pylist() if shown is not None else []
    out: list[Hit] = []
    for k, j in enumerate(order):
        evidence = scorer.reasons(gammas[:, j], weights[:, j]) if arrays else scored[j]["reasons"]
        reasons = [f"{r.text} ({_weight_text(r.weight)})" for r in evidence] + partial
        if prefix:
            kind = "sector" if " " in prefix else "district"
            where = "recorded" if in_area[j] else "never recorded"
            reasons.append(f"{where.capitalize()} at a postcode in {kind} {prefix}")
        out.append(
            Hit(
                nominal_id=records[k]["nominal_id"],
                score=float(probability[j]),
                match_weight=float(total[j]),
                reasons=reasons,
                record=records[k],
                datasets=list(datasets[k]),
            )
        )
    return SearchResult(out, len(rows), time.perf_counter() - started)


def _probabilities(weight: np.ndarray) -> np.ndarray:
    """Match probabilities from match weights, as Splink computes them."""
    from nominal.search.scoring import _probability

    return np.asarray([_probability(float(w)) for w in weight], dtype=np.float64)


def _partial_reasons(query: Query) -> list[str]:
    reasons = []
    if query.dob_range is not None:
        reasons.append(f"Date of birth within {query.dob_range.label} (filter)")
    return reasons


DISPLAY_FIELDS: dict[str, str] = {
    "nominal_id": "nominal_id",
    "nominal_pseudo": "nominal_pseudo",
    "given_name": "given_name",
    "middle_names": "middle_names",
    "family_name": "family_name",
    "date_of_birth": "date_of_birth",
    "sex": "display_sex",
    "address_line_1": "address_line_1",
    "town": "town",
    "postcode": "postcode",
    "nhs_number": "display_nhs_number",
    "ni_number": "display_ni_number",
    "police_id": "display_police_id",
    "pupil_number": "display_pupil_number",
    "household_id": "household_id",
    "agencies": "agencies",
}


def _display(table: pa.Table) -> list[dict[str, Any]]:
    """The golden-record values of each row of ``table`` (index rows), as a result shows them."""
    columns = {name: table.column(source).to_pylist() for name, source in DISPLAY_FIELDS.items()}
    return [{name: columns[name][i] for name in DISPLAY_FIELDS} for i in range(table.num_rows)]
