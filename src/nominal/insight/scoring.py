"""Scoring (gold.scores) and cohorts (gold.cohorts), a pipeline step after linking.

Every score carries its band, its rank in the population and its reasons in words.
Cohorts are the lists partnerships act on -- "households predicted to escalate to
high-risk domestic abuse", "children likely not school-ready in households not known
to services", "output areas where children are at risk of exploitation" -- each with
the rule that made it and a size never larger than the team's capacity.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from nominal.config import Home
from nominal.engines.lake import Lake, Snapshot
from nominal.insight import dataset, explain, features, training
from nominal.insight.specs import SPECS, ModelSpec

SCORE_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("unit_type", pa.string()),
        ("unit_id", pa.string()),
        ("unit_pseudo", pa.string()),
        ("as_of", pa.date32()),
        ("score", pa.float64()),
        ("band", pa.string()),
        ("rank", pa.int64()),
        ("reasons", pa.string()),
        ("model_version", pa.string()),
    ]
)

COHORT_SCHEMA = pa.schema(
    [
        ("cohort", pa.string()),
        ("title", pa.string()),
        ("rule", pa.string()),
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("as_of", pa.date32()),
        ("capacity", pa.int64()),
        ("size", pa.int64()),
        ("rank", pa.int64()),
        ("unit_type", pa.string()),
        ("unit_id", pa.string()),
        ("unit_pseudo", pa.string()),
        ("oa_code", pa.string()),
        ("score", pa.float64()),
        ("reasons", pa.string()),
    ]
)

CHUNK_ROWS = 50_000  # units scored and explained at a time

# Services whose involvement means a family is "known": universal services (A&E,
# ambulance, schools, early-years assessment, benefits, fire safety visits) do not count.
TARGETED_SERVICES = (
    "police_incidents",
    "crimes",
    "domestic_abuse",
    "missing_persons",
    "anti_social_behaviour",
    "csc_referrals",
    "cin_cp_plans",
    "school_exclusions",
    "mental_health",
    "substance_misuse",
    "homelessness",
    "probation",
    "early_help",
)


def default_as_of(snapshot: Snapshot) -> date:
    """The day after the latest event the lake holds: scoring 'now'."""
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=["gold.events"])
    latest = con.execute("SELECT max(event_date) FROM gold.events").fetchone()
    if latest is None or latest[0] is None:
        raise training.TrainingError("gold.events is empty: link (or build oracle gold) first")
    value: date = latest[0]
    return value + timedelta(days=1)


def first_event(snapshot: Snapshot) -> date:
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=["gold.events"])
    row = con.execute(
        "SELECT min(event_date) FROM gold.events WHERE event_date > DATE '1990-01-01'"
    ).fetchone()
    assert row is not None and row[0] is not None
    value: date = row[0]
    return value


def psi(expected: Any, actual: Any, bins: int = 10) -> float:
    """Population stability index of ``actual`` scores against ``expected`` ones.

    Bins are the deciles of the expected scores; below 0.1 is usually read as stable,
    0.1 to 0.25 as a moderate shift and above 0.25 as a shift worth re-training for.
    """
    import numpy as np

    exp = np.asarray(expected, dtype=float)
    act = np.asarray(actual, dtype=float)
    if len(exp) == 0 or len(act) == 0:
        return math.nan
    edges = np.unique(np.quantile(exp, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, exp, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, act, side="right"), minlength=len(edges) + 1)
    e_share = np.clip(e / e.sum(), 1e-4, None)
    a_share = np.clip(a / a.sum(), 1e-4, None)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def drift(model: training.TrainedModel, scores: Any) -> dict[str, Any]:
    """Today's score distribution against the validation year's (the drift check)."""
    import numpy as np

    reference = model.validation["score_lightgbm"].to_numpy(float)
    now = np.asarray(scores, dtype=float)
    value = psi(reference, now)
    status = (
        "unknown"
        if math.isnan(value)
        else "stable"
        if value < 0.1
        else "moderate shift"
        if value < 0.25
        else "shifted: re-train and re-check the card"
    )
    return {
        "psi": value,
        "status": status,
        "validation_mean": float(reference.mean()) if len(reference) else math.nan,
        "current_mean": float(now.mean()) if len(now) else math.nan,
        "validation_units": len(reference),
        "current_units": len(now),
    }


def band(rank: int, k: int) -> str:
    if rank <= k:
        return "high"
    if rank <= 3 * k:
        return "medium"
    return "low"


@dataclass
class Scored:
    spec: ModelSpec
    model: training.TrainedModel
    rows: pd.DataFrame  # units with their area, score, rank, band, reasons (no features
    # but the household services the not-known cohort reads)
    k: int


def score_model(
    model: training.TrainedModel, con: Any, as_of: date, pseudo: dict[str, str]
) -> Scored:
    """Score the model's population as of ``as_of`` (features already built on ``con``)."""
    rows = dataset.unit_rows(con, model.spec, as_of)
    missing = [c for c in model.features if c not in rows]
    if missing:  # a column the lake cannot produce today scores as zero
        zeros = pd.DataFrame(0.0, index=rows.index, columns=missing, dtype="float32")
        rows = pd.concat([rows, zeros], axis=1)
    keep = ["unit_id", "oa_code", *[c for c in known_columns() if c in rows]]
    out = rows[keep].copy()
    scores: list[Any] = []
    why: list[list[dict[str, Any]]] = []
    # in chunks: SHAP's contributions are units x features doubles
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows.iloc[start : start + CHUNK_ROWS]
        scores.append(model.predict(chunk))
        why.extend(explain.reasons(model, chunk)[1])
    del rows  # the features are not kept: only what the scores and cohorts show
    out["score"] = np.concatenate(scores) if scores else np.empty(0)
    out["reasons"] = [json.dumps(r) for r in why]
    out["unit_pseudo"] = out["unit_id"].map(pseudo)
    return ranked(model, out)


