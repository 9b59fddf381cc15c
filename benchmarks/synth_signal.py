"""How much of each outcome's true risk can a model recover from linked partner records?

Generates a town (or reads one already written), links every record to its true person
(perfect linkage, from truth), counts each household's events per dataset in the three
years before each window, fits a logistic regression on earlier windows and scores the
last one. Prints the AUC of that model beside the AUC of the true probabilities (the
oracle): the gap is the room a real linked-data model has, before linkage errors::

    .venv/bin/python benchmarks/synth_signal.py --people 100000
    .venv/bin/python benchmarks/synth_signal.py --town /tmp/kettleby
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

OUTCOMES = {
    "da_high_risk": "household",
    "cin_cp_escalation": "person",
    "child_exploitation": "person",
    "not_school_ready": "person",
}


def signal(town: Path) -> list[tuple[str, int, int, float, float]]:
    con = duckdb.connect()
    for name in ("records", "outcomes", "residence"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{town}/truth/{name}.parquet'")
    datasets = [
        r[0] for r in con.execute("SELECT DISTINCT dataset FROM records ORDER BY 1").fetchall()
    ]
    counts = ", ".join(f"count(*) FILTER (WHERE r.dataset = '{d}') AS f_{d}" for d in datasets)
    # the unit's household as at the window start (for a household, itself)
    households = {
        "household": "SELECT o.*, o.unit_id AS hh FROM outcomes o",
        "person": """SELECT o.*, s.household_id AS hh FROM outcomes o JOIN residence s
                     ON s.person_id = o.unit_id AND s.from_date <= o.window_start
                    AND (s.to_date IS NULL OR s.to_date > o.window_start)""",
    }
    rows = []
    for outcome, unit in OUTCOMES.items():
        df = con.execute(
            f"""WITH units AS ({households[unit]} WHERE o.outcome = '{outcome}'),
                members AS (SELECT DISTINCT household_id, person_id FROM residence)
                SELECT u.unit_id, u.window_start, u.probability, u.realised, {counts}
                FROM units u
                LEFT JOIN members m ON m.household_id = u.hh
                LEFT JOIN records r ON r.person_id = m.person_id
                 AND r.event_date < u.window_start
                 AND r.event_date >= u.window_start - INTERVAL 3 YEAR
                GROUP BY ALL"""
        ).df()
        windows = sorted(df.window_start.unique())
        train = df[df.window_start.isin(windows[2:-1])]
        test = df[df.window_start == windows[-1]]
        features = [c for c in df.columns if c.startswith("f_")]

        model = LogisticRegression(max_iter=2000).fit(
            np.log1p(train[features].to_numpy(float)), train.realised
        )
        scored = model.predict_proba(np.log1p(test[features].to_numpy(float)))[:, 1]
        rows.append(
            (
                outcome,
                len(test),
                int(test.realised.sum()),
                float(roc_auc_score(test.realised, test.probability)),
                float(roc_auc_score(test.realised, scored)),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--town", type=Path, help="a folder nominal synth already wrote")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="synth-signal-") as tmp:
        town = args.town
        if town is None:
            from nominal.synth import generate

            town = Path(tmp) / "town"
            generate(town, args.people, seed=args.seed)
        print(f"{'outcome':<20} {'units':>8} {'realised':>9} {'AUC oracle':>11} {'AUC model':>10}")
        for outcome, units, realised, oracle, model in signal(town):
            print(f"{outcome:<20} {units:>8,} {realised:>9,} {oracle:>11.3f} {model:>10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
