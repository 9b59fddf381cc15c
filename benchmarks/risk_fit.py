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

``--replicate N`` fits on N copies of the rows (each copy's unit ids made unique), to
time the fits at N times the population without building its features; every copy of
a unit has the same features and outcome, so the metrics are those of one copy (ROC
AUC does not change when every unit is repeated) and only the cost is N times larger.
Each model's fit prints its wall time, CPU seconds and the process's peak memory; one
model per process keeps the peak to that model's rows::

    .venv/bin/python benchmarks/risk_fit.py --town T --home H --models da_high_risk --replicate 50
"""

from __future__ import annotations

import argparse
import pickle
import resource
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _constrain(training: Any, frame: Any, dates: dict[str, Any], threshold: float) -> None:
    """Make ``training.fit``'s LightGBM monotone in the features clearly tied to the outcome."""
    import functools

    import pandas as pd
    from lightgbm import LGBMClassifier

    from nominal.insight.dataset import feature_columns

    features = feature_columns(frame)
    train = frame[pd.to_datetime(frame["as_of"]).dt.date.isin(dates["train"])]
    corr = train[features].corrwith(train["label"], method="spearman").fillna(0.0)
    signs = [int(c > 0) - int(c < 0) if abs(c) >= threshold else 0 for c in corr]
    print(f"  monotone: {sum(1 for x in signs if x)} of {len(signs)} features constrained")
    training.LGBMClassifier = functools.partial(LGBMClassifier, monotone_constraints=signs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--town", type=Path, required=True, help="folder nominal synth wrote")
    parser.add_argument("--home", type=Path, required=True, help="hub home with gold tables")
    parser.add_argument("--models", default="", help="comma-separated (default: all four)")
    parser.add_argument("--end", default="2026-10-31", help="end of the data")
    parser.add_argument("--replicate", type=int, default=1, help="fit on this many copies")
    parser.add_argument("--seed", type=int, default=0, help="LightGBM's random seed")
    parser.add_argument("--no-save", action="store_true", help="do not save the models")
    parser.add_argument(
        "--monotone",
        type=float,
        default=0.0,
        help="constrain LightGBM to be monotone in every feature whose Spearman "
        "correlation with the outcome on the training rows is at least this (in size), "
        "in the direction of that correlation (0: no constraints)",
    )
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    from nominal.config import home
    from nominal.engines.lake import Lake
    from nominal.insight import dataset, explain, fairness, features, risk, training
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
        frame = rows[name]
        if args.replicate > 1:
            n = len(frame)
            frame = pd.concat([frame] * args.replicate, ignore_index=True)
            suffix = pd.Series(np.repeat(np.arange(args.replicate), n)).map(
                lambda k: f"~{k}" if k else ""
            )
            for col in ("unit_id", "household_id", "oa_code"):
                frame[col] = frame[col].astype(str) + suffix
            del rows[name]  # only the copies stay in memory
        if args.monotone > 0:
            _constrain(training, frame, dates, args.monotone)
        t0, c0 = time.perf_counter(), _cpu()
        model = training.fit(SPECS[name], frame, dates, seed=args.seed)
        fit_s, fit_cpu = time.perf_counter() - t0, _cpu() - c0
        oracle = training.oracle_metrics(model, args.town / "truth" / "outcomes.parquet")
        if oracle:
            model.metrics["oracle"] = oracle
        fair = fairness.fairness(model.validation, "score_lightgbm", model.k)
        explain.importance(model, model.validation)
        if not args.no_save:
            training.save(model, hub.models)
        print(
            f"\n{name}: {len(model.features)} features, {len(frame):,} rows "
            f"(x{args.replicate}), seed {args.seed}: fit {fit_s:.1f} s wall {fit_cpu:.1f} s CPU; "
            f"with oracle, fairness, SHAP importance{'' if args.no_save else ' and saving'} "
            f"{time.perf_counter() - t0:.1f} s wall {_cpu() - c0:.1f} s CPU; "
            f"peak RSS {_peak_mib():,.0f} MiB",
            flush=True,
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
                f"Brier {oracle['brier']:.4f}   model/oracle {ratio:.4f}"
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
