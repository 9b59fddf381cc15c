"""Risk models on a synthetic town: LightGBM against two baselines and the oracle.

Generates a town (or reads one already written), builds the gold tables from its
ground truth (perfect linkage), trains the four models on a temporal split and prints,
for each model on the validation year: ROC AUC, PR AUC, Brier score, expected
calibration error and precision at top k for the calibrated LightGBM model, the
logistic regression and the count-of-agencies rule (all measured in the same run), the
AUC of the generator's true probabilities (the oracle) and the model/oracle ratio, and
the largest gap in recall at top k between groups (sex, ethnicity, deprivation).
Then times building features, training and scoring::

    .venv/bin/python benchmarks/risk_bench.py --people 30000
    .venv/bin/python benchmarks/risk_bench.py --town /tmp/kettleby
    .venv/bin/python benchmarks/risk_bench.py --town /tmp/kettleby --home /tmp/kettleby-hub
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from datetime import date
from pathlib import Path


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def run(town: Path, work: Path, hub_path: Path | None = None) -> None:
    from nominal.config import home
    from nominal.engines.lake import Lake
    from nominal.insight import features, risk, scoring
    from nominal.insight.oracle import gold_from_truth

    hub = home(hub_path or work / "home").ensure()
    t0 = time.perf_counter()
    existing = Lake(hub.lake).current()
    if existing is not None and existing.has("gold.events"):
        # gold tables built earlier (e.g. by a previous run with --home): not re-timed
        people = len(existing.read("gold.nominals", columns=["nominal_id"]))
        t_gold = math.nan
    else:
        people = gold_from_truth(town, hub)["gold.nominals"]
        t_gold = time.perf_counter() - t0

    snapshot = Lake(hub.lake).require_current()
    t0 = time.perf_counter()
    features.build(snapshot, date(2025, 10, 31))
    t_features = time.perf_counter() - t0

    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def step(message: str) -> None:
        now = time.perf_counter()
        if last[1]:
            steps[str(last[1])] = now - float(last[0])
        last[0], last[1] = now, message

    results = risk.train_all(hub, end=date(2026, 10, 31), truth=town / "truth", step=step)
    steps[str(last[1])] = time.perf_counter() - float(last[0])
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = scoring.score_all(hub, date(2026, 10, 31))
    t_score = time.perf_counter() - t0

    print(f"\n{people:,} people; validation year from 2025-10-31; k = team capacity "
          "(at most a tenth of the units)\n")  # fmt: skip
    head = (
        f"{'model':<19} {'method':<11} {'units':>7} {'outc.':>5} {'ROC AUC':>7} {'PR AUC':>6} "
        f"{'Brier':>7} {'ECE':>6} {'k':>4} {'P@k':>5} {'R@k':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        if r.model is None:
            print(f"{r.name:<19} not trained: {r.error}")
            continue
        m = r.model.metrics
        for method in ("lightgbm", "logistic", "count_rule"):
            x = m[method]
            print(
                f"{r.name if method == 'lightgbm' else '':<19} {method:<11} {x['n']:>7,} "
                f"{x['positives']:>5} {_f(x['roc_auc']):>7} {_f(x['pr_auc']):>6} "
                f"{_f(x['brier'], 4):>7} {_f(x['ece'], 4):>6} {x['k']:>4} "
                f"{_f(x['precision_at_k']):>5} {_f(x['recall_at_k']):>5}"
            )
        oracle = m.get("oracle")
        if oracle:
            print(
                f"{'':<19} {'oracle':<11} {oracle['matched_units']:>7,} {'':>5} "
                f"{_f(oracle['roc_auc']):>7} {'':>6} {_f(oracle['brier'], 4):>7}"
            )
        print(f"{'':<19} base-rate Brier {_f(m['lightgbm']['base_rate_brier'], 4)}")
    print()
    print(f"{'model':<19} {'model/oracle AUC':>16} {'ahead of both baselines':>24} "
          f"{'largest recall@k gap':>21}  (group with the lowest recall)")  # fmt: skip
    for r in results:
        if r.model is None or r.card is None:
            continue
        m = r.model.metrics
        ratio = m["lightgbm"]["roc_auc"] / m["oracle"]["roc_auc"] if "oracle" in m else math.nan
        ahead = all(m["lightgbm"]["roc_auc"] > m[b]["roc_auc"] for b in ("logistic", "count_rule"))
        fair = r.card["fairness"]
        worst = max(
            fair["attributes"].items(),
            key=lambda kv: -1 if kv[1]["recall_gap"] is None else kv[1]["recall_gap"],
        )
        print(
            f"{r.name:<19} {_f(ratio):>16} {'yes' if ahead else 'no':>24} "
            f"{_f(fair['largest_recall_gap']):>21}  ({worst[0]}: {worst[1]['lowest_recall_group']})"
        )
    print()
    per_million = 1_000_000 / people
    print(f"{'step':<44} {'seconds':>8} {'per 1M people (linear)':>23}")
    for name, secs in (
        ("gold tables from truth (oracle linkage)", t_gold),
        ("features as of one date (person, household, area)", t_features),
        ("train all models (features, fit, cards)", t_train),
        ("score all models, explanations and cohorts", t_score),
    ):
        print(f"{name:<44} {secs:>8.1f} {secs * per_million:>23.0f}")
    for name, secs in steps.items():
        print(f"  {name:<42} {secs:>8.1f}")
    print(f"\nscored {scored['scores']:,} units; cohorts: {scored['cohorts']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--town", type=Path, help="a folder nominal synth already wrote")
    parser.add_argument(
        "--home",
        type=Path,
        help="hub home to use (and keep); its gold tables are reused if it has them",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="risk-bench-") as tmp:
        work = Path(tmp)
        town = args.town
        if town is None:
            from nominal.synth import generate

            town = work / "town"
            t0 = time.perf_counter()
            generate(town, args.people, seed=args.seed)
            print(f"generated {args.people:,} people in {time.perf_counter() - t0:.1f} s")
        run(town, work, args.home)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