def known_columns() -> list[str]:
    """The household columns the 'not known to services' cohort reads."""
    return [f"h_{ds}_3y" for ds in TARGETED_SERVICES]


def ranked(model: training.TrainedModel, rows: pd.DataFrame) -> Scored:
    """Rank scored units (highest score first, then by id) and band them by capacity.

    ``rows`` has each unit's ``unit_id``, ``unit_pseudo``, ``oa_code``, ``score`` and
    ``reasons``; both engines' scoring ends here, so ranks, bands and cohorts agree.
    """
    rows = rows.sort_values(["score", "unit_id"], ascending=[False, True]).reset_index(drop=True)
    rows["rank"] = range(1, len(rows) + 1)
    k = training.effective_k(model.spec.capacity, len(rows))
    rows["band"] = [band(r, k) for r in rows["rank"]]
    return Scored(model.spec, model, rows, k)


def _score_table(scored: list[Scored], as_of: date) -> pa.Table:
    frames = []
    for s in scored:
        frames.append(
            pd.DataFrame(
                {
                    "model": s.spec.name,
                    "unit_type": s.spec.unit,
                    "unit_id": s.rows["unit_id"],
                    "unit_pseudo": s.rows["unit_pseudo"],
                    "as_of": as_of,
                    "score": s.rows["score"].astype(float),
                    "band": s.rows["band"],
                    "rank": s.rows["rank"].astype("int64"),
                    "reasons": s.rows["reasons"],
                    "model_version": s.model.version,
                }
            )
        )
    frame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_SCHEMA.names)
    )
    return pa.Table.from_pandas(frame, schema=SCORE_SCHEMA, preserve_index=False)


def _cohort_frame(
    s: Scored, cohort: str, title: str, rule: str, chosen: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    chosen = chosen.head(s.k).reset_index(drop=True)
    return pd.DataFrame(
        {
            "cohort": cohort,
            "title": title,
            "rule": rule,
            "model": s.spec.name,
            "model_version": s.model.version,
            "as_of": as_of,
            "capacity": s.k,
            "size": len(chosen),
            "rank": range(1, len(chosen) + 1),
            "unit_type": s.spec.unit,
            "unit_id": chosen["unit_id"],
            "unit_pseudo": chosen["unit_pseudo"],
            "oa_code": chosen["oa_code"],
            "score": chosen["score"].astype(float),
            "reasons": chosen["reasons"],
        }
    )


def cohorts(scored: dict[str, Scored], as_of: date) -> pa.Table:
    """The standard cohorts from the models that were scored."""
    frames: list[pd.DataFrame] = []
    if "da_high_risk" in scored:
        s = scored["da_high_risk"]
        frames.append(
            _cohort_frame(
                s, "da-escalation",
                "Households predicted to escalate to high-risk domestic abuse",
                f"the {s.k} households (team capacity) with the highest predicted probability "
                "of a high-risk (DASH) domestic abuse incident within 12 months",
                s.rows, as_of,
            )
        )  # fmt: skip
    if "not_school_ready" in scored:
        s = scored["not_school_ready"]
        known = sum(s.rows.get(f"h_{ds}_3y", 0) for ds in TARGETED_SERVICES)
        unknown = s.rows[(known == 0) & (s.rows["score"] >= 0.5)]
        frames.append(
            _cohort_frame(
                s, "not-school-ready-unknown",
                "Children likely not school-ready in households not known to services",
                "children due their reception assessment within 12 months whose predicted "
                "probability of not reaching a good level of development is at least 50%, "
                "in households with no record from police, children's social care, early "
                "help, housing, probation, mental health or substance misuse services in the "
                f"last 3 years; at most {s.k} (team capacity), highest first",
                unknown, as_of,
            )
        )  # fmt: skip
    if "cin_cp_escalation" in scored:
        s = scored["cin_cp_escalation"]
        frames.append(
            _cohort_frame(
                s, "cin-cp-escalation",
                "Children likely to need a child in need or child protection plan",
                f"the {s.k} children (team capacity) not on a plan with the highest predicted "
                "probability of a child in need or child protection plan within 12 months",
                s.rows, as_of,
            )
        )  # fmt: skip
    if "child_exploitation" in scored:
        frames.append(_exploitation_areas(scored["child_exploitation"], as_of))
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=COHORT_SCHEMA.names)
    )
    return pa.Table.from_pandas(frame, schema=COHORT_SCHEMA, preserve_index=False)


