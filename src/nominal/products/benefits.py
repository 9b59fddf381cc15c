"""Benefits realisation: did the families worked do better, and what did it save?

For each family (household) worked — an early help episode in the data, or a task or
pathway enrolment in the hub — the measures of :data:`MEASURES` are counted over the
12 months before the start (baseline) and the 12 months after (follow-up), across the
household's members. Families without a full follow-up year yet are left out and
counted as such.

* **Change**: the mean per-family change with a 95% confidence interval (Student's t).
* **Matched comparison**: each worked family is matched, without replacement, to a
  family never worked whose baseline year (the same start, by calendar quarter) looks
  most alike (nearest neighbour on the standardised baseline counts and household
  size). The difference in differences — worked change minus comparison change — is
  the estimated effect, with its own 95% CI over the matched pairs.
* **Savings**: the estimated effect times the unit cost of each measure
  (``data/unit_costs.csv``: example figures whose source is noted; a deployment edits
  the CSV or passes its own), for measures where fewer is better.
* **Programme tracker**: RAG per measure against the CSV's target change: green when
  the effect meets the target and its CI excludes no change, amber when it points the
  right way, red otherwise.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from nominal.products.lakeview import ProductsError, as_of_date, first

UNIT_COSTS = Path(__file__).parent / "data" / "unit_costs.csv"

# measure -> SQL predicate on an event (``e``), per household member event.
MEASURES: dict[str, str] = {
    "asb": "e.dataset = 'anti_social_behaviour'",
    "offending": "e.dataset = 'crimes' AND json_extract_string(e.attributes, '$.role') "
    "IN ('suspect', 'offender')",
    "police_callouts": "e.dataset = 'police_incidents'",
    "domestic_abuse": "e.dataset = 'domestic_abuse'",
    "treatment": "e.event_type = 'substance_misuse_episode'",
}
# School absence is a sum of sessions missed, not a count of events.
ABSENCE_SQL = (
    "CASE WHEN e.dataset = 'school_attendance' THEN "
    "coalesce(TRY_CAST(json_extract_string(e.attributes, '$.sessions_missed') AS DOUBLE), 0) "
    "ELSE 0 END"
)
ALL_MEASURES = (*MEASURES, "school_absence")


@dataclass(frozen=True)
class UnitCost:
    measure: str
    label: str
    unit: str
    unit_cost_gbp: float
    price_year: int
    target_change_pct: float
    source: str


def load_unit_costs(path: Path = UNIT_COSTS) -> dict[str, UnitCost]:
    """The unit-cost table; a bad row is an error naming the file, row and field."""
    required = (
        "measure",
        "label",
        "unit",
        "unit_cost_gbp",
        "price_year",
        "target_change_pct",
        "source",
    )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ProductsError(
                f"{path.name}: row 1 (header): missing column(s) {', '.join(missing)}"
            )
        costs: dict[str, UnitCost] = {}
        for number, row in enumerate(reader, start=2):
            try:
                cost = UnitCost(
                    measure=row["measure"].strip(),
                    label=row["label"].strip(),
                    unit=row["unit"].strip(),
                    unit_cost_gbp=float(row["unit_cost_gbp"]),
                    price_year=int(row["price_year"]),
                    target_change_pct=float(row["target_change_pct"]),
                    source=row["source"].strip(),
                )
            except (TypeError, ValueError) as exc:
                bad = next(
                    (
                        f
                        for f in ("unit_cost_gbp", "price_year", "target_change_pct")
                        if not _num(row.get(f))
                    ),
                    "?",
                )
                raise ProductsError(
                    f"{path.name}: row {number}: field {bad}: not a number"
                ) from exc
            if cost.measure not in ALL_MEASURES:
                raise ProductsError(
                    f"{path.name}: row {number}: field measure: unknown measure {cost.measure!r}"
                )
            if cost.unit_cost_gbp < 0:
                raise ProductsError(f"{path.name}: row {number}: field unit_cost_gbp: negative")
            costs[cost.measure] = cost
    return costs


def _num(value: str | None) -> bool:
    try:
        float(value or "")
    except ValueError:
        return False
    return True


def worked_families(
    con: duckdb.DuckDBPyConnection, extra: list[tuple[str, date]] | None = None
) -> pd.DataFrame:
    """Households worked and the day work started: the first early help episode of each
    household in the data, plus ``extra`` (household id, start) from tasking/pathways;
    the earliest start per household wins."""
    frame = con.execute(
        """SELECT household_id AS unit_id, min(event_date)::DATE AS start FROM gold.events
           WHERE event_type = 'early_help_episode' AND household_id IS NOT NULL
           GROUP BY household_id"""
    ).df()
    if extra:
        frame = pd.concat(
            [frame, pd.DataFrame(extra, columns=["unit_id", "start"])], ignore_index=True
        )
    frame["start"] = pd.to_datetime(frame["start"]).dt.date
    return frame.groupby("unit_id", as_index=False)["start"].min()


def _counts(con: duckdb.DuckDBPyConnection, starts: pd.DataFrame) -> pd.DataFrame:
    """Baseline and follow-up totals of every measure for each (unit_id, start)."""
    con.register("_starts", starts)
    measure_cols = ",\n".join(
        f"sum(CASE WHEN {pred} THEN 1 ELSE 0 END) AS {name}" for name, pred in MEASURES.items()
    )
    try:
        frame = con.execute(
            f"""SELECT s.unit_id, s.start::DATE AS start,
                       CASE WHEN e.event_date::DATE < s.start THEN 'before' ELSE 'after' END AS period,
                       {measure_cols},
                       sum({ABSENCE_SQL}) AS school_absence
                FROM _starts s JOIN gold.events e ON e.household_id = s.unit_id
                WHERE e.event_date::DATE >= s.start - INTERVAL 365 DAY
                  AND e.event_date::DATE < s.start + INTERVAL 365 DAY
                GROUP BY ALL"""
        ).df()
    finally:
        con.unregister("_starts")
    frame["start"] = pd.to_datetime(frame["start"]).dt.date
    return frame


def _wide(starts: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    out = starts[["unit_id", "start"]].copy()
    out["start"] = pd.to_datetime(out["start"]).dt.date
    for period in ("before", "after"):
        part = counts[counts["period"] == period].drop(columns="period")
        part = part.rename(columns={m: f"{m}_{period}" for m in ALL_MEASURES})
        out = out.merge(part, on=["unit_id", "start"], how="left")
    return out.fillna({f"{m}_{p}": 0 for m in ALL_MEASURES for p in ("before", "after")})


def _ci(values: np.ndarray) -> tuple[float, float, float]:
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(np.mean(values))
    if n < 2:
        return (mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return (mean, mean - half, mean + half)


@dataclass
class MeasureResult:
    measure: str
    label: str
    families: int
    baseline_mean: float
    followup_mean: float
    change: tuple[float, float, float]  # mean, low, high per family
    comparison_change: tuple[float, float, float] | None
    effect: tuple[float, float, float] | None  # difference in differences per family
    unit_cost: UnitCost | None
    saving_gbp: float | None
    rag: str

    def to_json(self) -> dict[str, Any]:
        def r(t: tuple[float, float, float] | None) -> list[float | None] | None:
            return None if t is None else [None if math.isnan(v) else round(v, 4) for v in t]

        return {
            "measure": self.measure,
            "label": self.label,
            "families": self.families,
            "baseline_mean": round(self.baseline_mean, 4),
            "followup_mean": round(self.followup_mean, 4),
            "change": r(self.change),
            "comparison_change": r(self.comparison_change),
            "effect": r(self.effect),
            "saving_gbp": None if self.saving_gbp is None else round(self.saving_gbp, 2),
            "rag": self.rag,
        }


@dataclass
class Realisation:
    as_of: date
    worked: int
    with_followup: int
    matched: int
    measures: list[MeasureResult] = field(default_factory=list)

    @property
    def total_saving_gbp(self) -> float:
        return sum(m.saving_gbp or 0.0 for m in self.measures)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "families_worked": self.worked,
            "families_with_full_follow_up": self.with_followup,
            "families_matched": self.matched,
            "total_saving_gbp": round(self.total_saving_gbp, 2),
            "measures": [m.to_json() for m in self.measures],
        }


def _match(con: duckdb.DuckDBPyConnection, worked: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """For each worked family, a never-worked household matched on its baseline year."""
    quarter = worked["start"].map(lambda d: date(d.year, 3 * ((d.month - 1) // 3) + 1, 1))
    worked = worked.assign(quarter=quarter)
    exclude = set(worked["unit_id"])
    rng = np.random.default_rng(seed)
    pairs: list[dict[str, Any]] = []
    all_households = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT household_id FROM gold.events WHERE household_id IS NOT NULL ORDER BY 1"
        ).fetchall()
        if r[0] not in exclude
    ]
    if not all_households:
        return pd.DataFrame(columns=["unit_id", "match_id"])
    sizes = dict(con.execute("SELECT household_id, member_count FROM gold.households").fetchall())
    used: set[str] = set()
    for q, group in worked.groupby("quarter"):
        # A random pool keeps matching affordable at a million people; 50 candidates per
        # worked family is plenty for nearest-neighbour matching on a handful of counts.
        pool_size = min(len(all_households), 50 * len(group) + 200)
        pool = list(rng.choice(all_households, size=pool_size, replace=False))
        cand = _wide(
            pd.DataFrame({"unit_id": pool, "start": q}),
            _counts(con, pd.DataFrame({"unit_id": pool, "start": q})),
        )
        base_cols = [f"{m}_before" for m in ALL_MEASURES]
        cand["size"] = cand["unit_id"].map(sizes).fillna(1)
        group = group.assign(size=group["unit_id"].map(sizes).fillna(1))
        scale = cand[[*base_cols, "size"]].std().replace(0, 1).fillna(1)
        for _, row in group.iterrows():
            free = cand[~cand["unit_id"].isin(used)]
            if free.empty:
                break
            dist = (
                ((free[[*base_cols, "size"]] - row[[*base_cols, "size"]].astype(float)) / scale)
                ** 2
            ).sum(axis=1)
            best = free.loc[dist.idxmin()]
            used.add(best["unit_id"])
            pairs.append({"unit_id": row["unit_id"], "match_id": best["unit_id"], "match_start": q})
    return pd.DataFrame(pairs)


def realise(
    con: duckdb.DuckDBPyConnection,
    *,
    extra_families: list[tuple[str, date]] | None = None,
    unit_costs: dict[str, UnitCost] | None = None,
    as_of: date | None = None,
    compare: bool = True,
) -> Realisation:
    """Baseline against follow-up for the families worked, with the matched comparison."""
    as_of = as_of or as_of_date(con)
    costs = unit_costs if unit_costs is not None else load_unit_costs()
    families = worked_families(con, extra_families)
    eligible = families[families["start"].map(lambda s: s + timedelta(days=365) <= as_of)]
    eligible = eligible[eligible["start"].map(lambda s: s - timedelta(days=365)) >= _first_day(con)]
    result = Realisation(as_of, len(families), len(eligible), 0)
    if eligible.empty:
        return result
    worked = _wide(eligible, _counts(con, eligible))
    matched = pd.DataFrame()
    if compare:
        pairs = _match(con, worked)
        if not pairs.empty:
            comp_starts = pairs[["match_id", "match_start"]].rename(
                columns={"match_id": "unit_id", "match_start": "start"}
            )
            comp = _wide(comp_starts, _counts(con, comp_starts))
            matched = pairs.merge(worked, on="unit_id").merge(
                comp.drop(columns="start"),
                left_on="match_id",
                right_on="unit_id",
                suffixes=("", "_cmp"),
            )
            result.matched = len(matched)
    for measure in ALL_MEASURES:
        cost = costs.get(measure)
        before = worked[f"{measure}_before"].to_numpy(dtype=float)
        after = worked[f"{measure}_after"].to_numpy(dtype=float)
        change = _ci(after - before)
        comparison = effect = None
        if not matched.empty:
            w = matched[f"{measure}_after"].to_numpy(float) - matched[f"{measure}_before"].to_numpy(
                float
            )
            c = matched[f"{measure}_after_cmp"].to_numpy(float) - matched[
                f"{measure}_before_cmp"
            ].to_numpy(float)
            comparison = _ci(c)
            effect = _ci(w - c)
        estimate = effect if effect is not None else change
        fewer_is_better = cost is None or cost.target_change_pct <= 0
        saving = None
        if cost is not None and fewer_is_better and not math.isnan(estimate[0]):
            saving = -estimate[0] * len(worked) * cost.unit_cost_gbp
        result.measures.append(
            MeasureResult(
                measure=measure,
                label=cost.label if cost else measure,
                families=len(worked),
                baseline_mean=float(np.mean(before)),
                followup_mean=float(np.mean(after)),
                change=change,
                comparison_change=comparison,
                effect=effect,
                unit_cost=cost,
                saving_gbp=saving,
                rag=rag(estimate, float(np.mean(before)), cost),
            )
        )
    return result


def _first_day(con: duckdb.DuckDBPyConnection) -> date:
    row = first(con.execute("SELECT min(event_date)::DATE FROM gold.events"))
    return row[0] if row and row[0] else date.min


def rag(estimate: tuple[float, float, float], baseline: float, cost: UnitCost | None) -> str:
    """Green: meets the target change and the CI excludes zero; amber: right direction;
    red: wrong direction (or no data)."""
    mean, low, high = estimate
    if math.isnan(mean):
        return "red"
    target = cost.target_change_pct if cost else -10.0
    sign = -1 if target <= 0 else 1
    if sign * mean <= 0:
        return "red"
    significant = not math.isnan(low) and (high < 0 if sign < 0 else low > 0)
    pct = 100.0 * mean / baseline if baseline else math.inf * sign
    meets = pct <= target if sign < 0 else pct >= target
    return "green" if meets and significant else "amber"
