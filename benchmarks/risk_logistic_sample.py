"""What fitting the logistic regression baseline on a weighted sample costs in accuracy.

Above ``training.LOGISTIC_MAX_ROWS`` training rows the baseline is fitted on every
outcome plus a weighted uniform sample of the other rows. This fits it on all the
training rows of a hub's cached model rows (``benchmarks/risk_fit.py`` writes
``HOME/risk-rows.pkl``) and on samples of 100,000 and 50,000 rows, and prints the
validation ROC AUC and Brier score of each::

    .venv/bin/python benchmarks/risk_logistic_sample.py --home /work/data/risk1m-data/hub100k
"""

import argparse
import pickle
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from nominal.config import home
from nominal.engines.lake import Lake
from nominal.insight import dataset, risk, training


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--end", default="2026-10-31")
    parser.add_argument("--models", default="da_high_risk,cin_cp_escalation")
    args = parser.parse_args()
    h = home(args.home)
    snap = Lake(h.lake).require_current()
    end = date.fromisoformat(args.end)
    dates = training.split_dates(end, risk.data_start(snap) - timedelta(days=5))
    rows = pickle.loads((h.root / "risk-rows.pkl").read_bytes())
    for name in args.models.split(","):
        part = dataset.split(rows[name], dates)
        x, y = part["train"].x, part["train"].keys["label"].to_numpy(int)
        xv, yv = part["validate"].x, part["validate"].keys["label"].to_numpy(int)
        for cap in (None, 100_000, 50_000):
            if cap is not None and cap >= len(y):
                continue  # no sample: the same as all rows
            t = time.process_time()
            training.LOGISTIC_MAX_ROWS = cap or len(y)
            lr, n = training.fit_logistic(x, y, 0)
            p = lr.predict_proba(xv)[:, 1]
            print(
                f"{name} train rows {len(y):,} logistic on {n:,} rows: "
                f"ROC AUC {roc_auc_score(yv, p):.4f} Brier {brier_score_loss(yv, p):.5f} "
                f"mean p {np.mean(p):.4f} (rate {yv.mean():.4f}) "
                f"{time.process_time() - t:.1f} CPU s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