def _exploitation_areas(s: Scored, as_of: date) -> pd.DataFrame:
    """Output areas ranked by expected exploitation concerns per 1,000 children aged 10-17."""
    rows = s.rows[s.rows["oa_code"].notna()]
    town_rate = 1000 * rows["score"].sum() / max(len(rows), 1)
    areas = (
        rows.groupby("oa_code")
        .agg(
            children=("unit_id", "size"),
            expected=("score", "sum"),
            high=("band", lambda b: int((b == "high").sum())),
        )
        .reset_index()
    )
    areas["rate"] = 1000 * areas["expected"] / areas["children"]
    chosen = areas[(areas["rate"] >= 1.5 * town_rate) & (areas["children"] >= 5)]
    chosen = chosen.sort_values(["rate", "oa_code"], ascending=[False, True]).reset_index(drop=True)
    capacity = max(1, math.ceil(len(areas) * 0.25))
    chosen = chosen.head(capacity)
    return pd.DataFrame(
        {
            "cohort": "exploitation-areas",
            "title": "Output areas where children are at risk of exploitation",
            "rule": "output areas whose expected child exploitation concerns within 12 months "
            "(the sum of the children's predicted probabilities) per 1,000 children aged 10-17 "
            f"is at least 1.5 times the town's ({town_rate:.1f}), with at least 5 children; "
            f"at most {capacity} areas (a quarter of the town), highest first",
            "model": s.spec.name,
            "model_version": s.model.version,
            "as_of": as_of,
            "capacity": capacity,
            "size": len(chosen),
            "rank": range(1, len(chosen) + 1),
            "unit_type": "output_area",
            "unit_id": chosen["oa_code"],
            "unit_pseudo": chosen["oa_code"],
            "oa_code": chosen["oa_code"],
            "score": chosen["rate"].astype(float),
            "reasons": [
                json.dumps(
                    {
                        "children": int(r.children),
                        "expected_concerns": round(float(r.expected), 2),
                        "children_in_high_band": int(r.high),
                    }
                )
                for r in chosen.itertuples()
            ],
        }
    )


def score_all(
    home: Home, as_of: date | None = None, names: list[str] | None = None
) -> dict[str, Any]:
    """Score every trained model (or those named) and write gold.scores and gold.cohorts."""
    from nominal.engines.duck import connect

    lake = Lake(home.lake)
    snapshot = lake.require_current()
    as_of = as_of or default_as_of(snapshot)
    models, skipped = load_models(home, names or list(SPECS))
    con = connect(snapshot, tables=dataset.GOLD_TABLES)
    features.build_tables(con, as_of)
    pseudo = dict(
        con.execute(
            "SELECT nominal_id, nominal_pseudo FROM gold.nominals UNION ALL "
            "SELECT household_id, household_pseudo FROM gold.households"
        ).fetchall()
    )
    scored = {name: score_model(m, con, as_of, pseudo) for name, m in models.items()}
    return write_scores(lake, scored, as_of, skipped)


def load_models(
    home: Home, names: list[str]
) -> tuple[dict[str, training.TrainedModel], dict[str, str]]:
    """The latest version of each named model, and why any could not be loaded."""
    models = {}
    skipped = {}
    for name in names:
        try:
            models[name] = training.load(home.models, name)
        except training.TrainingError as exc:
            skipped[name] = str(exc)
    if not models:
        raise training.TrainingError("no trained model to score: run `nominal risk train`")
    return models, skipped


def write_scores(
    lake: Lake, scored: dict[str, Scored], as_of: date, skipped: dict[str, str]
) -> dict[str, Any]:
    """Write gold.scores and gold.cohorts (one snapshot) and summarise what was scored."""
    scores = _score_table(list(scored.values()), as_of)
    cohort_table = cohorts(scored, as_of)
    with lake.transaction("risk-score") as tx:
        tx.replace("gold.scores", [tx.write_arrow("gold.scores", scores)])
        tx.replace("gold.cohorts", [tx.write_arrow("gold.cohorts", cohort_table)])
        tx.commit({"as_of": as_of.isoformat(), "models": sorted(scored)})
    sizes = cohort_table.group_by("cohort").aggregate([("unit_id", "count")]).to_pylist()
    return {
        "as_of": as_of,
        "scores": scores.num_rows,
        "models": {
            n: {
                "version": s.model.version,
                "units": len(s.rows),
                "k": s.k,
                "drift": drift(s.model, s.rows["score"]),
            }
            for n, s in scored.items()
        },
        "skipped": skipped,
        "cohorts": {r["cohort"]: r["unit_id_count"] for r in sizes},
    }
