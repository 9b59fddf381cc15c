"""Fit the risk models on model rows built once, for quick comparisons of features and learners.

``risk_bench.py`` spends most of its time building point-in-time features for every
as-of date (seven at 100,000 people); this script builds the same model rows
(:func:`nominal.insight.dataset.rows_for_dates`, the dates and split of
:func:`nominal.insight.risk.train_all`) once, keeps them in a pickle beside the hub,
and then fits and evaluates each named model with :func:`nominal.insight.training.fit`
-- the code ``nominal risk train`` runs -- printing the LightGBM model, both baselines,
the oracle (the generator's true probabilities on the same units), the model/oracle
ratio and the largest recall@k gap between groups. Models are saved in the hub like
``nominal risk train`` saves them (without model cards)::

    .venv/bin/python benchmarks/risk_fit.py --town /tmp/kettleby100 --home /tmp/kettleby100-hub
    .venv/bin/python benchmarks/risk_fit.py --town T --home H --models da_high_risk

The hub must already hold the town's gold tables (``nominal risk oracle T`` or a
``risk_bench.py --home H`` run). Delete ``H/risk-rows.pkl`` after changing features.
"""

from __future__ import annotations

import argparse
import pickle
import time
from datetime import date, timedelta
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--town", type=Path, required=True, help="folder nominal synth wrote")
    parser.add_argument("--home", type=Path, required=True, help="hub home with gold tables")
    parser.add_argument("--models", default="", help="comma-separated (default: all four)")
    parser.add_argument("--end", default="2026-10-31", help="end of the data")
    args = parser.parse_args(argv)

    import pandas as pd

    from nominal.config import home
    from nominal.engines.lake import Lake
    from nominal.insight import dataset, fairness, features, risk, training
    from nominal.insight.specs import SPECS

    hub = home(args.home).ensure()
    snapshot = Lake(hub.lake).require_current()
    names = [n for n in args.models.split(",") if n] or list(SPECS)
    dates = training.split_dates(
        date.fromisoformat(args.end), risk.data_start(snapshot) - timedelta(days=5)
    )
    cache = args.home / "risk-rows.pkl"
    if cache.exists():
        rows: dict[str, pd.DataFrame] = pickle.loads(cache.read_bytes())
    else:
        t0 = time.perf_counter()
        all_dates = [d for ds in dates.values() for d in ds]
        bulk = features.backfilled(snapshot, dates["train"][-1])
        rows = dataset.rows_for_dates(
            snapshot, list(SPECS.values()), all_dates, respect_received=not bulk
        )
        print(f"model rows for {len(all_dates)} as-of dates in {time.perf_counter() - t0:.0f} s")
        cache.write_bytes(pickle.dumps(rows))
    for name in names:
        t0 = time.perf_counter()
        model = training.fit(SPECS[name], rows[name], dates)
        oracle = training.oracle_metrics(model, args.town / "truth" / "outcomes.parquet")
        if oracle:
            model.metrics["oracle"] = oracle
        fair = fairness.fairness(model.validation, "score_lightgbm", model.k)
        training.save(model, hub.models)
        print(
            f"\n{name}: {len(model.features)} features, fitted in {time.perf_counter() - t0:.0f} s"
        )
        for method in ("lightgbm", "logistic", "count_rule"):
            x = model.metrics[method]
            print(
                f"  {method:<10} units {x['n']:>7,} outcomes {x['positives']:>5} "
                f"ROC AUC {x['roc_auc']:.3f} PR AUC {x['pr_auc']:.3f} Brier {x['brier']:.4f} "
                f"(base rate {x['base_rate_brier']:.4f}) ECE {x['ece']:.4f} k {x['k']} "
                f"P@k {x['precision_at_k']:.3f} R@k {x['recall_at_k']:.3f}"
            )
        if oracle:
            ratio = model.metrics["lightgbm"]["roc_auc"] / oracle["roc_auc"]
            print(
                f"  oracle     units {oracle['matched_units']:>7,} ROC AUC {oracle['roc_auc']:.3f} "
                f"Brier {oracle['brier']:.4f}   model/oracle {ratio:.3f}"
            )
        worst = max(
            fair["attributes"].items(),
            key=lambda kv: -1 if kv[1]["recall_gap"] is None else kv[1]["recall_gap"],
        )
        gap = fair["largest_recall_gap"]
        print(
            f"  largest recall@k gap {'–' if gap is None else f'{gap:.3f}'} "
            f"({worst[0]}: {worst[1]['lowest_recall_group']})"
        )
        gain = model.lgbm.booster_.feature_importance("gain")
        top = pd.Series(gain, index=model.features).sort_values(ascending=False).head(8)
        print("  top features (gain): " + ", ".join(top.index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
